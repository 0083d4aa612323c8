import type { ProbeEntry } from "../traffic/probe.ts";

/**
 * Verdicts: named judgements over ledger entries. Each says whether it holds and, when it does not,
 * which requests broke it (time, path, outcome), so a report can show exactly where traffic failed.
 * Suites state expectations as these, never as ad-hoc booleans.
 */
export interface LedgerEntry extends ProbeEntry {
  /** Where the request went, e.g. "external->nodeport@tph-worker2" or "pod@tph-worker->clusterip". */
  path: string;
}

export interface Verdict {
  name: string;
  passed: boolean;
  /** One line for the verdict table. */
  summary: string;
  /** The requests that broke it (at most MAX_EVIDENCE), empty when it holds. */
  evidence: LedgerEntry[];
}

const MAX_EVIDENCE = 20;

export function describeEntry(e: LedgerEntry): string {
  const at = new Date(e.start).toISOString().slice(11, 23);
  return `#${e.seq} ${at} ${e.path} → ${e.outcome}${e.error ? ` (${e.error})` : ""}${e.body && e.outcome === "ok" ? ` "${e.body}"` : ""} in ${e.end - e.start} ms`;
}

function verdict(name: string, entries: LedgerEntry[], broken: LedgerEntry[], what: string): Verdict {
  if (entries.length === 0) {
    // A verdict over nothing proves nothing: no traffic is a failure, not a pass.
    return { name, passed: false, summary: `${name}: no requests to judge`, evidence: [] };
  }
  const passed = broken.length === 0;
  return {
    name,
    passed,
    summary: passed
      ? `${name}: all ${entries.length} requests ${what}`
      : `${name}: ${broken.length} of ${entries.length} requests did not; first: ${describeEntry(broken[0] as LedgerEntry)}`,
    evidence: broken.slice(0, MAX_EVIDENCE),
  };
}

/** The address part of agnhost's /clientip answer ("10.250.0.200:41234" → "10.250.0.200"). */
export function seenSourceIp(e: ProbeEntry): string | undefined {
  return e.outcome === "ok" ? e.body?.replace(/:\d+$/, "") : undefined;
}

/** Every request succeeded. */
export function noDrops(entries: LedgerEntry[]): Verdict {
  return verdict(
    "NoDrops",
    entries,
    entries.filter((e) => e.outcome !== "ok"),
    "succeeded",
  );
}

/** Every request succeeded and the backend saw the client's own address. */
export function sourceIpPreserved(entries: LedgerEntry[], clientIP: string): Verdict {
  return verdict(
    "SourceIpPreserved",
    entries,
    entries.filter((e) => seenSourceIp(e) !== clientIP),
    `showed the client's own IP ${clientIP}`,
  );
}

/**
 * Every request succeeded and the backend saw another address than the client's; with `allowed`, one of
 * those (e.g. the node addresses a SNAT may use).
 */
export function sourceIpSnat(entries: LedgerEntry[], clientIP: string, allowed?: string[]): Verdict {
  return verdict(
    "SourceIpSnat",
    entries,
    entries.filter((e) => {
      const seen = seenSourceIp(e);
      return seen === undefined || seen === clientIP || (allowed !== undefined && !allowed.includes(seen));
    }),
    allowed ? `were NATed to one of ${allowed.join(", ")}` : `were NATed away from ${clientIP}`,
  );
}

/**
 * Traffic fails the way the dataplane says: `timeout` (Dropped: a Local policy with no local endpoint),
 * `refused` (Refused: REJECT, no endpoints anywhere), `unreachable` (nobody answers ARP for the address),
 * or `nowhere` (Blackholed: timeout or unreachable, the packets went nowhere; e.g. a LoadBalancer IP
 * nobody announces, where the first request waits on ARP and later ones fail at once). Telling a
 * blackhole from a refusal is the point.
 */
export function blackholed(
  entries: LedgerEntry[],
  how: "timeout" | "refused" | "unreachable" | "nowhere",
): Verdict {
  const accepted: string[] = how === "nowhere" ? ["timeout", "unreachable"] : [how];
  const names = {
    timeout: "Dropped",
    refused: "Refused",
    unreachable: "Unreachable",
    nowhere: "Blackholed",
  } as const;
  const what = {
    timeout: "timed out (dropped)",
    refused: "were refused",
    unreachable: "found nobody at the address",
    nowhere: "went nowhere (timed out or unreachable)",
  } as const;
  return verdict(
    names[how],
    entries,
    entries.filter((e) => !accepted.includes(e.outcome)),
    what[how],
  );
}

/** One reading of a health-check node port against the EndpointSlices' ready endpoints on that node. */
export interface HealthSample {
  at: number;
  node: string;
  status: number;
  localEndpoints: number;
  /** Ready endpoints of the Service on this node, from the EndpointSlices at the same moment. */
  readyEndpoints: number;
}

/** The health-check node port says 200 with N local endpoints where N ready ones exist, 503 with 0 elsewhere. */
export function healthCheckMatchesEndpoints(samples: HealthSample[]): Verdict {
  const name = "HealthCheckMatchesEndpointSlices";
  const broken = samples.filter(
    (s) => s.localEndpoints !== s.readyEndpoints || s.status !== (s.readyEndpoints > 0 ? 200 : 503),
  );
  const asEntry = (s: HealthSample, i: number): LedgerEntry => ({
    seq: i,
    start: s.at,
    end: s.at,
    path: `healthcheck@${s.node}`,
    outcome: s.status === 200 ? "ok" : `http_${s.status}`,
    status: s.status,
    body: `localEndpoints=${s.localEndpoints}, EndpointSlices say ${s.readyEndpoints}`,
  });
  if (samples.length === 0)
    return { name, passed: false, summary: `${name}: no samples to judge`, evidence: [] };
  return {
    name,
    passed: broken.length === 0,
    summary:
      broken.length === 0
        ? `${name}: ${samples.length} samples agree`
        : `${name}: ${broken.length} of ${samples.length} samples disagree; first: ${describeEntry(asEntry(broken[0] as HealthSample, 0))}`,
    evidence: broken.slice(0, MAX_EVIDENCE).map(asEntry),
  };
}

/** Share of successful requests per backend (from agnhost's /hostname answers). */
export function loadShares(entries: LedgerEntry[]): Map<string, number> {
  const ok = entries.filter((e) => e.outcome === "ok" && e.body);
  const counts = new Map<string, number>();
  for (const e of ok) counts.set(e.body as string, (counts.get(e.body as string) ?? 0) + 1);
  return new Map([...counts].map(([pod, n]) => [pod, n / Math.max(ok.length, 1)]));
}

/** Each backend's share is within `tolerance` of the expected share (pods absent from `expected` get 0). */
export function loadSkewWithin(
  entries: LedgerEntry[],
  expected: Record<string, number>,
  tolerance: number,
): Verdict {
  const shares = loadShares(entries);
  const pods = new Set([...shares.keys(), ...Object.keys(expected)]);
  const off = [...pods].filter((p) => Math.abs((shares.get(p) ?? 0) - (expected[p] ?? 0)) > tolerance);
  const render = (m: Map<string, number>) =>
    [...m].map(([p, s]) => `${p} ${(s * 100).toFixed(0)}%`).join(", ");
  const name = "LoadSkew";
  if (entries.length === 0)
    return { name, passed: false, summary: `${name}: no requests to judge`, evidence: [] };
  return {
    name,
    passed: off.length === 0,
    summary: `${name}: ${render(shares)}${off.length ? ` (off by more than ${tolerance * 100}%: ${off.join(", ")})` : ""}`,
    evidence: [],
  };
}

/** Splits entries around an action: before it started, while it ran, after it ended. */
export function windows(entries: LedgerEntry[], action: { start: number; end: number }) {
  return {
    before: entries.filter((e) => e.end < action.start),
    during: entries.filter((e) => e.start <= action.end && e.end >= action.start),
    after: entries.filter((e) => e.start > action.end),
  };
}
