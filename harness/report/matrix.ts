import {
  cellGroup,
  ENTRIES,
  type Entry,
  type MatrixState,
  type Outcome,
  type PolicyPair,
  SOURCES,
  type Source,
} from "../../manifests/policy-matrix.ts";

/** One judged cell of the policy matrix. */
export interface CellResult {
  source: Source;
  entry: Entry;
  pair: PolicyPair;
  state: MatrixState;
  protocol?: "udp";
  expected: Outcome;
  /** What the requests showed (seenOutcome). */
  seen: string;
  passed: boolean;
  /** The proxy modes are known to differ in this cell. */
  differs?: string;
  /** Not run, and why (a capability the provider lacks). */
  skipped?: string;
}

/**
 * The matrix as text: one grid per endpoint state and policy pair, rows = sources, columns = entry
 * points; each cell `expected` when it held ("ok own"), `expected≠seen` when it did not ("FAIL own≠dropped"),
 * `*` where the proxy modes are known to differ, `-` where the source cannot reach the entry point.
 */
export function renderMatrix(results: CellResult[], title: string): string {
  const lines = [title, ""];
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    const key = cellGroup(r);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const width = 22;
  for (const [key, cells] of groups) {
    lines.push(`${key}:`);
    lines.push(["src \\ dst".padEnd(10), ...ENTRIES.map((e) => e.padEnd(width))].join(" "));
    for (const source of SOURCES) {
      const row = cells.filter((c) => c.source === source);
      if (row.length === 0) continue;
      const text = ENTRIES.map((entry) => {
        const c = row.find((x) => x.entry === entry);
        if (!c) return "-".padEnd(width);
        const mark = c.differs ? "*" : "";
        if (c.skipped) return `skip ${c.expected}${mark}`.padEnd(width);
        return (c.passed ? `ok ${c.expected}${mark}` : `FAIL ${c.expected}≠${c.seen}${mark}`).padEnd(width);
      });
      lines.push([source.padEnd(10), ...text].join(" "));
    }
    lines.push("");
  }
  const differs = [...new Set(results.filter((r) => r.differs).map((r) => r.differs))];
  if (differs.length > 0) lines.push("* the proxy modes differ here:", ...differs.map((d) => `  ${d}`), "");
  const failed = results.filter((r) => !r.passed && !r.skipped);
  lines.push(`${results.length - failed.length} of ${results.length} cells as expected`);
  return lines.join("\n");
}
