import { stripVTControlCharacters } from "node:util";

/**
 * What `tph run` reports: one row per test from vitest's task tree, plus one `error` row per suite or
 * file whose own result carries errors (a failed beforeAll/afterAll, an import or collect error). Pure
 * data first, so the verdict and the exit code can be tested without running vitest.
 */

/** The part of a vitest task (file, suite or test) the rows are made from. */
export interface TaskNode {
  /** "suite" (a file is a suite too) or "test". */
  type: string;
  name: string;
  /** "run", "skip", "only", "todo", "queued": set at collection. */
  mode?: string;
  tasks?: readonly TaskNode[];
  result?: {
    /** "pass", "fail", "skip", "todo", or "run"/"queued" while unfinished. */
    state?: string;
    duration?: number;
    errors?: readonly TaskError[];
    /** The note of `ctx.skip(note)` (vitest sets it at runtime; its TaskResult type does not declare it). */
    note?: string;
  };
}

export interface TaskError {
  message?: string;
  stack?: string;
  diff?: string;
  cause?: unknown;
}

export type RowState = "pass" | "fail" | "error" | "skip";

export interface Row {
  /** The suite file without suites/ and .e2e.ts, e.g. "reachability" or "local/bring-up". */
  suite: string;
  /** The test's describe path and name joined with " › "; for an error row the describe path or "(file)". */
  test: string;
  state: RowState;
  ms: number;
  /** One line: a failure's or error's first message line, a skip's note. */
  reason?: string;
  /** Failures and errors: the full messages and stacks, for JUnit. */
  details?: string;
  /** Error rows of a suite or file: "setup" when none of its tests ran, "teardown" when they had. */
  phase?: "setup" | "teardown";
  /** Setup error rows: the tests under the failed suite that never ran (vitest marks them skipped). */
  notRun?: string[];
}

export interface Counts {
  passed: number;
  failed: number;
  errors: number;
  skipped: number;
}

export const NO_REASON = "(no reason given)";

export function suiteName(fileName: string): string {
  return fileName.replace(/^suites\//, "").replace(/\.e2e\.ts$/, "");
}

/** The rows of a run, in file order, from vitest's file tasks (`vitest.state.getFiles()`). */
export function collectRows(files: readonly TaskNode[]): Row[] {
  const rows: Row[] = [];
  for (const file of files) visitSuite(file, [], suiteName(file.name), rows);
  return rows;
}

function visitSuite(node: TaskNode, path: string[], suite: string, rows: Row[]): void {
  const errors = node.result?.errors ?? [];
  if (errors.length > 0) {
    const tests = testsUnder(node, path);
    // If nothing under it ran, its beforeAll (or the file's import or collection) failed and vitest marked
    // every test under it skipped: those are not skips, this row covers them.
    const ran = tests.some((t) => hasRun(t.task));
    const row: Row = {
      suite,
      test: path.length > 0 ? path.join(" › ") : "(file)",
      state: "error",
      ms: node.result?.duration ?? 0,
      reason: firstLine(errors[0]?.message),
      details: errors.map(errorText).join("\n\n"),
      phase: ran ? "teardown" : "setup",
    };
    if (!ran) {
      rows.push({ ...row, notRun: tests.map((t) => t.test) });
      return;
    }
    // A failed afterAll: its tests ran and keep their rows; the hook's own time is what is left over.
    const before = rows.length;
    visitChildren(node, path, suite, rows);
    const childMs = rows.slice(before).reduce((sum, r) => sum + r.ms, 0);
    rows.push({ ...row, ms: Math.max(0, row.ms - childMs) });
    return;
  }
  visitChildren(node, path, suite, rows);
}

function visitChildren(node: TaskNode, path: string[], suite: string, rows: Row[]): void {
  for (const child of node.tasks ?? []) {
    if (child.type === "test") rows.push(testRow(child, [...path, child.name].join(" › "), suite));
    else visitSuite(child, [...path, child.name], suite, rows);
  }
}

function testRow(task: TaskNode, test: string, suite: string): Row {
  const ms = task.result?.duration ?? 0;
  const state = task.result?.state;
  if (state === "pass") return { suite, test, state: "pass", ms };
  if (state === "fail") {
    const errors = task.result?.errors ?? [];
    return {
      suite,
      test,
      state: "fail",
      ms,
      reason: firstLine(errors[0]?.message),
      details: errors.map(errorText).join("\n\n"),
    };
  }
  if (state === "skip" || state === "todo" || task.mode === "skip" || task.mode === "todo") {
    // ctx.skip(note) leaves the note; it.skip, it.skipIf, describe.skip and it.todo leave none.
    return { suite, test, state: "skip", ms, reason: task.result?.note || NO_REASON };
  }
  // Meant to run but has no final state (the run was cut short): not a pass, and not a skip either.
  return { suite, test, state: "error", ms, reason: `did not finish (vitest state: ${state ?? "none"})` };
}

function testsUnder(node: TaskNode, path: string[]): { test: string; task: TaskNode }[] {
  return (node.tasks ?? []).flatMap((child) =>
    child.type === "test"
      ? [{ test: [...path, child.name].join(" › "), task: child }]
      : testsUnder(child, [...path, child.name]),
  );
}

/** A test ran if it has a verdict, or skipped itself with ctx.skip(note) (vitest's own skips carry none). */
function hasRun(task: TaskNode): boolean {
  const state = task.result?.state;
  return state === "pass" || state === "fail" || (state === "skip" && Boolean(task.result?.note));
}

/** The suite of the error rows for errors vitest reports outside any test. */
export const UNHANDLED = "(vitest)";

/** Errors vitest reports outside any test (`vitest.state.getUnhandledErrors()`): each is an error row. */
export function unhandledErrorRows(errors: readonly unknown[]): Row[] {
  return errors.map((e) => {
    const error: TaskError = typeof e === "object" && e !== null ? (e as TaskError) : { message: String(e) };
    return {
      suite: UNHANDLED,
      test: "unhandled error",
      state: "error",
      ms: 0,
      reason: firstLine(error.message),
      details: errorText(error),
    };
  });
}

/** The error row of a run stopped by a signal: an interrupted run is never a pass. */
export function interruptedRow(signal: string): Row {
  return {
    suite: UNHANDLED,
    test: "run interrupted",
    state: "error",
    ms: 0,
    reason: `interrupted by ${signal}: the tests after the running one did not run`,
  };
}

/** The first non-empty line of a message, without ANSI colours. */
export function firstLine(message: string | undefined): string {
  const line = stripVTControlCharacters(message ?? "")
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  return line ?? "(no error message)";
}

/** An error in full: its message and stack (the stack repeats the message, usually), diff and causes. */
function errorText(error: TaskError): string {
  const message = error.message ?? "";
  const parts = [
    error.stack?.includes(message) ? error.stack : [message, error.stack].filter(Boolean).join("\n"),
  ];
  if (error.diff) parts.push(error.diff);
  let cause = error.cause;
  for (let depth = 0; depth < 5 && typeof cause === "object" && cause !== null; depth++) {
    parts.push(`caused by: ${(cause as TaskError).message ?? String(cause)}`);
    cause = (cause as TaskError).cause;
  }
  return stripVTControlCharacters(parts.join("\n"));
}

/** Whether a row is a test's (not a suite's, file's or vitest's own error). */
export function isTestRow(row: Row): boolean {
  return !(row.state === "error" && (row.phase !== undefined || row.suite === UNHANDLED));
}

/** The one-line reason a row shows: for a setup error, also how many tests it kept from running. */
export function rowReason(row: Row): string {
  if (row.state !== "error" || !row.phase) return row.reason ?? "";
  const notRun = row.notRun?.length ? `, ${plural(row.notRun.length, "test")} not run` : "";
  return `${row.phase} failed${notRun}: ${row.reason ?? ""}`;
}

export function countRows(rows: readonly Row[]): Counts {
  const count = (state: RowState) => rows.filter((r) => r.state === state).length;
  return { passed: count("pass"), failed: count("fail"), errors: count("error"), skipped: count("skip") };
}

/** `N passed, N failed`, then errors and skips when there are any: CI parses the first two. */
export function closingLine(c: Counts): string {
  return `${c.passed} passed, ${c.failed} failed${c.errors ? `, ${plural(c.errors, "error")}` : ""}${c.skipped ? `, ${c.skipped} skipped` : ""}`;
}

/** A run that passed or failed no test at all tested nothing: every test skipped, or none collected. */
export function testedNothing(c: Counts): boolean {
  return c.passed + c.failed === 0;
}

/** 1 on any failure or error, and when nothing was tested: a conformance run never passes vacuously. */
export function exitCode(c: Counts): number {
  return c.failed > 0 || c.errors > 0 || testedNothing(c) ? 1 : 0;
}

/** The verdict table and the closing line (and why an empty run fails), as printed by `tph run`. */
export function renderReport(rows: readonly Row[]): string {
  const counts = countRows(rows);
  const lines = [renderTable(rows), "", closingLine(counts)];
  if (testedNothing(counts))
    lines.push(`no test ran: ${closingLine(counts)}; a run that tested nothing is a failure`);
  return `${lines.join("\n")}\n`;
}

const VERDICT: Record<RowState, string> = { pass: "pass", fail: "FAIL", error: "ERROR", skip: "skip" };

/** One line per row in file order; a failure's, error's or skip's reason on the line under it. */
export function renderTable(rows: readonly Row[]): string {
  if (rows.length === 0) return "(no tests)";
  const suiteWidth = Math.min(Math.max(...rows.map((r) => r.suite.length), 5), 40);
  const testWidth = Math.min(Math.max(...rows.map((r) => r.test.length), 10), 110);
  const lines = [`${"VERDICT".padEnd(8)} ${"SUITE".padEnd(suiteWidth)} ${"TEST".padEnd(testWidth)} TIME`];
  for (const r of rows) {
    lines.push(
      `${VERDICT[r.state].padEnd(8)} ${r.suite.padEnd(suiteWidth)} ${r.test.slice(0, testWidth).padEnd(testWidth)} ${seconds(r.ms)}`,
    );
    if (r.state !== "pass") lines.push(`${" ".repeat(9)}↳ ${rowReason(r)}`);
  }
  return lines.join("\n");
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** One test across the repetitions of `tph run --repeat N`. */
export interface RepeatedTest {
  suite: string;
  test: string;
  passes: number;
  skips: number;
  /** The repetitions (1-based) it did not pass, with the state and reason of each. */
  misses: { repetition: number; state: RowState | "not run"; reason: string }[];
  /** Passed every time, or skipped every time (a skip that holds each time is not a flake). */
  ok: boolean;
}

export interface RepeatSummary {
  runs: number;
  tests: RepeatedTest[];
  /** Error rows (failed hooks, import errors) of every repetition. */
  errors: { repetition: number; row: Row }[];
  /** Repetitions (1-based) that passed or failed no test. */
  empty: number[];
  ok: boolean;
}

/** Per test, how many of the repetitions it passed; `repetitions[i]` is the rows of repetition i + 1. */
export function summarizeRepeats(repetitions: readonly (readonly Row[])[]): RepeatSummary {
  const runs = repetitions.length;
  const key = (suite: string, test: string) => `${suite}\n${test}`;
  // Every test seen in any repetition, in first-seen order; the tests an error row kept from running count.
  const tests = new Map<string, RepeatedTest>();
  const add = (suite: string, test: string) => {
    if (!tests.has(key(suite, test)))
      tests.set(key(suite, test), { suite, test, passes: 0, skips: 0, misses: [], ok: false });
  };
  for (const rows of repetitions) {
    for (const r of rows) {
      if (isTestRow(r)) add(r.suite, r.test);
      for (const t of r.notRun ?? []) add(r.suite, t);
    }
  }
  const errors: RepeatSummary["errors"] = [];
  const empty: number[] = [];
  repetitions.forEach((rows, i) => {
    const repetition = i + 1;
    if (testedNothing(countRows(rows))) empty.push(repetition);
    for (const r of rows) if (!isTestRow(r)) errors.push({ repetition, row: r });
    for (const t of tests.values()) {
      const row = rows.find((r) => isTestRow(r) && r.suite === t.suite && r.test === t.test);
      if (row?.state === "pass") {
        t.passes++;
        continue;
      }
      if (row) {
        if (row.state === "skip") t.skips++;
        t.misses.push({ repetition, state: row.state, reason: rowReason(row) });
        continue;
      }
      const cover = rows.find((r) => r.suite === t.suite && r.notRun?.includes(t.test));
      t.misses.push(
        cover
          ? { repetition, state: "error", reason: rowReason(cover) }
          : { repetition, state: "not run", reason: "not collected in this repetition" },
      );
    }
  });
  for (const t of tests.values()) t.ok = t.passes === runs || t.skips === runs;
  const list = [...tests.values()];
  return {
    runs,
    tests: list,
    errors,
    empty,
    ok: list.every((t) => t.ok) && errors.length === 0 && empty.length === 0,
  };
}

/** The summary `tph run --repeat N` prints last; `wallMs[i]` is the wall time of repetition i + 1. */
export function renderRepeatSummary(summary: RepeatSummary, wallMs: readonly number[]): string {
  const { runs } = summary;
  const suiteWidth = Math.min(Math.max(...summary.tests.map((t) => t.suite.length), 5), 40);
  const lines = [`repeat summary: ${runs} runs`, `${"PASSED".padEnd(8)} ${"SUITE".padEnd(suiteWidth)} TEST`];
  for (const t of summary.tests) {
    const count = t.skips === runs ? "skip" : `${t.passes}/${runs}`;
    lines.push(`${count.padEnd(8)} ${t.suite.padEnd(suiteWidth)} ${t.test}`);
    // A test skipped every time shows its reason once; otherwise each repetition it missed.
    const misses = t.skips === runs ? t.misses.slice(0, 1) : t.misses;
    for (const m of misses) {
      const state = m.state === "not run" ? m.state : VERDICT[m.state];
      lines.push(
        `${" ".repeat(9)}↳ ${t.skips === runs ? "every run" : `run ${m.repetition}`}: ${state}: ${m.reason}`,
      );
    }
  }
  for (const e of summary.errors) {
    lines.push(`ERROR in run ${e.repetition}: ${e.row.suite} ${e.row.test}: ${rowReason(e.row)}`);
  }
  for (const r of summary.empty) lines.push(`run ${r} tested nothing (no test passed or failed)`);
  const total = wallMs.reduce((sum, ms) => sum + ms, 0);
  lines.push(
    `wall time: ${wallMs.map((ms, i) => `run ${i + 1} ${seconds(ms)}`).join(", ")}; total ${seconds(total)}`,
  );
  const flaky = summary.tests.filter((t) => !t.ok).length;
  lines.push(
    summary.ok
      ? `every test passed ${runs}/${runs}${summary.tests.some((t) => t.skips === runs) ? " (or was skipped every time)" : ""}`
      : `not green: ${flaky} of ${summary.tests.length} tests not ${runs}/${runs}, ${plural(summary.errors.length, "error")}, ${plural(summary.empty.length, "run")} that tested nothing`,
  );
  return `${lines.join("\n")}\n`;
}
