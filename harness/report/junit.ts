import type { Row } from "./verdicts-table.ts";
import { isTestRow, rowReason } from "./verdicts-table.ts";

/**
 * JUnit XML from the rows of a run: one <testsuite> per suite file, one <testcase> per row. Written by us
 * rather than vitest's junit reporter so that a failed beforeAll is an <error> of its own instead of a
 * handful of <skipped/> tests, and a skip carries its reason.
 */
export function junitXml(rows: readonly Row[]): string {
  const suites = new Map<string, Row[]>();
  for (const r of rows) suites.set(r.suite, [...(suites.get(r.suite) ?? []), r]);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites name="tph run"${totals(rows)}>`];
  for (const [suite, suiteRows] of suites) {
    lines.push(`  <testsuite name="${escapeXml(suite)}"${totals(suiteRows)}>`);
    for (const r of suiteRows) lines.push(...testcase(r));
    lines.push("  </testsuite>");
  }
  lines.push("</testsuites>");
  return `${lines.join("\n")}\n`;
}

function totals(rows: readonly Row[]): string {
  const count = (state: Row["state"]) => rows.filter((r) => r.state === state).length;
  const ms = rows.reduce((sum, r) => sum + r.ms, 0);
  return ` tests="${rows.length}" failures="${count("fail")}" errors="${count("error")}" skipped="${count("skip")}" time="${time(ms)}"`;
}

function testcase(r: Row): string[] {
  // A suite's or file's error is a testcase of its own, named for the phase that failed.
  const name = isTestRow(r) ? r.test : r.phase ? `${r.phase}: ${r.test}` : r.test;
  const open = `    <testcase classname="${escapeXml(r.suite)}" name="${escapeXml(name)}" time="${time(r.ms)}"`;
  const message = escapeXml(rowReason(r));
  switch (r.state) {
    case "pass":
      return [`${open}/>`];
    case "skip":
      return [`${open}>`, `      <skipped message="${message}"/>`, "    </testcase>"];
    case "fail":
    case "error": {
      const tag = r.state === "fail" ? "failure" : "error";
      const notRun = r.notRun?.length ? `not run:\n${r.notRun.map((t) => `  ${t}`).join("\n")}` : "";
      const body = [r.details || rowReason(r), notRun].filter(Boolean).join("\n\n");
      return [
        `${open}>`,
        `      <${tag} message="${message}">${escapeXml(body)}</${tag}>`,
        "    </testcase>",
      ];
    }
  }
}

function time(ms: number): string {
  return (ms / 1000).toFixed(3);
}

// Characters XML 1.0 does not allow anywhere, even escaped: C0 controls but tab, LF and CR; lone
// surrogates; U+FFFE and U+FFFF. ANSI colour codes start with one of them (ESC).
const ILLEGAL = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Text safe in XML content and in a quoted attribute. */
export function escapeXml(text: string): string {
  return text
    .replace(ILLEGAL, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}
