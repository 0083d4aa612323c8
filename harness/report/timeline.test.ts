import { describe, expect, it } from "vitest";
import type { LedgerEntry } from "../assert/verdicts.ts";
import type { TimelineEvent } from "../disrupt/timeline.ts";
import { renderTimeline } from "./timeline.ts";

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const entry = (path: string, atMs: number, outcome: LedgerEntry["outcome"], seq = 0): LedgerEntry => ({
  seq,
  path,
  start: T0 + atMs,
  end: T0 + atMs + 5,
  outcome,
  ...(outcome === "ok" ? { body: "web-1" } : { error: "ETIMEDOUT" }),
});

describe("renderTimeline", () => {
  it("puts failures per second and per path next to the action they happened during", () => {
    const entries = [
      entry("external->lb", 0, "ok"),
      entry("external->lb", 500, "ok"),
      entry("pod@w1->svc", 100, "ok"),
      entry("external->lb", 2_100, "timeout", 7),
      entry("external->lb", 2_600, "ok"),
    ];
    const events: TimelineEvent[] = [
      { action: "drain", target: "w2", start: T0 + 1_200, end: T0 + 2_400 },
      { action: "cordon", target: "w2", start: T0 + 1_100, end: T0 + 1_150 },
      { action: "announced-by", target: "w1", start: T0 + 2_500, end: T0 + 2_500 },
    ];
    const text = renderTimeline(entries, events);
    const lines = text.split("\n");
    expect(lines[0]).toMatch(/^t\(s\)\s+external->lb\s+pod@w1->svc\s+actions$/);
    expect(lines[1]).toMatch(/^\+0\.0\s+2\/0\s+1\/0$/);
    expect(lines[2]).toMatch(/^\+1\.0\s+0\/0\s+0\/0\s+● cordon w2 \(50 ms\); ▶ drain w2$/);
    expect(lines[3]).toMatch(/^\+2\.0\s+1\/1 ✗\s+0\/0\s+■ drain w2 \(1\.2 s\); ● announced-by w1$/);
    expect(text).toContain("failures (1):");
    expect(text).toMatch(/\+2\.100 s {2}#7 12:00:02\.100 external->lb → timeout \(ETIMEDOUT\)/);
  });

  it("names the late failures that reused the port of an unanswered SYN", () => {
    const at = (ms: number, outcome: LedgerEntry["outcome"], localPort: number, seq: number) => ({
      ...entry("external->lb", ms, outcome, seq),
      localPort,
    });
    const text = renderTimeline(
      [at(0, "timeout", 40_001, 1), at(1_000, "ok", 40_002, 2), at(30_000, "timeout", 40_001, 3)],
      [],
    );
    expect(text).toContain("of which on stale conntrack entries (1:");
    expect(text).toMatch(/\+30\.000 s {2}#3 .* from port 40001$/);
    // Without a reused port there is no such section.
    expect(renderTimeline([at(0, "timeout", 40_001, 1)], [])).not.toContain("stale conntrack");
  });

  it("says so when nothing failed", () => {
    expect(renderTimeline([entry("a", 0, "ok")], [])).toMatch(/no failures in 1 requests$/);
  });
});
