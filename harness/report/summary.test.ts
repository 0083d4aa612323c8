import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LiveCounts, type LiveSnapshot, readLive } from "./live.ts";
import { ProgressReporter } from "./progress.ts";
import { summaryMarkdown } from "./summary.ts";
import type { Row } from "./verdicts-table.ts";

const rows: Row[] = [
  { suite: "reachability", test: "serves | everywhere", state: "pass", ms: 10 },
  {
    suite: "policy-matrix",
    test: "host@N -> loadbalancer: own",
    state: "fail",
    ms: 10,
    reason: "SourceIpPreserved: 2 of 2 requests did not\nmore",
  },
  { suite: "load-skew", test: "(file)", state: "error", ms: 0, reason: "cluster did not come up" },
  { suite: "node-roll", test: "rolls", state: "skip", ms: 0, reason: "needs 3 worker nodes" },
];

describe("summaryMarkdown", () => {
  it("puts failures and errors first with their evidence, escapes the table, counts passes", () => {
    const md = summaryMarkdown(rows, "tph run");
    expect(md).toMatch(/^### ❌ tph run/);
    expect(md).toMatch(/\*\*1 passed, 1 failed\*\*, 1 errors, 1 skipped/);
    const perSuite = md.split("\n").filter((l) => l.startsWith("| "));
    expect(perSuite.slice(0, 6)).toEqual([
      "| suite | passed | failed | errors | skipped |",
      "| --- | ---: | ---: | ---: | ---: |",
      "| reachability | 1 | 0 | 0 | 0 |",
      "| ❌ policy-matrix | 0 | 1 | 0 | 0 |",
      "| ❌ load-skew | 0 | 0 | 1 | 0 |",
      "| ⚠️ node-roll | 0 | 0 | 0 | 1 |",
    ]);
    const table = perSuite.slice(6);
    expect(table[2]).toBe(
      "| FAIL | policy-matrix | host@N -> loadbalancer: own | SourceIpPreserved: 2 of 2 requests did not more |",
    );
    expect(table[3]).toMatch(/^\| ERROR \| load-skew/);
    expect(table[4]).toMatch(/^\| SKIP \| node-roll .* needs 3 worker nodes \|$/);
    expect(md).not.toMatch(/serves/);
  });

  it("says a run that tested nothing failed", () => {
    expect(summaryMarkdown([rows[3] as Row], "x")).toMatch(/❌.*\n\n.*no test ran/);
    expect(summaryMarkdown([rows[0] as Row], "x")).toMatch(/^### ✅/);
  });
});

describe("ProgressReporter", () => {
  it("writes a line per test start and end, and a failure's first line at once", () => {
    const lines: string[] = [];
    const r = new ProgressReporter((l) => lines.push(l));
    const test = (state: string, message?: string) =>
      ({
        fullName: "policy matrix › host@N -> loadbalancer: own",
        result: () => ({ state, errors: message ? [{ message }] : [] }),
        diagnostic: () => ({ duration: 2100 }),
      }) as never;
    r.onTestModuleStart({ moduleId: "/x/suites/policy-matrix.e2e.ts" } as never);
    r.onTestCaseReady(test("pending"));
    r.onTestCaseResult(test("failed", "SourceIpPreserved: 2 of 2 requests did not\nstack"));
    expect(lines.map((l) => l.replace(/^\[\d\d:\d\d\] /, ""))).toEqual([
      "▶ policy-matrix",
      "  … policy matrix › host@N -> loadbalancer: own",
      "  FAIL policy matrix › host@N -> loadbalancer: own (2.1 s)",
      "         ↳ SourceIpPreserved: 2 of 2 requests did not",
    ]);
  });
});

describe("ProgressReporter on a terminal", () => {
  it("prints the running test's counts every 15 s and at once when its first request fails; nothing for another test's counts", () => {
    const lines: string[] = [];
    let snapshot: LiveSnapshot | undefined;
    const t = Date.now();
    const r = new ProgressReporter((l) => lines.push(l), {
      file: "unused",
      read: () => snapshot,
      clock: () => t,
    });
    const test = { fullName: "rollout (kube-proxy nftables) > zero drops" } as never;
    r.onTestCaseReady(test);
    // The previous test's counts are still in the file until the worker starts this one.
    snapshot = { test: "other › test", requests: 900, failures: 3, firstFailure: "timeout on x" };
    r.tick(t + 16_000);
    expect(lines).toHaveLength(1);
    snapshot = { test: "rollout (kube-proxy nftables) › zero drops", requests: 250, failures: 0 };
    r.tick(t + 5_000);
    expect(lines).toHaveLength(1); // quiet: no failure, not yet 15 s
    r.tick(t + 15_000);
    snapshot = { ...snapshot, requests: 400, failures: 1, firstFailure: "refused on pod@a->clusterip" };
    r.tick(t + 16_000);
    r.tick(t + 17_000); // the alert once
    r.onTestRunEnd();
    expect(lines.slice(1).map((l) => l.replace(/^\[\d\d:\d\d\] /, ""))).toEqual([
      "  · 250 requests, 0 failed, 15 s — rollout (kube-proxy nftables) > zero drops",
      "  ✗ 1 request(s) failed so far, first: refused on pod@a->clusterip (16 s in) — rollout (kube-proxy nftables) > zero drops",
    ]);
  });
});

describe("LiveCounts", () => {
  it("counts a test's requests and failures into a file the reporter reads, from zero per test", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tph-live-"));
    try {
      const file = join(dir, "progress.json");
      const c = new LiveCounts(file);
      c.start("a › b");
      c.add([
        { outcome: "ok", path: "p" },
        { outcome: "refused", path: "pod@x->clusterip" },
        { outcome: "timeout", path: "q" },
      ]);
      c.flush();
      expect(readLive(file)).toEqual({
        test: "a › b",
        requests: 3,
        failures: 2,
        firstFailure: "refused on pod@x->clusterip",
      });
      c.start("a › c");
      expect(readLive(file)).toEqual({ test: "a › c", requests: 0, failures: 0 });
      expect(readLive(join(dir, "missing.json"))).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
