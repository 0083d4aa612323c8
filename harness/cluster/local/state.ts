import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NetworkPlan } from "./network.ts";
import type { LocalNode } from "./nodes.ts";
import type { ProcessRecord } from "./process.ts";

/**
 * What a local cluster records about itself in `<stateDir>/<name>/state.json`. Written after every
 * step of bring-up, so a crash leaves an accurate trail for `tph down` and `tph gc`.
 */
export interface LocalClusterState {
  name: string;
  provider: "local";
  /** `creating` until bring-up finishes; a `creating` cluster whose owner pid is dead is a leftover. */
  phase: "creating" | "ready";
  ownerPid: number;
  createdAt: string;
  dir: string;
  network: NetworkPlan;
  kubeconfig: string;
  server: string;
  versions: Record<string, string>;
  processes: ProcessRecord[];
  nodes: LocalNode[];
  proxyMode: string;
  /** Nodes stopped by `tph` (node operations), so status does not report their processes as failures. */
  stoppedNodes: string[];
}

export function clusterDir(stateDir: string, name: string): string {
  return join(stateDir, name);
}

export async function saveState(state: LocalClusterState): Promise<void> {
  await mkdir(state.dir, { recursive: true });
  const file = join(state.dir, "state.json");
  await writeFile(`${file}.tmp`, JSON.stringify(state, null, 2));
  await rename(`${file}.tmp`, file);
}

export async function loadState(stateDir: string, name: string): Promise<LocalClusterState | undefined> {
  try {
    return JSON.parse(
      await readFile(join(clusterDir(stateDir, name), "state.json"), "utf8"),
    ) as LocalClusterState;
  } catch {
    return undefined;
  }
}

/** Names of every cluster with a state directory. */
export async function listStates(stateDir: string): Promise<string[]> {
  try {
    return (await readdir(stateDir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}
