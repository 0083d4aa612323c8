import { describe, expect, it } from "vitest";
import { comparableName, diffExitCode, diffRuns, renderDiff } from "./diff.ts";
import type { Row } from "./verdicts-table.ts";

const row = (test: string, state: Row["state"], reason?: string): Row => ({
  suite: "policy-matrix",
  test,
  state,
  ms: 10,
  ...(reason && { reason }),
});
const cell = (mode: string, name: string) =>
  `policy matrix (kube-proxy ${mode}) › one serving endpoint on E › eTP=Local iTP=Cluster › ${name}`;

describe("diffRuns", () => {
  it("compares proxy modes test by test, and names what B broke (the negative control)", () => {
    const a = [
      row(cell("iptables", "host@N -> loadbalancer: own"), "pass"),
      row(cell("iptables", "pod@N -> clusterip: own"), "pass"),
    ];
    const b = [
      row(
        cell("nftables", "host@N -> loadbalancer: own"),
        "fail",
        "SourceIpPreserved: 2 of 2 requests did not; first: timeout",
      ),
      row(cell("nftables", "pod@N -> clusterip: own"), "pass"),
    ];
    const diffs = diffRuns(a, b);
    expect(diffs).toHaveLength(1);
    expect(diffs[0]).toMatchObject({
      kind: "regression",
      test: comparableName(cell("nftables", "host@N -> loadbalancer: own")),
    });
    expect(diffExitCode(diffs)).toBe(1);
    const text = renderDiff(
      diffs,
      { settings: { kubeProxy: "v1.34.0" }, rows: a },
      { settings: { kubeProxy: "v1.33.5" }, rows: b },
      2,
    );
    expect(text).toMatch(/REGRESSION \(1\):/);
    expect(text).toMatch(/A pass\n\s+B fail: SourceIpPreserved/);
    expect(text).toMatch(/1 of 2 tests differ; 1 pass in A and fail in B \(exit 1\)/);
  });

  it("same behaviour on both sides: no differences, exit 0; a fix or a skip is not a regression", () => {
    const same = [row(cell("iptables", "x"), "pass")];
    expect(diffRuns(same, [row(cell("nftables", "x"), "pass")])).toEqual([]);
    const fixed = diffRuns([row("t", "fail")], [row("t", "pass")]);
    expect(fixed[0]?.kind).toBe("fixed");
    expect(diffExitCode(fixed)).toBe(0);
    expect(diffRuns([row("t", "pass")], [row("t", "skip", "needs 3 nodes")])[0]?.kind).toBe("changed");
    expect(diffRuns([row("t", "pass")], [row("t", "error", "cluster did not come up")])[0]?.kind).toBe(
      "regression",
    );
    expect(renderDiff([], { settings: {}, rows: same }, { settings: {}, rows: same }, 1)).toMatch(
      /no differences: 1 tests/,
    );
  });

  it("lists tests present on one side only", () => {
    const d = diffRuns([row("a", "pass")], [row("b", "pass")]);
    expect(d.map((x) => x.kind)).toEqual(["only in A", "only in B"]);
  });
});
