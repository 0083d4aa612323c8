import { createSocket as createUdpSocket } from "node:dgram";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createServer as createTcpServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeOnce } from "./probe.ts";

/** The probe's outcome classes against real sockets on loopback. */
let http: Server;
let port: number;
let silentPort: number;
let closedPort: number;
// Accepts and never answers: an HTTP request times out. (A client from a fixed port resets.)
const silent = createTcpServer((socket) => socket.on("error", () => {}));

beforeAll(async () => {
  http = createServer((req, res) => {
    if (req.url === "/fail") res.writeHead(503).end("no");
    else if (req.url === "/hostname") res.end("web-1");
    else res.end(`${req.socket.remoteAddress}:${req.socket.remotePort}`);
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  port = (http.address() as AddressInfo).port;
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  silentPort = (silent.address() as AddressInfo).port;
  const probe = createTcpServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
});

afterAll(() => {
  http.close();
  silent.close();
});

const base = { host: "127.0.0.1", path: "/", mode: "http" as const, timeoutMs: 300 };

describe("probeOnce", () => {
  it("--identify: who served and whom it saw, asked on one connection", async () => {
    let connections = 0;
    const count = () => connections++;
    http.on("connection", count);
    const e = await probeOnce(3, { ...base, port, identify: true });
    http.off("connection", count);
    expect(e).toMatchObject({ seq: 3, outcome: "ok", servedBy: "web-1", clientIp: "127.0.0.1" });
    expect(connections).toBe(1);
    // A failure on the first request is the entry's outcome.
    expect(await probeOnce(0, { ...base, port: closedPort, identify: true })).toMatchObject({
      outcome: "refused",
    });
  });

  it("ok, with the body the server sent", async () => {
    const e = await probeOnce(7, { ...base, port });
    expect(e).toMatchObject({ seq: 7, outcome: "ok", status: 200 });
    expect(e.body).toMatch(/^127\.0\.0\.1:\d+$/);
    // The source port the server saw is the one the entry records.
    expect(e.localPort).toBe(Number(e.body?.split(":")[1]));
  });

  it("an HTTP error status is its own outcome", async () => {
    expect(await probeOnce(0, { ...base, port, path: "/fail" })).toMatchObject({
      outcome: "http_503",
      status: 503,
    });
  });

  it("refused when nothing listens", async () => {
    expect(await probeOnce(0, { ...base, port: closedPort })).toMatchObject({
      outcome: "refused",
      error: "ECONNREFUSED",
    });
  });

  it("timeout when nothing answers, within the deadline", async () => {
    const e = await probeOnce(0, { ...base, port: silentPort });
    expect(e.outcome).toBe("timeout");
    expect(e.end - e.start).toBeGreaterThanOrEqual(290);
    expect(e.end - e.start).toBeLessThan(1_000);
    // Known for a request that never got an answer too: it names the conntrack entry it left.
    expect(e.localPort).toBeGreaterThan(0);
  });

  it("--local-port: the request leaves from that port", async () => {
    const free = createTcpServer();
    await new Promise<void>((r) => free.listen(0, "127.0.0.1", r));
    const fixed = (free.address() as AddressInfo).port;
    await new Promise((r) => free.close(r));
    // Again and again from the same port: each connection ends without a TIME_WAIT that would block
    // the next (a reset, as a client that keeps its port must).
    for (const seq of [0, 1, 2]) {
      const e = await probeOnce(seq, { ...base, port, localPort: fixed });
      expect(e).toMatchObject({ outcome: "ok", body: `127.0.0.1:${fixed}`, localPort: fixed });
    }
    // Also where the client ends the connection (tcp mode to a server that never closes).
    for (const seq of [0, 1])
      expect(
        await probeOnce(seq, { ...base, mode: "tcp", port: silentPort, localPort: fixed }),
      ).toMatchObject({ outcome: "ok", localPort: fixed });
  });

  it("udp mode: agnhost's command and its answer; silence is a timeout, a closed port refused", async () => {
    const echo = createUdpSocket("udp4");
    echo.on("message", (msg, from) => {
      const command = msg.toString();
      echo.send(command === "hostname" ? "web-1" : `${from.address}:${from.port}`, from.port, from.address);
    });
    await new Promise<void>((r) => echo.bind(0, "127.0.0.1", r));
    const udp = { ...base, mode: "udp" as const, port: echo.address().port };
    try {
      const first = await probeOnce(0, { ...udp, path: "/hostname" });
      expect(first).toMatchObject({ outcome: "ok", body: "web-1" });
      // Twice from one fixed port: a client that keeps its conntrack entry.
      const fixed = first.localPort as number;
      for (const seq of [1, 2])
        expect(await probeOnce(seq, { ...udp, path: "/clientip", localPort: fixed })).toMatchObject({
          outcome: "ok",
          body: `127.0.0.1:${fixed}`,
          localPort: fixed,
        });
    } finally {
      echo.close();
    }
    const silentUdp = createUdpSocket("udp4");
    await new Promise<void>((r) => silentUdp.bind(0, "127.0.0.1", r));
    try {
      const e = await probeOnce(0, { ...udp, port: silentUdp.address().port });
      expect(e.outcome).toBe("timeout");
      expect(e.end - e.start).toBeGreaterThanOrEqual(290);
    } finally {
      silentUdp.close();
    }
    expect(await probeOnce(0, { ...udp, port: closedPort })).toMatchObject({
      outcome: "refused",
      error: "ECONNREFUSED",
    });
  });

  it("tcp mode: connected is ok, closed is refused", async () => {
    expect((await probeOnce(0, { ...base, mode: "tcp", port: silentPort })).outcome).toBe("ok");
    expect((await probeOnce(0, { ...base, mode: "tcp", port: closedPort })).outcome).toBe("refused");
  });
});

describe("the probe program", () => {
  it("refuses bad flags with its usage and exit 2", async () => {
    const { execa } = await import("execa");
    const probe = new URL("./probe.ts", import.meta.url).pathname;
    for (const flags of [
      ["--target=127.0.0.1:80", "--mode=sctp"],
      ["--target=127.0.0.1:80", "--local-port=70000"],
      ["--target=127.0.0.1:80", "--mode=keepalive", "--local-port=4000"],
      ["--target=nowhere"],
    ]) {
      const r = await execa(process.execPath, [probe, ...flags], { reject: false });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain("usage: probe.ts");
    }
  });

  it("paces to --rate, keeps one connection in keepalive mode, and writes one line per request", async () => {
    const { execa } = await import("execa");
    const started = Date.now();
    const r = await execa(process.execPath, [
      new URL("./probe.ts", import.meta.url).pathname,
      `--target=127.0.0.1:${port}`,
      "--mode=keepalive",
      "--count=50",
      "--rate=500",
    ]);
    const elapsed = Date.now() - started;
    const entries = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(entries).toHaveLength(50);
    expect(entries.map((e) => e.seq)).toEqual([...Array(50).keys()]);
    expect(entries.every((e) => e.outcome === "ok")).toBe(true);
    // One connection: the server saw the same client port every time.
    expect(new Set(entries.map((e) => e.body)).size).toBe(1);
    // 50 requests at 500/s take at least ~98 ms of pacing.
    expect(entries.at(-1).start - entries[0].start).toBeGreaterThanOrEqual(95);
    expect(elapsed).toBeLessThan(10_000);
  });
});
