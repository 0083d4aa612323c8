/**
 * The probe: one small program, Node built-ins only, run wherever traffic starts (the external client's
 * namespace, a pod's namespace). Each request is one JSON line on stdout, so the harness can account for
 * every request:
 *
 *   {"seq":0,"start":1700000000000,"end":1700000000003,"outcome":"ok","status":200,"body":"10.250.0.200:41234"}
 *
 * outcome: ok (HTTP 2xx/3xx, or TCP connected) | refused | timeout | unreachable | reset | http_<status> | error
 *
 * usage: probe.ts --target HOST:PORT [--path /clientip] [--mode http|keepalive|tcp|udp] [--count N]
 *                 [--rate PER_SECOND] [--interval-ms MS] [--local-port P]
 *                 [--timeout-ms MS] [--max-seconds S] [--identify]
 * udp mode sends agnhost netexec's UDP command named by --path ("/hostname" sends "hostname") and waits
 * for the answer. --local-port sends every request from that source port (http, tcp and udp modes): one
 * conntrack entry for all of them, as a client with a fixed port has.
 * Every run is bounded: at most --count requests (default 1) and --max-seconds of wall time (default 60).
 * --count 0 means "until stopped": the probe runs until its stdin closes (or SIGTERM), still within
 * --max-seconds. That is how continuous traffic runs through a disruption of unknown length.
 * --serve PORT runs the control server instead (see serve()): the same runs, started, streamed and
 * stopped over HTTP, which the harness reaches through the apiserver's pod proxy.
 */
import { createSocket } from "node:dgram";
import { Agent, createServer, request, type Server } from "node:http";
import { connect, type Socket } from "node:net";
import { parseArgs } from "node:util";

export type Outcome = "ok" | "refused" | "timeout" | "unreachable" | "reset" | "error" | `http_${number}`;

export interface ProbeEntry {
  seq: number;
  start: number;
  end: number;
  outcome: Outcome;
  status?: number;
  body?: string;
  error?: string;
  /** --identify: the pod that served (agnhost's /hostname) and the source IP it saw (/clientip). */
  servedBy?: string;
  clientIp?: string;
  /**
   * The connection's source port, known from connect() on, so also for a request that timed out: with
   * the path it identifies the conntrack entry the request used (verdicts' staleConntrackReuse).
   */
  localPort?: number;
}

export interface ProbeOptions {
  host: string;
  port: number;
  path: string;
  mode: "http" | "keepalive" | "tcp" | "udp";
  /** Send from this source port instead of an ephemeral one (not in keepalive mode). */
  localPort?: number;
  /** For keepalive mode: the one connection requests reuse (http.Agent with keepAlive, one socket). */
  agent?: Agent;
  timeoutMs: number;
  /**
   * Ask agnhost netexec who served and whom it saw: /hostname then /clientip on one connection, so
   * both answers come from the same backend (a connection is bound to one endpoint) and the entry
   * carries both. Costs a second request per entry. HTTP modes only.
   */
  identify?: boolean;
}

export async function probeOnce(seq: number, o: ProbeOptions): Promise<ProbeEntry> {
  if (o.mode === "udp") return probeDatagram(seq, o);
  if (o.localPort !== undefined) return probeFromPort(seq, o);
  if (!o.identify || o.mode === "tcp") return probeRequest(seq, o);
  // One connection for both requests: a fresh keep-alive agent with a single socket.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const who = await probeRequest(seq, { ...o, mode: "keepalive", agent, path: "/hostname" });
    if (who.outcome !== "ok") return who;
    const seen = await probeRequest(seq, { ...o, mode: "keepalive", agent, path: "/clientip" });
    const clientIp = seen.outcome === "ok" ? seen.body?.replace(/:\d+$/, "") : undefined;
    return {
      ...seen,
      start: who.start,
      body: seen.body,
      ...(who.body !== undefined && { servedBy: who.body }),
      ...(clientIp !== undefined && { clientIp }),
    };
  } finally {
    agent.destroy();
  }
}

type Result = Omit<ProbeEntry, "seq" | "start" | "end">;

/**
 * How every request ends, once: the deadline cleared, the connection closed by `close` (which returns
 * the source port, read before closing: a destroyed socket no longer knows it), the entry resolved.
 * One deadline covers the whole request, connect included: socket idle timers do not cover a SYN that
 * is never answered, which is exactly what a blackhole looks like.
 */
function requestEnd(
  seq: number,
  timeoutMs: number,
  resolve: (entry: ProbeEntry) => void,
  close: (reset: boolean) => number | undefined,
) {
  const start = Date.now();
  let settled = false;
  const settle = (e: Result, reset = false) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    const localPort = close(reset);
    resolve({ seq, start, end: Date.now(), ...e, ...(localPort !== undefined && { localPort }) });
  };
  const fail = (err: NodeJS.ErrnoException) =>
    settle({ outcome: classify(err), error: err.code ?? err.message });
  const timer = setTimeout(() => fail(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })), timeoutMs);
  return { settle, fail };
}

function probeRequest(seq: number, o: ProbeOptions): Promise<ProbeEntry> {
  return new Promise((resolve) => {
    let abort = () => {};
    let socket: Socket | undefined;
    // The source port, read once connect() was issued: a refused connection's socket is closed by the
    // time its error arrives, and a failure's port is what ties it to a stale conntrack entry.
    let bound: number | undefined;
    const { settle, fail } = requestEnd(seq, o.timeoutMs, resolve, () => {
      const port = socket?.localPort ?? bound;
      abort();
      return port;
    });
    if (o.mode === "tcp") {
      const conn = connect({ host: o.host, port: o.port });
      socket = conn;
      // connect() to an address runs on the next tick; this one runs after it.
      process.nextTick(() => {
        bound = conn.localPort;
      });
      abort = () => conn.destroy();
      conn.once("connect", () => settle({ outcome: "ok" }));
      conn.once("error", fail);
      return;
    }
    // A new connection per request by default (agent: false), as upstream's disruption tests do;
    // keepalive mode reuses one connection, which is how long-lived clients see a rollout.
    const req = request(
      {
        host: o.host,
        port: o.port,
        path: o.path,
        agent: o.mode === "keepalive" ? o.agent : false,
        headers: { connection: o.mode === "keepalive" ? "keep-alive" : "close" },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          settle({
            outcome: status >= 200 && status < 400 ? "ok" : `http_${status}`,
            status,
            body: body.trim(),
          });
        });
        res.on("error", fail);
      },
    );
    abort = () => req.destroy();
    req.on("socket", (s) => {
      socket = s;
      // Emitted after the socket's connect() (both on the next tick, connect first).
      bound = s.localPort;
    });
    req.on("error", fail);
    req.end();
  });
}

/**
 * One request from a fixed source port (tcp or http mode), ended so that the port is free again at once:
 * an orderly close by the client would leave it in TIME_WAIT for a minute. In tcp mode the client resets
 * the connection; in http mode it sends the request with "Connection: close" on a plain socket and lets
 * the server close first (Node's HTTP client would half-close first). A connect still pending at the
 * deadline is dropped; no TIME_WAIT follows an unanswered SYN.
 */
function probeFromPort(seq: number, o: ProbeOptions): Promise<ProbeEntry> {
  return new Promise((resolve) => {
    const socket = connect({ host: o.host, port: o.port, localPort: o.localPort });
    const { settle, fail } = requestEnd(seq, o.timeoutMs, resolve, (reset) => {
      if (reset && !socket.connecting && !socket.destroyed) socket.resetAndDestroy();
      else socket.destroy();
      return o.localPort;
    });
    socket.once("error", fail);
    if (o.mode === "tcp") {
      socket.once("connect", () => settle({ outcome: "ok" }, true));
      return;
    }
    let response = "";
    socket.setEncoding("utf8");
    socket.once("connect", () =>
      socket.write(`GET ${o.path} HTTP/1.1\r\nHost: ${o.host}\r\nConnection: close\r\n\r\n`),
    );
    socket.on("data", (chunk: string) => {
      if (response.length < 8192) response += chunk;
    });
    socket.once("end", () => {
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
      const body = response.slice(response.indexOf("\r\n\r\n") + 4).trim();
      if (status === 0) return settle({ outcome: "error", error: "no HTTP response" });
      settle({ outcome: status >= 200 && status < 400 ? "ok" : `http_${status}`, status, body });
    });
  });
}

/**
 * One UDP request: agnhost netexec's command in one datagram, its answer in one datagram. No answer
 * within the deadline is a timeout; an ICMP port unreachable (nothing listens, or kube-proxy rejects a
 * Service without endpoints) is refused.
 */
function probeDatagram(seq: number, o: ProbeOptions): Promise<ProbeEntry> {
  const command = o.path.replace(/^\//, "") || "hostname";
  return new Promise((resolve) => {
    // reuseAddr: with --local-port, the next request binds the port this one just closed.
    const socket = createSocket({ type: "udp4", reuseAddr: true });
    let localPort: number | undefined;
    const { settle, fail } = requestEnd(seq, o.timeoutMs, resolve, () => {
      socket.removeAllListeners();
      socket.on("error", () => {});
      try {
        socket.close();
      } catch {}
      return localPort;
    });
    socket.once("error", fail);
    socket.once("message", (msg) => settle({ outcome: "ok", body: msg.toString("utf8").trim() }));
    socket.bind(o.localPort ?? 0, () => {
      localPort = socket.address().port;
      // Connected, so an ICMP error comes back to this socket as ECONNREFUSED.
      socket.connect(o.port, o.host, () => socket.send(command));
    });
  });
}

function classify(err: NodeJS.ErrnoException): Outcome {
  switch (err.code) {
    case "ECONNREFUSED":
      return "refused";
    case "ETIMEDOUT":
      return "timeout";
    case "EHOSTUNREACH": // nobody answered ARP for the address: the packet never left the client
      return "unreachable";
    case "ECONNRESET":
    case "EPIPE":
      return "reset";
    default:
      return "error";
  }
}

/** How long and how often a run sends: the CLI's flags and the control server's query, parsed alike. */
export interface RunPlan {
  options: ProbeOptions;
  /** Requests to send; Infinity: until stopped. */
  count: number;
  rate: number;
  intervalMs: number;
  maxSeconds: number;
}

export const USAGE =
  "usage: probe.ts --target HOST:PORT [--path P] [--mode http|keepalive|tcp|udp] [--count N] [--rate PER_S] [--interval-ms MS] [--timeout-ms MS] [--max-seconds S] [--identify] [--local-port P (not with keepalive or --identify)]\n" +
  "       probe.ts --serve PORT   (the control server of probe-client pods: see serve())";

/** Validates a run's settings (flag name → value); returns the plan or what is wrong. */
export function parsePlan(v: Record<string, string | boolean | undefined>): RunPlan | { error: string } {
  const str = (k: string, d: string) => (typeof v[k] === "string" ? (v[k] as string) : d);
  const match = /^(.+):(\d+)$/.exec(str("target", ""));
  const modes = ["http", "keepalive", "tcp", "udp"] as const;
  const mode = modes.find((m) => m === str("mode", "http"));
  const localPort = v["local-port"] === undefined ? undefined : Number(v["local-port"]);
  const identify = v.identify === true || v.identify === "true" || v.identify === "1";
  const numbers = {
    count: Number(str("count", "1")),
    rate: Number(str("rate", "0")),
    intervalMs: Number(str("interval-ms", "0")),
    timeoutMs: Number(str("timeout-ms", "2000")),
    maxSeconds: Number(str("max-seconds", "60")),
  };
  const bad = Object.entries(numbers).find(([, n]) => !Number.isFinite(n) || n < 0);
  if (!match) return { error: "--target HOST:PORT is required" };
  if (!mode) return { error: `--mode ${str("mode", "")}: use http, keepalive, tcp or udp` };
  if (bad) return { error: `${bad[0]} must be a number >= 0` };
  if (localPort !== undefined && !(Number.isInteger(localPort) && localPort > 0 && localPort < 65536))
    return { error: `--local-port ${v["local-port"]}: not a port` };
  if (localPort !== undefined && (mode === "keepalive" || identify))
    return { error: "--local-port goes with neither keepalive mode nor --identify" };
  return {
    options: {
      host: match[1] as string,
      port: Number(match[2]),
      path: str("path", "/"),
      mode,
      ...(localPort !== undefined && { localPort }),
      timeoutMs: numbers.timeoutMs,
      identify,
      ...(mode === "keepalive" && { agent: new Agent({ keepAlive: true, maxSockets: 1 }) }),
    },
    count: numbers.count === 0 ? Number.POSITIVE_INFINITY : Math.min(numbers.count, 1_000_000),
    rate: numbers.rate,
    intervalMs: numbers.intervalMs,
    maxSeconds: numbers.maxSeconds,
  };
}

export type ExitReason = "done" | "stopped" | "deadline";

/**
 * Sends the plan's requests one after the other, `emit`ting each entry, until the count is reached,
 * `stopped()` says so, or max-seconds have passed; a request in flight is always finished.
 */
export async function runPlan(
  plan: RunPlan,
  stopped: () => boolean,
  emit: (entry: ProbeEntry) => void,
): Promise<{ count: number; reason: ExitReason }> {
  const started = Date.now();
  const deadline = started + plan.maxSeconds * 1000;
  let due = started - 1000 / Math.max(plan.rate, 1);
  let seq = 0;
  try {
    for (; seq < plan.count && !stopped() && Date.now() < deadline; seq++) {
      if (plan.rate > 0) {
        // Paced: each request is due 1/rate after the previous one's due time; a loop that fell behind
        // catches up without sleeping, but by at most a second's worth: after an outage of timeouts the
        // client goes on at its rate instead of bursting every missed request at once.
        due = Math.max(due + 1000 / plan.rate, Date.now() - 1000);
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
      emit(await probeOnce(seq, plan.options));
      if (plan.intervalMs > 0) await new Promise((r) => setTimeout(r, plan.intervalMs));
    }
  } finally {
    plan.options.agent?.destroy();
  }
  return { count: seq, reason: seq >= plan.count ? "done" : stopped() ? "stopped" : "deadline" };
}

/**
 * Entries are batched into one write per few milliseconds: at 1000 requests/s a write per line would
 * cost more than the requests. Returns push (one entry) and end (flush and stop the timer).
 */
function batcher(write: (text: string) => void) {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length > 0) write(pending.join(""));
    pending = [];
  };
  const timer = setInterval(flush, 20);
  return {
    push: (line: string) => {
      pending.push(line);
    },
    end: () => {
      clearInterval(timer);
      flush();
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: "string" },
      target: { type: "string" },
      path: { type: "string" },
      mode: { type: "string" },
      count: { type: "string" },
      "interval-ms": { type: "string" },
      rate: { type: "string" },
      "timeout-ms": { type: "string" },
      "max-seconds": { type: "string" },
      identify: { type: "boolean", default: false },
      "local-port": { type: "string" },
    },
  });
  if (values.serve !== undefined) {
    const port = Number(values.serve);
    const server = await serve(port);
    process.stderr.write(`probe control server on :${(server.address() as { port: number }).port}\n`);
    return;
  }
  const plan = parsePlan(values);
  if ("error" in plan) {
    process.stderr.write(`${plan.error}\n${USAGE}\n`);
    process.exit(2);
  }
  const untilStopped = plan.count === Number.POSITIVE_INFINITY;
  let stopped = false;
  if (untilStopped) {
    const stop = () => {
      stopped = true;
    };
    process.stdin.on("end", stop).on("close", stop).on("error", stop).resume();
    process.on("SIGTERM", stop);
  }
  const out = batcher((text) => process.stdout.write(text));
  await runPlan(
    plan,
    () => stopped,
    (entry) => out.push(`${JSON.stringify(entry)}\n`),
  );
  out.end();
  // stdin (until-stopped mode) would keep the event loop alive.
  if (untilStopped) process.stdin.destroy();
}

/** The last line of a control-server run: how it ended and how many requests it sent. */
export interface ExitRecord {
  exit: { reason: ExitReason; count: number };
}

/**
 * The control server a probe-client pod runs (`probe.ts --serve PORT`), reached through the apiserver's
 * pod proxy, so traffic starts inside a pod with nothing but the Kubernetes API (no exec, no node access):
 *
 *   POST /runs/ID?target=HOST:PORT&rate=50&count=0&...   the CLI's flags as query parameters; the answer
 *        streams the entries as JSON lines while the run goes, then {"exit":{"reason","count"}}
 *   POST /runs/ID/stop    ends run ID: the request in flight finishes, the stream flushes and ends
 *   GET  /clock           {"now": ms}: the pod's clock, to put its entries on the harness's clock
 *   GET  /healthz         ok
 *
 * A run whose stream the client drops is stopped too: nothing runs that nobody reads. Runs are bounded
 * like the CLI's (count, max-seconds).
 */
export function serve(port: number, host = "0.0.0.0"): Promise<Server> {
  const runs = new Map<string, { stop: () => void }>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://probe");
    const parts = url.pathname.split("/").filter(Boolean);
    const send = (status: number, body: string, type = "text/plain") => {
      res.writeHead(status, { "content-type": type }).end(body);
    };
    if (req.method === "GET" && url.pathname === "/healthz") return send(200, "ok");
    if (req.method === "GET" && url.pathname === "/clock")
      return send(200, JSON.stringify({ now: Date.now() }), "application/json");
    if (req.method === "POST" && parts[0] === "runs" && parts.length === 3 && parts[2] === "stop") {
      const run = runs.get(parts[1] as string);
      if (!run) return send(404, `no run ${parts[1]}`);
      run.stop();
      return send(200, "stopping");
    }
    if (req.method === "POST" && parts[0] === "runs" && parts.length === 2) {
      const id = parts[1] as string;
      if (runs.has(id)) return send(409, `run ${id} exists`);
      const query: Record<string, string> = Object.fromEntries(url.searchParams);
      const plan = parsePlan(query);
      if ("error" in plan) return send(400, `${plan.error}\n`);
      let stopped = false;
      runs.set(id, {
        stop: () => {
          stopped = true;
        },
      });
      // The client went away before the run ended: stop it.
      res.on("close", () => {
        stopped = true;
      });
      res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-cache" });
      res.flushHeaders();
      const out = batcher((text) => res.write(text));
      void runPlan(
        plan,
        () => stopped,
        (entry) => out.push(`${JSON.stringify(entry)}\n`),
      ).then(
        (exit) => {
          out.end();
          runs.delete(id);
          const record: ExitRecord = { exit };
          res.end(`${JSON.stringify(record)}\n`);
        },
        (err: unknown) => {
          out.end();
          runs.delete(id);
          res.end(`${JSON.stringify({ error: String(err) })}\n`);
        },
      );
      return;
    }
    send(404, `no ${req.method} ${url.pathname}`);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

if (import.meta.main) await main();
