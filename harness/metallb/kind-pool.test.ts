import { describe, expect, it } from "vitest";
import { applyWithRetry, kindPoolRange } from "./kind-pool.ts";

// Recorded from `docker network inspect kind` on a 3-node kind cluster (trimmed to the fields read).
const inspect = JSON.stringify([
  {
    Name: "kind",
    IPAM: {
      Driver: "default",
      Config: [
        { Subnet: "fc00:f853:ccd:e793::/64", Gateway: "fc00:f853:ccd:e793::1" },
        { Subnet: "172.18.0.0/16", Gateway: "172.18.0.1" },
      ],
    },
    Containers: {
      a1: {
        Name: "tph-control-plane",
        IPv4Address: "172.18.0.3/16",
        IPv6Address: "fc00:f853:ccd:e793::3/64",
      },
      b2: { Name: "tph-worker", IPv4Address: "172.18.0.2/16", IPv6Address: "fc00:f853:ccd:e793::2/64" },
      c3: { Name: "tph-client", IPv4Address: "172.18.255.250/16", IPv6Address: "" },
    },
  },
]);

describe("kindPoolRange", () => {
  it("takes the top of the IPv4 subnet, below broadcast, skipping used addresses", () => {
    // .255.250 is the client container: the pool moves below it.
    expect(kindPoolRange(inspect)).toBe("172.18.255.234-172.18.255.249");
  });

  it("uses the top block directly when it is free", () => {
    const free = JSON.stringify([
      { IPAM: { Config: [{ Subnet: "172.19.0.0/24", Gateway: "172.19.0.1" }] }, Containers: {} },
    ]);
    expect(kindPoolRange(free, 8)).toBe("172.19.0.247-172.19.0.254");
  });

  it("refuses an IPv6-only network and garbage", () => {
    const v6 = JSON.stringify([{ IPAM: { Config: [{ Subnet: "fc00::/64" }] } }]);
    expect(() => kindPoolRange(v6)).toThrow(/no IPv4 subnet/);
    expect(() => kindPoolRange("not json")).toThrow(/cannot parse docker network inspect/);
  });
});

describe("applyWithRetry", () => {
  it("retries while the webhook is not serving, then succeeds", async () => {
    let calls = 0;
    const retried: string[] = [];
    const attempts = await applyWithRetry(
      async () => {
        calls++;
        if (calls < 3)
          throw new Error(
            'failed calling webhook "ipaddresspoolvalidationwebhook.metallb.io": connection refused',
          );
      },
      { timeoutMs: 5_000, initialDelayMs: 5, onRetry: (e) => retried.push(String(e)) },
    );
    expect(attempts).toBe(3);
    expect(retried).toHaveLength(2);
  });

  it("gives up at the deadline with the last error as the cause", async () => {
    const err = await applyWithRetry(
      async () => {
        throw new Error("webhook down");
      },
      { timeoutMs: 50, initialDelayMs: 10 },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/gave up after \d+ attempt/);
    expect(((err as Error).cause as Error).message).toBe("webhook down");
  });
});
