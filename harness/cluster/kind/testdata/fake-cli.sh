#!/usr/bin/env bash
# A stand-in for `kind`, `docker` and `helm` in unit tests: records every call (one line: program and argv,
# tab-separated) in $TPH_FAKE_LOG, and answers from canned files or environment switches.
set -u
prog=$(basename "$0")
printf '%s' "$prog" >> "$TPH_FAKE_LOG"
for a in "$@"; do printf '\t%s' "$a" >> "$TPH_FAKE_LOG"; done
printf '\n' >> "$TPH_FAKE_LOG"
here=$(dirname "$(readlink -f "$0")")
case "$prog $*" in
  "docker version"*)
    [ "${FAKE_DOCKER_DOWN:-}" = 1 ] && { echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; }
    echo "28.2.2" ;;
  "docker network inspect kind") cat "$here/docker-network-inspect-kind.json" ;;
  "docker image inspect"*) echo "[]" ;;
  "docker ps"*) printf '%s' "${FAKE_DOCKER_PS:-}" ;;
  "kind get clusters") printf '%s' "${FAKE_KIND_CLUSTERS:-}" ;;
  "helm template"*) cat "$here/cilium-template.yaml" ;;
  "kind create cluster"*)
    if [ -n "${FAKE_KIND_CREATE_FAIL:-}" ]; then
      echo "ERROR: failed to create cluster: $FAKE_KIND_CREATE_FAIL" >&2
      exit 1
    fi
    # With a fake API server to point at, write the kubeconfig kind would (--kubeconfig PATH).
    if [ -n "${FAKE_KIND_API:-}" ]; then
      kubeconfig=""
      while [ $# -gt 0 ]; do [ "$1" = --kubeconfig ] && kubeconfig=$2; shift; done
      cat > "$kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kind
  cluster:
    server: $FAKE_KIND_API
    insecure-skip-tls-verify: true
contexts:
- name: kind
  context:
    cluster: kind
    user: kind
current-context: kind
users:
- name: kind
  user:
    token: fake
EOF
    fi ;;
  *) ;;
esac
exit 0
