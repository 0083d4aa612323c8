import { describe, expect, it } from "vitest";
import { sharedClusterFor } from "./shared.ts";

describe("sharedClusterFor", () => {
  it("shares the default shape per proxy mode, with a name and subnet per mode", () => {
    expect(sharedClusterFor({ cluster: { proxyMode: "nftables" } }, ["l2LoadBalancer"], "iptables")).toEqual({
      clusterName: "shn",
      cluster: { proxyMode: "nftables", nodeSubnet: "10.250.11.0/24" },
    });
    expect(sharedClusterFor({}, [], "iptables")?.clusterName).toBe("shi");
    expect(
      sharedClusterFor({ cluster: { proxyMode: "iptables" } }, ["externalIPs", "externalClient"], "nftables")
        ?.cluster?.nodeSubnet,
    ).toBe("10.250.10.0/24");
  });

  it("gives a cluster of its own to a suite that changes nodes or asks for a shape", () => {
    for (const need of ["nodeDisruption", "nodePower", "kubeProxyReleases"] as const)
      expect(sharedClusterFor({ cluster: { proxyMode: "iptables" } }, [need], "iptables")).toBeUndefined();
    expect(sharedClusterFor({ cluster: { nodes: [{}] } }, [], "iptables")).toBeUndefined();
    expect(sharedClusterFor({ cluster: { nodes: [{ zone: "a" }, {}] } }, [], "iptables")).toBeUndefined();
    expect(
      sharedClusterFor(
        { cluster: { proxyMode: "iptables", nodeMonitorGracePeriodSeconds: 5 } },
        [],
        "iptables",
      ),
    ).toBeUndefined();
  });
});
