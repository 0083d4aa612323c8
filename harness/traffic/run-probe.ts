import { join } from "node:path";
import type { ProbeSource, StartedCluster } from "../cluster/provider.ts";
import { TphError } from "../core/errors.ts";
import { run } from "../core/exec.ts";
import { waitFor } from "../core/wait.ts";
import { podControl, podTrafficVia, runId } from "./pod-source.ts";
import type { Outcome, ProbeEntry } from "./probe.ts";
import { startRemoteRun } from "./probe-control.ts";

export type { ProbeSource } from "../cluster/provider.ts";

export interface ProbeRequest {
  target: string;
  path?: string;
  mode?: "http" | "keepalive" | "tcp" | "udp";
  /** Send every request from this source port (one conntrack entry for all of them). */
  localPort?: number;
  /** Requests per second (paced); default: as fast as answers come. */
  rate?: number;
  count?: number;
  intervalMs?: number;
  timeoutMs?: number;
  /** Record who served and the source IP it saw, both per request (probe --identify). */
  identify?: boolean;
}

/** The probe program on this machine (pods of the local provider and its external client run it from here). */
export const PROBE_PATH = join(import.meta.dirname, "probe.ts");

/** Runs the probe program from `source` and returns one entry per request. Bounded by count and time. */
export async function runProbe(
  cluster: StartedCluster,
  source: ProbeSource,
  req: ProbeRequest,
): Promise<ProbeEntry[]> {
  const count = req.count ?? 1;
  const timeoutMs = req.timeoutMs ?? 2_000;
  const maxSeconds = Math.ceil((count * (timeoutMs + (req.intervalMs ?? 0))) / 1000) + 5;
  if (source.kind === "pod" && podTrafficVia(cluster) === "api") {
    const { endpoint, offsetMs } = await podControl(cluster, source);
    const entries: ProbeEntry[] = [];
    const flags = { ...probeFlagRecord(req, count, timeoutMs), "max-seconds": maxSeconds };
    const remote = await startRemoteRun(endpoint, runId(), flags, (e) => entries.push(e), { offsetMs });
    const end = await remote.done;
    if ("lost" in end) throw new TphError(`probe from pod ${source.namespace}/${source.name}: ${end.lost}`);
    return entries;
  }
  const argv = [
    ...(await cluster.probeArgv(source)),
    ...probeFlags(req, count, timeoutMs),
    `--max-seconds=${maxSeconds}`,
  ];
  const result = await run(argv, { allowFailure: true });
  if (result.exitCode !== 0)
    throw new TphError(`probe failed (exit ${result.exitCode}): ${result.stderr.slice(-500)}`);
  return result.stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ProbeEntry);
}

/**
 * The probe's settings for a request (all but max-seconds), flag name → value: the control server's
 * query. Count 0 means until stopped.
 */
export function probeFlagRecord(
  req: ProbeRequest,
  count: number,
  timeoutMs: number,
): Record<string, string | number | boolean> {
  return {
    target: req.target,
    path: req.path ?? "/",
    mode: req.mode ?? "http",
    count,
    "interval-ms": req.intervalMs ?? 0,
    rate: req.rate ?? 0,
    "timeout-ms": timeoutMs,
    ...(req.identify && { identify: true }),
    ...(req.localPort !== undefined && { "local-port": req.localPort }),
  };
}

/** The same as command-line flags. */
export function probeFlags(req: ProbeRequest, count: number, timeoutMs: number): string[] {
  return Object.entries(probeFlagRecord(req, count, timeoutMs)).map(([k, v]) =>
    v === true ? `--${k}` : `--${k}=${v}`,
  );
}

/** The address part of agnhost's `/clientip` answer ("10.250.0.200:41234" → "10.250.0.200"). */
export function clientIpOf(entry: ProbeEntry): string | undefined {
  return entry.outcome === "ok" ? entry.body?.replace(/:\d+$/, "") : undefined;
}

/** An entry's outcome with its error code, for assertions whose failure message should explain itself. */
export function outcomeOf(entry: ProbeEntry): string {
  return entry.error ? `${entry.outcome}:${entry.error}` : entry.outcome;
}

/**
 * Source ports for readiness requests: just above Linux's default ephemeral range (32768-60999), so the
 * measured traffic, on ephemeral ports, never shares one with them. A readiness SYN sent before the path
 * is programmed (MetalLB answers ARP before kube-proxy has the address) leaves an unanswered conntrack
 * entry on the node for 120 s; a later request from that port follows the entry instead of the rules and
 * times out. Seen as a lone timeout 36 s after a node restart in node-stop-traffic.
 */
const READINESS_PORTS = { first: 61_000, count: 1_000 };
// A random start: test files in other workers probe from the same external client at the same time.
let readinessSeq = Math.floor(Math.random() * READINESS_PORTS.count);

/** The next readiness source port, or none where the request cannot pin one (keepalive, --identify). */
export function readinessPort(req: ProbeRequest): number | undefined {
  if (req.localPort !== undefined || req.mode === "keepalive" || req.identify) return req.localPort;
  return READINESS_PORTS.first + (readinessSeq++ % READINESS_PORTS.count);
}

/**
 * Waits until a request from `source` ends in `outcome` (default ok). kube-proxy programs a change within
 * about a second (minSyncPeriod); a suite's strict assertions start after that, not during it. Each
 * attempt comes from a readiness port of its own (see READINESS_PORTS).
 */
export async function waitOutcome(
  cluster: StartedCluster,
  source: ProbeSource,
  req: ProbeRequest,
  outcome: Outcome = "ok",
  timeoutMs = 15_000,
): Promise<void> {
  await waitFor(
    async () => {
      const localPort = readinessPort(req);
      const [entry] = await runProbe(cluster, source, {
        ...req,
        ...(localPort !== undefined && { localPort }),
        count: 1,
        timeoutMs: req.timeoutMs ?? 1_000,
      });
      return entry?.outcome === outcome
        ? { done: true, value: undefined }
        : { done: false, state: entry && outcomeOf(entry) };
    },
    {
      description: `${req.target} to give "${outcome}" from ${source.kind === "pod" ? `pod ${source.name}` : "the external client"}`,
      timeoutMs,
      intervalMs: 200,
    },
  );
}

export const waitServing = (cluster: StartedCluster, source: ProbeSource, req: ProbeRequest) =>
  waitOutcome(cluster, source, req);
