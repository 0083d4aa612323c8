import type { Row, RowState } from "./verdicts-table.ts";

/**
 * Two runs side by side: the behaviours that differ, per test (a policy-matrix cell is a test), with the
 * evidence of each side. What `tph diff RUN_A RUN_B` and `tph compare` print.
 */

/** What a run writes as `verdicts.json` beside its JUnit: its settings and every row. */
export interface RunRecord {
  /** The run's settings, e.g. { provider, proxyModes, kubeProxyVersion }. */
  settings: Record<string, string>;
  rows: Row[];
}

export type DifferenceKind = "regression" | "fixed" | "changed" | "only in A" | "only in B";

export interface Difference {
  suite: string;
  test: string;
  kind: DifferenceKind;
  a?: Row;
  b?: Row;
}

/**
 * A test's name with its proxy mode taken out ("policy matrix (kube-proxy iptables) › ..." and the
 * nftables one are the same test when the runs compare proxy modes).
 */
export function comparableName(test: string): string {
  return test.replace(/\(kube-proxy (iptables|nftables|ipvs)\)/g, "(kube-proxy *)");
}

const GOOD: readonly RowState[] = ["pass"];

export function diffRuns(a: Row[], b: Row[]): Difference[] {
  const key = (r: Row) => `${r.suite}\u0000${comparableName(r.test)}`;
  const byA = new Map(a.map((r) => [key(r), r]));
  const byB = new Map(b.map((r) => [key(r), r]));
  const diffs: Difference[] = [];
  for (const [k, ra] of byA) {
    const rb = byB.get(k);
    if (!rb) {
      diffs.push({ suite: ra.suite, test: comparableName(ra.test), kind: "only in A", a: ra });
      continue;
    }
    if (ra.state === rb.state) continue;
    const kind: DifferenceKind = GOOD.includes(ra.state)
      ? rb.state === "skip"
        ? "changed"
        : "regression"
      : GOOD.includes(rb.state)
        ? "fixed"
        : "changed";
    diffs.push({ suite: ra.suite, test: comparableName(ra.test), kind, a: ra, b: rb });
  }
  for (const [k, rb] of byB)
    if (!byA.has(k)) diffs.push({ suite: rb.suite, test: comparableName(rb.test), kind: "only in B", b: rb });
  return diffs;
}

/** Non-zero when B fails (or errors on) something A passed. */
export function diffExitCode(diffs: Difference[]): number {
  return diffs.some((d) => d.kind === "regression") ? 1 : 0;
}

function side(r: Row | undefined): string {
  if (!r) return "(absent)";
  return r.reason ? `${r.state}: ${r.reason}` : r.state;
}

export function renderDiff(diffs: Difference[], a: RunRecord, b: RunRecord, compared: number): string {
  const label = (r: RunRecord) =>
    Object.entries(r.settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
  const lines = [`A: ${label(a)}`, `B: ${label(b)}`, ""];
  if (diffs.length === 0) {
    lines.push(`no differences: ${compared} tests behave the same in A and B`);
    return `${lines.join("\n")}\n`;
  }
  const order: DifferenceKind[] = ["regression", "changed", "fixed", "only in A", "only in B"];
  for (const kind of order) {
    const group = diffs.filter((d) => d.kind === kind);
    if (group.length === 0) continue;
    lines.push(`${kind.toUpperCase()} (${group.length}):`);
    for (const d of group) {
      lines.push(`  ${d.suite} › ${d.test}`);
      lines.push(`      A ${side(d.a)}`);
      lines.push(`      B ${side(d.b)}`);
    }
    lines.push("");
  }
  const regressions = diffs.filter((d) => d.kind === "regression").length;
  lines.push(
    `${diffs.length} of ${compared} tests differ; ${regressions} pass in A and fail in B${regressions > 0 ? " (exit 1)" : ""}`,
  );
  return `${lines.join("\n")}\n`;
}
