import { rm } from "node:fs/promises";
import { NAME_PREFIX } from "../../core/config.ts";
import type { Logger } from "../../core/logger.ts";
import { deleteHostLink, deleteNamespace, listNamespaces } from "./netns.ts";
import { findProcesses, stopProcess } from "./process.ts";
import { clusterDir } from "./state.ts";

/**
 * Removes everything a local cluster named `name` may own, found by name alone: processes whose command
 * line mentions its state directory, namespaces named tph-<name>-*, the host link tph-<name>, and the
 * state directory. It needs no in-memory handle and no state file, so the same code serves `tph down`,
 * a failed `tph up`, and `tph gc` after a SIGKILL. Idempotent.
 */
export async function teardownCluster(stateDir: string, name: string, logger: Logger): Promise<string[]> {
  const removed: string[] = [];
  const dir = clusterDir(stateDir, name);
  // Graceful first (etcd and the apiserver shut down cleanly on SIGTERM), in parallel to keep `down` quick.
  const pids = await findProcesses(`${dir}/`);
  await Promise.all(pids.map((pid) => stopProcess(pid, `${dir}/`, 3_000)));
  if (pids.length > 0) removed.push(`${pids.length} process(es)`);

  const base = `${NAME_PREFIX}${name}`;
  const namespaces = (await listNamespaces()).filter((ns) => ns.startsWith(`${base}-`));
  // The bridge namespace last: deleting it first would only cut the others' links from under them.
  namespaces.sort((a, b) => Number(a.endsWith("-net")) - Number(b.endsWith("-net")));
  for (const ns of namespaces) {
    await deleteNamespace(ns, logger);
    removed.push(`namespace ${ns}`);
  }
  await deleteHostLink(base, logger).then(
    () => undefined,
    (err) => logger.warn(`could not delete link ${base}: ${err instanceof Error ? err.message : err}`),
  );
  await rm(dir, { recursive: true, force: true });
  logger.debug(`removed ${removed.join(", ") || "nothing"} for cluster ${name}`);
  return removed;
}
