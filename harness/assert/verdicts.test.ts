import { describe, expect, it } from "vitest";
import {
  blackholed,
  dropsDetected,
  healthCheckMatchesEndpoints,
  type LedgerEntry,
  loadSkewWithin,
  noDrops,
  ranThroughout,
  recoveredWithin,
  sourceIpPreserved,
  sourceIpSnat,
  staleConntrackReuse,
  windows,
} from "./verdicts.ts";

/**
 * Every verdict against recorded ledgers: one that must pass and, as its negative control, one that must
 * fail and name the request that broke it. Entries are as the probe wrote them on a local cluster
 * (external client 10.250.0.200, nodes 10.250.0.11 and .12).
 */
const CLIENT = "10.250.0.200";
const t = 1795455878965;
const entry = (
  seq: number,
  path: string,
  outcome: LedgerEntry["outcome"],
  body?: string,
  ms = 3,
): LedgerEntry => ({
  seq,
  start: t + seq * 100,
  end: t + seq * 100 + ms,
  path,
  outcome,
  ...(outcome === "ok" ? { status: 200 } : { error: outcome === "timeout" ? "ETIMEDOUT" : "ECONNREFUSED" }),
  ...(body !== undefined && { body }),
});

// eTP=Local via the node with the endpoint: the client's own address.
const localServed = [0, 1, 2].map((i) =>
  entry(i, "external->nodeport@tph-worker", "ok", `${CLIENT}:4${i}123`),
);
// eTP=Local via the node without one: dropped. The blackhole the harness exists to catch.
const localBlackhole = [0, 1, 2].map((i) =>
  entry(i, "external->nodeport@tph-worker2", "timeout", undefined, 1500),
);
// eTP=Cluster forwarded from the other node: SNATed to that node's address.
const clusterForwarded = [0, 1, 2].map((i) =>
  entry(i, "external->nodeport@tph-worker2", "ok", `10.250.0.12:5${i}210`),
);
// No endpoints at all: refused at once.
const noEndpoints = [0, 1, 2].map((i) => entry(i, "external->nodeport@tph-worker", "refused", undefined, 1));

describe("noDrops", () => {
  it("holds when every request succeeded", () => expect(noDrops(localServed).passed).toBe(true));
  it("negative control: one dropped request fails it and is named", () => {
    const ledger = [...localServed, entry(3, "external->lb", "timeout", undefined, 1500), ...localServed];
    const v = noDrops(ledger);
    expect(v.passed).toBe(false);
    expect(v.evidence.map((e) => e.seq)).toEqual([3]);
    expect(v.summary).toMatch(
      /1 of 7 requests did not; first: #3 \S+ external->lb → timeout \(ETIMEDOUT\) in 1500 ms/,
    );
  });
  it("no traffic is not a pass", () => expect(noDrops([]).passed).toBe(false));
});

describe("sourceIpPreserved", () => {
  it("holds for eTP=Local served locally", () =>
    expect(sourceIpPreserved(localServed, CLIENT).passed).toBe(true));
  it("negative control: a SNATed path fails it", () => {
    const v = sourceIpPreserved(clusterForwarded, CLIENT);
    expect(v.passed).toBe(false);
    expect(v.evidence).toHaveLength(3);
  });
  it("negative control: the blackhole fails it too (nothing was seen)", () => {
    expect(sourceIpPreserved(localBlackhole, CLIENT).passed).toBe(false);
  });
});

describe("sourceIpSnat", () => {
  it("holds for eTP=Cluster forwarded, to the forwarding node's address", () => {
    expect(sourceIpSnat(clusterForwarded, CLIENT, ["10.250.0.11", "10.250.0.12"]).passed).toBe(true);
  });
  it("negative control: a preserved client IP fails it", () => {
    expect(sourceIpSnat(localServed, CLIENT).passed).toBe(false);
  });
  it("negative control: a NAT to an address outside the allowed set fails it", () => {
    expect(sourceIpSnat(clusterForwarded, CLIENT, ["10.250.0.11"]).passed).toBe(false);
  });
});

describe("blackholed", () => {
  it("tells DROP (timeout) from REJECT (refused)", () => {
    expect(blackholed(localBlackhole, "timeout").passed).toBe(true);
    expect(blackholed(noEndpoints, "refused").passed).toBe(true);
  });
  it("an unannounced LoadBalancer IP: the first request times out on ARP, the next fail at once", () => {
    const unannounced = [
      entry(0, "external->lb", "timeout", undefined, 1500),
      { ...entry(1, "external->lb", "refused"), outcome: "unreachable" as const, error: "EHOSTUNREACH" },
    ];
    expect(blackholed(unannounced, "nowhere").passed).toBe(true);
    expect(blackholed(unannounced, "timeout").passed).toBe(false);
    expect(blackholed([...unannounced, ...noEndpoints], "nowhere").passed).toBe(false);
  });
  it("negative control: refused is not dropped, dropped is not refused, served is neither", () => {
    expect(blackholed(noEndpoints, "timeout").passed).toBe(false);
    expect(blackholed(localBlackhole, "refused").passed).toBe(false);
    expect(blackholed(localServed, "timeout").passed).toBe(false);
  });
});

describe("healthCheckMatchesEndpoints", () => {
  const agree = [
    { at: t, node: "tph-worker", status: 200, localEndpoints: 2, readyEndpoints: 2 },
    { at: t, node: "tph-worker2", status: 503, localEndpoints: 0, readyEndpoints: 0 },
  ];
  it("holds when kube-proxy agrees with the EndpointSlices", () =>
    expect(healthCheckMatchesEndpoints(agree).passed).toBe(true));
  it("negative control: a node answering 200 without a ready endpoint fails it and is named", () => {
    const v = healthCheckMatchesEndpoints([
      ...agree,
      { at: t + 5, node: "tph-worker2", status: 200, localEndpoints: 1, readyEndpoints: 0 },
    ]);
    expect(v.passed).toBe(false);
    expect(v.evidence[0]?.path).toBe("healthcheck@tph-worker2");
  });
  it("negative control: terminating-only endpoints must answer 503 even while serving", () => {
    const v = healthCheckMatchesEndpoints([
      { at: t, node: "tph-worker", status: 200, localEndpoints: 0, readyEndpoints: 0 },
    ]);
    expect(v.passed).toBe(false);
  });
});

describe("loadSkewWithin", () => {
  const hostnames = (counts: Record<string, number>) =>
    Object.entries(counts).flatMap(([pod, n]) =>
      Array.from({ length: n }, (_, i) => entry(i, "external->lb", "ok", pod)),
    );
  it("holds for an even spread", () => {
    expect(loadSkewWithin(hostnames({ a: 50, b: 50 }), { a: 0.5, b: 0.5 }, 0.1).passed).toBe(true);
  });
  it("negative control: 3/1 placement behind eTP=Local skews per node, not per pod", () => {
    const v = loadSkewWithin(
      hostnames({ a: 17, b: 17, c: 16, d: 50 }),
      { a: 0.25, b: 0.25, c: 0.25, d: 0.25 },
      0.1,
    );
    expect(v.passed).toBe(false);
    expect(v.summary).toMatch(/d 50%/);
  });
});

describe("windows", () => {
  it("splits a ledger around an action", () => {
    const ledger = [0, 1, 2, 3, 4].map((i) => entry(i, "x", "ok"));
    const w = windows(ledger, { start: t + 150, end: t + 250 });
    expect(w.before.map((e) => e.seq)).toEqual([0, 1]);
    expect(w.during.map((e) => e.seq)).toEqual([2]);
    expect(w.after.map((e) => e.seq)).toEqual([3, 4]);
  });
});

describe("disruption verdicts", () => {
  // A rollout seen from outside: fine, two refusals at seq 3-4 (an endpoint gone before kube-proxy knew), fine.
  const rollout = [0, 1, 2, 3, 4, 5, 6, 7].map((i) =>
    entry(i, "external->lb", i === 3 || i === 4 ? "refused" : "ok", "web-1"),
  );
  const clean = rollout.map((e) => ({ ...e, outcome: "ok" as const, error: undefined }));

  it("DropsDetected holds when requests failed and locates them; fails on a clean ledger", () => {
    const v = dropsDetected(rollout);
    expect(v.passed).toBe(true);
    expect(v.summary).toContain("2 of 8 failed");
    expect(v.summary).toContain("external->lb: 2 refused");
    expect(v.evidence.map((e) => e.seq)).toEqual([3, 4]);
    expect(dropsDetected(clean).passed).toBe(false);
    expect(dropsDetected([]).passed).toBe(false);
  });

  it("RecoveredWithin measures the time to the last failure after the event", () => {
    const since = t + 250;
    const v = recoveredWithin(rollout, since, 300);
    expect(v.passed).toBe(true);
    expect(v.recoveryMs).toBe(t + 403 - since);
    const tooStrict = recoveredWithin(rollout, since, 100);
    expect(tooStrict.passed).toBe(false);
    expect(tooStrict.evidence.map((e) => e.seq)).toEqual([4]);
    // Nothing after the window: nothing shows recovery.
    expect(recoveredWithin(rollout, since, 10_000).passed).toBe(false);
  });

  // A node power cut as the probe saw it: requests to the dead endpoint time out until the endpoint is
  // removed (seq 1, 2); 5 s later one request reuses seq 1's source port and follows its stale entry.
  const port = (e: LedgerEntry, localPort: number): LedgerEntry => ({ ...e, localPort });
  const cut = "external->lb";
  const powerCut = [
    port(entry(0, cut, "ok"), 40_000),
    port(entry(1, cut, "timeout", undefined, 1_000), 40_001),
    port(entry(2, cut, "timeout", undefined, 1_000), 40_002),
    port(entry(30, cut, "ok"), 40_003),
    port(entry(50, cut, "timeout", undefined, 1_000), 40_001),
    port(entry(70, cut, "ok"), 40_004),
  ];

  it("StaleConntrackReuse: a failure on the port of an earlier unanswered SYN, and nothing else", () => {
    expect(staleConntrackReuse(powerCut).map((e) => e.seq)).toEqual([50]);
    // Negative controls: an answered connection in between replaced the entry; the entry had expired;
    // another path has other entries; no recorded port, no claim.
    const answeredBetween = [...powerCut, port(entry(40, cut, "ok"), 40_001)];
    expect(staleConntrackReuse(answeredBetween)).toEqual([]);
    expect(staleConntrackReuse(powerCut, 3_000)).toEqual([]);
    const otherPath = powerCut.map((e) => (e.seq === 50 ? { ...e, path: "pod@a->clusterip" } : e));
    expect(staleConntrackReuse(otherPath)).toEqual([]);
    expect(staleConntrackReuse(powerCut.map(({ localPort: _, ...e }) => e))).toEqual([]);
  });

  it("StaleConntrackReuse: a reuse refused by the pod that holds the old endpoint's address now counts; a refusal ends the entry", () => {
    // The stopped pod's address belongs to another pod once the node is back: seq 50's stale DNAT meets
    // a pod that does not listen there (seen once in node-stop-traffic: one refused 19 s after the restart).
    const refused = powerCut.map((e) => (e.seq === 50 ? { ...e, outcome: "refused" as const } : e));
    expect(staleConntrackReuse(refused).map((e) => e.seq)).toEqual([50]);
    // A reset answered the SYN: the entry it hit is gone, so a later failure on that port is not stale.
    const after = [...refused, port(entry(60, cut, "timeout", undefined, 1_000), 40_001)];
    expect(staleConntrackReuse(after).map((e) => e.seq)).toEqual([50]);
  });

  it("RecoveredWithin judges stale-conntrack failures apart only when asked, and still fails on others", () => {
    const strict = recoveredWithin(powerCut, t, 3_000);
    expect(strict.passed).toBe(false);
    expect(strict.evidence.map((e) => e.seq)).toEqual([50]);
    const separate = recoveredWithin(powerCut, t, 3_000, { staleConntrack: "separate" });
    expect(separate.passed).toBe(true);
    expect(separate.recoveryMs).toBe(200 + 1_000);
    expect(separate.staleConntrack.map((e) => e.seq)).toEqual([50]);
    expect(separate.staleTailMs).toBe(5_000 + 1_000);
    expect(separate.summary).toContain("1 more failed on stale conntrack entries");
    // Negative control: a late failure on a fresh port is a real one.
    const fresh = [...powerCut, port(entry(60, cut, "timeout", undefined, 1_000), 40_009)];
    const v = recoveredWithin(fresh, t, 3_000, { staleConntrack: "separate" });
    expect(v.passed).toBe(false);
    expect(v.evidence.map((e) => e.seq)).toEqual([60]);
  });

  it("TrafficRanThroughout fails when a path ended early or badly", () => {
    expect(ranThroughout([{ path: "a", exitCode: 0, early: false }]).passed).toBe(true);
    expect(ranThroughout([{ path: "a", exitCode: 137, early: true }]).summary).toContain(
      "a ended early (exit 137)",
    );
    expect(ranThroughout([{ path: "a", exitCode: 1, early: false }]).passed).toBe(false);
    expect(ranThroughout([]).passed).toBe(false);
  });
});
