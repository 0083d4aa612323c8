import { describe, expect, it } from "vitest";
import { loadConfig } from "../core/config.ts";
import { kindProvider } from "./kind/provider.ts";
import { localProvider } from "./local/provider.ts";
import { unmetNeeds, zonesMissing } from "./provider.ts";

const config = loadConfig({}, {});

describe("unmetNeeds", () => {
  it("names each missing capability, what it is and the provider", () => {
    expect(
      unmetNeeds("local", localProvider.capabilities(config), ["nodePower", "externalIPs"]),
    ).toBeUndefined();
    expect(unmetNeeds("kind", kindProvider.capabilities(config), ["nodePower", "externalIPs"])).toBe(
      "needs externalIPs (route a Service's spec.externalIPs to a node): provider kind cannot",
    );
    expect(unmetNeeds("kind", kindProvider.capabilities(config), [])).toBeUndefined();
  });
});

describe("zonesMissing", () => {
  it("counts zones per node and ignores zoneless wants", () => {
    expect(zonesMissing(["a", "a", "b", undefined], ["a", "b", "a", undefined])).toEqual([]);
    expect(zonesMissing(["a", "a", "b"], ["a", undefined, "b"])).toEqual(["a"]);
    expect(zonesMissing([undefined, undefined], [])).toEqual([]);
  });
});
