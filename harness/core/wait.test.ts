import { describe, expect, it } from "vitest";
import { sleep, WaitTimeoutError, waitFor, watchValue } from "./wait.ts";

describe("waitFor", () => {
  it("returns the value once the probe is done", async () => {
    let n = 0;
    const v = await waitFor(async () => (++n >= 3 ? { done: true, value: n } : { done: false, state: n }), {
      description: "n to reach 3",
      timeoutMs: 2_000,
      intervalMs: 5,
    });
    expect(v).toBe(3);
  });

  it("times out with the last observed state in the error", async () => {
    const err = await waitFor(async () => ({ done: false, state: { ready: 1, want: 3 } }), {
      description: "3 ready pods",
      timeoutMs: 50,
      intervalMs: 10,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as Error).message).toMatch(/waiting for 3 ready pods; last observed: \{"ready":1,"want":3\}/);
    expect((err as WaitTimeoutError).lastState).toEqual({ ready: 1, want: 3 });
  });

  it("retries a probe that throws and reports its error on timeout", async () => {
    const err = await waitFor(
      async () => {
        throw new Error("connection refused");
      },
      { description: "the server", timeoutMs: 40, intervalMs: 10 },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/last observed: connection refused/);
  });

  it("stops when the signal aborts", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stop now")), 30);
    const started = Date.now();
    await expect(
      waitFor(async () => ({ done: false, state: "x" }), {
        description: "never",
        timeoutMs: 10_000,
        intervalMs: 1_000,
        signal: controller.signal,
      }),
    ).rejects.toThrow("stop now");
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe("sleep", () => {
  it("rejects early when aborted", async () => {
    const controller = new AbortController();
    const p = sleep(10_000, controller.signal);
    controller.abort(new Error("bye"));
    await expect(p).rejects.toThrow("bye");
  });
});

describe("watchValue", () => {
  it("reports each change once, skips failed reads, and reports nothing after stop()", async () => {
    const readings = ["a", "a", "boom", "b", "b", undefined, "c"];
    let i = 0;
    const seen: (string | undefined)[] = [];
    const w = watchValue(
      async () => {
        const v = readings[Math.min(i++, readings.length - 1)];
        if (v === "boom") throw new Error("apiserver busy");
        return v;
      },
      (v) => seen.push(v),
      1,
    );
    await waitFor(
      async () => (seen.includes("c") ? { done: true, value: 0 } : { done: false, state: seen }),
      {
        description: "c",
        timeoutMs: 2_000,
        intervalMs: 5,
      },
    );
    await w.stop();
    expect(seen).toEqual(["a", "b", undefined, "c"]);
    const after = seen.length;
    await sleep(20);
    expect(seen.length).toBe(after);
  });
});
