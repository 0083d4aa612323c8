import type { ProbeEntry } from "../traffic/probe.ts";
import type { Place } from "./placement.ts";

/**
 * Verdicts: named judgements over ledger entries. Each says whether it holds and, when it does not,
 * which requests broke it (time, path, outcome), so a report can show exactly where traffic failed.
 * Suites state expectations as these, never as ad-hoc booleans.
 */
export interface LedgerEntry extends ProbeEntry {
  /** Where the request went, e.g. "external->nodeport@tph-worker2" or "pod@tph-worker->clusterip". */
  path: string;
  /** Where the request left from and where it was served (placement.ts locate; zone-aware suites). */
  client?: Place;
  server?: Place;
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
  const answer = e.servedBy
    ? ` served by ${e.servedBy}, saw ${e.clientIp}`
    : e.body && e.outcome === "ok"
      ? ` "${e.body}"`
      : "";
  return `#${e.seq} ${at} ${e.path} → ${e.outcome}${e.error ? ` (${e.error})` : ""}${answer} in ${e.end - e.start} ms`;
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
  if (e.outcome !== "ok") return undefined;
  return e.clientIp ?? e.body?.replace(/:\d+$/, "");
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

/**
 * Every request was refused, except requests that timed out because the kernel suppressed the ICMP
 * error that would have refused them: Linux sends at most a burst of 6 ICMP errors to one host, then
 * one a second (net.ipv4.icmp_ratelimit), so a client refused several times in a row sees timeouts.
 * `suppressed` is how many ICMP errors the nodes counted as rate-limited meanwhile (Icmp
 * OutRateLimitHost and OutRateLimitGlobal in /proc/net/snmp); timeouts beyond that count, or no refusal
 * at all, still fail: those are blackholes.
 */
export function refusedOrRateLimited(entries: LedgerEntry[], suppressed: number): Verdict {
  const timeouts = entries.filter((e) => e.outcome === "timeout");
  const other = entries.filter((e) => e.outcome !== "refused" && e.outcome !== "timeout");
  const refused = entries.length - timeouts.length - other.length;
  const explained = Math.min(timeouts.length, suppressed);
  const broken = [...other, ...timeouts.slice(explained)];
  if (refused === 0 && entries.length > 0 && broken.length === 0) broken.push(...timeouts);
  const v = verdict("Refused", entries, broken, "were refused");
  if (v.passed && explained > 0)
    v.summary = `Refused: ${refused} of ${entries.length} requests refused; ${explained} timed out while the kernel rate-limited its ICMP errors (${suppressed} suppressed)`;
  return v;
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
  const ok = entries.filter((e) => e.outcome === "ok" && (e.servedBy ?? e.body));
  const counts = new Map<string, number>();
  for (const e of ok) {
    const pod = (e.servedBy ?? e.body) as string;
    counts.set(pod, (counts.get(pod) ?? 0) + 1);
  }
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

/** Failed requests per path and outcome class, e.g. "external->lb: 12 timeout, 3 refused". */
export function failureBreakdown(entries: LedgerEntry[]): string {
  const byPath = new Map<string, Map<string, number>>();
  for (const e of entries) {
    if (e.outcome === "ok") continue;
    const m = byPath.get(e.path) ?? new Map<string, number>();
    m.set(e.outcome, (m.get(e.outcome) ?? 0) + 1);
    byPath.set(e.path, m);
  }
  return [...byPath]
    .map(([path, m]) => `${path}: ${[...m].map(([o, n]) => `${n} ${o}`).join(", ")}`)
    .join("; ");
}

/**
 * The negative control's verdict: some requests failed, and the ledger says where and when. Holds when
 * at least one request failed; a run that should have dropped traffic and did not is a harness that
 * cannot see drops.
 */
export function dropsDetected(entries: LedgerEntry[]): Verdict {
  const name = "DropsDetected";
  const failed = entries.filter((e) => e.outcome !== "ok");
  if (entries.length === 0)
    return { name, passed: false, summary: `${name}: no requests to judge`, evidence: [] };
  if (failed.length === 0)
    return {
      name,
      passed: false,
      summary: `${name}: all ${entries.length} requests succeeded; expected drops`,
      evidence: [],
    };
  const first = failed[0] as LedgerEntry;
  const last = failed[failed.length - 1] as LedgerEntry;
  return {
    name,
    passed: true,
    summary: `${name}: ${failed.length} of ${entries.length} failed between ${clock(first.start)} and ${clock(last.end)} (${failureBreakdown(entries)})`,
    evidence: failed.slice(0, MAX_EVIDENCE),
  };
}

/** The kernel's default nf_conntrack_tcp_timeout_syn_sent: how long an unanswered SYN's entry lives. */
export const CONNTRACK_SYN_SENT_MS = 120_000;

/**
 * The requests that failed on a stale conntrack entry: each reused the source port of an earlier
 * request on the same path whose SYN went unanswered (timeout or unreachable), while that entry still
 * lived (nf_conntrack_tcp_timeout_syn_sent, renewed by every SYN that hits it). Its SYN matches the old
 * entry and follows the old DNAT to an endpoint that is gone, however right the rules are by now:
 * kube-proxy clears the conntrack entries of removed endpoints for UDP only (kubernetes/kubernetes#101607,
 * #104098), so after a node dies such requests fail for up to two minutes. They time out where the old
 * endpoint's address is nobody's, and are refused where another pod holds it by now. Needs `localPort` (the probe records it, failures included);
 * entries without it are never counted.
 */
export function staleConntrackReuse(
  entries: LedgerEntry[],
  lifetimeMs = CONNTRACK_SYN_SENT_MS,
): LedgerEntry[] {
  const unanswered = (e: LedgerEntry) => e.outcome === "timeout" || e.outcome === "unreachable";
  const lastSyn = new Map<string, number>();
  const stale: LedgerEntry[] = [];
  for (const e of [...entries].sort((a, b) => a.start - b.start)) {
    if (e.localPort === undefined) continue;
    const key = `${e.path} ${e.localPort}`;
    const previous = lastSyn.get(key);
    if (e.outcome !== "ok" && previous !== undefined && e.start - previous <= lifetimeMs) stale.push(e);
    // An unanswered SYN leaves (or renews) the entry; an answer, even a reset, replaces it.
    if (unanswered(e)) lastSyn.set(key, e.end);
    else lastSyn.delete(key);
  }
  return stale;
}

/**
 * Traffic is healthy again within `withinMs` of `since` (e.g. a node stop): every request that started
 * after since + withinMs succeeded, and there were such requests. The measured recovery time (end of the
 * last failure after `since`, or 0) is in the summary and in `recoveryMs`.
 *
 * `staleConntrack: "separate"` judges failures that reused the port of an earlier unanswered request
 * (staleConntrackReuse) apart: they neither count as still failing nor extend `recoveryMs`, and the
 * summary reports them (`staleConntrack`, `staleTailMs`). For disruptions that kill endpoints without
 * draining them (a power cut), where they are the dataplane's known behaviour, not a late recovery.
 */
export function recoveredWithin(
  entries: LedgerEntry[],
  since: number,
  withinMs: number,
  options: { staleConntrack?: "fail" | "separate" } = {},
): Verdict & { recoveryMs: number; staleConntrack: LedgerEntry[]; staleTailMs: number } {
  const name = "RecoveredWithin";
  const stale = new Set(
    options.staleConntrack === "separate" ? staleConntrackReuse(entries).filter((e) => e.start >= since) : [],
  );
  const after = entries.filter((e) => e.start >= since && !stale.has(e));
  const failures = after.filter((e) => e.outcome !== "ok");
  const recoveryMs = failures.length ? Math.max(...failures.map((e) => e.end)) - since : 0;
  const staleTailMs = stale.size ? Math.max(...[...stale].map((e) => e.end)) - since : 0;
  const late = after.filter((e) => e.start > since + withinMs);
  const broken = late.filter((e) => e.outcome !== "ok");
  const passed = late.length > 0 && broken.length === 0;
  const staleNote = stale.size
    ? `; ${stale.size} more failed on stale conntrack entries (a source port reused within ${CONNTRACK_SYN_SENT_MS / 1000} s of an unanswered SYN), the last ${(staleTailMs / 1000).toFixed(1)} s after it`
    : "";
  return {
    name,
    passed,
    recoveryMs,
    staleConntrack: [...stale],
    staleTailMs,
    summary:
      late.length === 0
        ? `${name}: no requests later than ${withinMs} ms after the event to judge`
        : `${name}: ${passed ? "healthy" : "still failing"} ${withinMs} ms after the event; last failure ${(recoveryMs / 1000).toFixed(1)} s after it (${failures.length} failed${failures.length ? `: ${failureBreakdown(failures)}` : ""})${staleNote}`,
    evidence: broken.slice(0, MAX_EVIDENCE),
  };
}

/** How a traffic path's probe ended (harness/traffic/stream.ts). */
export interface PathExit {
  path: string;
  exitCode: number | undefined;
  early: boolean;
}

/** Every traffic path's probe ran until it was stopped (a source that died leaves a gap no verdict sees). */
export function ranThroughout(exits: PathExit[]): Verdict {
  const name = "TrafficRanThroughout";
  const bad = exits.filter((e) => e.early || e.exitCode !== 0);
  return {
    name,
    passed: exits.length > 0 && bad.length === 0,
    summary:
      exits.length === 0
        ? `${name}: no traffic paths`
        : bad.length === 0
          ? `${name}: ${exits.length} paths ran until stopped`
          : `${name}: ${bad.map((e) => `${e.path} ended ${e.early ? "early" : ""} (exit ${e.exitCode})`).join(", ")}`,
    evidence: [],
  };
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23);
}

/**
 * A negative control: `v` judged a configuration that must break it, so it has to fail. Passes when it
 * did (the verdict can see the failure it exists for); fails, naming it, when it held anyway.
 */
export function caught(v: Verdict): Verdict {
  const name = `Catches ${v.name}`;
  return v.passed
    ? {
        name,
        passed: false,
        summary: `${name}: ${v.name} held on a configuration that must break it (${v.summary})`,
        evidence: [],
      }
    : {
        name,
        passed: true,
        summary: `${name}: failed as it must: ${v.summary}`,
        evidence: v.evidence.slice(0, 5),
      };
}
