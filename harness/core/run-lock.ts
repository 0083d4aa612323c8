import { readFileSync, unlinkSync } from "node:fs";
import { open, readFile, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TphError } from "./errors.ts";
import { pidAlive } from "./pid.ts";

/**
 * One e2e run per machine. Every e2e run uses the same cluster names, node subnet and state directory,
 * and its first step garbage-collects that directory's clusters: a second run would tear down the first
 * one's clusters mid-test. So a run takes this lock first and a second one refuses at once, naming the
 * holder. The lock is a file holding the holder's pid; a holder that died (kill -9) leaves a stale file,
 * which the next run takes over.
 */
export const E2E_LOCK_PATH = join(tmpdir(), "tph-e2e.lock");

export interface LockHolder {
  pid: number;
  cwd: string;
  command: string;
  started: string;
}

export async function acquireRunLock(path: string): Promise<void> {
  const me: LockHolder = {
    pid: process.pid,
    cwd: process.cwd(),
    command: process.argv.slice(1).join(" "),
    started: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const f = await open(path, "wx");
      await f.writeFile(JSON.stringify(me));
      await f.close();
      // Released when this process ends however it ends short of SIGKILL (then the next run takes it over).
      process.once("exit", () => releaseRunLockSync(path));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = await readHolder(path);
    if (!holder && attempt < 2) {
      // Created but not written yet by a run that is starting: look again.
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    // Taken already by this process (tph run, then its suites) or by one it runs under (a suite that
    // runs `tph run` itself, on a state directory of its own).
    if (holder && isSelfOrAncestor(holder.pid)) return;
    if (holder && pidAlive(holder.pid)) {
      throw new TphError(
        `another e2e run is in progress on this machine (pid ${holder.pid}, in ${holder.cwd}, started ${holder.started}: ${holder.command})`,
        {
          hint: `e2e runs share cluster names, the node subnet and ${path}; wait for it to end (or stop it), then run again`,
        },
      );
    }
    // The holder is gone: take the lock over.
    await unlink(path).catch(() => undefined);
  }
  throw new TphError(`could not take the e2e run lock ${path}`, { hint: "remove it if no e2e run is going" });
}

export async function releaseRunLock(path: string): Promise<void> {
  const holder = await readHolder(path);
  if (holder?.pid === process.pid) await unlink(path).catch(() => undefined);
}

function releaseRunLockSync(path: string): void {
  try {
    const holder = JSON.parse(readFileSync(path, "utf8")) as LockHolder;
    if (holder.pid === process.pid) unlinkSync(path);
  } catch {
    // gone already
  }
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as LockHolder;
  } catch {
    return undefined; // missing, or half-written by a run that is starting
  }
}

/** Whether `pid` is this process or one of its ancestors (walks /proc/<pid>/stat's parent pids). */
function isSelfOrAncestor(pid: number): boolean {
  let current = process.pid;
  for (let depth = 0; depth < 64 && current > 1; depth++) {
    if (current === pid) return true;
    try {
      // The command name (2nd field) is in parentheses and may hold spaces: the parent pid follows ")".
      const stat = readFileSync(`/proc/${current}/stat`, "utf8");
      current = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      return false;
    }
  }
  return false;
}
