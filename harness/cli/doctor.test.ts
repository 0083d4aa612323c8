import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { doctor } from "./doctor.ts";

describe("tph doctor --provider kind", () => {
  const path = process.env.PATH;
  afterEach(() => {
    process.env.PATH = path;
  });

  it("fails on what tph needs and only notes kubectl, which it does not", async () => {
    process.env.PATH = await mkdtemp(join(tmpdir(), "tph-empty-path-"));
    const results = await doctor(["kind"]);
    const byCheck = new Map(results.map((r) => [r.check, r]));
    expect(byCheck.get("kind")).toMatchObject({ ok: false, detail: "not found" });
    expect(byCheck.get("docker client")).toMatchObject({ ok: false });
    expect(byCheck.get("kubectl (for you; tph does not need it)")).toMatchObject({
      ok: true,
      detail: "not found (optional)",
    });
  });
});
