import { createInterface } from "node:readline";
import { execa } from "execa";
import type { PathExit as ExitOfPath, LedgerEntry } from "../assert/verdicts.ts";
import type { ProbeSource, StartedCluster } from "../cluster/provider.ts";
import { TphError } from "../core/errors.ts";
import { waitFor } from "../core/wait.ts";
import { podControl, podTrafficVia, runId } from "./pod-source.ts";
import type { ProbeEntry } from "./probe.ts";
import { type ControlEndpoint, startRemoteRun } from "./probe-control.ts";
import { type ProbeRequest, probeFlagRecord, probeFlags } from "./run-probe.ts";

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
  const record = (p: TrafficPath) => (parsed: ProbeEntry) => {
    const entry: LedgerEntry = { ...parsed, path: p.name };
    entries.push(entry);
    options.onEntry?.(entry);
  };
  // Every path's source is resolved before any probe starts: a source that cannot be reached (a
  // missing probe client, say) fails the call with nothing running, instead of leaving the other
  // paths' probes to run until their bound.
  const starts = await Promise.all(
    paths.map(async (p): Promise<() => Promise<PathRunner>> => {
      const req = { ...p, rate: p.rate ?? 50 };
      const timeoutMs = p.timeoutMs ?? 1_000;
      if (p.source.kind === "pod" && podTrafficVia(cluster) === "api") {
        const { endpoint, offsetMs, alive } = await podControl(cluster, p.source);
        const flags = { ...probeFlagRecord(req, 0, timeoutMs), "max-seconds": maxSeconds };
        return () => remoteRunner(endpoint, flags, record(p), offsetMs, alive);
      }
      const argv = [
        ...(await cluster.probeArgv(p.source)),
        ...probeFlags(req, 0, timeoutMs),
        `--max-seconds=${maxSeconds}`,
      ];
      return async () => processRunner(argv, maxSeconds, record(p));
    }),
  );
  const running: { path: TrafficPath; runner: PathRunner; done: Promise<void> }[] = [];
  try {
    for (const [i, p] of paths.entries()) {
      const runner = await (starts[i] as () => Promise<PathRunner>)();
      const done = runner.done.then((r) => {
        exits.push({
          path: p.name,
          exitCode: r.exitCode,
          early: !stopping,
          at: Date.now(),
          stderr: r.stderr,
        });
      });
      running.push({ path: p, runner, done });
    }
  } catch (err) {
    // One path could not start: the others stop now rather than run to their bound.
    for (const r of running) r.runner.kill();
    throw err;
  }

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
      await Promise.all(running.map((r) => r.runner.stop().catch(() => r.runner.kill())));
      // Each probe finishes its request in flight (at most its timeout) and flushes.
      const grace = Math.max(...paths.map((p) => p.timeoutMs ?? 1_000)) + 5_000;
      const timer = setTimeout(() => {
        for (const r of running) r.runner.kill();
      }, grace);
      await Promise.all(running.map((r) => r.done));
      clearTimeout(timer);
      return { entries: [...entries].sort((a, b) => a.start - b.start), exits };
    },
  };
}

/** One path's probe, however it runs: its end, a polite stop and a hard one. */
interface PathRunner {
  done: Promise<{ exitCode: number | undefined; stderr: string }>;
  /** Ends the run after the request in flight. */
  stop(): Promise<void>;
  /** Ends it now. */
  kill(): void;
}

/** The probe as a process (here, or exec'd into a pod), stopped by closing its stdin. */
function processRunner(argv: string[], maxSeconds: number, onEntry: (e: ProbeEntry) => void): PathRunner {
  const [file, ...args] = argv as [string, ...string[]];
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
    try {
      onEntry(JSON.parse(line) as ProbeEntry);
    } catch {
      // not ours (a shell's or kubectl's chatter); the probe writes only JSON lines
    }
  });
  return {
    done: child.then((r) => {
      lines.close();
      return { exitCode: r.exitCode, stderr: String(r.stderr ?? "").slice(-1_000) };
    }),
    async stop() {
      child.stdin?.end();
    },
    kill: () => {
      child.kill("SIGKILL");
    },
  };
}

/** The probe as a run on a pod's control server: exit 0 with its exit record, 1 when the stream ended without. */
async function remoteRunner(
  endpoint: ControlEndpoint,
  flags: Record<string, string | number | boolean>,
  onEntry: (e: ProbeEntry) => void,
  offsetMs: number,
  alive: () => Promise<boolean>,
): Promise<PathRunner> {
  const remote = await startRemoteRun(endpoint, runId(), flags, onEntry, { offsetMs });
  return {
    // A lost stream is told apart from a source that died by asking whether the pod still runs.
    done: remote.done.then(async (end) => {
      if ("exit" in end) return { exitCode: 0, stderr: "" };
      return (await alive())
        ? { exitCode: 1, stderr: `the control stream was lost while the pod still runs: ${end.lost}` }
        : { exitCode: 1, stderr: `the source died (its pod is gone or not ready): ${end.lost}` };
    }),
    stop: () => remote.stop(),
    kill: () => remote.abort(),
  };
}
