import { describe, expect, it } from "vitest";
import {
  autoAllocations,
  autoHintsWithin,
  hintsWritten,
  locate,
  nodeInPath,
  renderZoneMatrix,
  servedBySet,
  servedWithin,
  type Topology,
  zoneMatrix,
} from "./placement.ts";
import type { LedgerEntry } from "./verdicts.ts";

const topology: Topology = {
  zones: new Map([
    ["a1", "a"],
    ["a2", "a"],
    ["b1", "b"],
    ["n0", undefined],
  ]),
  pods: new Map([
    ["s-a1", "a1"],
    ["s-b1", "b1"],
    ["s-n0", "n0"],
  ]),
};

let seq = 0;
function entry(path: string, servedBy?: string, outcome: LedgerEntry["outcome"] = "ok"): LedgerEntry {
  seq++;
  return { seq, start: seq, end: seq + 1, outcome, path, ...(servedBy && { servedBy }) };
}

describe("locate", () => {
  it("puts the client's and the server's node and zone on each entry, from the path or a given node", () => {
    const es = locate(
      [entry("pod@a2->clusterip", "s-b1"), entry("pod@n0->clusterip", "s-a1")],
      topology,
      nodeInPath,
    );
    expect(es[0]?.client).toEqual({ node: "a2", zone: "a" });
    expect(es[0]?.server).toEqual({ node: "b1", zone: "b" });
    expect(es[1]?.client).toEqual({ node: "n0" });
    const [external] = locate([entry("external->nodeport@a2", "s-n0")], topology, "a2");
    expect(external?.server).toEqual({ node: "n0" });
  });
  it("reads node names with dashes out of a path", () => {
    expect(nodeInPath(entry("pod@td-worker2->clusterip(td-zone)"))).toBe("td-worker2");
    expect(nodeInPath(entry("external->lb"))).toBeUndefined();
  });
});

describe("servedWithin", () => {
  it("holds when every request stayed in the client's zone, and names the one that left it", () => {
    const inZone = locate([entry("pod@a1->c", "s-a1"), entry("pod@a2->c", "s-a1")], topology, nodeInPath);
    expect(servedWithin(inZone, "zone").passed).toBe(true);
    expect(servedWithin(inZone, "node").passed).toBe(false);
    const crossed = locate([entry("pod@a1->c", "s-a1"), entry("pod@a2->c", "s-b1")], topology, nodeInPath);
    const v = servedWithin(crossed, "zone");
    expect(v.passed).toBe(false);
    expect(v.summary).toContain("1 of 2");
    expect(v.summary).toContain("to b1 (zone b)");
    expect(v.evidence).toHaveLength(1);
  });
  it("never holds for a zoneless client, a failed request, or no requests", () => {
    expect(servedWithin(locate([entry("pod@n0->c", "s-n0")], topology, nodeInPath), "zone").passed).toBe(
      false,
    );
    expect(
      servedWithin(locate([entry("pod@a1->c", undefined, "timeout")], topology, nodeInPath), "any").passed,
    ).toBe(false);
    expect(servedWithin([], "any").summary).toContain("no requests");
  });
});

describe("servedBySet", () => {
  it("needs every request inside the set and every pod of the set seen", () => {
    expect(servedBySet([entry("p", "s-a1"), entry("p", "s-b1")], ["s-a1", "s-b1"]).passed).toBe(true);
    const outside = servedBySet([entry("p", "s-a1"), entry("p", "s-n0")], ["s-a1"]);
    expect(outside.passed).toBe(false);
    expect(outside.evidence).toHaveLength(1);
    const partial = servedBySet([entry("p", "s-a1"), entry("p", "s-a1")], ["s-a1", "s-b1"]);
    expect(partial.passed).toBe(false);
    expect(partial.summary).toContain("never by s-b1");
    expect(servedBySet([entry("p", undefined, "refused")], ["s-a1"]).passed).toBe(false);
  });
});

describe("zoneMatrix", () => {
  it("counts requests by client zone and serving zone, failures apart", () => {
    const es = locate(
      [
        entry("pod@a1->c", "s-a1"),
        entry("pod@a2->c", "s-b1"),
        entry("pod@a2->c", undefined, "timeout"),
        entry("pod@n0->c", "s-n0"),
      ],
      topology,
      nodeInPath,
    );
    const m = zoneMatrix(es);
    expect(m.clientZones).toEqual(["a", "(none)"]);
    expect(m.serverZones).toEqual(["a", "b", "(failed)", "(none)"]);
    expect(m.counts).toEqual({ a: { a: 1, b: 1, "(failed)": 1 }, "(none)": { "(none)": 1 } });
    const text = renderZoneMatrix(m, "t").split("\n");
    expect(text[2]).toMatch(/^a\s+1\s+1\s+1\s+0$/);
  });
});

describe("hintsWritten", () => {
  const ep = (
    pod: string,
    node: string,
    zone: string | undefined,
    forZones: string[],
    forNodes: string[] = [],
  ) => ({
    pod,
    node,
    ...(zone && { zone }),
    ready: true,
    forZones,
    forNodes,
  });
  it("wants each ready endpoint hinted for its own zone, none for a zoneless one", () => {
    expect(hintsWritten([ep("s-a1", "a1", "a", ["a"]), ep("s-n0", "n0", undefined, [])], "zone").passed).toBe(
      true,
    );
    const v = hintsWritten([ep("s-a1", "a1", "a", [])], "zone");
    expect(v.passed).toBe(false);
    expect(v.summary).toContain("want [a]");
  });
  it("wants node hints too for PreferSameNode, and nothing when the field is unset", () => {
    expect(hintsWritten([ep("s-a1", "a1", "a", ["a"], ["a1"])], "node+zone").passed).toBe(true);
    expect(hintsWritten([ep("s-a1", "a1", "a", ["a"])], "node+zone").passed).toBe(false);
    expect(hintsWritten([ep("s-a1", "a1", "a", [])], "none").passed).toBe(true);
    expect(hintsWritten([ep("s-a1", "a1", "a", ["a"])], "none").passed).toBe(false);
    expect(hintsWritten([], "none").passed).toBe(false);
  });
});

describe("autoAllocations", () => {
  const equal = new Map([
    ["a", 16],
    ["b", 16],
    ["c", 16],
  ]);
  it("matches upstream's arithmetic for three equal zones", () => {
    // From the research: N=2 too few; N=4,5,8 minimums exceed; N=3,6,7,9 hinted.
    const hinted = (n: number) => "zones" in autoAllocations(equal, n);
    expect([2, 3, 4, 5, 6, 7, 8, 9].filter(hinted)).toEqual([3, 6, 7, 9]);
    expect(autoAllocations(equal, 2)).toEqual({
      disabled: "Insufficient number of endpoints (2 endpoints, 3 zones)",
    });
    expect(autoAllocations(equal, 4)).toMatchObject({
      disabled: expect.stringContaining("overload threshold"),
    });
    const seven = autoAllocations(equal, 7);
    expect("zones" in seven && [...seven.zones.values()]).toEqual([
      { min: 2, max: 3 },
      { min: 2, max: 3 },
      { min: 2, max: 3 },
    ]);
  });
  it("weighs zones by CPU and refuses a zoneless node", () => {
    const uneven = new Map([
      ["a", 16],
      ["b", 16],
      ["c", 24],
    ]);
    const four = autoAllocations(uneven, 4);
    expect("zones" in four && Object.fromEntries(four.zones)).toEqual({
      a: { min: 1, max: 1 },
      b: { min: 1, max: 1 },
      c: { min: 2, max: 2 },
    });
    expect(autoAllocations(new Map([...uneven, [undefined, 8]]), 4)).toEqual({
      disabled: "Insufficient Node information",
    });
    expect(autoAllocations(new Map([["a", 8]]), 4)).toEqual({ disabled: "Nodes only ready in one zone" });
  });
});

describe("autoHintsWithin", () => {
  const ep = (pod: string, zone: string, forZones: string[]) => ({
    pod,
    zone,
    ready: true,
    forZones,
    forNodes: [],
  });
  const bounds = new Map([
    ["a", { min: 2, max: 2 }],
    ["b", { min: 2, max: 2 }],
    ["c", { min: 3, max: 3 }],
  ]);
  it("holds when the donation brought every zone within its bounds", () => {
    const donated = [
      ...["a1", "a2"].map((p) => ep(p, "a", ["a"])),
      ep("a3", "a", ["c"]),
      ...["b1", "b2"].map((p) => ep(p, "b", ["b"])),
      ep("b3", "b", ["c"]),
      ep("c1", "c", ["c"]),
    ];
    expect(autoHintsWithin(donated, bounds).passed).toBe(true);
  });
  it("fails on the same-zone placement (no donation) and on missing hints", () => {
    const sameZone = [
      ...["a1", "a2", "a3"].map((p) => ep(p, "a", ["a"])),
      ...["b1", "b2", "b3"].map((p) => ep(p, "b", ["b"])),
      ep("c1", "c", ["c"]),
    ];
    const v = autoHintsWithin(sameZone, bounds);
    expect(v.passed).toBe(false);
    expect(v.summary).toContain("c: 1 hinted, allowed 3–3");
    expect(autoHintsWithin([ep("a1", "a", [])], bounds).passed).toBe(false);
  });
});
