import { describe, expect, it } from "vitest";
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
