import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { TphError } from "./errors.ts";

/** The minor number of a release: v1.37.2 → 37, v0.15.2 → 15. */
export function minorOf(version: string): number {
  return Number(version.replace(/^v/, "").split(".")[1]);
}

/** Orders releases vX.Y.Z by major, minor and patch (a pre-release suffix is not compared). */
export function compareRelease(a: string, b: string): number {
  const pa = a.replace(/^v/, "").split(/[.-]/).map(Number);
  const pb = b.replace(/^v/, "").split(/[.-]/).map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The kube-proxy release the roll suites go back to and forth with: the minor before the cluster's,
 * pinned in upstream/kube-proxy-previous (the local provider builds it; kind pulls that release's image).
 * A cluster on another release than the pinned one (`clusterVersion`) rolls to its previous minor's .0
 * instead, which always exists: the pinned previous release may be as new as that cluster, or newer.
 */
export async function previousKubeProxyVersion(repoRoot: string, clusterVersion?: string): Promise<string> {
  const pinned = await pinnedPrevious(repoRoot);
  if (!clusterVersion || minorOf(pinned) === minorOf(clusterVersion) - 1) return pinned;
  return `v1.${minorOf(clusterVersion) - 1}.0`;
}

async function pinnedPrevious(repoRoot: string): Promise<string> {
  const file = join(repoRoot, "upstream", "kube-proxy-previous", "go.mod");
  const mod = await readFile(file, "utf8").catch((err: unknown) => {
    throw new TphError(`cannot read ${file}`, { cause: err, hint: "run tph from a full checkout" });
  });
  const version = /^\s*(?:require\s+)?k8s\.io\/kubernetes\s+(v\S+)/m.exec(mod)?.[1];
  if (!version) throw new TphError(`${file} does not require k8s.io/kubernetes`);
  return version;
}
