import { spawn } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { takeTurn } from "./turn-lock.ts";

const turn = (path: string, timeoutMs = 5_000) => takeTurn(path, { description: "the turn", timeoutMs });

describe("takeTurn", () => {
  it("gives the turn to one taker at a time: the second waits until the first lets go", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "tph-turn-")), "a.lock");
    const order: string[] = [];
    const releaseFirst = await turn(path);
    order.push("first");
    const second = turn(path).then((release) => {
      order.push("second");
      return release;
    });
    await new Promise((r) => setTimeout(r, 600));
    expect(order).toEqual(["first"]);
    await releaseFirst();
    const releaseSecond = await second;
    expect(order).toEqual(["first", "second"]);
    await releaseSecond();
  });

  it("says who holds it when the wait runs out", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "tph-turn-")), "b.lock");
    const release = await turn(path);
    await expect(turn(path, 600)).rejects.toThrow(`held by pid ${process.pid}`);
    await release();
  });

  it("takes over the turn of a holder that died", async () => {
    const path = join(await mkdtemp(join(tmpdir(), "tph-turn-")), "c.lock");
    const child = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => child.once("exit", r));
    await writeFile(path, String(child.pid));
    const release = await turn(path, 2_000);
    expect(await readFile(path, "utf8")).toBe(String(process.pid));
    await release();
  });
});
