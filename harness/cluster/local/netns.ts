import { run } from "../../core/exec.ts";
import type { Logger } from "../../core/logger.ts";

/** Thin wrappers over iproute2 for network namespaces. Everything is argv, nothing goes through a shell. */

export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run(["ip", "netns", "list"]);
  return stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter(Boolean);
}

export async function createNamespace(name: string, logger?: Logger): Promise<void> {
  await run(["ip", "netns", "add", name], logger ? { logger } : {});
  await run(["ip", "-n", name, "link", "set", "lo", "up"], logger ? { logger } : {});
}

/** PIDs of every process whose network namespace is `name`. */
export async function namespacePids(name: string): Promise<number[]> {
  const { stdout } = await run(["ip", "netns", "pids", name], { allowFailure: true });
  return stdout
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Kills whatever still runs in the namespace, then deletes it. Missing namespaces are fine. */
export async function deleteNamespace(name: string, logger?: Logger): Promise<void> {
  if (!(await listNamespaces()).includes(name)) return;
  for (const pid of await namespacePids(name)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  await run(["ip", "netns", "del", name], logger ? { logger } : {});
}

/** Host-side links whose name starts with `prefix` (e.g. the cluster's one link into its network). */
export async function listHostLinks(prefix: string): Promise<string[]> {
  const { stdout } = await run(["ip", "-j", "link", "show"]);
  const links = JSON.parse(stdout || "[]") as { ifname: string }[];
  return links.map((l) => l.ifname).filter((n) => n.startsWith(prefix));
}

/** The alias of a host link ("" when it has none or does not exist). */
export async function hostLinkAlias(name: string): Promise<string> {
  const { stdout } = await run(["ip", "-j", "link", "show"]);
  const links = JSON.parse(stdout || "[]") as { ifname: string; ifalias?: string }[];
  return links.find((l) => l.ifname === name)?.ifalias ?? "";
}

export async function deleteHostLink(name: string, logger?: Logger): Promise<void> {
  if (!(await listHostLinks(name)).includes(name)) return;
  // Deleting the bridge namespace takes the veth's host end with it, asynchronously: a link that vanished
  // between the listing and the delete is what we wanted.
  const r = await run(["ip", "link", "del", name], { allowFailure: true, ...(logger && { logger }) });
  if (r.exitCode !== 0 && (await listHostLinks(name)).includes(name)) {
    throw new Error(`could not delete link ${name}: ${r.stderr.trim()}`);
  }
}

export interface HostRoute {
  dst: string;
  dev?: string;
  table?: string;
  type?: string;
}

/** Every IPv4 route of the host, all tables. */
export async function hostRoutes(): Promise<HostRoute[]> {
  const { stdout } = await run(["ip", "-j", "-4", "route", "show", "table", "all"]);
  return JSON.parse(stdout || "[]") as HostRoute[];
}
