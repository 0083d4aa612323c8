import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { LedgerEntry } from "../assert/verdicts.ts";
import type { TimelineEvent } from "../disrupt/timeline.ts";
import {
  aggregateLedger,
  healthCheckRuns,
  jsonForScript,
  outcomeClass,
  sourceAddresses,
  writeHtmlReport,
} from "./html.ts";

const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);
const entry = (path: string, atMs: number, outcome: LedgerEntry["outcome"], seq = 0): LedgerEntry => ({
  seq,
  path,
  start: T0 + atMs,
  end: T0 + atMs + 5,
  outcome,
});

describe("outcomeClass", () => {
  it("keeps the four failures the chart colours apart and folds the rest into other", () => {
    expect(["ok", "timeout", "refused", "reset", "unreachable"].map(outcomeClass)).toEqual([
      "ok",
      "timeout",
      "refused",
      "reset",
      "unreachable",
    ]);
    expect(["error", "http_503", "http_404", "whatever"].map(outcomeClass)).toEqual([
      "other",
      "other",
      "other",
      "other",
    ]);
  });
});

describe("aggregateLedger", () => {
  it("counts ok requests per second per path and failures per second per outcome class", () => {
    const entries = [
      entry("pod@w1->svc", 100, "ok"),
      entry("external->lb", 0, "ok"),
      entry("external->lb", 999, "ok"),
      entry("external->lb", 1_000, "timeout"),
      entry("external->lb", 1_500, "timeout"),
      entry("pod@w1->svc", 1_200, "refused"),
      entry("pod@w1->svc", 2_100, "http_503"),
      entry("pod@w1->svc", 2_200, "error"),
      entry("external->lb", 2_900, "ok"),
    ];
    const events: TimelineEvent[] = [
      { action: "rollout-restart", target: "deployment/web", start: T0 + 500, end: T0 + 2_750 },
      { action: "announced-by", target: "w2", start: T0 + 300, end: T0 + 300 },
      { action: "drain", target: "w1", start: T0 + 1_000, end: T0 + 1_100, error: "PDB\nmore lines" },
    ];
    const chart = aggregateLedger(entries, events);
    expect(chart.t0).toBe(T0);
    expect(chart.x).toEqual([0.5, 1.5, 2.5]);
    expect(chart.ok).toEqual([
      { path: "external->lb", counts: [2, 0, 1] },
      { path: "pod@w1->svc", counts: [1, 0, 0] },
    ]);
    // In the fixed class order, only the classes that occurred; failures of all paths together.
    expect(chart.failed).toEqual([
      { outcome: "timeout", counts: [0, 2, 0] },
      { outcome: "refused", counts: [0, 1, 0] },
      { outcome: "other", counts: [0, 0, 2] },
    ]);
    expect(chart.events).toEqual([
      { label: "announced-by w2", start: 0.3, end: 0.3, mark: true },
      { label: "rollout-restart deployment/web", start: 0.5, end: 2.75, mark: false },
      { label: "drain w1", start: 1, end: 1.1, mark: false, error: "PDB" },
    ]);
  });

  it("starts at the earliest request or action and runs to the last one's end", () => {
    const chart = aggregateLedger(
      [entry("a", 2_000, "ok")],
      [{ action: "cordon", target: "w1", start: T0, end: T0 + 4_200 }],
    );
    expect(chart.t0).toBe(T0);
    expect(chart.x).toHaveLength(5);
    expect(chart.ok).toEqual([{ path: "a", counts: [0, 0, 1, 0, 0] }]);
  });

  it("is empty without requests and actions", () => {
    expect(aggregateLedger([], [])).toEqual({ t0: 0, x: [], ok: [], failed: [], events: [] });
  });

  it("handles a ledger too long to spread into Math.min", () => {
    const many = Array.from({ length: 300_000 }, (_, i) => entry("a", i, "ok", i));
    const chart = aggregateLedger(many, []);
    expect(chart.x).toHaveLength(301);
    expect(chart.ok[0]?.counts.reduce((a, b) => a + b, 0)).toBe(300_000);
  });
});

describe("jsonForScript", () => {
  it("cannot end its script element or start a comment, and reads back unchanged", () => {
    const value = {
      s: "</script><script>alert(1)</script>",
      c: "<!-- x -->",
      ls: "a\u2028b\u2029c",
      q: '"&',
    };
    const json = jsonForScript(value);
    expect(json).not.toMatch(/<\/script/i);
    expect(json).not.toContain("<");
    expect(json).not.toContain("\u2028");
    expect(json).not.toContain("\u2029");
    expect(json).toContain("\\u003c/script>");
    expect(json).toContain("a\\u2028b\\u2029c");
    expect(JSON.parse(json)).toEqual(value);
  });
});

describe("sourceAddresses", () => {
  it("counts, per path, the address each backend saw; requests that did not ask are left out", () => {
    const seen = (path: string, at: number, body: string): LedgerEntry => ({
      ...entry(path, at, "ok"),
      body,
    });
    const table = sourceAddresses([
      seen("external->nodeport@E", 0, "203.0.113.10:40001"),
      seen("external->nodeport@E", 100, "203.0.113.10:40002"),
      seen("external->nodeport@N", 0, "10.244.2.1:40003"),
      { ...entry("external->lb", 0, "ok"), servedBy: "web-1", clientIp: "203.0.113.10" },
      seen("pod@E->clusterip", 0, "web-1"), // a /hostname answer: not an address
      { ...entry("external->nodeport@N", 300, "timeout"), body: "10.244.2.1:1" },
    ]);
    expect(table).toEqual([
      { path: "external->lb", seen: [{ address: "203.0.113.10", requests: 1 }] },
      { path: "external->nodeport@E", seen: [{ address: "203.0.113.10", requests: 2 }] },
      { path: "external->nodeport@N", seen: [{ address: "10.244.2.1", requests: 1 }] },
    ]);
  });
});

describe("healthCheckRuns", () => {
  it("folds a health check's answers into runs of one answer, with what kube-proxy counted", () => {
    const hc = (at: number, status: number, local: number): LedgerEntry => ({
      ...entry("external->hcnp@E", at, status === 200 ? "ok" : `http_${status}`),
      status,
      body: JSON.stringify({ service: { namespace: "ns", name: "web" }, localEndpoints: local }),
    });
    const runs = healthCheckRuns(
      [
        hc(0, 200, 1),
        hc(1_000, 200, 1),
        hc(2_000, 503, 0),
        entry("external->hcnp@E", 3_000, "timeout"),
        hc(4_000, 503, 0),
        entry("external->lb", 0, "ok"), // not a health check
      ],
      T0,
    );
    expect(runs).toEqual([
      {
        path: "external->hcnp@E",
        runs: [
          { from: 0, to: 1.005, answer: "200 · 1 local endpoint", requests: 2 },
          { from: 2, to: 2.005, answer: "503 · 0 local endpoints", requests: 1 },
          { from: 3, to: 3.005, answer: "timeout", requests: 1 },
          { from: 4, to: 4.005, answer: "503 · 0 local endpoints", requests: 1 },
        ],
      },
    ]);
  });
});

describe("writeHtmlReport", () => {
  it("writes a page for whatever the directory has, inlining uPlot and escaping the data", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tph-html-"));
    try {
      // No verdicts.json, no junit.xml; one ledger whose test name would close the script element, and
      // one file that is not JSON.
      const ledgers = join(dir, "ledgers", "suites_x.e2e.ts");
      await mkdir(ledgers, { recursive: true });
      const entries = [
        { ...entry("external->lb", 0, "ok"), body: "203.0.113.10:40001" },
        entry("external->lb", 1_200, "timeout"),
      ];
      await writeFile(
        join(ledgers, "t.json"),
        JSON.stringify({ test: "</script><b>t</b>", verdicts: [], timeline: [], entries }),
      );
      await writeFile(join(ledgers, "broken.json"), "{");
      await writeFile(join(dir, "zone-matrix-iptables.txt"), "zone matrix\nzone-a  30 <0>\n");
      const out = await writeHtmlReport(dir);
      expect(out).toBe(join(dir, "report.html"));
      const html = await readFile(out, "utf8");
      expect(html).toContain("no verdicts.json");
      expect(html).toContain("could not read ledgers/suites_x.e2e.ts/broken.json");
      expect(html).toContain("&lt;/script&gt;&lt;b&gt;t&lt;/b&gt;");
      expect(html).not.toContain("<b>t</b>");
      expect(html).toContain("source addresses the backends saw");
      expect(html).toMatch(/<td>203\.0\.113\.10<\/td><td class="num">1<\/td>/);
      expect(html).not.toContain("health-check node port answers");
      expect(html).toContain("<h2>Zone matrix</h2>");
      expect(html).toContain("zone-a  30 &lt;0&gt;");
      expect(html).toContain('href="zone-matrix-iptables.txt"');
      // uPlot itself, not a link to it; nothing that would load from elsewhere.
      expect(html).toContain("uPlot");
      expect(html).not.toMatch(
        /<script[^>]+src=|<link[^>]+stylesheet|(src|href|url)\s*[=(]\s*["']?(https?:)?\/\//i,
      );
      const data = /<script type="application\/json" id="tph-data">(.*?)<\/script>/s.exec(html)?.[1];
      expect(JSON.parse(data ?? "").charts[0].failed).toEqual([{ outcome: "timeout", counts: [0, 1] }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
