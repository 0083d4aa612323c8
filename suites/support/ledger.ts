import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, expect } from "vitest";
import { describeEntry, type LedgerEntry, type Verdict } from "../../harness/assert/verdicts.ts";
import type { StartedCluster } from "../../harness/cluster/provider.ts";
import { type ProbeRequest, type ProbeSource, runProbe } from "../../harness/traffic/run-probe.ts";

/**
 * The ledger of one test: every request it sent, tagged with its path, kept in order. With
 * TPH_ARTIFACTS set (tph run sets it), each test's ledger and verdicts are written as JSON there.
 */
export function useLedger() {
  let entries: LedgerEntry[] = [];
  let verdicts: Verdict[] = [];
  let testName = "";
  beforeEach((ctx) => {
    entries = [];
    verdicts = [];
    testName = ctx.task.name;
  });
  afterEach(async (ctx) => {
    const dir = process.env.TPH_ARTIFACTS;
    if (!dir || (entries.length === 0 && verdicts.length === 0)) return;
    const file = ctx.task.file?.name.replace(/[^\w.-]+/g, "_") ?? "suite";
    const out = join(dir, "ledgers", file);
    await mkdir(out, { recursive: true });
    await writeFile(
      join(out, `${testName.replace(/[^\w.-]+/g, "_").slice(0, 120)}.json`),
      JSON.stringify({ test: testName, verdicts, entries }, null, 1),
    );
  });
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
      return got;
    },
    /** Asserts a verdict; a failure lists the requests that broke it. */
    expect(v: Verdict): void {
      verdicts.push(v);
      if (!v.passed) expect.fail([v.summary, ...v.evidence.map((e) => `  ${describeEntry(e)}`)].join("\n"));
    },
    get entries() {
      return entries;
    },
  };
}
