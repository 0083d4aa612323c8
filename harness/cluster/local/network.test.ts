import { describe, expect, it } from "vitest";
import { DEFAULTS, loadConfig } from "../../core/config.ts";
import { TphError, UsageError } from "../../core/errors.ts";
import { checkHostCollisions, nodeIP, planNetwork } from "./network.ts";

const local = loadConfig({}, {}).cluster;

describe("planNetwork", () => {
  it("lays out the default cluster network", () => {
    const plan = planNetwork("ci", local);
    expect(plan).toMatchObject({
      subnet: DEFAULTS.nodeSubnet,
      bridgeNs: "tph-ci-net",
      controlPlaneNs: "tph-ci-cp",
      hostLink: "tph-ci",
      hostIP: "10.250.0.1",
      controlPlaneIP: "10.250.0.2",
      gatewayIP: "10.250.0.3",
      clientIP: "10.250.0.200",
      loadBalancerRange: "10.250.0.239-10.250.0.254",
      kubernetesServiceIP: "10.96.0.1",
    });
    expect(nodeIP(plan, 1)).toBe("10.250.0.11");
    expect(nodeIP(plan, 3)).toBe("10.250.0.13");
  });

  it("keeps the host link name within Linux's 15 characters for the longest cluster name", () => {
    expect(planNetwork("abcdefgh", local).hostLink.length).toBeLessThanOrEqual(15);
  });

  it("refuses overlapping subnets and malformed ones", () => {
    expect(() => planNetwork("x", { ...local, podSubnet: "10.250.0.0/16" })).toThrow(UsageError);
    expect(() => planNetwork("x", { ...local, nodeSubnet: "10.250.0.0/28" })).toThrow(/too small/);
    expect(() => planNetwork("x", { ...local, nodeSubnet: "10.250.0.1/24" })).toThrow(/host bits/);
    expect(() => planNetwork("x", { ...local, nodeSubnet: "banana" })).toThrow(/not an IPv4 CIDR/);
  });
});

describe("checkHostCollisions", () => {
  const plan = planNetwork("ci", local);

  it("accepts a host whose routes are elsewhere", () => {
    expect(() =>
      checkHostCollisions(plan, [
        { dst: "default", dev: "eth0" },
        { dst: "192.0.2.0/24", dev: "eth0" },
        { dst: "127.0.0.0/8", dev: "lo", type: "local", table: "local" },
      ]),
    ).not.toThrow();
  });

  it("refuses a network that overlaps a host route, naming the route and a way out", () => {
    const err = (() => {
      try {
        checkHostCollisions(plan, [{ dst: "10.250.0.0/16", dev: "docker0" }]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(TphError);
    expect((err as TphError).message).toMatch(/collides with the host route "10.250.0.0\/16 dev docker0"/);
    expect((err as TphError).hint).toMatch(/--node-subnet/);
  });

  it("catches a host address route inside the subnet", () => {
    expect(() => checkHostCollisions(plan, [{ dst: "10.250.0.77", dev: "wg0" }])).toThrow(/collides/);
  });
});
