import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StartedCluster } from "../cluster/provider.ts";
import { PROBE_PATH, readinessPort, waitOutcome } from "./run-probe.ts";

// The external path runs the probe right here.
const cluster = {
  podTraffic: "exec",
  probeArgv: async () => [process.execPath, PROBE_PATH],
} as unknown as StartedCluster;

describe("readiness requests", () => {
  let server: Server;
  const seen: number[] = [];
  let target = "";
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.socket.remotePort as number);
      res.end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("come from ports above the default ephemeral range, a new one each time", () => {
    const ports = Array.from({ length: 5 }, () => readinessPort({ target: "x:1" }) as number);
    for (const p of ports) expect(p).toBeGreaterThan(60_999);
    expect(new Set(ports).size).toBe(5);
  });

  it("keep a port the caller chose, and pin none where the probe cannot (keepalive, --identify)", () => {
    expect(readinessPort({ target: "x:1", localPort: 40_080 })).toBe(40_080);
    expect(readinessPort({ target: "x:1", mode: "keepalive" })).toBeUndefined();
    expect(readinessPort({ target: "x:1", identify: true })).toBeUndefined();
  });

  it("waitOutcome sends from a readiness port", async () => {
    await waitOutcome(cluster, { kind: "external" }, { target });
    expect(seen.at(-1)).toBeGreaterThan(60_999);
  });
});
