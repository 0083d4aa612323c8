import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { TphError } from "./errors.ts";
import { acquireRunLock, releaseRunLock } from "./run-lock.ts";

async function lockPath(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), "tph-lock-")), "e2e.lock");
}

describe("the e2e run lock", () => {
  it("is taken, taken again by the same process, and released", async () => {
    const path = await lockPath();
    await acquireRunLock(path);
    await acquireRunLock(path);
    expect(JSON.parse(await readFile(path, "utf8")).pid).toBe(process.pid);
    await releaseRunLock(path);
    await expect(readFile(path, "utf8")).rejects.toThrow(/ENOENT/);
  });

  it("refuses at once while another live process holds it, naming it", async () => {
    const path = await lockPath();
    // pid 1 is always alive: a run that holds the lock.
    await writeFile(
      path,
      JSON.stringify({ pid: 1, cwd: "/other/checkout", command: "tph run", started: "t" }),
    );
    const err = await acquireRunLock(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TphError);
    expect((err as Error).message).toMatch(/another e2e run .*pid 1, in \/other\/checkout/);
    expect(JSON.parse(await readFile(path, "utf8")).pid).toBe(1);
  });

  it("lets a process that runs under the holder in (a suite running tph run itself)", async () => {
    const path = await lockPath();
    await acquireRunLock(path);
    const child = await execa(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { acquireRunLock } from ${JSON.stringify(`${import.meta.dirname}/run-lock.ts`)}; await acquireRunLock(${JSON.stringify(path)}); console.log("in");`,
      ],
      { reject: false },
    );
    expect(child.stdout).toBe("in");
    expect(JSON.parse(await readFile(path, "utf8")).pid).toBe(process.pid);
    await releaseRunLock(path);
  });

  it("takes over the lock of a run that died", async () => {
    const path = await lockPath();
    const child = execa("true");
    const dead = child.pid as number;
    await child;
    await writeFile(path, JSON.stringify({ pid: dead, cwd: "/x", command: "tph run", started: "t" }));
    await acquireRunLock(path);
    expect(JSON.parse(await readFile(path, "utf8")).pid).toBe(process.pid);
    await releaseRunLock(path);
  });
});
