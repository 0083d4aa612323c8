import { describeEntry, type LedgerEntry, staleConntrackReuse } from "../assert/verdicts.ts";
import type { TimelineEvent } from "../disrupt/timeline.ts";

export interface TimelineReportOptions {
  /** Width of one row. Default 1000 ms. */
  bucketMs?: number;
  /** Failures listed in full at the end. Default 20. */
  maxFailures?: number;
}

/**
 * A test's timeline as text: one row per second with requests ok/failed per path, the disruption
 * actions that started or ended in that second, then the failures with their path (which names the node)
 * and outcome class. What a person reads to see where and when traffic broke.
 *
 *   t(s)   external->lb   pod@w1->svc   actions
 *   +0.0   50/0           50/0
 *   +3.0   41/9 ✗         50/0          ▶ rollout-restart deployment/web
 */
export function renderTimeline(
  entries: readonly LedgerEntry[],
  events: readonly TimelineEvent[],
  options: TimelineReportOptions = {},
): string {
  const bucketMs = options.bucketMs ?? 1_000;
  const maxFailures = options.maxFailures ?? 20;
  if (entries.length === 0 && events.length === 0) return "(no traffic, no actions)";
  const times = [...entries.map((e) => e.start), ...events.map((e) => e.start)];
  const t0 = Math.min(...times);
  const tEnd = Math.max(...entries.map((e) => e.end), ...events.map((e) => e.end), t0);
  const paths = [...new Set(entries.map((e) => e.path))].sort();
  const rows = Math.floor((tEnd - t0) / bucketMs) + 1;
  const counts = paths.map(() => Array.from({ length: rows }, () => ({ ok: 0, failed: 0 })));
  for (const e of entries) {
    const cell = counts[paths.indexOf(e.path)]?.[Math.floor((e.start - t0) / bucketMs)];
    if (!cell) continue;
    if (e.outcome === "ok") cell.ok++;
    else cell.failed++;
  }
  const actions = Array.from({ length: rows }, () => [] as string[]);
  for (const ev of [...events].sort((a, b) => a.start - b.start)) {
    // An error's first line is its gist; the whole message is in the test's failure output.
    const error = ev.error?.split("\n")[0];
    const startRow = Math.floor((ev.start - t0) / bucketMs);
    const endRow = Math.floor((ev.end - t0) / bucketMs);
    const what = `${ev.action} ${ev.target}`.trim();
    if (startRow === endRow && ev.end - ev.start < bucketMs) {
      // A mark (an instant, e.g. "announced-by") has no duration to show.
      const took = ev.end > ev.start ? ` (${ev.end - ev.start} ms)` : "";
      actions[startRow]?.push(`● ${what}${took}${error ? ` ✗ ${error}` : ""}`);
    } else {
      actions[startRow]?.push(`▶ ${what}`);
      actions[endRow]?.push(
        `■ ${what} (${((ev.end - ev.start) / 1000).toFixed(1)} s)${error ? ` ✗ ${error}` : ""}`,
      );
    }
  }
  const widths = paths.map((p) => Math.max(p.length, 9));
  const header = ["t(s)  ", ...paths.map((p, i) => p.padEnd(widths[i] as number)), "actions"].join("  ");
  const lines = [header];
  for (let r = 0; r < rows; r++) {
    const cells = counts.map((c, i) => {
      const { ok, failed } = c[r] as { ok: number; failed: number };
      return `${ok}/${failed}${failed > 0 ? " ✗" : ""}`.padEnd(widths[i] as number);
    });
    const t = `+${((r * bucketMs) / 1000).toFixed(1)}`.padEnd(6);
    lines.push([t, ...cells, (actions[r] ?? []).join("; ")].join("  ").trimEnd());
  }
  const failures = entries.filter((e) => e.outcome !== "ok");
  if (failures.length > 0) {
    lines.push(
      "",
      `failures (${failures.length}${failures.length > maxFailures ? `, first ${maxFailures}` : ""}):`,
    );
    for (const f of failures.slice(0, maxFailures))
      lines.push(`  +${((f.start - t0) / 1000).toFixed(3)} s  ${describeEntry(f)}`);
    // Late failures a first-N list would cut off, and whose cause the ledger can name.
    const stale = staleConntrackReuse([...entries]);
    if (stale.length > 0) {
      lines.push(
        "",
        `of which on stale conntrack entries (${stale.length}: the source port of an earlier unanswered SYN, reused):`,
      );
      for (const f of stale.slice(0, maxFailures))
        lines.push(
          `  +${((f.start - t0) / 1000).toFixed(3)} s  ${describeEntry(f)} from port ${f.localPort}`,
        );
    }
  } else {
    lines.push("", `no failures in ${entries.length} requests`);
  }
  return lines.join("\n");
}
