import type { Dirent } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { cellGroup, ENTRIES, SOURCES } from "../../manifests/policy-matrix.ts";
import { describeEntry, type LedgerEntry, type Verdict } from "../assert/verdicts.ts";
import type { TimelineEvent } from "../disrupt/timeline.ts";
import type { CellResult } from "./matrix.ts";
import { closingLine, countRows, type Row, type RowState, rowReason, seconds } from "./verdicts-table.ts";

/**
 * report.html: one self-contained page per run, made from what the run left in its artifacts directory
 * (verdicts.json, junit.xml, ledgers/, policy-matrix-*.json). It works offline and from a CI artifact
 * download: uPlot's script and style are inlined, nothing is fetched (a Content-Security-Policy says so).
 * Tables are rendered here; the charts are drawn in the browser by uPlot from per-second counts embedded
 * as JSON (never the raw entries: a long test has hundreds of thousands).
 */

/** What suites/support/ledger.ts writes per test. */
export interface LedgerFile {
  test: string;
  verdicts: Verdict[];
  timeline: TimelineEvent[];
  entries: LedgerEntry[];
}

/** What suites/policy-matrix.e2e.ts writes per proxy mode. */
export interface MatrixFile {
  mode: string;
  version: string;
  E: string;
  N: string;
  results: CellResult[];
}

/** How the chart colours a failed request. Every outcome that is not one of the first four is "other". */
export const FAILURE_CLASSES = ["timeout", "refused", "reset", "unreachable", "other"] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

export function outcomeClass(outcome: string): "ok" | FailureClass {
  if (outcome === "ok") return "ok";
  return (FAILURE_CLASSES as readonly string[]).includes(outcome) ? (outcome as FailureClass) : "other";
}

/** One test's chart, as embedded in the page. x is seconds since t0; every series has one value per second. */
export interface ChartData {
  /** Epoch ms of the first request or action: second 0. */
  t0: number;
  /**
   * The middle of each one-second bucket (0.5, 1.5, …): a bar drawn there covers exactly its second, so
   * failures line up with the action bands, which are drawn at their real times.
   */
  x: number[];
  /** Per path (sorted), the requests in each second that succeeded. */
  ok: { path: string; counts: number[] }[];
  /** Per outcome class that occurred, the failed requests in each second, all paths together. */
  failed: { outcome: FailureClass; counts: number[] }[];
  /** The actions, in seconds since t0, in start order; a mark (e.g. announced-by) is an instant. */
  events: { label: string; start: number; end: number; mark: boolean; error?: string }[];
}

const BUCKET_MS = 1_000;

/** Requests per second per path and failures per second per outcome class, plus the actions. */
export function aggregateLedger(
  entries: readonly LedgerEntry[],
  events: readonly TimelineEvent[],
): ChartData {
  // Loops, not Math.min(...xs): a spread of a few hundred thousand entries overflows the call stack.
  let t0 = Number.POSITIVE_INFINITY;
  let tEnd = Number.NEGATIVE_INFINITY;
  for (const e of [...entries, ...events]) {
    t0 = Math.min(t0, e.start);
    tEnd = Math.max(tEnd, e.end, e.start);
  }
  if (!Number.isFinite(t0)) return { t0: 0, x: [], ok: [], failed: [], events: [] };
  const buckets = Math.floor((tEnd - t0) / BUCKET_MS) + 1;
  const zeros = () => new Array<number>(buckets).fill(0);
  const ok = new Map([...new Set(entries.map((e) => e.path))].sort().map((p) => [p, zeros()]));
  const failed = new Map<FailureClass, number[]>();
  for (const e of entries) {
    const i = Math.floor((e.start - t0) / BUCKET_MS);
    const cls = outcomeClass(e.outcome);
    if (cls === "ok") {
      bump(ok.get(e.path) as number[], i);
      continue;
    }
    if (!failed.has(cls)) failed.set(cls, zeros());
    bump(failed.get(cls) as number[], i);
  }
  const at = (ms: number) => Math.round(ms - t0) / 1000;
  return {
    t0,
    x: Array.from({ length: buckets }, (_, i) => i + 0.5),
    ok: [...ok].map(([path, counts]) => ({ path, counts })),
    failed: FAILURE_CLASSES.filter((c) => failed.has(c)).map((c) => ({
      outcome: c,
      counts: failed.get(c) as number[],
    })),
    events: [...events]
      .sort((a, b) => a.start - b.start)
      .map((ev) => ({
        label: `${ev.action} ${ev.target}`.trim(),
        start: at(ev.start),
        end: at(ev.end),
        mark: ev.start === ev.end,
        // An error's first line is its gist; the whole message is in the ledger and the test's failure.
        ...(ev.error && { error: ev.error.split("\n")[0] }),
      })),
  };
}

function bump(counts: number[], i: number): void {
  counts[i] = (counts[i] ?? 0) + 1;
}

/**
 * JSON that is safe inside <script type="application/json">: the HTML parser ends the element at the first
 * `</script` whatever the JSON means, and `<!--` can change how it scans, so every `<` is written as its
 * JSON escape. U+2028 and U+2029 are valid in JSON strings but end lines in older JavaScript parsers and
 * some tools that copy the page's text: escaped as well. JSON.parse reads all three back unchanged.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Everything the page shows, read from an artifacts directory. Parts the run did not write are empty. */
export interface RunData {
  /** The artifacts directory's name (e.g. run-2026-12-02T15-20-55-513Z). */
  name: string;
  settings: Record<string, string>;
  rows: Row[];
  ledgers: { href: string; timelineHref?: string; dir: string; ledger: LedgerFile }[];
  matrices: { href: string; textHref?: string; matrix: MatrixFile }[];
  /** zone-matrix-<mode>.txt from the trafficDistribution suite: requests by client zone and serving zone. */
  zoneMatrices: { href: string; text: string }[];
  junitHref?: string;
  verdictsHref?: string;
  /** Files that exist but could not be read, with why: shown on the page rather than failing the run. */
  problems: string[];
}

/** Reads the artifacts directory, tolerating any part missing or unreadable. */
export async function readRun(artifactsDir: string): Promise<RunData> {
  const run: RunData = {
    name: basename(artifactsDir),
    settings: {},
    rows: [],
    ledgers: [],
    matrices: [],
    zoneMatrices: [],
    problems: [],
  };
  const top = await listDir(artifactsDir);
  const has = (name: string) => top.some((d) => d.isFile() && d.name === name);
  const readJson = async (relative: string): Promise<unknown> => {
    try {
      return JSON.parse(await readFile(join(artifactsDir, relative), "utf8"));
    } catch (err) {
      run.problems.push(`could not read ${relative}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  };
  if (has("junit.xml")) run.junitHref = "junit.xml";
  if (has("verdicts.json")) {
    run.verdictsHref = "verdicts.json";
    const record = (await readJson("verdicts.json")) as { settings?: unknown; rows?: unknown } | undefined;
    if (record && typeof record.settings === "object" && record.settings !== null)
      run.settings = record.settings as Record<string, string>;
    if (Array.isArray(record?.rows)) run.rows = record.rows as Row[];
  }
  for (const d of top) {
    const mode = /^policy-matrix-(.+)\.json$/.exec(d.name)?.[1];
    if (!d.isFile() || !mode) continue;
    const matrix = (await readJson(d.name)) as Partial<MatrixFile> | undefined;
    if (!matrix || !Array.isArray(matrix.results)) continue;
    const text = `policy-matrix-${mode}.txt`;
    run.matrices.push({
      href: href(d.name),
      ...(has(text) && { textHref: href(text) }),
      matrix: { mode, version: "", E: "E", N: "N", ...matrix, results: matrix.results },
    });
  }
  for (const d of top) {
    if (!d.isFile() || !/^zone-matrix-.+\.txt$/.test(d.name)) continue;
    try {
      run.zoneMatrices.push({ href: href(d.name), text: await readFile(join(artifactsDir, d.name), "utf8") });
    } catch (err) {
      run.problems.push(`could not read ${d.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  // ledgers/<suite file>/<test>.json, beside which a disruption test has <test>.timeline.txt.
  for (const fileDir of await listDir(join(artifactsDir, "ledgers"))) {
    if (!fileDir.isDirectory()) continue;
    const files = await listDir(join(artifactsDir, "ledgers", fileDir.name));
    for (const f of files) {
      if (!f.isFile() || !f.name.endsWith(".json")) continue;
      const relative = `ledgers/${fileDir.name}/${f.name}`;
      const raw = (await readJson(relative)) as Partial<LedgerFile> | undefined;
      if (!raw) continue;
      const ledger: LedgerFile = {
        test: typeof raw.test === "string" ? raw.test : f.name.replace(/\.json$/, ""),
        verdicts: Array.isArray(raw.verdicts) ? raw.verdicts : [],
        timeline: Array.isArray(raw.timeline) ? raw.timeline : [],
        entries: Array.isArray(raw.entries) ? raw.entries : [],
      };
      const timeline = f.name.replace(/\.json$/, ".timeline.txt");
      run.ledgers.push({
        href: href(relative),
        ...(files.some((x) => x.name === timeline) && {
          timelineHref: href(`ledgers/${fileDir.name}/${timeline}`),
        }),
        dir: fileDir.name,
        ledger,
      });
    }
  }
  return run;
}

async function listDir(dir: string): Promise<Dirent[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  } catch {
    return [];
  }
}

/** A relative link to a file of the artifacts directory, each path segment URL-encoded. */
function href(relative: string): string {
  return relative.split("/").map(encodeURIComponent).join("/");
}

/** uPlot's minified browser build and its stylesheet, inlined into every report. */
export interface Assets {
  uplotJs: string;
  uplotCss: string;
}

export async function readAssets(): Promise<Assets> {
  // The package has no "exports" map, so its dist files resolve like any module path.
  const dist = dirname(createRequire(import.meta.url).resolve("uplot/dist/uPlot.iife.min.js"));
  return {
    uplotJs: await readFile(join(dist, "uPlot.iife.min.js"), "utf8"),
    uplotCss: await readFile(join(dist, "uPlot.min.css"), "utf8"),
  };
}

/** Writes `<artifactsDir>/report.html` from what the run left there; returns its path. */
export async function writeHtmlReport(artifactsDir: string): Promise<string> {
  await mkdir(artifactsDir, { recursive: true });
  const html = renderReportHtml(await readRun(artifactsDir), await readAssets());
  const out = join(artifactsDir, "report.html");
  await writeFile(out, html);
  return out;
}

const VERDICT: Record<RowState, string> = { pass: "pass", fail: "FAIL", error: "ERROR", skip: "skip" };
/** Failures first, then errors; within a rank the run's own order (Array.prototype.sort is stable). */
const RANK: Record<RowState, number> = { fail: 0, error: 1, pass: 2, skip: 2 };
const MAX_FAILURES = 50;
const MAX_DETAILS = 6_000;

/** The page. Pure: the same run data and assets give the same bytes. */
export function renderReportHtml(run: RunData, assets: Assets): string {
  const counts = countRows(run.rows);
  // A ledger belongs to the row of the same suite file whose test path ends with the ledger's test name
  // (the ledger has the test's own name, the row its describe path too), so each row can link to its chart.
  const ledgerDir = (r: Row) => `suites/${r.suite}.e2e.ts`.replace(/[^\w.-]+/g, "_");
  const rowOf = (l: RunData["ledgers"][number]) =>
    run.rows.find(
      (r) => ledgerDir(r) === l.dir && (r.test === l.ledger.test || r.test.endsWith(` › ${l.ledger.test}`)),
    );
  const failed = (l: RunData["ledgers"][number]) =>
    l.ledger.verdicts.some((v) => !v.passed) || ["fail", "error"].includes(rowOf(l)?.state ?? "");
  const ledgers = [...run.ledgers].sort((a, b) => Number(failed(b)) - Number(failed(a)));
  const anchors = new Map<Row, string>();
  ledgers.forEach((l, i) => {
    const row = rowOf(l);
    if (row && !anchors.has(row)) anchors.set(row, `test-${i}`);
  });
  const charts = ledgers.map((l) => aggregateLedger(l.ledger.entries, l.ledger.timeline));
  const title = `tph run ${run.name}`;
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    // Offline by construction: nothing may be loaded from anywhere, only the inline script and styles run.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // Without an icon of its own a browser may ask the server for /favicon.ico.
    '<link rel="icon" href="data:,">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${inlineText(assets.uplotCss, "style")}</style>`,
    `<style>${PAGE_CSS}</style>`,
    "</head>",
    "<body>",
    `<h1>${escapeHtml(title)}</h1>`,
    `<p class="closing">${escapeHtml(run.rows.length > 0 ? closingLine(counts) : "no verdicts.json: the run recorded no rows")}</p>`,
    ...run.problems.map((p) => `<p class="problem">${escapeHtml(p)}</p>`),
    renderSettings(run.settings),
    renderVerdicts(run.rows, anchors),
    ledgers.length > 0 ? "<h2>Timelines</h2>" : "",
    ...ledgers.map((l, i) => renderTest(l, i, charts[i] as ChartData, rowOf(l), failed(l))),
    run.matrices.length > 0 ? "<h2>Policy matrix</h2>" : "",
    ...run.matrices.map(renderMatrixTables),
    run.zoneMatrices.length > 0 ? "<h2>Zone matrix</h2>" : "",
    ...run.zoneMatrices.map((z) => `<pre class="zone-matrix">${escapeHtml(z.text)}</pre>`),
    renderFiles(run),
    `<script type="application/json" id="tph-data">${jsonForScript({ charts })}</script>`,
    `<script>${inlineText(assets.uplotJs, "script")}</script>`,
    `<script>${CLIENT_JS}</script>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

/**
 * Inlined third-party text must not close its own element early. uPlot has no `</script` or `</style`
 * today; if a release ever does, `<\/` means the same inside a JavaScript string or a CSS one.
 */
function inlineText(text: string, element: "script" | "style"): string {
  return text.replace(new RegExp(`</(${element})`, "gi"), "<\\/$1");
}

function renderSettings(settings: Record<string, string>): string {
  const entries = Object.entries(settings);
  if (entries.length === 0) return "";
  return [
    "<h2>Settings</h2>",
    '<table class="settings">',
    ...entries.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(String(v))}</td></tr>`),
    "</table>",
  ].join("\n");
}

function renderVerdicts(rows: readonly Row[], anchors: Map<Row, string>): string {
  const sorted = [...rows].sort((a, b) => RANK[a.state] - RANK[b.state]);
  const box = (state: RowState) =>
    `<label><input type="checkbox" name="state" value="${state}" checked> ${VERDICT[state]} (${rows.filter((r) => r.state === state).length})</label>`;
  const lines = [
    "<h2>Verdicts</h2>",
    '<div class="filters">',
    '<input id="filter" type="search" placeholder="filter: suite, test or reason" aria-label="filter rows">',
    box("fail"),
    box("error"),
    box("pass"),
    box("skip"),
    '<span id="shown"></span>',
    "</div>",
    '<table id="verdicts">',
    "<thead><tr><th>verdict</th><th>suite</th><th>test</th><th>time</th></tr></thead>",
    "<tbody>",
  ];
  for (const r of sorted) {
    const reason = r.state === "pass" ? "" : rowReason(r);
    const anchor = anchors.get(r);
    const test = anchor ? `<a href="#${anchor}">${escapeHtml(r.test)}</a>` : escapeHtml(r.test);
    const details =
      r.details && (r.state === "fail" || r.state === "error")
        ? `<details><summary>message</summary><pre>${escapeHtml(truncate(r.details, MAX_DETAILS))}</pre></details>`
        : "";
    lines.push(
      `<tr class="${r.state}" data-state="${r.state}" data-text="${escapeHtml(`${r.suite} ${r.test} ${reason}`.toLowerCase())}">` +
        `<td class="verdict">${VERDICT[r.state]}</td><td>${escapeHtml(r.suite)}</td>` +
        `<td>${test}${reason ? `<div class="reason">↳ ${escapeHtml(reason)}</div>` : ""}${details}</td>` +
        `<td class="num">${seconds(r.ms)}</td></tr>`,
    );
  }
  if (rows.length === 0) lines.push('<tr><td colspan="4">(no rows)</td></tr>');
  lines.push("</tbody>", "</table>");
  return lines.join("\n");
}

function truncate(text: string, max: number): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max)}\n… ${text.length - max} more characters in junit.xml`;
}

function renderTest(
  l: RunData["ledgers"][number],
  i: number,
  chart: ChartData,
  row: Row | undefined,
  failed: boolean,
): string {
  const { ledger } = l;
  const failures = ledger.entries.filter((e) => e.outcome !== "ok").sort((a, b) => a.start - b.start);
  const rel = (ms: number) => `+${((ms - chart.t0) / 1000).toFixed(3)} s`;
  const links = [
    `<a href="${l.href}">ledger JSON</a>`,
    ...(l.timelineHref ? [`<a href="${l.timelineHref}">timeline.txt</a>`] : []),
  ].join(" · ");
  // A run of the policy matrix has hundreds of ledgers of a few requests each: a test that failed or
  // took actions opens with its chart, the others are one line until clicked.
  const open = failed || chart.events.length > 0;
  const lines = [
    `<details class="test" id="test-${i}"${open ? " open" : ""}>`,
    `<summary><h3>${row ? `<span class="${row.state}">${VERDICT[row.state]}</span> ` : ""}${escapeHtml(ledger.test)}</h3></summary>`,
    `<p class="meta">${escapeHtml(row?.suite ?? l.dir)} · ${ledger.entries.length} requests on ${chart.ok.length} path(s), ${failures.length} failed${chart.x.length > 0 ? ` · t0 ${new Date(chart.t0).toISOString()}` : ""} · ${links}</p>`,
  ];
  if (chart.x.length > 0) {
    lines.push(`<div class="chart" data-chart="${i}"></div>`);
  } else {
    lines.push('<p class="meta">(no traffic, no actions)</p>');
  }
  if (chart.events.length > 0) {
    lines.push('<ul class="actions">');
    for (const ev of chart.events) {
      const when = ev.mark
        ? `+${ev.start.toFixed(1)} s`
        : `+${ev.start.toFixed(1)} → +${ev.end.toFixed(1)} s (${duration(ev.end - ev.start)})`;
      lines.push(
        `<li class="${ev.mark ? "mark" : "band"}${ev.error ? " error" : ""}">${when} ${escapeHtml(ev.label)}${ev.error ? ` ✗ ${escapeHtml(ev.error)}` : ""}</li>`,
      );
    }
    lines.push("</ul>");
  }
  if (ledger.verdicts.length > 0) {
    lines.push('<ul class="verdicts">');
    for (const v of ledger.verdicts) {
      const evidence = (v.evidence ?? []).map((e) => `${rel(e.start)}  ${describeEntry(e)}`);
      lines.push(
        `<li class="${v.passed ? "pass" : "fail"}">${v.passed ? "✓" : "✗"} ${escapeHtml(v.summary)}` +
          `${evidence.length > 0 ? `<pre>${escapeHtml(evidence.join("\n"))}</pre>` : ""}</li>`,
      );
    }
    lines.push("</ul>");
  }
  lines.push(renderHealthChecks(ledger.entries, chart.t0), renderSourceAddresses(ledger.entries));
  if (failures.length > 0) {
    const shown = failures.slice(0, MAX_FAILURES);
    lines.push(
      `<details class="failures"${failed ? " open" : ""}><summary>failed requests (${failures.length}${failures.length > MAX_FAILURES ? `, first ${MAX_FAILURES}` : ""})</summary>`,
      "<table><thead><tr><th>t</th><th>#</th><th>path</th><th>outcome</th><th>error</th><th>ms</th><th>source port</th></tr></thead><tbody>",
      ...shown.map(
        (e) =>
          `<tr><td class="num">${rel(e.start)}</td><td class="num">${e.seq}</td><td>${escapeHtml(e.path)}</td>` +
          `<td class="${outcomeClass(e.outcome)}">${escapeHtml(e.outcome)}</td><td>${escapeHtml(e.error ?? "")}</td>` +
          `<td class="num">${e.end - e.start}</td><td class="num">${e.localPort ?? ""}</td></tr>`,
      ),
      "</tbody></table></details>",
    );
  }
  lines.push("</details>");
  return lines.join("\n");
}

/** The address the backend says it saw, for requests that asked (/clientip answers "IP:port"; identify mode). */
function seenAddress(e: LedgerEntry): string | undefined {
  if (e.outcome !== "ok") return undefined;
  if (e.clientIp) return e.clientIp;
  return /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(e.body ?? "")?.[1];
}

/** Per path, the source addresses the backends saw and how many requests each: the source-IP table. */
export function sourceAddresses(
  entries: readonly LedgerEntry[],
): { path: string; seen: { address: string; requests: number }[] }[] {
  const byPath = new Map<string, Map<string, number>>();
  for (const e of entries) {
    const address = seenAddress(e);
    if (!address) continue;
    const seen = byPath.get(e.path) ?? new Map<string, number>();
    seen.set(address, (seen.get(address) ?? 0) + 1);
    byPath.set(e.path, seen);
  }
  return [...byPath]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([path, seen]) => ({
      path,
      seen: [...seen].sort((a, b) => b[1] - a[1]).map(([address, requests]) => ({ address, requests })),
    }));
}

/** One stretch of a health check's answers that did not change. `from`/`to` in seconds since t0. */
export interface HealthRun {
  from: number;
  to: number;
  /** "200 · 1 local endpoint", "503 · 0 local endpoints", or the failure ("timeout"). */
  answer: string;
  requests: number;
}

/**
 * Per path that reached a health-check node port (kube-proxy answers with a JSON body that has
 * localEndpoints), its answers over time as runs of one answer: when a node turned 503, and what it
 * counted then. Paths that never got such an answer are not health checks and are left out.
 */
export function healthCheckRuns(
  entries: readonly LedgerEntry[],
  t0: number,
): { path: string; runs: HealthRun[] }[] {
  const localOf = (e: LedgerEntry): number | undefined => {
    if (!e.body?.includes("localEndpoints")) return undefined;
    try {
      const n = (JSON.parse(e.body) as { localEndpoints?: unknown }).localEndpoints;
      return typeof n === "number" ? n : undefined;
    } catch {
      return undefined;
    }
  };
  const paths = new Set(entries.filter((e) => localOf(e) !== undefined).map((e) => e.path));
  return [...paths].sort().map((path) => {
    const runs: HealthRun[] = [];
    for (const e of entries.filter((x) => x.path === path).sort((a, b) => a.start - b.start)) {
      const local = localOf(e);
      const answer =
        local !== undefined
          ? `${e.status ?? e.outcome} · ${local} local endpoint${local === 1 ? "" : "s"}`
          : e.outcome;
      const at = (ms: number) => Math.round(ms - t0) / 1000;
      const last = runs[runs.length - 1];
      if (last && last.answer === answer) {
        last.to = at(e.end);
        last.requests++;
      } else runs.push({ from: at(e.start), to: at(e.end), answer, requests: 1 });
    }
    return { path, runs };
  });
}

/**
 * A collapsible table whose rows come in groups, one per path: the path is written on its group's first
 * row only. Each row's cells are already-escaped <td> elements.
 */
function groupedTable(
  opening: string,
  headers: string[],
  groups: { path: string; rows: string[][] }[],
): string {
  if (groups.length === 0) return "";
  return [
    opening,
    `<table><thead><tr>${["path", ...headers].map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>`,
    ...groups.flatMap(({ path, rows }) =>
      rows.map((cells, j) => `<tr><td>${j === 0 ? escapeHtml(path) : ""}</td>${cells.join("")}</tr>`),
    ),
    "</tbody></table></details>",
  ].join("\n");
}

function renderSourceAddresses(entries: readonly LedgerEntry[]): string {
  return groupedTable(
    '<details class="sources"><summary>source addresses the backends saw</summary>',
    ["address seen", "requests"],
    sourceAddresses(entries).map(({ path, seen }) => ({
      path,
      rows: seen.map((s) => [`<td>${escapeHtml(s.address)}</td>`, `<td class="num">${s.requests}</td>`]),
    })),
  );
}

function renderHealthChecks(entries: readonly LedgerEntry[], t0: number): string {
  return groupedTable(
    '<details class="health" open><summary>health-check node port answers over time</summary>',
    ["from", "to", "answer", "requests"],
    healthCheckRuns(entries, t0).map(({ path, runs }) => ({
      path,
      rows: runs.map((r) => [
        `<td class="num">+${r.from.toFixed(1)} s</td>`,
        `<td class="num">+${r.to.toFixed(1)} s</td>`,
        `<td>${escapeHtml(r.answer)}</td>`,
        `<td class="num">${r.requests}</td>`,
      ]),
    })),
  );
}

/** An action's length: milliseconds under a second (a cordon takes 20 ms), else seconds. */
function duration(s: number): string {
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(1)} s`;
}

/** One table per endpoint state and policy pair, as renderMatrix prints them: rows sources, columns entries. */
function renderMatrixTables(m: RunData["matrices"][number]): string {
  const { matrix } = m;
  const results = matrix.results;
  const failed = results.filter((r) => !r.passed && !r.skipped).length;
  const lines = [
    `<h3>kube-proxy ${escapeHtml(matrix.version)} in ${escapeHtml(matrix.mode)} mode (E=${escapeHtml(matrix.E)}, N=${escapeHtml(matrix.N)})</h3>`,
    `<p class="meta">${results.length - failed} of ${results.length} cells as expected · <a href="${m.href}">JSON</a>${m.textHref ? ` · <a href="${m.textHref}">text</a>` : ""}</p>`,
  ];
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    const key = cellGroup(r);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const [key, cells] of groups) {
    lines.push(
      '<table class="matrix">',
      `<caption>${escapeHtml(key)}</caption>`,
      `<thead><tr><th>src \\ dst</th>${ENTRIES.map((e) => `<th>${e}</th>`).join("")}</tr></thead><tbody>`,
    );
    for (const source of SOURCES) {
      const row = cells.filter((c) => c.source === source);
      if (row.length === 0) continue;
      const tds = ENTRIES.map((entry) => {
        const c = row.find((x) => x.entry === entry);
        if (!c) return '<td class="na">-</td>';
        const mark = c.differs ? "*" : "";
        const tip = escapeHtml(
          [`expected ${c.expected}, seen ${c.seen}`, c.skipped && `skipped: ${c.skipped}`, c.differs]
            .filter(Boolean)
            .join("; "),
        );
        if (c.skipped) return `<td class="skip" title="${tip}">skip ${escapeHtml(c.expected)}${mark}</td>`;
        return c.passed
          ? `<td class="pass" title="${tip}">ok ${escapeHtml(c.expected)}${mark}</td>`
          : `<td class="fail" title="${tip}">FAIL ${escapeHtml(c.expected)}≠${escapeHtml(c.seen)}${mark}</td>`;
      });
      lines.push(`<tr><th>${source}</th>${tds.join("")}</tr>`);
    }
    lines.push("</tbody></table>");
  }
  const differs = [...new Set(results.filter((r) => r.differs).map((r) => r.differs as string))];
  if (differs.length > 0)
    lines.push(
      `<p class="meta">* the proxy modes differ here:</p><ul>${differs.map((d) => `<li>${escapeHtml(d)}</li>`).join("")}</ul>`,
    );
  return lines.join("\n");
}

function renderFiles(run: RunData): string {
  const links = [
    ...(run.junitHref ? [`<li><a href="${run.junitHref}">junit.xml</a></li>`] : []),
    ...(run.verdictsHref ? [`<li><a href="${run.verdictsHref}">verdicts.json</a></li>`] : []),
    ...run.matrices.map((m) => `<li><a href="${m.href}">${escapeHtml(decodeURIComponent(m.href))}</a></li>`),
    ...run.zoneMatrices.map(
      (z) => `<li><a href="${z.href}">${escapeHtml(decodeURIComponent(z.href))}</a></li>`,
    ),
    ...run.ledgers.map((l) => `<li><a href="${l.href}">${escapeHtml(decodeURIComponent(l.href))}</a></li>`),
  ];
  if (links.length === 0) return "";
  return ["<h2>Files</h2>", '<ul class="files">', ...links, "</ul>"].join("\n");
}

const PAGE_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { margin: 0.3em 0; }
pre { white-space: pre-wrap; margin: 0.3em 0; font-size: 12px; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 3px 8px; vertical-align: top; }
tbody tr { border-top: 1px solid #eee; }
.num { text-align: right; white-space: nowrap; }
.closing { font-weight: 600; }
.problem { color: #b00; }
.meta { color: #666; margin: 0.2em 0; }
.filters { display: flex; gap: 1em; align-items: center; margin: 0.5em 0; }
.filters input[type=search] { width: 24em; padding: 3px 6px; }
#shown { color: #666; }
.verdict { font-weight: 600; white-space: nowrap; }
tr.fail .verdict, span.fail, li.fail { color: #c62828; }
tr.error .verdict, span.error { color: #8e24aa; }
tr.pass .verdict, span.pass, li.pass { color: #2e7d32; }
tr.skip .verdict, span.skip { color: #777; }
tr.fail, tr.error { background: #fff4f4; }
.reason { color: #555; }
details.test { margin: 0.4em 0 0.8em; padding-top: 0.4em; border-top: 1px solid #eee; }
details.test[open] { margin-bottom: 2em; }
details.test > summary { cursor: pointer; }
details.test > summary h3 { display: inline; }
.chart { width: 100%; margin: 0.5em 0; }
.tph-label { position: absolute; font-size: 11px; white-space: nowrap; pointer-events: none; color: #7a5200;
  background: rgba(255, 255, 255, 0.8); padding: 0 3px; border-radius: 2px; }
.tph-label.mark { color: #333; }
.tph-label.error { color: #c62828; }
ul.actions, ul.verdicts { list-style: none; padding-left: 0.5em; margin: 0.3em 0; }
ul.actions li.band::before { content: "▮ "; color: #f0b400; }
ul.actions li.mark::before { content: "┆ "; color: #444; }
ul.actions li.error { color: #c62828; }
td.timeout { color: #d62728; } td.refused { color: #e66d00; } td.reset { color: #9467bd; }
td.unreachable { color: #8c564b; } td.other { color: #666; }
table.matrix { margin: 0.8em 0; }
table.matrix caption { text-align: left; font-weight: 600; padding: 2px 0; }
table.matrix td, table.matrix th { border: 1px solid #ddd; font-family: ui-monospace, monospace; font-size: 12px; }
table.matrix td.pass { background: #f1f8f1; }
table.matrix td.fail { background: #ffd6d6; color: #a00; font-weight: 600; }
table.matrix td.skip { background: #f4f4f4; color: #777; }
table.matrix td.na { color: #bbb; text-align: center; }
`;

/**
 * The page's own script: the verdict table's live filter, and one uPlot chart per test from the embedded
 * per-second counts. The action bands and marks are drawn with uPlot's draw hooks (behind the series and
 * on top of them); their labels are elements over the plot, so they stay readable and searchable.
 * Plain JavaScript, run as is by the browser; it has no backticks, `${` or backslashes (a template literal).
 */
const CLIENT_JS = `
"use strict";
(() => {
  const data = JSON.parse(document.getElementById("tph-data").textContent);

  // Verdict table: a row shows when its state is ticked and its text contains the filter.
  const filter = document.getElementById("filter");
  const boxes = [...document.querySelectorAll("input[name=state]")];
  const rows = [...document.querySelectorAll("#verdicts tbody tr[data-state]")];
  const shown = document.getElementById("shown");
  const applyFilter = () => {
    const text = filter.value.trim().toLowerCase();
    const states = boxes.filter((b) => b.checked).map((b) => b.value);
    let n = 0;
    for (const tr of rows) {
      const visible = states.includes(tr.dataset.state) && tr.dataset.text.includes(text);
      tr.hidden = !visible;
      if (visible) n++;
    }
    shown.textContent = n + " of " + rows.length + " rows";
  };
  if (filter) {
    filter.addEventListener("input", applyFilter);
    for (const b of boxes) b.addEventListener("change", applyFilter);
    applyFilter();
  }

  const OK_COLOURS = ["#1f77b4", "#2ca02c", "#17becf", "#6b6ecf", "#bcbd22", "#393b79", "#e377c2", "#637939"];
  const FAIL_COLOURS = { timeout: "#d62728", refused: "#ff7f0e", reset: "#9467bd", unreachable: "#8c564b", other: "#7f7f7f" };
  const BAND = "rgba(255, 180, 0, 0.22)";
  const BAND_ERROR = "rgba(214, 39, 40, 0.16)";
  const ROWS = 4;

  const duration = (s) => (s < 1 ? Math.round(s * 1000) + " ms" : Math.round(s * 10) / 10 + " s");

  function makeChart(el, c) {
    const last = c.x.length - 1;
    const series = [
      // Each x is the middle of its second: the legend names the whole second.
      { label: "second", value: (u, v) => (v == null ? "-" : "+" + Math.floor(v) + "…" + (Math.floor(v) + 1) + " s") },
    ];
    const values = [c.x];
    c.ok.forEach((p, i) => {
      series.push({
        label: p.path + " ok",
        stroke: OK_COLOURS[i % OK_COLOURS.length],
        width: 2,
        value: (u, v, s, idx) => (idx == null ? "-" : v + "/s"),
      });
      values.push(p.counts);
    });
    for (const f of c.failed) {
      const colour = FAIL_COLOURS[f.outcome];
      series.push({
        label: f.outcome,
        stroke: colour,
        fill: colour + "b0",
        width: 1,
        // A bar per second with failures; seconds without any draw nothing (null) but read 0 in the legend.
        paths: uPlot.paths.bars({ size: [0.9, Infinity] }),
        points: { show: false },
        value: (u, v, s, idx) => (idx == null ? "-" : (v == null ? 0 : v) + "/s"),
      });
      values.push(f.counts.map((v) => (v === 0 ? null : v)));
    }

    // Labels of the actions: positioned on every redraw (zoom, resize) over the plot area.
    let labels = null;
    const placeLabels = (u) => {
      if (!labels) {
        labels = c.events.map((ev) => {
          const div = document.createElement("div");
          div.className = "tph-label" + (ev.mark ? " mark" : "") + (ev.error ? " error" : "");
          div.textContent = ev.label + (ev.mark ? "" : " (" + duration(ev.end - ev.start) + ")") + (ev.error ? " ✗ " + ev.error : "");
          div.title = div.textContent;
          u.over.appendChild(div);
          return div;
        });
      }
      c.events.forEach((ev, i) => {
        const left = u.valToPos(ev.start, "x");
        const right = u.valToPos(ev.end, "x");
        const div = labels[i];
        div.hidden = right < 0 || left > u.over.clientWidth;
        div.style.left = Math.max(0, left) + 2 + "px";
        div.style.top = 2 + (i % ROWS) * 16 + "px";
      });
    };
    const clipToPlot = (u) => {
      const { left, top, width, height } = u.bbox;
      u.ctx.beginPath();
      u.ctx.rect(left, top, width, height);
      u.ctx.clip();
    };
    // Behind the series: a shaded band from each action's start to its end.
    const drawBands = (u) => {
      const ctx = u.ctx;
      ctx.save();
      clipToPlot(u);
      for (const ev of c.events) {
        if (ev.mark) continue;
        const x0 = u.valToPos(ev.start, "x", true);
        const x1 = u.valToPos(ev.end, "x", true);
        ctx.fillStyle = ev.error ? BAND_ERROR : BAND;
        ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 2 * uPlot.pxRatio), u.bbox.height);
      }
      ctx.restore();
    };
    // On top of the series: a dashed vertical line at each mark.
    const drawMarks = (u) => {
      const ctx = u.ctx;
      ctx.save();
      clipToPlot(u);
      ctx.strokeStyle = "#444";
      ctx.lineWidth = uPlot.pxRatio;
      ctx.setLineDash([4 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
      for (const ev of c.events) {
        if (!ev.mark) continue;
        const x = Math.round(u.valToPos(ev.start, "x", true));
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
      }
      ctx.restore();
    };

    const opts = {
      width: el.clientWidth || 900,
      height: 260,
      cursor: { drag: { x: true, y: false } },
      scales: {
        x: {
          time: false,
          // The whole run from second 0 to the end of the last second; a zoom (drag) shows what was picked.
          range: (u, min, max) => (min === c.x[0] && max === c.x[last] ? [0, c.x.length] : [min, max]),
        },
        y: { range: (u, min, max) => [0, Math.max(1, Math.ceil((max || 0) * 1.1))] },
      },
      axes: [
        { label: "seconds since t0", values: (u, splits) => splits.map((v) => "+" + v + " s") },
        { label: "requests per second" },
      ],
      series,
      hooks: { drawClear: [drawBands], draw: [drawMarks, placeLabels] },
    };
    return new uPlot(opts, values, el);
  }

  // A chart is made when it first comes near the screen (its test opened, or scrolled to): hundreds of
  // canvases at once would take the browser's memory and seconds to load.
  const charts = [];
  const lazy = new IntersectionObserver(
    (seen) => {
      for (const { target, isIntersecting } of seen) {
        if (!isIntersecting) continue;
        lazy.unobserve(target);
        charts.push({ el: target, plot: makeChart(target, data.charts[Number(target.dataset.chart)]) });
      }
    },
    { rootMargin: "300px 0px" },
  );
  for (const el of document.querySelectorAll("[data-chart]")) lazy.observe(el);
  window.addEventListener("resize", () => {
    for (const { el, plot } of charts) plot.setSize({ width: el.clientWidth || 900, height: 260 });
  });

  // A verdict row's link opens its test, should it be folded.
  const openTarget = () => {
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  };
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
`;
