import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.ts";
import { UsageError } from "./errors.ts";

describe("loadConfig", () => {
  it("uses defaults, then TPH_* variables, then explicit overrides", () => {
    const env = { HOME: "/home/u", TPH_CLUSTER: "envname", TPH_NODE_SUBNET: "10.1.2.0/24" };
    expect(loadConfig({}, env)).toMatchObject({
      clusterName: "envname",
      provider: "local",
      stateDir: "/home/u/.local/state/tph",
      cacheDir: "/home/u/.cache/tph",
      local: { nodeSubnet: "10.1.2.0/24", podSubnet: "10.244.0.0/16" },
    });
    expect(loadConfig({ clusterName: "flag", local: { nodeSubnet: "10.9.9.0/24" } }, env)).toMatchObject({
      clusterName: "flag",
      local: { nodeSubnet: "10.9.9.0/24" },
    });
  });

  it("rejects bad names, providers and numbers with a usage error", () => {
    expect(() => loadConfig({ clusterName: "Has-Caps" }, {})).toThrow(UsageError);
    expect(() => loadConfig({ clusterName: "muchtoolong" }, {})).toThrow(/invalid cluster name/);
    expect(() => loadConfig({}, { TPH_PROVIDER: "minikube" })).toThrow(/unknown provider "minikube"/);
    expect(() => loadConfig({}, { TPH_READY_TIMEOUT: "-3" })).toThrow(/not a positive number/);
  });
});
