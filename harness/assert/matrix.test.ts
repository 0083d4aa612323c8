import { describe, expect, it } from "vitest";
import { matrixCells, POLICY_PAIRS } from "../../manifests/policy-matrix.ts";
import { renderMatrix } from "../report/matrix.ts";
import { type CellAddresses, cellVerdict, seenOutcome } from "./matrix.ts";
import { type LedgerEntry, refusedOrRateLimited } from "./verdicts.ts";

/** Recorded shapes of policy-matrix requests (node E 10.250.7.11 / 10.244.1.1, N 10.250.7.12 / 10.244.2.1). */
const addrs: CellAddresses = {
  own: "10.244.2.7",
  E: ["10.250.7.11", "10.244.1.1"],
  N: ["10.250.7.12", "10.244.2.1"],
  announcer: ["10.250.7.11", "10.244.1.1"],
};
const t = 1795455878965;
const req = (seq: number, outcome: LedgerEntry["outcome"], seen?: string): LedgerEntry => ({
  seq,
  start: t + seq * 10,
  end: t + seq * 10 + (outcome === "timeout" ? 1000 : 2),
  path: "pod@N->loadbalancer(mx-lc)",
  outcome,
  ...(seen && { status: 200, body: `${seen}:40000` }),
});

describe("cellVerdict", () => {
  it("own: passes on the source's address, fails (negative control) on a NATed one", () => {
    expect(cellVerdict([req(0, "ok", "10.244.2.7"), req(1, "ok", "10.244.2.7")], "own", addrs).passed).toBe(
      true,
    );
    const v = cellVerdict([req(0, "ok", "10.244.2.7"), req(1, "ok", "10.250.7.12")], "own", addrs);
    expect(v.passed).toBe(false);
    expect(v.evidence.map((e) => e.seq)).toEqual([1]);
  });

  it("snat:E accepts E's IP or pod gateway only; a request NATed on N fails it", () => {
    expect(
      cellVerdict([req(0, "ok", "10.244.1.1"), req(1, "ok", "10.250.7.11")], "snat:E", addrs).passed,
    ).toBe(true);
    expect(cellVerdict([req(0, "ok", "10.250.7.12")], "snat:E", addrs).passed).toBe(false);
    expect(cellVerdict([req(0, "timeout")], "snat:N", addrs).passed).toBe(false);
  });

  it("dropped is a timeout: a refusal is not a blackhole, and an answer fails it", () => {
    expect(cellVerdict([req(0, "timeout"), req(1, "timeout")], "dropped", addrs).passed).toBe(true);
    expect(cellVerdict([req(0, "timeout"), req(1, "refused")], "dropped", addrs).passed).toBe(false);
    expect(cellVerdict([req(0, "ok", "10.244.2.7")], "dropped", addrs).passed).toBe(false);
  });

  it("a cell with no requests proves nothing and fails", () => {
    expect(cellVerdict([], "own", addrs).passed).toBe(false);
    expect(cellVerdict([], "dropped", addrs).passed).toBe(false);
  });
});

describe("refusedOrRateLimited", () => {
  it("accepts a timeout only as far as the nodes counted suppressed ICMP errors", () => {
    const entries = [req(0, "timeout"), req(1, "refused")];
    expect(refusedOrRateLimited(entries, 1).passed).toBe(true);
    expect(refusedOrRateLimited(entries, 1).summary).toMatch(/1 timed out while the kernel rate-limited/);
    // Negative control: the same timeout with nothing suppressed is a blackhole.
    expect(refusedOrRateLimited(entries, 0).passed).toBe(false);
  });

  it("fails when nothing was refused at all, whatever was suppressed", () => {
    expect(refusedOrRateLimited([req(0, "timeout"), req(1, "timeout")], 5).passed).toBe(false);
    expect(refusedOrRateLimited([req(0, "ok", "10.244.2.7")], 5).passed).toBe(false);
  });
});

describe("seenOutcome", () => {
  it("names what requests showed in the matrix's words", () => {
    expect(seenOutcome([req(0, "ok", "10.244.2.7")], addrs)).toBe("own");
    expect(seenOutcome([req(0, "ok", "10.244.1.1")], addrs)).toBe("snat:E");
    expect(seenOutcome([req(0, "timeout"), req(1, "refused")], addrs)).toBe("dropped|refused");
    expect(seenOutcome([req(0, "ok", "192.168.9.9")], addrs)).toBe("ip:192.168.9.9");
  });
});

describe("the policy matrix as data", () => {
  it("has every cell but the unreachable ones, and the proxy modes differ only where marked", () => {
    const ipt = matrixCells("iptables", "serving", "v1.37.2");
    const nft = matrixCells("nftables", "serving", "v1.37.2");
    // 6 sources x 5 entry points per pair, less the external client's ClusterIP.
    expect(ipt).toHaveLength(POLICY_PAIRS.length * 29);
    const differ = ipt.filter((c, i) => c.expected !== nft[i]?.expected);
    expect(differ.map((c) => `${c.source} -> ${c.entry}`)).toEqual([
      "hairpin -> nodeport@N",
      "hairpin -> nodeport@N",
    ]);
    expect(differ.every((c) => c.differs)).toBe(true);
    // Before v1.36 nftables masqueraded remote hairpin traffic as iptables does.
    const old = matrixCells("nftables", "serving", "v1.35.4");
    expect(old.filter((c, i) => c.expected !== ipt[i]?.expected)).toEqual([]);
  });

  it("expects the blackhole where a Local policy meets a node without an endpoint", () => {
    const cells = matrixCells("iptables", "serving", "v1.37.2");
    const dropped = cells
      .filter((c) => c.expected === "dropped")
      .map(
        (c) => `${c.pair.externalTrafficPolicy}/${c.pair.internalTrafficPolicy} ${c.source} -> ${c.entry}`,
      );
    expect(dropped).toContain("Local/Cluster external -> nodeport@N");
    expect(dropped).toContain("Cluster/Local pod@N -> clusterip");
    expect(dropped.filter((d) => d.startsWith("Cluster/Cluster"))).toEqual([]);
  });

  it("node states of E: the external client through E; only the exclude label moves MetalLB's announcement", () => {
    const at = (state: Parameters<typeof matrixCells>[1]) =>
      matrixCells("nftables", state, "v1.37.2").map(
        (c) =>
          `${c.pair.externalTrafficPolicy}/${c.pair.internalTrafficPolicy} ${c.source} -> ${c.entry}: ${c.expected}`,
      );
    const serving = at("serving").filter((c) => / external -> (nodeport@E|loadbalancer):/.test(c));
    expect(at("E cordoned")).toEqual(serving);
    expect(at("E tainted ToBeDeletedByClusterAutoscaler")).toEqual(serving);
    const excluded = at("E excluded from load balancers");
    expect(excluded.filter((c) => !serving.includes(c))).toEqual([
      "Local/Cluster external -> loadbalancer: nowhere",
      "Local/Local external -> loadbalancer: nowhere",
    ]);
    expect(excluded).toContain("Cluster/Cluster external -> loadbalancer: snat:ann");
  });

  it("E NotReady: every source as with no endpoints, the endpoint pod itself refused like a pod on E", () => {
    for (const mode of ["iptables", "nftables"] as const) {
      const at = (state: Parameters<typeof matrixCells>[1]) =>
        matrixCells(mode, state, "v1.37.2").map(
          (c) =>
            `${c.pair.externalTrafficPolicy}/${c.pair.internalTrafficPolicy} ${c.source} -> ${c.entry}: ${c.expected}`,
        );
      const notReady = at("E NotReady (kubelet stopped)");
      const hairpin = notReady.filter((c) => c.includes(" hairpin -> "));
      expect(notReady.filter((c) => !c.includes(" hairpin -> "))).toEqual(at("none"));
      expect(hairpin).toHaveLength(POLICY_PAIRS.length * 5);
      expect(hairpin.every((c) => c.endsWith(": refused"))).toBe(true);
      expect(notReady.filter((c) => / external -> loadbalancer:/.test(c))).toEqual(
        POLICY_PAIRS.map(
          (p) => `${p.externalTrafficPolicy}/${p.internalTrafficPolicy} external -> loadbalancer: nowhere`,
        ),
      );
    }
  });

  it("UDP from a fixed port: the chosen cells, as TCP while serving; with no endpoint an unmasqueraded NodePort flow keeps its stale entry", () => {
    const udp = (state: "serving" | "none") =>
      matrixCells("iptables", state, "v1.37.2", "udp")
        .filter(
          (c) => c.pair.externalTrafficPolicy === "Cluster" && c.pair.internalTrafficPolicy === "Cluster",
        )
        .map((c) => `${c.source} -> ${c.entry} ${c.protocol}: ${c.expected}`);
    expect(udp("serving")).toEqual([
      "external -> nodeport@E udp: snat:E",
      "external -> loadbalancer udp: snat:ann",
      "pod@N -> clusterip udp: own",
      "host@N -> clusterip udp: own",
    ]);
    expect(udp("none")).toEqual([
      "external -> nodeport@E udp: refused",
      "external -> loadbalancer udp: nowhere",
      "pod@N -> clusterip udp: refused",
      "host@N -> clusterip udp: refused",
    ]);
    // Under eTP=Local nothing masqueraded the flow: its stale entry stays and leads to the dead pod.
    expect(
      matrixCells("nftables", "none", "v1.37.2", "udp")
        .filter((c) => c.pair.externalTrafficPolicy === "Local" && c.entry === "nodeport@E")
        .map((c) => c.expected),
    ).toEqual(["nowhere", "nowhere"]);
    expect(matrixCells("iptables", "E cordoned", "v1.37.2", "udp")).toEqual([]);
  });

  it("renders a grid with expected against seen", () => {
    const [a, b] = matrixCells("iptables", "serving", "v1.37.2");
    if (!a || !b) throw new Error("no cells");
    const text = renderMatrix(
      [
        { ...a, seen: a.expected, passed: true },
        { ...b, seen: "dropped", passed: false },
      ],
      "t",
    );
    expect(text).toMatch(/one serving endpoint on E, eTP=Cluster iTP=Cluster:/);
    expect(text).toMatch(/external\s+-\s+ok snat:E\s+FAIL snat:N≠dropped/);
    expect(text).toMatch(/1 of 2 cells as expected/);
  });
});
