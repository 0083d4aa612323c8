import { createInterface } from "node:readline";
import { execa } from "execa";
import type { PathExit as ExitOfPath, LedgerEntry } from "../assert/verdicts.ts";
import type { ProbeSource, StartedCluster } from "../cluster/provider.ts";
import { TphError } from "../core/errors.ts";
import { waitFor } from "../core/wait.ts";
import type { ProbeEntry } from "./probe.ts";
import { type ProbeRequest, probeFlags } from "./run-probe.ts";

/** One stream of traffic: requests from `source` to `target`, recorded under `name`. */
export interface TrafficPath extends ProbeRequest {
  name: string;
  source: ProbeSource;
  /** Requests per second (paced). Default 50. */
  rate?: number;
}

/** How a path's probe process ended: `early` when it ended before stop() (its source died, say). */
export interface PathExit extends ExitOfPath {
  at: number;
  stderr: string;
}

export interface TrafficResult {
  entries: LedgerEntry[];
  exits: PathExit[];
}

export interface RunningTraffic {
  /** Entries so far, in arrival order. */
  readonly entries: readonly LedgerEntry[];
  /** Resolves once every path has answered at least once: traffic is flowing. */
  flowing(timeoutMs?: number): Promise<void>;
  /** Stops every path (closes the probes' stdin), waits for their last entries, returns the ledger. */
  stop(): Promise<TrafficResult>;
}

export interface TrafficOptions {
  /** Hard bound on every probe's run time, whatever happens to stop(). Default 600 s. */
  maxSeconds?: number;
  /** Called for each entry as it arrives (live detection, progress). */
  onEntry?: (entry: LedgerEntry) => void;
}

/**
 * Starts continuous traffic on every path at once: one probe process per path in "until stopped" mode
 * (count 0), its JSON lines read as they come. Nothing is sampled: every request is in the ledger, so a
 * drop during a disruption cannot fall between two checks.
 */
export async function startTraffic(
  cluster: StartedCluster,
  paths: TrafficPath[],
  options: TrafficOptions = {},
): Promise<RunningTraffic> {
  const names = new Set(paths.map((p) => p.name));
  if (names.size !== paths.length) throw new TphError("traffic paths need distinct names");
  const maxSeconds = options.maxSeconds ?? 600;
  const entries: LedgerEntry[] = [];
  const exits: PathExit[] = [];
  let stopping = false;
  // Every path's command is resolved before any probe starts: a source that cannot be reached (a
  // missing probe client, say) fails the call with nothing running, instead of leaving the other
  // paths' probes to run until their bound.
  const argvs = await Promise.all(
    paths.map(async (p) => [
      ...(await cluster.probeArgv(p.source)),
      ...probeFlags({ ...p, rate: p.rate ?? 50 }, 0, p.timeoutMs ?? 1_000),
      `--max-seconds=${maxSeconds}`,
    ]),
  );
  const running = paths.map((p, i) => {
    const [file, ...args] = argvs[i] as [string, ...string[]];
    const child = execa(file, args, {
      stdin: "pipe",
      reject: false,
      // Lines are read as they come (below); only stderr is kept, for the exit record.
      buffer: { stdout: false, stderr: true },
      // A probe that outlives its bound by this much is stuck: kill it.
      timeout: (maxSeconds + 30) * 1000,
    });
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      if (!line) return;
      let parsed: ProbeEntry;
      try {
        parsed = JSON.parse(line) as ProbeEntry;
      } catch {
        return; // not ours (a shell's or kubectl's chatter); the probe writes only JSON lines
      }
      const entry: LedgerEntry = { ...parsed, path: p.name };
      entries.push(entry);
      options.onEntry?.(entry);
    });
    const done = child.then((r) => {
      exits.push({
        path: p.name,
        exitCode: r.exitCode,
        early: !stopping,
        at: Date.now(),
        stderr: String(r.stderr ?? "").slice(-1_000),
      });
    });
    return { path: p, child, done, lines };
  });

  return {
    entries,
    async flowing(timeoutMs = 30_000) {
      await waitFor(
        async () => {
          const early = exits.find((e) => e.early);
          if (early)
            throw new TphError(
              `traffic path ${early.path} ended before it started (exit ${early.exitCode}): ${early.stderr}`,
              { fatal: true },
            );
          const silent = paths.filter((p) => !entries.some((e) => e.path === p.name)).map((p) => p.name);
          return silent.length === 0
            ? { done: true as const, value: undefined }
            : { done: false as const, state: `no answer yet on ${silent.join(", ")}` };
        },
        { description: "traffic to flow on every path", timeoutMs, intervalMs: 50 },
      );
    },
    async stop() {
      stopping = true;
      for (const r of running) r.child.stdin?.end();
      // Each probe finishes its request in flight (at most its timeout) and flushes.
      const grace = Math.max(...paths.map((p) => p.timeoutMs ?? 1_000)) + 5_000;
      const timer = setTimeout(() => {
        for (const r of running) r.child.kill("SIGKILL");
      }, grace);
      await Promise.all(running.map((r) => r.done));
      clearTimeout(timer);
      for (const r of running) r.lines.close();
      return { entries: [...entries].sort((a, b) => a.start - b.start), exits };
    },
  };
}
