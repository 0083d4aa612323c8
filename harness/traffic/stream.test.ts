import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dropsDetected, noDrops, ranThroughout, recoveredWithin } from "../assert/verdicts.ts";
import type { ProbeSource, StartedCluster } from "../cluster/provider.ts";
import { sleep } from "../core/wait.ts";
import { PROBE_PATH } from "./run-probe.ts";
import { startTraffic } from "./stream.ts";

/** Continuous traffic against real loopback sockets, through the real probe program. */
let server: Server;
let port: number;
let up = true;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (!up) res.writeHead(503).end("down");
    else res.end(`${req.socket.remoteAddress}:${req.socket.remotePort}`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => server.close());

// Only probeArgv matters to startTraffic on the exec path: the probe runs right here. A pod named "dies"
// stands for a source that dies mid-run (its node was stopped).
const fakeCluster = {
  podTraffic: "exec",
  async probeArgv(source: ProbeSource) {
    if (source.kind === "pod" && source.name === "dies") return ["sh", "-c", "sleep 0.3; exit 3", "sh"];
    return [process.execPath, PROBE_PATH];
  },
} as unknown as StartedCluster;

describe("startTraffic", () => {
  it("streams every request until stopped, paced, and the probes exit cleanly", async () => {
    up = true;
    const seen: string[] = [];
    const traffic = await startTraffic(
      fakeCluster,
      [
        { name: "a", source: { kind: "external" }, target: `127.0.0.1:${port}`, rate: 100 },
        { name: "b", source: { kind: "external" }, target: `127.0.0.1:${port}`, rate: 50, mode: "keepalive" },
      ],
      { onEntry: (e) => seen.push(e.path) },
    );
    await traffic.flowing();
    await sleep(1_000);
    const { entries, exits } = await traffic.stop();
    expect(ranThroughout(exits).passed).toBe(true);
    expect(noDrops(entries).passed).toBe(true);
    const a = entries.filter((e) => e.path === "a").length;
    const b = entries.filter((e) => e.path === "b").length;
    // Paced: ~100/s and ~50/s over a bit more than a second (startup of the probe included).
    expect(a).toBeGreaterThan(80);
    expect(a).toBeLessThan(200);
    expect(b).toBeGreaterThan(40);
    expect(b).toBeLessThan(100);
    expect(seen.length).toBe(entries.length);
  });

  it("negative control: an outage in the middle is in the ledger, and recovery is measured", async () => {
    up = true;
    const traffic = await startTraffic(fakeCluster, [
      { name: "a", source: { kind: "external" }, target: `127.0.0.1:${port}`, rate: 100 },
    ]);
    await traffic.flowing();
    await sleep(300);
    up = false;
    const outage = Date.now();
    await sleep(400);
    up = true;
    await sleep(500);
    const { entries } = await traffic.stop();
    expect(noDrops(entries).passed).toBe(false);
    const drops = dropsDetected(entries);
    expect(drops.passed).toBe(true);
    expect(drops.summary).toMatch(/a: \d+ http_503/);
    const recovery = recoveredWithin(entries, outage, 600);
    expect(recovery.passed).toBe(true);
    expect(recovery.recoveryMs).toBeGreaterThan(300);
    expect(recovery.recoveryMs).toBeLessThan(600);
    expect(recoveredWithin(entries, outage, 100).passed).toBe(false);
  });

  it("negative control: a source that dies mid-run is reported, not silently shorter", async () => {
    const traffic = await startTraffic(fakeCluster, [
      { name: "ok", source: { kind: "external" }, target: `127.0.0.1:${port}`, rate: 50 },
      { name: "dies", source: { kind: "pod", namespace: "x", name: "dies" }, target: `127.0.0.1:${port}` },
    ]);
    await sleep(600);
    const { exits } = await traffic.stop();
    const v = ranThroughout(exits);
    expect(v.passed).toBe(false);
    expect(v.summary).toMatch(/dies ended early \(exit 3\)/);
  });

  it("flowing() fails at once when a path's probe cannot start", async () => {
    const traffic = await startTraffic(fakeCluster, [
      { name: "dies", source: { kind: "pod", namespace: "x", name: "dies" }, target: `127.0.0.1:${port}` },
    ]);
    await expect(traffic.flowing(5_000)).rejects.toThrow(/dies ended before it started \(exit 3\)/);
    await traffic.stop();
  });
});

describe("startTraffic when a source cannot be reached", () => {
  it("fails with no probe left running (the reachable paths are not started)", async () => {
    let started = 0;
    const cluster = {
      podTraffic: "exec",
      async probeArgv(source: ProbeSource) {
        if (source.kind === "pod") {
          await sleep(200); // resolves after the external path's argv: the order that leaked before
          throw new Error("no probe client pod missing/client");
        }
        started++;
        return [process.execPath, PROBE_PATH];
      },
    } as unknown as StartedCluster;
    // A target no other test uses, so the process count below is this test's alone.
    const target = `127.0.0.2:${port}`;
    // pgrep run directly (no shell, whose own command line would match) counts the probes alone.
    const count = () => spawnSync("pgrep", ["-fc", "--", target]).stdout.toString().trim();
    await expect(
      startTraffic(cluster, [
        { name: "ok", source: { kind: "external" }, target, rate: 10 },
        { name: "gone", source: { kind: "pod", namespace: "missing", name: "client" }, target: "x:1" },
      ]),
    ).rejects.toThrow(/no probe client/);
    expect(started).toBe(1);
    await sleep(300);
    expect(count()).toBe("0");
  });
});
