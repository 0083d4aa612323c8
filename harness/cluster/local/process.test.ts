import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { logTail, START_MARKER } from "./process.ts";

describe("logTail", () => {
  it("shows only what the last start of the process wrote", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tph-log-"));
    const log = join(dir, "kube-proxy.log");
    await writeFile(
      log,
      [
        `${START_MARKER}kube-proxy at 2026-11-25T10:00:00Z: kube-proxy --v=2`,
        "I1125 old line 1",
        "I1125 old line 2",
        `${START_MARKER}kube-proxy at 2026-11-25T10:05:00Z: /bin/false`,
        "",
      ].join("\n"),
    );
    // The process that died wrote nothing: its predecessor's lines are not its story.
    expect(await logTail(log)).toBe("(it wrote nothing)");
    await writeFile(log, `${START_MARKER}x at t: x\nE1125 failed to start: boom\n`, { flag: "a" });
    expect(await logTail(log)).toBe("E1125 failed to start: boom");
    // Lines before any marker (a log from before markers existed) are all its own.
    await writeFile(log, "a\nb\nc\n");
    expect(await logTail(log, 2)).toBe("b\nc");
    expect(await logTail(join(dir, "missing.log"))).toBe("(no log)");
  });
});
