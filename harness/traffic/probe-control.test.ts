import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProbeEntry, parsePlan, serve } from "./probe.ts";
import { type ControlEndpoint, clockOffset, startRemoteRun } from "./probe-control.ts";

// The control server and a stand-in backend, both on loopback: the pod proxy is only a longer URL.
let control: Server;
let backend: Server;
let endpoint: ControlEndpoint;
let target = "";

beforeAll(async () => {
  backend = createServer((req, res) => res.end(req.url === "/hostname" ? "pod-a" : "ok"));
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
  target = `127.0.0.1:${(backend.address() as AddressInfo).port}`;
  control = await serve(0, "127.0.0.1");
  endpoint = { url: `http://127.0.0.1:${(control.address() as AddressInfo).port}` };
});
afterAll(async () => {
  control.closeAllConnections();
  await new Promise((r) => control.close(r));
  await new Promise((r) => backend.close(r));
});

describe("probe control server", () => {
  it("streams a bounded run's entries, then its exit record", async () => {
    const entries: ProbeEntry[] = [];
    const run = await startRemoteRun(endpoint, "r1", { target, path: "/hostname", count: 5 }, (e) =>
      entries.push(e),
    );
    expect(await run.done).toEqual({ exit: { reason: "done", count: 5 } });
    expect(entries.map((e) => [e.seq, e.outcome, e.body])).toEqual(
      [0, 1, 2, 3, 4].map((i) => [i, "ok", "pod-a"]),
    );
  });

  it("stops an until-stopped run on request, with the in-flight request finished", async () => {
    const entries: ProbeEntry[] = [];
    const run = await startRemoteRun(endpoint, "r2", { target, count: 0, rate: 50 }, (e) => entries.push(e));
    await new Promise((r) => setTimeout(r, 300));
    await run.stop();
    const exit = await run.done;
    expect(exit).toMatchObject({ exit: { reason: "stopped" } });
    expect("exit" in exit && exit.exit.count).toBe(entries.length);
    expect(entries.length).toBeGreaterThan(3);
    // Over, so a second stop finds nothing and says nothing.
    await run.stop();
  });

  it("streams failed requests' entries too, with their outcome and error", async () => {
    // A port nothing listens on: refused at once.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const entries: ProbeEntry[] = [];
    const run = await startRemoteRun(endpoint, "refused", { target: `127.0.0.1:${port}`, count: 3 }, (e) =>
      entries.push(e),
    );
    expect(await run.done).toEqual({ exit: { reason: "done", count: 3 } });
    expect(entries.map((e) => [e.outcome, e.error])).toEqual(
      [0, 1, 2].map(() => ["refused", "ECONNREFUSED"]),
    );
  });

  it("moves entries onto the harness's clock and measures the offset", async () => {
    expect(Math.abs(await clockOffset(endpoint))).toBeLessThanOrEqual(5);
    const entries: ProbeEntry[] = [];
    const before = Date.now();
    const run = await startRemoteRun(endpoint, "r3", { target, count: 1 }, (e) => entries.push(e), {
      offsetMs: 60_000,
    });
    await run.done;
    expect(entries[0]?.start).toBeGreaterThanOrEqual(before + 60_000);
  });

  it("refuses a bad run with the reason, and a run id twice", async () => {
    await expect(startRemoteRun(endpoint, "bad", { count: 1 }, () => {})).rejects.toThrow(
      /refused run bad: 400 --target HOST:PORT is required/,
    );
    const run = await startRemoteRun(endpoint, "twice", { target, count: 0, rate: 10 }, () => {});
    await expect(startRemoteRun(endpoint, "twice", { target, count: 1 }, () => {})).rejects.toThrow(/409/);
    await run.stop();
    await run.done;
  });

  it("tells a lost control stream from a finished run", async () => {
    // A server that answers 200 and hangs up mid-stream: no exit record.
    const broken = createServer((_req, res) => {
      res.writeHead(200);
      res.write(`${JSON.stringify({ seq: 0, start: 1, end: 2, outcome: "ok" })}\n`);
      setTimeout(() => res.destroy(), 50);
    });
    await new Promise<void>((r) => broken.listen(0, "127.0.0.1", r));
    try {
      const seen: ProbeEntry[] = [];
      const run = await startRemoteRun(
        { url: `http://127.0.0.1:${(broken.address() as AddressInfo).port}` },
        "x",
        { target, count: 0 },
        (e) => seen.push(e),
      );
      expect(await run.done).toMatchObject({ lost: expect.any(String) });
      expect(seen).toHaveLength(1);
    } finally {
      await new Promise((r) => broken.close(r));
    }
  });

  it("stops a run whose client went away", async () => {
    const run = await startRemoteRun(endpoint, "gone", { target, count: 0, rate: 20 }, () => {});
    control.closeAllConnections();
    expect(await run.done).toMatchObject({ lost: expect.any(String) });
    // The run is over on the server: its id is free again.
    await new Promise((r) => setTimeout(r, 200));
    const again = await startRemoteRun(endpoint, "gone", { target, count: 1 }, () => {});
    expect(await again.done).toMatchObject({ exit: { reason: "done" } });
  });
});

describe("parsePlan", () => {
  it("reads the CLI's flags and the server's query alike", () => {
    const plan = parsePlan({ target: "10.0.0.1:80", count: "0", rate: "50", identify: "true" });
    expect("error" in plan ? plan.error : [plan.count, plan.rate, plan.options.identify]).toEqual([
      Number.POSITIVE_INFINITY,
      50,
      true,
    ]);
    expect(parsePlan({ target: "x:1", mode: "ping" })).toEqual({
      error: "--mode ping: use http, keepalive, tcp or udp",
    });
    expect(parsePlan({ target: "x:1", rate: "-1" })).toEqual({ error: "rate must be a number >= 0" });
    expect(parsePlan({ target: "x:1", "local-port": "99999" })).toMatchObject({
      error: expect.stringContaining("not a port"),
    });
  });
});
