import type { Row } from "./verdicts-table.ts";

/**
 * The verdict as Markdown for a CI job's summary page (GitHub's GITHUB_STEP_SUMMARY): the counts, then
 * failures and errors first with their first evidence line, then skips with their reasons; passes are
 * counted, not listed, so the page stays short.
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
