import { describe, expect, it } from "vitest";
import {
  closingLine,
  collectRows,
  countRows,
  exitCode,
  interruptedRow,
  NO_REASON,
  type Row,
  renderRepeatSummary,
  renderReport,
  summarizeRepeats,
  type TaskNode,
  unhandledErrorRows,
} from "./verdicts-table.ts";

/**
 * Task trees shaped as vitest leaves them in `vitest.state.getFiles()` after a run (checked against
 * vitest 5.1's runner: a failed beforeAll puts its error on the describe and marks every test under it
 * skipped, with no note; ctx.skip(note) puts the note on the test's result).
 */
const file = (name: string, tasks: TaskNode[], result: TaskNode["result"] = { state: "pass" }): TaskNode => ({
  type: "suite",
  name: `suites/${name}.e2e.ts`,
  mode: "run",
  tasks,
  result,
});
const suite = (
  name: string,
  tasks: TaskNode[],
  result: TaskNode["result"] = { state: "pass" },
): TaskNode => ({
  type: "suite",
  name,
  mode: "run",
  tasks,
  result,
});
const test = (name: string, result?: TaskNode["result"], mode = "run"): TaskNode => ({
  type: "test",
  name,
  mode,
  ...(result && { result }),
});
const passed = (name: string, duration = 1_000) => test(name, { state: "pass", duration });
// What markTasksAsSkipped leaves on the tests under a failed hook.
const notRun = (name: string) => test(name, { state: "skip" });
const RED = "\u001b[31m";
const RESET = "\u001b[39m";

describe("collectRows", () => {
  it("a describe whose beforeAll failed is one error row; the tests under it are not skips", () => {
    const files = [
      file(
        "reachability",
        [
          suite(
            "reachability",
            [notRun("external -> lb"), notRun("pod -> svc"), suite("nested", [notRun("a"), notRun("b")])],
            {
              state: "fail",
              duration: 61_000,
              errors: [
                { message: `${RED}cluster bring-up failed: kubelet on w1 exited${RESET}\nlast lines: ...` },
              ],
            },
          ),
        ],
        { state: "fail" },
      ),
    ];
    const rows = collectRows(files);
    expect(rows).toEqual([
      {
        suite: "reachability",
        test: "reachability",
        state: "error",
        ms: 61_000,
        reason: "cluster bring-up failed: kubelet on w1 exited",
        details: "cluster bring-up failed: kubelet on w1 exited\nlast lines: ...",
        phase: "setup",
        notRun: [
          "reachability › external -> lb",
          "reachability › pod -> svc",
          "reachability › nested › a",
          "reachability › nested › b",
        ],
      },
    ]);
    const counts = countRows(rows);
    expect(counts).toEqual({ passed: 0, failed: 0, errors: 1, skipped: 0 });
    expect(exitCode(counts)).toBe(1);
    const report = renderReport(rows);
    expect(report).toContain("\n0 passed, 0 failed, 1 error\n");
    expect(report).toMatch(
      /^ERROR\s+reachability\s+reachability\s+61\.0 s\n\s+↳ setup failed, 4 tests not run: cluster bring-up failed: kubelet on w1 exited$/m,
    );
    expect(report).toContain(
      "no test ran: 0 passed, 0 failed, 1 error; a run that tested nothing is a failure",
    );
  });

  it("a failed beforeAll in one suite fails the run even when the others passed", () => {
    const rows = collectRows([
      file("a", [suite("a", [passed("x"), passed("y")])]),
      file("b", [suite("b", [notRun("z")], { state: "fail", errors: [{ message: "boom" }] })], {
        state: "fail",
      }),
    ]);
    expect(rows.map((r) => `${r.state} ${r.suite} ${r.test}`)).toEqual([
      "pass a a › x",
      "pass a a › y",
      "error b b",
    ]);
    expect(exitCode(countRows(rows))).toBe(1);
    expect(renderReport(rows)).not.toContain("no test ran");
  });

  it("an import or collect error on the file is an error row for (file)", () => {
    const rows = collectRows([
      file("broken", [], { state: "fail", errors: [{ message: "Cannot find module './nope.ts'" }] }),
    ]);
    expect(rows).toMatchObject([
      {
        suite: "broken",
        test: "(file)",
        state: "error",
        phase: "setup",
        notRun: [],
        reason: "Cannot find module './nope.ts'",
      },
    ]);
    expect(renderReport(rows)).toContain("↳ setup failed: Cannot find module");
  });

  it("an afterAll error after the tests passed is an error row after them: cleanup failed is not green", () => {
    const rows = collectRows([
      file("lb", [
        suite("lb", [passed("one", 2_000), passed("two", 3_000)], {
          state: "fail",
          duration: 9_000,
          errors: [{ message: "cluster delete failed: namespace stuck terminating" }],
        }),
      ]),
    ]);
    expect(rows.map((r) => [r.state, r.test, r.ms])).toEqual([
      ["pass", "lb › one", 2_000],
      ["pass", "lb › two", 3_000],
      ["error", "lb", 4_000],
    ]);
    expect(rows[2]).toMatchObject({
      phase: "teardown",
      reason: "cluster delete failed: namespace stuck terminating",
    });
    expect(rows[2]?.notRun).toBeUndefined();
    const counts = countRows(rows);
    expect(closingLine(counts)).toBe("2 passed, 0 failed, 1 error");
    expect(exitCode(counts)).toBe(1);
    expect(renderReport(rows)).toContain("↳ teardown failed: cluster delete failed");
  });

  it("a skip shows its ctx.skip note, or that none was given", () => {
    const rows = collectRows([
      file("lb", [
        suite("lb", [
          passed("one"),
          test("needs 3 nodes", { state: "skip", note: "needs 3 worker nodes; cluster c1 has 2" }),
          test("skipIf", undefined, "skip"),
          test("todo", { state: "todo" }, "todo"),
        ]),
      ]),
    ]);
    expect(rows.map((r) => [r.state, r.reason])).toEqual([
      ["pass", undefined],
      ["skip", "needs 3 worker nodes; cluster c1 has 2"],
      ["skip", NO_REASON],
      ["skip", NO_REASON],
    ]);
    const report = renderReport(rows);
    expect(report).toMatch(
      /^skip\s+lb\s+lb › needs 3 nodes\s+0\.0 s\n\s+↳ needs 3 worker nodes; cluster c1 has 2$/m,
    );
    expect(report).toContain(`↳ ${NO_REASON}`);
    expect(report).toContain("\n1 passed, 0 failed, 3 skipped\n");
    expect(exitCode(countRows(rows))).toBe(0);
  });

  it("a suite whose tests all skipped themselves keeps them as skips (its afterAll error is a teardown one)", () => {
    const rows = collectRows([
      file("lb", [
        suite("lb", [test("a", { state: "skip", note: "too few nodes" })], {
          state: "fail",
          errors: [{ message: "afterAll: boom" }],
        }),
      ]),
    ]);
    expect(rows.map((r) => [r.state, r.phase ?? r.reason])).toEqual([
      ["skip", "too few nodes"],
      ["error", "teardown"],
    ]);
  });

  it("a failure shows the first line of its assertion message; the full text is kept", () => {
    const rows = collectRows([
      file("etp", [
        suite("etp", [
          test("local preserves the source IP", {
            state: "fail",
            duration: 4_200,
            errors: [
              {
                message: `${RED}\nexpected 10.250.0.200, saw 10.250.0.12${RESET}\n  #3 external->nodeport@w2`,
                stack: "AssertionError: expected ...\n    at etp.e2e.ts:42:7",
                diff: "- 10.250.0.200\n+ 10.250.0.12",
              },
            ],
          }),
        ]),
      ]),
    ]);
    expect(rows[0]).toMatchObject({ state: "fail", reason: "expected 10.250.0.200, saw 10.250.0.12" });
    expect(rows[0]?.details).toContain("at etp.e2e.ts:42:7");
    expect(rows[0]?.details).toContain("+ 10.250.0.12");
    expect(rows[0]?.details).not.toContain("\u001b");
    expect(renderReport(rows)).toMatch(
      /^FAIL\s+etp\s+etp › local preserves the source IP\s+4\.2 s\n\s+↳ expected/m,
    );
  });

  it("a test left unfinished is an error, not a skip", () => {
    const rows = collectRows([file("a", [passed("x"), test("cut short", { state: "run" })])]);
    expect(rows[1]).toMatchObject({ state: "error", reason: "did not finish (vitest state: run)" });
  });

  it("vitest's unhandled errors are error rows", () => {
    const rows = unhandledErrorRows([{ message: "Error: worker exited unexpectedly" }, "plain string"]);
    expect(rows.map((r) => r.reason)).toEqual(["Error: worker exited unexpectedly", "plain string"]);
    expect(exitCode(countRows([...collectRows([file("a", [passed("x")])]), ...rows]))).toBe(1);
  });
});

describe("exit code and closing line", () => {
  it("every test skipped is a failure: nothing was tested", () => {
    const rows = collectRows([
      file("a", [
        suite(
          "a",
          ["w", "x", "y", "z"].map((n) => test(n, undefined, "skip")),
        ),
      ]),
    ]);
    const counts = countRows(rows);
    expect(exitCode(counts)).toBe(1);
    expect(renderReport(rows)).toContain(
      "\n0 passed, 0 failed, 4 skipped\nno test ran: 0 passed, 0 failed, 4 skipped; a run that tested nothing is a failure\n",
    );
  });

  it("no test collected at all is a failure", () => {
    expect(exitCode(countRows(collectRows([])))).toBe(1);
    expect(renderReport([])).toBe(
      "(no tests)\n\n0 passed, 0 failed\nno test ran: 0 passed, 0 failed; a run that tested nothing is a failure\n",
    );
  });

  it("an interrupted run is an error even when every test that ran passed", () => {
    const rows = [...collectRows([file("a", [passed("x")])]), interruptedRow("SIGINT")];
    expect(exitCode(countRows(rows))).toBe(1);
    expect(renderReport(rows)).toContain("interrupted by SIGINT");
  });

  it("passes and skips only is green; the closing line is alone on its line, with the counts CI parses first", () => {
    const rows = collectRows([file("a", [passed("x"), test("y", undefined, "skip")])]);
    expect(exitCode(countRows(rows))).toBe(0);
    expect(renderReport(rows).split("\n")).toContain("1 passed, 0 failed, 1 skipped");
    expect(closingLine({ passed: 3, failed: 1, errors: 2, skipped: 0 })).toBe("3 passed, 1 failed, 2 errors");
  });
});

describe("summarizeRepeats", () => {
  const row = (test: string, state: Row["state"], reason?: string): Row => ({
    suite: "lb",
    test,
    state,
    ms: 1_000,
    ...(reason && { reason }),
  });

  it("counts each test's passes and names the repetitions it missed", () => {
    const summary = summarizeRepeats([
      [row("a", "pass"), row("b", "pass"), row("c", "skip", "too few nodes")],
      [row("a", "pass"), row("b", "fail", "saw 2 backends"), row("c", "skip", "too few nodes")],
      [row("a", "pass"), row("b", "pass"), row("c", "skip", "too few nodes")],
    ]);
    expect(summary.tests.map((t) => [t.test, t.passes, t.ok])).toEqual([
      ["a", 3, true],
      ["b", 2, false],
      ["c", 0, true],
    ]);
    expect(summary.tests[1]?.misses).toEqual([{ repetition: 2, state: "fail", reason: "saw 2 backends" }]);
    expect(summary.ok).toBe(false);
    const text = renderRepeatSummary(summary, [60_000, 61_500, 59_000]);
    expect(text).toMatch(/^3\/3\s+lb\s+a$/m);
    expect(text).toMatch(/^2\/3\s+lb\s+b\n\s+↳ run 2: FAIL: saw 2 backends$/m);
    expect(text).toMatch(/^skip\s+lb\s+c\n\s+↳ every run: skip: too few nodes$/m);
    expect(text).toContain("wall time: run 1 60.0 s, run 2 61.5 s, run 3 59.0 s; total 180.5 s");
    expect(text).toContain("not green: 1 of 3 tests not 3/3");
  });

  it("every test N/N is green", () => {
    const summary = summarizeRepeats([[row("a", "pass")], [row("a", "pass")]]);
    expect(summary.ok).toBe(true);
    expect(renderRepeatSummary(summary, [1_000, 1_000])).toContain("every test passed 2/2");
  });

  it("a passing test skipped in one repetition is not N/N", () => {
    const summary = summarizeRepeats([[row("a", "pass")], [row("a", "skip", "flaky precondition")]]);
    expect(summary.tests[0]).toMatchObject({ passes: 1, skips: 1, ok: false });
  });

  it("a repetition whose setup failed: the error counts, and its tests show as not run by it", () => {
    const setupError: Row = {
      suite: "lb",
      test: "lb",
      state: "error",
      ms: 0,
      reason: "bring-up failed",
      phase: "setup",
      notRun: ["a", "b"],
    };
    const summary = summarizeRepeats([
      [row("a", "pass"), row("b", "pass")],
      [setupError],
      [row("a", "pass"), row("b", "pass")],
    ]);
    expect(summary.tests.map((t) => `${t.test} ${t.passes}/${summary.runs}`)).toEqual(["a 2/3", "b 2/3"]);
    expect(summary.tests[0]?.misses).toEqual([
      { repetition: 2, state: "error", reason: "setup failed, 2 tests not run: bring-up failed" },
    ]);
    expect(summary.errors).toEqual([{ repetition: 2, row: setupError }]);
    expect(summary.empty).toEqual([2]);
    expect(summary.ok).toBe(false);
    const text = renderRepeatSummary(summary, [1_000, 2_000, 3_000]);
    expect(text).toContain("ERROR in run 2: lb lb: setup failed, 2 tests not run: bring-up failed");
    expect(text).toContain("run 2 tested nothing");
  });

  it("a teardown error fails the repeat even when every test passed N/N", () => {
    const teardown: Row = {
      suite: "lb",
      test: "lb",
      state: "error",
      ms: 0,
      reason: "delete failed",
      phase: "teardown",
    };
    const summary = summarizeRepeats([[row("a", "pass")], [row("a", "pass"), teardown]]);
    expect(summary.tests.map((t) => t.passes)).toEqual([2]);
    expect(summary.ok).toBe(false);
  });

  it("a repetition that tested nothing fails the repeat", () => {
    const summary = summarizeRepeats([[row("a", "skip")], [row("a", "skip")]]);
    expect(summary.tests[0]?.ok).toBe(true);
    expect(summary.empty).toEqual([1, 2]);
    expect(summary.ok).toBe(false);
  });
});
