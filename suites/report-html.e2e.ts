import { existsSync } from "node:fs";
import { mkdir, mkdtemp, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LedgerEntry, noDrops } from "../harness/assert/verdicts.ts";
import type { TimelineEvent } from "../harness/disrupt/timeline.ts";
import type { RunRecord } from "../harness/report/diff.ts";
import { writeHtmlReport } from "../harness/report/html.ts";
import { junitXml } from "../harness/report/junit.ts";
import type { CellResult } from "../harness/report/matrix.ts";
import { renderTimeline } from "../harness/report/timeline.ts";
import type { Row } from "../harness/report/verdicts-table.ts";

/**
 * report.html as a person sees it: a recorded run (no cluster) turned into the page, opened in Debian's
 * headless Chromium through playwright-core. The page must work offline (no request but the file itself),
 * without script errors, with the charts drawn and the verdict filter working.
 */

/** Debian's chromium; the test never downloads a browser. */
const CHROMIUM = "/usr/bin/chromium";
const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);
const LB = "external->lb";
const POD = "pod@tph-worker->clusterip";
const FAILING = "drops during the rollout are caught and located";

/** 20 s of traffic on two paths, 10 requests a second each; external->lb times out from +7 s to +9 s. */
function fixtureEntries(): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  let seq = 0;
  for (let ms = 0; ms < 20_000; ms += 100) {
    for (const path of [LB, POD]) {
      const timeout = path === LB && ms >= 7_000 && ms < 9_000;
      const start = T0 + ms + (path === POD ? 30 : 0);
      entries.push(
        timeout
          ? { seq: seq++, path, start, end: start + 1_000, outcome: "timeout", error: "no answer in 1000 ms" }
          : { seq: seq++, path, start, end: start + 4, outcome: "ok", status: 200, body: "web-1" },
      );
    }
  }
  return entries;
}

/** A run's artifacts directory as `tph run` leaves it: verdicts.json, junit.xml, a ledger, a matrix grid. */
async function writeFixture(dir: string): Promise<void> {
  const rows: Row[] = [
    {
      suite: "reachability",
      test: "reachability (kube-proxy iptables) › ClusterIP from a pod",
      state: "pass",
      ms: 1_200,
    },
    {
      suite: "rollout-unsafe-drops",
      test: `unsafe rollout drops are detected (kube-proxy iptables) › ${FAILING}`,
      state: "fail",
      ms: 31_000,
      reason: "NoDrops: 20 of 400 requests did not; first: #140 12:00:07.000 external->lb → timeout",
      details: "AssertionError: NoDrops: 20 of 400 requests did not\n    at rollout-unsafe-drops.e2e.ts:80:7",
    },
    {
      suite: "kube-proxy-roll",
      test: "kube-proxy roll (kube-proxy iptables) › rolls node by node",
      state: "skip",
      ms: 0,
      reason: "needs 3 nodes, the running cluster has 2",
    },
  ];
  const record: RunRecord = {
    settings: { provider: "local", proxyMode: "iptables", kubeProxy: "the cluster's" },
    rows,
  };
  await writeFile(join(dir, "verdicts.json"), JSON.stringify(record, null, 1));
  await writeFile(join(dir, "junit.xml"), junitXml(rows));
  const entries = fixtureEntries();
  const timeline: TimelineEvent[] = [
    { action: "announced-by", target: "tph-worker2", start: T0 + 8_000, end: T0 + 8_000 },
    { action: "rollout-restart", target: "deployment/web", start: T0 + 5_000, end: T0 + 12_000 },
  ];
  const ledgers = join(dir, "ledgers", "suites_rollout-unsafe-drops.e2e.ts");
  await mkdir(ledgers, { recursive: true });
  const base = join(ledgers, FAILING.replace(/[^\w.-]+/g, "_"));
  await writeFile(
    `${base}.json`,
    JSON.stringify({ test: FAILING, verdicts: [noDrops(entries)], timeline, entries }, null, 1),
  );
  await writeFile(`${base}.timeline.txt`, `${renderTimeline(entries, timeline)}\n`);
  const cell = (entry: CellResult["entry"], seen: string, passed: boolean): CellResult => ({
    source: "external",
    entry,
    pair: { externalTrafficPolicy: "Local", internalTrafficPolicy: "Cluster" },
    state: "serving",
    expected: entry === "nodeport@N" ? "dropped" : "own",
    seen,
    passed,
  });
  await writeFile(
    join(dir, "policy-matrix-iptables.json"),
    JSON.stringify({
      mode: "iptables",
      version: "v1.37.2",
      E: "tph-worker",
      N: "tph-worker2",
      results: [
        cell("nodeport@E", "own", true),
        cell("nodeport@N", "own", false),
        cell("loadbalancer", "own", true),
      ],
    }),
  );
}

/** The little of a canvas the pixel check uses: the project's tsconfig has no DOM library. */
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: "2d"): {
    getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
  };
}

describe("report.html in headless Chromium", () => {
  let dir = "";
  let report = "";
  let browser: Browser | undefined;
  let page: Page | undefined;
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const requests: string[] = [];
  const blocked: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tph-report-html-"));
    await writeFixture(dir);
    report = await writeHtmlReport(dir);
    // A missing browser fails every test below with the way to install it (opened()); it is not a skip.
    if (!existsSync(CHROMIUM)) return;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const url = pathToFileURL(report).href;
    // Everything the page asks for goes through here: the file itself is served, anything else is refused
    // and recorded (the report must not need the network, or any other file, to show).
    await context.route("**/*", (route) => {
      const asked = route.request().url();
      if (asked === url) return route.continue();
      blocked.push(asked);
      return route.abort();
    });
    page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("request", (r) => {
      if (!r.url().startsWith("data:")) requests.push(r.url());
    });
    await page.goto(url);
    await page.locator(".uplot canvas").first().waitFor();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  function opened(): Page {
    if (!page)
      throw new Error(
        `no Chromium at ${CHROMIUM}: apt-get install chromium (Debian's package; .ci/run installs it)`,
      );
    return page;
  }

  it("loads with no script error and no request but the file itself", async () => {
    const p = opened();
    expect(pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
    expect(blocked).toEqual([]);
    expect(requests).toEqual([pathToFileURL(report).href]);
    expect(await p.title()).toContain("tph run");
  });

  it("draws the timeline chart: a canvas of nonzero size with the timeouts' colour in it", async () => {
    const p = opened();
    const canvases = await p.$$eval(".uplot canvas", (elements) =>
      elements.map((element) => {
        const canvas = element as unknown as CanvasLike;
        const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
        let painted = 0;
        let red = 0;
        for (let i = 0; i < data.length; i += 4) {
          const [r, g, b, a] = [data[i] ?? 0, data[i + 1] ?? 0, data[i + 2] ?? 0, data[i + 3] ?? 0];
          if (a > 0) painted++;
          // The timeout bars (#d62728), drawn nowhere else on the chart.
          if (a > 200 && r > 180 && g < 90 && b < 90) red++;
        }
        return { width: canvas.width, height: canvas.height, painted, red };
      }),
    );
    expect(canvases).toHaveLength(1);
    const [chart] = canvases;
    expect(chart?.width).toBeGreaterThan(300);
    expect(chart?.height).toBeGreaterThan(100);
    expect(chart?.painted).toBeGreaterThan(5_000);
    expect(chart?.red).toBeGreaterThan(100);
    // Hovering over +8 s (inside the timeouts) shows that second's counts in the legend.
    const over = p.locator(".uplot .u-over");
    const box = await over.boundingBox();
    if (!box) throw new Error("the chart has no plot area");
    await p.mouse.move(box.x + (box.width * 8.5) / 20, box.y + box.height / 2);
    const value = (label: string) =>
      p.locator(".u-legend .u-series", { hasText: label }).locator(".u-value").textContent();
    expect(await value("timeout")).toBe("10/s");
    expect(await value(`${LB} ok`)).toBe("0/s");
    expect(await value(`${POD} ok`)).toBe("10/s");
  });

  it("labels the rollout's band and the announcement mark on the chart", async () => {
    const p = opened();
    const band = p.locator(".uplot .u-over .tph-label", { hasText: "rollout-restart deployment/web" });
    await expect.poll(() => band.isVisible()).toBe(true);
    expect(await band.textContent()).toContain("(7 s)");
    expect(await p.locator(".uplot .u-over .tph-label.mark").textContent()).toBe("announced-by tph-worker2");
    expect(await p.locator("ul.verdicts li.fail").textContent()).toContain("NoDrops: 20 of 400 requests");
  });

  it("lists the failing row first and filters rows as one types", async () => {
    const p = opened();
    const rows = p.locator("#verdicts tbody tr");
    expect(await rows.count()).toBe(3);
    expect(await rows.first().getAttribute("data-state")).toBe("fail");
    expect(await rows.first().textContent()).toContain(FAILING);
    await p.locator("#filter").fill("reachability");
    expect(await p.locator("#verdicts tbody tr:visible").count()).toBe(1);
    expect(await p.locator("#verdicts tbody tr:visible").textContent()).toContain("ClusterIP from a pod");
    await p.locator("#filter").fill("");
    await p.locator("input[name=state][value=pass]").uncheck();
    expect(await p.locator("#verdicts tbody tr:visible").count()).toBe(2);
    await p.locator("input[name=state][value=pass]").check();
    expect(await p.locator("#verdicts tbody tr:visible").count()).toBe(3);
  });

  it("shows the policy matrix with the failed cell marked, and links the run's files", async () => {
    const p = opened();
    expect(await p.locator("table.matrix td.fail").textContent()).toBe("FAIL dropped≠own");
    expect(await p.locator("table.matrix td.pass").count()).toBe(2);
    const links = await p
      .locator("ul.files a")
      .evaluateAll((as) =>
        as.map((a) => (a as unknown as { getAttribute(n: string): string }).getAttribute("href")),
      );
    expect(links).toContain("junit.xml");
    expect(links).toContain(
      "ledgers/suites_rollout-unsafe-drops.e2e.ts/drops_during_the_rollout_are_caught_and_located.json",
    );
    // Saved for a person to look at; under tph run, beside the run's other artifacts.
    const shot = join(process.env.TPH_ARTIFACTS ?? dir, "report-html.png");
    await p.screenshot({ path: shot, fullPage: true });
    expect((await stat(shot)).size).toBeGreaterThan(10_000);
    console.log(`report-html: ${report} (${(await stat(report)).size} bytes), screenshot ${shot}`);
  });
});
