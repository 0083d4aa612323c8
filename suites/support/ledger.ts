import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, expect } from "vitest";
import { describeEntry, type LedgerEntry, type Verdict } from "../../harness/assert/verdicts.ts";
import type { StartedCluster } from "../../harness/cluster/provider.ts";
import { watchValue } from "../../harness/core/wait.ts";
import type { DisruptContext } from "../../harness/disrupt/actions.ts";
import { Timeline } from "../../harness/disrupt/timeline.ts";
import { UndoStack } from "../../harness/disrupt/undo.ts";
import type { KubeClients } from "../../harness/k8s/client.ts";
import { announcingNode } from "../../harness/metallb/announcer.ts";
import { liveCounts } from "../../harness/report/live.ts";
import { renderTimeline } from "../../harness/report/timeline.ts";
import { type ProbeRequest, type ProbeSource, runProbe } from "../../harness/traffic/run-probe.ts";
import {
  type PathExit,
  type RunningTraffic,
  startTraffic,
  type TrafficPath,
} from "../../harness/traffic/stream.ts";

/**
 * The ledger of one test: every request it sent, tagged with its path, kept in order, and the timeline of
 * the disruption actions it took. A failed verdict's message carries the requests that broke it and the
 * timeline. With TPH_ARTIFACTS set (tph run sets it), each test's ledger, verdicts and timeline are
 * written there.
 */
export function useLedger() {
  let entries: LedgerEntry[] = [];
  let verdicts: Verdict[] = [];
  let timeline = new Timeline();
  let undo = new UndoStack();
  let running: RunningTraffic[] = [];
  let watchers: { stop(): Promise<void> }[] = [];
  let testName = "";
  beforeEach((ctx) => {
    entries = [];
    verdicts = [];
    timeline = new Timeline();
    undo = new UndoStack();
    running = [];
    watchers = [];
    // The describe path too: a suite runs the same test under each proxy mode, and each needs its own
    // ledger file (the report matches it to the verdict row by this name).
    const path: string[] = [];
    for (let s = ctx.task.suite; s && !("filepath" in s); s = s.suite) path.unshift(s.name);
    testName = [...path, ctx.task.name].join(" › ");
    liveCounts.start(testName);
  });
  afterEach(async (ctx) => {
    let undone: Awaited<ReturnType<UndoStack["run"]>>;
    try {
      for (const w of watchers) await w.stop();
      // A test that threw mid-disruption leaves its traffic running: stop it, keep what it recorded.
      for (const t of running) entries.push(...(await t.stop()).entries);
    } finally {
      // Whatever the test changed and did not put back (it failed half-way, say) is undone now, on the
      // timeline, before the next test gets the cluster.
      undone = await undo.run();
    }
    await writeArtifacts(ctx.task.file?.name);
    if (undone.errors.length > 0)
      throw new AggregateError(
        undone.errors,
        `could not undo what the test changed: ${undone.errors.map((e) => e.message).join("; ")}`,
      );
  });
  async function writeArtifacts(fileName: string | undefined): Promise<void> {
    const dir = process.env.TPH_ARTIFACTS;
    if (!dir || (entries.length === 0 && verdicts.length === 0 && timeline.events.length === 0)) return;
    const file = fileName?.replace(/[^\w.-]+/g, "_") ?? "suite";
    const out = join(dir, "ledgers", file);
    await mkdir(out, { recursive: true });
    const base = join(out, testName.replace(/[^\w.-]+/g, "_").slice(0, 160));
    await writeFile(
      `${base}.json`,
      JSON.stringify({ test: testName, verdicts, timeline: timeline.events, entries }, null, 1),
    );
    if (timeline.events.length > 0)
      await writeFile(`${base}.timeline.txt`, `${renderTimeline(entries, timeline.events)}\n`);
  }
  return {
    /** Sends requests from `source` and records them under `path`. */
    async probe(
      cluster: StartedCluster,
      path: string,
      source: ProbeSource,
      req: ProbeRequest,
    ): Promise<LedgerEntry[]> {
      const got = (await runProbe(cluster, source, req)).map((e) => ({ ...e, path }));
      entries.push(...got);
      liveCounts.add(got);
      return got;
    },
    /**
     * Starts continuous traffic on `paths`; stop() adds its requests to the ledger. Stopped by the fixture
     * if the test ends first.
     */
    async traffic(
      cluster: StartedCluster,
      paths: TrafficPath[],
    ): Promise<{ flowing(): Promise<void>; stop(): Promise<{ entries: LedgerEntry[]; exits: PathExit[] }> }> {
      const t = await startTraffic(cluster, paths, { onEntry: (e) => liveCounts.add([e]) });
      running.push(t);
      return {
        flowing: () => t.flowing(),
        async stop() {
          running = running.filter((r) => r !== t);
          const result = await t.stop();
          entries.push(...result.entries);
          return result;
        },
      };
    },
    /**
     * Marks on the timeline who announces `service`'s LoadBalancer address, and each change of it
     * ("announced-by <node>", from MetalLB's status, read twice a second) until the test ends: failures on
     * an LB path then stand next to the node its traffic entered.
     */
    followAnnouncer(k8s: KubeClients, namespace: string, service: string): void {
      watchers.push(
        watchValue(
          () => announcingNode(k8s, namespace, service),
          (node) => timeline.mark("announced-by", node ?? "nobody"),
          500,
        ),
      );
    },
    /** The context disruption actions take; they land on this test's timeline. */
    disrupt(cluster: StartedCluster, k8s: KubeClients): DisruptContext {
      return { cluster, k8s, timeline, undo };
    },
    /**
     * Records every verdict, then fails once listing all that failed (a scenario's expectations are
     * judged together, so its report shows every broken one, not just the first).
     */
    expectAll(vs: Verdict[]): void {
      verdicts.push(...vs);
      const failed = vs.filter((v) => !v.passed);
      if (failed.length > 0)
        expect.fail(
          [
            ...failed.flatMap((v) => [
              v.summary,
              ...v.evidence.slice(0, 5).map((e) => `  ${describeEntry(e)}`),
            ]),
            ...(timeline.events.length > 0 ? ["", renderTimeline(entries, timeline.events)] : []),
          ].join("\n"),
        );
    },
    /** Records verdicts without asserting them (a test that checks which ones fail). */
    record(vs: Verdict[]): void {
      verdicts.push(...vs);
    },
    /** Asserts a verdict; a failure lists the requests that broke it and, if any, the timeline. */
    expect(v: Verdict): void {
      verdicts.push(v);
      if (!v.passed)
        expect.fail(
          [
            v.summary,
            ...v.evidence.map((e) => `  ${describeEntry(e)}`),
            ...(timeline.events.length > 0 ? ["", renderTimeline(entries, timeline.events)] : []),
          ].join("\n"),
        );
    },
    get timeline() {
      return timeline;
    },
    get entries() {
      return entries;
    },
  };
}
