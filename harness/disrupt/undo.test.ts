import { describe, expect, it } from "vitest";
import { UndoStack } from "./undo.ts";

describe("UndoStack", () => {
  it("undoes what is left, nodes before workloads, newest first, and keeps the first original of a key", async () => {
    const done: string[] = [];
    const undo = new UndoStack();
    const push = (what: string) => async () => {
      done.push(what);
    };
    undo.register("unschedulable:a", { what: "uncordon a", fn: push("uncordon a") });
    undo.register("scale:web", {
      what: "scale web to 2",
      original: 2,
      phase: "workload",
      fn: push("scale web to 2"),
    });
    undo.register("scale:web", { what: "scale web to 4", original: 4, fn: push("scale web to 4") });
    undo.register("taint:b", { what: "untaint b", fn: push("untaint b") });
    expect(undo.get("scale:web")?.original).toBe(2);
    undo.register("power:b", { what: "start b", fn: push("start b") });
    undo.done("power:b"); // the test started b itself
    expect(undo.pending).toEqual(["uncordon a", "scale web to 2", "untaint b"]);
    const result = await undo.run();
    // Nodes first (newest first), then workloads: the scale waits for pods the nodes must accept.
    expect(done).toEqual(["untaint b", "uncordon a", "scale web to 2"]);
    expect(result).toEqual({ undone: ["untaint b", "uncordon a", "scale web to 2"], errors: [] });
    expect(undo.pending).toEqual([]);
  });

  it("runs every undo even when one fails, and reports the failure", async () => {
    const undo = new UndoStack();
    let ran = false;
    undo.register("a", {
      what: "untaint a",
      fn: async () => {
        ran = true;
      },
    });
    undo.register("b", {
      what: "start b",
      fn: async () => {
        throw new Error("node b did not come back");
      },
    });
    const result = await undo.run();
    expect(ran).toBe(true);
    expect(result.undone).toEqual(["untaint a"]);
    expect(result.errors.map((e) => e.message)).toEqual(['undo "start b" failed: node b did not come back']);
  });
});
