import { describe, expect, it } from "vitest";
import { CleanupStack, withCleanup } from "./cleanup.ts";
import { createMemoryLogger } from "./logger.ts";

describe("CleanupStack", () => {
  it("runs steps last-in first-out and only once", async () => {
    const order: string[] = [];
    const stack = new CleanupStack();
    stack.push("a", () => void order.push("a"));
    stack.push("b", async () => void order.push("b"));
    stack.push("c", () => void order.push("c"));
    expect(await stack.run()).toEqual([]);
    expect(await stack.run()).toEqual([]);
    expect(order).toEqual(["c", "b", "a"]);
  });

  it("keeps going past a failing step and reports it by name", async () => {
    const order: string[] = [];
    const logger = createMemoryLogger();
    const stack = new CleanupStack(logger);
    stack.push("first", () => void order.push("first"));
    stack.push("broken", () => {
      throw new Error("EBUSY");
    });
    stack.push("last", () => void order.push("last"));
    const errors = await stack.run();
    expect(order).toEqual(["last", "first"]);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe("broken: EBUSY");
    expect(logger.lines.join("\n")).toMatch(/cleanup step "broken" failed: EBUSY/);
  });
});

describe("withCleanup", () => {
  it("unwinds on error and rethrows the original error with cleanup errors attached", async () => {
    const undone: string[] = [];
    const err = await withCleanup(async (stack) => {
      stack.push("remove namespace", () => void undone.push("ns"));
      stack.push("remove link", () => {
        throw new Error("link busy");
      });
      throw new Error("apiserver never became ready");
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("apiserver never became ready");
    expect((err as { cleanupErrors: Error[] }).cleanupErrors.map((e) => e.message)).toEqual([
      "remove link: link busy",
    ]);
    expect(undone).toEqual(["ns"]);
  });

  it("keeps resources on success unless asked to clean up", async () => {
    const undone: string[] = [];
    await withCleanup(async (stack) => stack.push("x", () => void undone.push("x")));
    expect(undone).toEqual([]);
    await withCleanup(async (stack) => stack.push("y", () => void undone.push("y")), { alwaysCleanup: true });
    expect(undone).toEqual(["y"]);
  });

  it("aborts the body's signal on SIGTERM and unwinds", async () => {
    const undone: string[] = [];
    const err = await withCleanup(async (stack, signal) => {
      stack.push("z", () => void undone.push("z"));
      setTimeout(() => process.emit("SIGTERM", "SIGTERM"), 10);
      await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("interrupted by SIGTERM");
    expect(undone).toEqual(["z"]);
    expect(process.listenerCount("SIGTERM")).toBe(0);
  });
});
