import { describe, expect, it } from "vitest";
import { CommandError, run, shellQuote, which } from "./exec.ts";

describe("run", () => {
  it("passes argv through without a shell", async () => {
    const r = await run(["printf", "%s|", "a b", "$HOME", "'q'"]);
    expect(r.stdout).toBe("a b|$HOME|'q'|");
    expect(r.exitCode).toBe(0);
  });

  it("throws a CommandError carrying argv, exit code, output tails and a pasteable line", async () => {
    const err = await run(["sh", "-c", "echo out; echo err >&2; exit 3", "x y"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    const e = err as CommandError;
    expect(e.argv).toEqual(["sh", "-c", "echo out; echo err >&2; exit 3", "x y"]);
    expect(e.exitStatus).toBe(3);
    expect(e.stdoutTail).toBe("out");
    expect(e.stderrTail).toBe("err");
    expect(e.commandLine).toBe("sh -c 'echo out; echo err >&2; exit 3' 'x y'");
    expect(e.message).toContain("exited 3");
    expect(e.message).toContain("stderr:\n    err");
  });

  it("keeps only the tail of long output", async () => {
    const err = (await run(["sh", "-c", "seq 1 100000; exit 1"]).catch((e: unknown) => e)) as CommandError;
    expect(err.stdoutTail.length).toBeLessThanOrEqual(2_001);
    expect(err.stdoutTail.endsWith("100000")).toBe(true);
  });

  it("returns a failed result when allowed", async () => {
    const r = await run(["sh", "-c", "exit 4"], { allowFailure: true });
    expect(r.exitCode).toBe(4);
  });

  it("says when the program does not exist", async () => {
    await expect(run(["no-such-program-tph"])).rejects.toThrow(/not found/);
  });

  it("can be cancelled", async () => {
    const controller = new AbortController();
    const p = run(["sleep", "10"], { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(p).rejects.toThrow(/cancelled/);
  });

  it("times out", async () => {
    await expect(run(["sleep", "10"], { timeoutMs: 100 })).rejects.toThrow(/timed out after 100 ms/);
  });

  it("passes input on stdin", async () => {
    expect((await run(["cat"], { input: "hello" })).stdout).toBe("hello");
  });
});

describe("which", () => {
  it("finds programs on PATH and misses others", async () => {
    expect(await which("sh")).toMatch(/\/sh$/);
    expect(await which("sh", { PATH: "/nonexistent" })).toBeUndefined();
  });
});

describe("shellQuote", () => {
  it("quotes only what needs it", () => {
    expect(shellQuote(["ip", "-n", "tph-a-net", "addr", "add", "10.0.0.1/24"])).toBe(
      "ip -n tph-a-net addr add 10.0.0.1/24",
    );
    expect(shellQuote(["echo", "it's"])).toBe(`echo 'it'\\''s'`);
  });
});
