#!/usr/bin/env bash
# (Re)creates upstream/DIR/go.mod pinning k8s.io/kubernetes at VERSION, with the PACKAGEs as tool
# directives, then runs `go mod tidy` so go.sum holds everything the binaries need.
#
#   upstream/pin-kubernetes.sh DIR VERSION PACKAGE...
#   upstream/pin-kubernetes.sh kube-proxy-previous v1.36.3 k8s.io/kubernetes/cmd/kube-proxy
#
# k8s.io/kubernetes is not meant to be a dependency: its go.mod replaces every k8s.io/* staging module
# with ./staging/src/k8s.io/*, and some of its requires are v0.0.0, which only resolve through those
# replaces. Replaces of a dependency do not apply to us, so we copy the tag's replace list, pointing
# each staging module at its published release instead (Kubernetes v1.Y.Z ships them as v0.Y.Z).
set -euo pipefail

usage() {
  echo "usage: $0 DIR VERSION PACKAGE..." >&2
  echo "  e.g. $0 kube-proxy-previous v1.36.3 k8s.io/kubernetes/cmd/kube-proxy" >&2
  exit 2
}
[ $# -ge 3 ] || usage
dir=$1
version=$2
shift 2
packages=("$@")

# DIR is one directory right under upstream/, named in the module path; or an absolute path (tph's
# on-demand releases pin into its cache this way, without touching the repo).
out=""
if [[ $dir == /* ]]; then
  out=$dir
  dir=$(basename "$dir")
fi
[[ $dir =~ ^[a-z0-9][a-z0-9._-]*$ ]] || { echo "DIR must be a plain lower-case name, got '$dir'" >&2; exit 2; }
# Only v1.Y.Z[-pre] maps onto the staging modules' v0.Y.Z[-pre].
[[ $version =~ ^v1\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || { echo "VERSION must look like v1.Y.Z, got '$version'" >&2; exit 2; }
staging_version="v0.${version#v1.}"

upstream=$(cd "$(dirname "$0")" && pwd)
[ -n "$out" ] || out="$upstream/$dir"

# Fetch the tag from outside any module, so a stale or broken go.mod in $out cannot get in the way.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
tag_mod=$(cd "$scratch" && go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
[ -f "$tag_mod" ] || { echo "go mod download gave no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }

# Every `k8s.io/X => ./staging/src/k8s.io/X` (block or single-line form) becomes `k8s.io/X => k8s.io/X v0.Y.Z`.
replaces=$(sed -n -E 's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/src/([^[:space:]]+)[[:space:]]*$#\2 \3#p' "$tag_mod" |
  while read -r from path; do
    [ "$from" = "$path" ] || { echo "unexpected staging replace: $from => ./staging/src/$path" >&2; exit 1; }
    printf '\t%s => %s %s\n' "$from" "$from" "$staging_version"
  done | LC_ALL=C sort)
[ -n "$replaces" ] || { echo "no ./staging/src replaces in $tag_mod" >&2; exit 1; }

# Binary names for the comment; the tool block is sorted like go mod edit would.
names=$(for p in "${packages[@]}"; do basename "$p"; done | paste -sd, - | sed 's/,/, /g')
tools=$(printf '\t%s\n' "${packages[@]}" | LC_ALL=C sort -u)

mkdir -p "$out"
cat >"$out/go.mod" <<EOF
// Pins Kubernetes $version for $names. Regenerate with upstream/pin-kubernetes.sh $dir $version ${packages[*]}
module tph.local/upstream/$dir

go 1.26.0

require k8s.io/kubernetes $version

replace (
$replaces
)

tool (
$tools
)
EOF

# Fills in the indirect requires and go.sum (an existing go.sum is kept: tidy drops what is unused,
# and known hashes still get checked).
(cd "$out" && go mod tidy)
echo "wrote $out/go.mod and go.sum" >&2
