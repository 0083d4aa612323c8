import type { Row } from "./verdicts-table.ts";

/**
 * The verdict as Markdown for a CI job's summary page (GitHub's GITHUB_STEP_SUMMARY): the counts, the
 * verdict table per suite (passed, failed, errors, skipped), then failures and errors with their first
 * evidence line, then skips with their reasons; passing tests are counted per suite, not listed, so the
 * page stays short.
 */
export function summaryMarkdown(rows: Row[], title: string): string {
  const count = (s: Row["state"]) => rows.filter((r) => r.state === s).length;
  const [passed, failed, errors, skipped] = [count("pass"), count("fail"), count("error"), count("skip")];
  const ok = failed === 0 && errors === 0 && passed > 0;
  const lines = [
    `### ${ok ? "✅" : "❌"} ${title}`,
    "",
    `**${passed} passed, ${failed} failed**${errors ? `, ${errors} errors` : ""}${skipped ? `, ${skipped} skipped` : ""}${passed + failed === 0 ? " — no test ran: a run that tested nothing is a failure" : ""}`,
    "",
  ];
  // The verdict table, one row per suite, always: a green run shows what it covered too.
  const suites = [...new Set(rows.map((r) => r.suite))];
  if (suites.length > 0) {
    lines.push("| suite | passed | failed | errors | skipped |", "| --- | ---: | ---: | ---: | ---: |");
    for (const suite of suites) {
      const of = rows.filter((r) => r.suite === suite);
      const n = (s: Row["state"]) => of.filter((r) => r.state === s).length;
      const mark = n("fail") + n("error") > 0 ? "❌ " : n("pass") > 0 ? "" : "⚠️ ";
      lines.push(`| ${mark}${cell(suite)} | ${n("pass")} | ${n("fail")} | ${n("error")} | ${n("skip")} |`);
    }
    lines.push("");
  }
  const notable = [
    ...rows.filter((r) => r.state === "fail" || r.state === "error"),
    ...rows.filter((r) => r.state === "skip"),
  ];
  if (notable.length > 0) {
    lines.push("| verdict | suite | test | why |", "| --- | --- | --- | --- |");
    for (const r of notable)
      lines.push(
        `| ${r.state.toUpperCase()} | ${cell(r.suite)} | ${cell(r.test)} | ${cell(r.reason ?? "")} |`,
      );
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

/** A table cell: no pipes or newlines, and not endless. */
function cell(text: string): string {
  const one = text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");
  return one.length > 300 ? `${one.slice(0, 297)}...` : one;
}
