import type { LedgerEntry, Verdict } from "./verdicts.ts";
import { describeEntry } from "./verdicts.ts";

/**
 * Where traffic starts and ends: the client's node and zone and the serving pod's node and zone, for the
 * trafficDistribution verdicts. Resolved once per test from the Node and Pod objects (Topology), then put
 * on each ledger entry (locate), so a verdict reads "served in zone b from zone a" off the entry itself.
 */
export interface Place {
  node: string;
  /** The node's topology.kubernetes.io/zone label; absent when the node has none. */
  zone?: string;
}

export interface Topology {
  /** Node name → its zone label (undefined: the node has no zone label). */
  zones: Map<string, string | undefined>;
  /** Backend pod name → the node it runs on. */
  pods: Map<string, string>;
}

export type Scope = "node" | "zone" | "any";

/** The place of a node (a node the topology does not know has no zone). */
export function placeOf(topology: Topology, node: string): Place {
  const zone = topology.zones.get(node);
  return zone === undefined ? { node } : { node, zone };
}

/**
 * Puts `client` and `server` on each entry (in place: the ledger keeps the same objects, so its artifact
 * carries them too) and returns the entries. `clientNode` names the node a request left from; the server
 * is the pod agnhost named in its /hostname answer.
 */
export function locate(
  entries: LedgerEntry[],
  topology: Topology,
  clientNode: string | ((e: LedgerEntry) => string | undefined),
): LedgerEntry[] {
  for (const e of entries) {
    const from = typeof clientNode === "string" ? clientNode : clientNode(e);
    if (from) e.client = placeOf(topology, from);
    const pod = servedBy(e);
    const node = pod ? topology.pods.get(pod) : undefined;
    if (node) e.server = placeOf(topology, node);
  }
  return entries;
}

/** The node named in a path such as "pod@tph-worker2->clusterip". */
export function nodeInPath(e: LedgerEntry): string | undefined {
  return /^[^@]+@(.+?)->/.exec(e.path)?.[1];
}

function servedBy(e: LedgerEntry): string | undefined {
  if (e.outcome !== "ok") return undefined;
  return e.servedBy ?? e.body;
}

function within(scope: Scope, client: Place, server: Place): boolean {
  if (scope === "any") return true;
  if (scope === "node") return client.node === server.node;
  return client.zone !== undefined && client.zone === server.zone;
}

const MAX_EVIDENCE = 20;

function judged(name: string, entries: LedgerEntry[], broken: LedgerEntry[], what: string): Verdict {
  if (entries.length === 0)
    return { name, passed: false, summary: `${name}: no requests to judge`, evidence: [] };
  return {
    name,
    passed: broken.length === 0,
    summary:
      broken.length === 0
        ? `${name}: all ${entries.length} requests ${what}`
        : `${name}: ${broken.length} of ${entries.length} requests did not; first: ${describeEntry(broken[0] as LedgerEntry)}${placeText(broken[0] as LedgerEntry)}`,
    evidence: broken.slice(0, MAX_EVIDENCE),
  };
}

function placeText(e: LedgerEntry): string {
  const p = (x?: Place) => (x ? `${x.node} (zone ${x.zone ?? "none"})` : "?");
  return e.server || e.client ? ` [from ${p(e.client)} to ${p(e.server)}]` : "";
}

/**
 * ServedWithin(scope): every request succeeded and was served on the client's own node ("node"), in the
 * client's own zone ("zone": a client on a zoneless node has none, so it never holds there), or anywhere
 * ("any"). Entries must be located first; one without a place breaks it.
 */
export function servedWithin(entries: LedgerEntry[], scope: Scope): Verdict {
  return judged(
    `ServedWithin(${scope})`,
    entries,
    entries.filter((e) => !e.client || !e.server || !within(scope, e.client, e.server)),
    scope === "any" ? "were served" : `were served in the client's own ${scope}`,
  );
}

/**
 * ServedBy(set): every request succeeded and was served by a pod of `pods`, and every pod of the set
 * served at least one (the set is what kube-proxy should pick from, not a bound on it).
 */
export function servedBySet(entries: LedgerEntry[], pods: string[]): Verdict {
  const name = `ServedBy(${pods.join(",")})`;
  const base = judged(
    name,
    entries,
    entries.filter((e) => {
      const pod = servedBy(e);
      return pod === undefined || !pods.includes(pod);
    }),
    `were served by ${pods.join(", ")}`,
  );
  if (!base.passed) return base;
  const seen = new Set(entries.map(servedBy));
  const never = pods.filter((p) => !seen.has(p));
  if (never.length === 0) return base;
  return {
    name,
    passed: false,
    summary: `${name}: all ${entries.length} requests were served inside the set, but never by ${never.join(", ")}`,
    evidence: [],
  };
}

/** Requests counted by client zone (rows) and serving zone (columns); failures in a column of their own. */
export interface ZoneMatrix {
  clientZones: string[];
  serverZones: string[];
  counts: Record<string, Record<string, number>>;
}

export const NO_ZONE = "(none)";
export const FAILED = "(failed)";

export function zoneMatrix(entries: LedgerEntry[]): ZoneMatrix {
  const counts: Record<string, Record<string, number>> = {};
  const clientZones = new Set<string>();
  const serverZones = new Set<string>();
  for (const e of entries) {
    if (!e.client) continue;
    const row = e.client.zone ?? NO_ZONE;
    const col = e.outcome !== "ok" ? FAILED : e.server ? (e.server.zone ?? NO_ZONE) : undefined;
    if (col === undefined) continue;
    clientZones.add(row);
    serverZones.add(col);
    const r = counts[row] ?? {};
    counts[row] = r;
    r[col] = (r[col] ?? 0) + 1;
  }
  const order = (a: string, b: string) =>
    a.startsWith("(") === b.startsWith("(") ? a.localeCompare(b) : a.startsWith("(") ? 1 : -1;
  return {
    clientZones: [...clientZones].sort(order),
    serverZones: [...serverZones].sort(order),
    counts,
  };
}

/** The matrix as a text grid: one row per client zone, one column per serving zone. */
export function renderZoneMatrix(m: ZoneMatrix, title: string): string {
  const head = ["client zone \\ served in", ...m.serverZones];
  const rows = m.clientZones.map((c) => [c, ...m.serverZones.map((s) => String(m.counts[c]?.[s] ?? 0))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] as number))
      .join("  ")
      .trimEnd();
  return [title, line(head), ...rows.map(line)].join("\n");
}

/** One endpoint of a Service's EndpointSlices, with the hints the EndpointSlice controller wrote. */
export interface HintedEndpoint {
  pod: string;
  node?: string;
  zone?: string;
  ready: boolean;
  forZones: string[];
  forNodes: string[];
}

/**
 * What the EndpointSlice controller must write (k8s.io/endpointslice trafficdist): "zone" — each Ready
 * endpoint hinted for its own zone, or no hint when its node has no zone; "node+zone" — also for its own
 * node (PreferSameNode); "none" — no hints at all (field unset or removed).
 */
export type HintExpectation = "zone" | "node+zone" | "none";

export function hintsWritten(endpoints: HintedEndpoint[], want: HintExpectation): Verdict {
  const name = `Hints(${want})`;
  if (endpoints.length === 0)
    return { name, passed: false, summary: `${name}: no endpoints to judge`, evidence: [] };
  const wrong: string[] = [];
  for (const ep of endpoints) {
    const zones = want === "none" || !ep.ready || !ep.zone ? [] : [ep.zone];
    const nodes = want === "node+zone" && ep.ready && ep.node ? [ep.node] : [];
    if (ep.forZones.join() !== zones.join() || ep.forNodes.join() !== nodes.join())
      wrong.push(
        `${ep.pod} on ${ep.node ?? "?"} (zone ${ep.zone ?? "none"}): forZones [${ep.forZones.join(",")}] forNodes [${ep.forNodes.join(",")}], want [${zones.join(",")}] [${nodes.join(",")}]`,
      );
  }
  const all = endpoints.map((ep) => `${ep.pod}→[${[...ep.forZones, ...ep.forNodes].join(",")}]`).join(" ");
  return {
    name,
    passed: wrong.length === 0,
    summary: wrong.length === 0 ? `${name}: ${all}` : `${name}: ${wrong.join("; ")}`,
    evidence: [],
  };
}

/** A zone's share of a Service's endpoints under topology-mode Auto: at least `min`, at most `max`. */
export interface ZoneAllocation {
  min: number;
  max: number;
}

/**
 * What the EndpointSlice controller's topology cache allows under `service.kubernetes.io/topology-mode:
 * Auto` (k8s.io/endpointslice topologycache getAllocations): each zone's share of `endpoints` follows its
 * share of allocatable CPU, and no zone may get less than its share divided by 1.2 (the overload
 * threshold). `cpuByZone` counts Ready, non-control-plane nodes only; a zoneless one among them disables
 * hints outright, and so do fewer than two zones, fewer endpoints than zones, or minimums that do not fit.
 * Returns the bounds per zone, or the controller's reason for writing no hints.
 */
export function autoAllocations(
  cpuByZone: Map<string | undefined, number>,
  endpoints: number,
): { zones: Map<string, ZoneAllocation> } | { disabled: string } {
  if (cpuByZone.has(undefined) || [...cpuByZone.values()].some((c) => c <= 0))
    return { disabled: "Insufficient Node information" };
  if (cpuByZone.size < 2) return { disabled: "Nodes only ready in one zone" };
  if (cpuByZone.size > endpoints)
    return { disabled: `Insufficient number of endpoints (${endpoints} endpoints, ${cpuByZone.size} zones)` };
  const total = [...cpuByZone.values()].reduce((a, b) => a + b, 0);
  const mins = new Map<string, number>();
  for (const [zone, cpu] of cpuByZone) mins.set(zone as string, Math.ceil(((cpu / total) * endpoints) / 1.2));
  const minTotal = [...mins.values()].reduce((a, b) => a + b, 0);
  if (minTotal > endpoints)
    return {
      disabled: `Unable to allocate minimum required endpoints to each zone without exceeding overload threshold (${endpoints} endpoints, ${cpuByZone.size} zones)`,
    };
  return { zones: new Map([...mins].map(([z, min]) => [z, { min, max: min + endpoints - minTotal }])) };
}

/**
 * Hints(Auto): every Ready endpoint carries exactly one zone hint, and the number hinted for each zone
 * lies within its allocation: endpoints are donated from zones that have more than their share to
 * zones that have less (a 3/3/1 placement over three equal zones ends 2/3/2 or so, never 3/3/1).
 */
export function autoHintsWithin(
  endpoints: HintedEndpoint[],
  allocations: Map<string, ZoneAllocation>,
): Verdict {
  const name = "Hints(Auto)";
  const ready = endpoints.filter((e) => e.ready);
  if (ready.length === 0)
    return { name, passed: false, summary: `${name}: no ready endpoints to judge`, evidence: [] };
  const counts = new Map<string, number>();
  const wrong: string[] = [];
  for (const e of ready) {
    if (e.forZones.length !== 1) wrong.push(`${e.pod} has ${e.forZones.length} zone hints`);
    for (const z of e.forZones) counts.set(z, (counts.get(z) ?? 0) + 1);
  }
  for (const [zone, a] of allocations) {
    const n = counts.get(zone) ?? 0;
    if (n < a.min || n > a.max) wrong.push(`${zone}: ${n} hinted, allowed ${a.min}–${a.max}`);
  }
  for (const zone of counts.keys()) if (!allocations.has(zone)) wrong.push(`${zone}: hinted, but not a zone`);
  const text = [...counts].map(([z, n]) => `${z} ${n}`).join(", ");
  return {
    name,
    passed: wrong.length === 0,
    summary:
      wrong.length === 0
        ? `${name}: ${text}, each within its allocation`
        : `${name}: ${wrong.join("; ")} (${text})`,
    evidence: [],
  };
}
