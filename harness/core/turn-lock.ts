import { readFileSync, unlinkSync } from "node:fs";
import { mkdir, open, readFile, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { pidAlive } from "./pid.ts";
import { waitFor } from "./wait.ts";

/**
 * A turn at something several processes of this machine want one at a time (a shared e2e cluster that
 * suites in two vitest workers use): taking it waits until the holder lets go. The lock is a file
 * holding the holder's pid, created exclusively; a holder that died leaves it stale, and the next taker
 * removes it. Returns the release, which also runs if the process exits while holding it.
 */
export async function takeTurn(
  path: string,
  options: { description: string; timeoutMs: number; signal?: AbortSignal },
): Promise<() => Promise<void>> {
  await mkdir(dirname(path), { recursive: true });
  await waitFor(
    async () => {
      try {
        const f = await open(path, "wx");
        await f.writeFile(String(process.pid));
        await f.close();
        return { done: true, value: undefined };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
      // Empty: created and not written yet by a taker that is starting; look again.
      if (holder > 0 && !pidAlive(holder)) await unlink(path).catch(() => undefined);
      return { done: false, state: holder > 0 ? `held by pid ${holder}` : "being taken" };
    },
    {
      description: options.description,
      timeoutMs: options.timeoutMs,
      intervalMs: 250,
      ...(options.signal && { signal: options.signal }),
    },
  );
  const onExit = () => releaseSync(path);
  process.once("exit", onExit);
  return async () => {
    process.off("exit", onExit);
    const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (holder === process.pid) await unlink(path).catch(() => undefined);
  };
}

function releaseSync(path: string): void {
  try {
    if (Number(readFileSync(path, "utf8").trim()) === process.pid) unlinkSync(path);
  } catch {
    // gone already
  }
}
