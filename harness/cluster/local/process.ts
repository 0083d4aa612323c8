import { spawn } from "node:child_process";
import { open, readdir, readFile } from "node:fs/promises";
import { TphError } from "../../core/errors.ts";
import { sleep } from "../../core/wait.ts";

/**
 * Long-running cluster processes (etcd, apiserver, ...). Each runs detached in its own session inside a
 * network namespace, with stdout+stderr appended to a log file, so it outlives `tph up` and a Ctrl-C
 * in the terminal does not reach it. What identifies it later is its pid plus its command line, which
 * always contains the cluster's state directory (so a recycled pid is never mistaken for ours).
 */
export interface ProcessRecord {
  name: string;
  pid: number;
  netns: string;
  argv: string[];
  log: string;
  startedAt: string;
}

export async function startProcess(options: {
  name: string;
  netns: string;
  argv: string[];
  log: string;
  env?: Record<string, string>;
  /**
   * `ip netns exec` (the default) also gives the process a private mount namespace with the netns's own
   * /sys. The node agent instead needs the host's mount namespace, because the pod namespaces it creates
   * (`ip netns add`) must be visible to everyone else: it is entered with `nsenter --net` only.
   */
  hostMounts?: boolean;
}): Promise<ProcessRecord> {
  const [bin, ...args] = options.argv;
  if (!bin) throw new TphError(`no command for ${options.name}`);
  const log = await open(options.log, "a");
  try {
    // Logs are appended across restarts; the marker lets logTail show this run's lines only.
    await log.write(
      `${START_MARKER}${options.name} at ${new Date().toISOString()}: ${options.argv.join(" ")}\n`,
    );
    // Both `ip netns exec` and nsenter exec the program in place, so the pid we get is the program's own.
    const enter = options.hostMounts
      ? ["nsenter", `--net=/run/netns/${options.netns}`, "--"]
      : ["ip", "netns", "exec", options.netns];
    const child = spawn(enter[0] as string, [...enter.slice(1), bin, ...args], {
      detached: true,
      stdio: ["ignore", log.fd, log.fd],
      env: { ...process.env, ...options.env },
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("spawn", () => (child.pid ? resolve(child.pid) : reject(new Error("no pid"))));
    });
    child.unref();
    return {
      name: options.name,
      pid,
      netns: options.netns,
      argv: options.argv,
      log: options.log,
      startedAt: new Date().toISOString(),
    };
  } finally {
    await log.close();
  }
}

/**
 * True while a process we started is alive (not a zombie). For waits on our own children: unlike
 * isOurs, it does not read the command line, which is briefly unreadable while the process execs.
 */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** True when `pid` is alive (not a zombie) and its command line contains `marker`. */
export async function isOurs(pid: number, marker: string): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return false;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.includes(marker);
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(pid: number, marker: string, graceMs = 5_000): Promise<void> {
  if (!(await isOurs(pid, marker))) return;
  signal(pid, "SIGTERM");
  // A stopped process (a kubelet made to hang) handles the SIGTERM only once continued.
  signal(pid, "SIGCONT");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await isOurs(pid, marker))) return;
    await sleep(50);
  }
  signal(pid, "SIGKILL");
  for (let i = 0; i < 100 && (await isOurs(pid, marker)); i++) await sleep(20);
}

/** Every live process whose command line mentions `marker` (e.g. a cluster's state directory). */
export async function findProcesses(marker: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    if (await isOurs(pid, marker)) pids.push(pid);
  }
  return pids;
}

/** The line startProcess writes into a log before each start. */
export const START_MARKER = "=== tph: starting ";

/**
 * The last lines a log got since the process was last started (startProcess marks each start), for
 * errors about a process that died: a restarted process's error must not show its predecessor's lines.
 */
export async function logTail(path: string, lines = 20): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return "(no log)";
  }
  const all = text.trimEnd().split("\n");
  const since = all.findLastIndex((l) => l.startsWith(START_MARKER));
  const own = all.slice(since + 1);
  return own.length === 0 || (own.length === 1 && own[0] === "")
    ? "(it wrote nothing)"
    : own.slice(-lines).join("\n");
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {}
}
