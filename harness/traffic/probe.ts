/**
 * The probe: one small program, Node built-ins only, run wherever traffic starts (the external client's
 * namespace, a pod's namespace). Each request is one JSON line on stdout, so the harness can account for
 * every request:
 *
 *   {"seq":0,"start":1700000000000,"end":1700000000003,"outcome":"ok","status":200,"body":"10.250.0.200:41234"}
 *
 * outcome: ok (HTTP 2xx/3xx, or TCP connected) | refused | timeout | unreachable | reset | http_<status> | error
 *
 * usage: probe.ts --target HOST:PORT [--path /clientip] [--mode http|keepalive|tcp] [--count N]
 *                 [--rate PER_SECOND] [--interval-ms MS]
 *                 [--timeout-ms MS] [--max-seconds S] [--identify]
 * Every run is bounded: at most --count requests (default 1) and --max-seconds of wall time (default 60).
 * --count 0 means "until stopped": the probe runs until its stdin closes (or SIGTERM), still within
 * --max-seconds. That is how continuous traffic runs through a disruption of unknown length.
 */
import { Agent, request } from "node:http";
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
  mode: "http" | "keepalive" | "tcp";
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

function probeRequest(seq: number, o: ProbeOptions): Promise<ProbeEntry> {
  const start = Date.now();
  return new Promise((resolve) => {
    let settled = false;
    let abort = () => {};
    let socket: Socket | undefined;
    const settle = (e: Omit<ProbeEntry, "seq" | "start" | "end">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Read before abort(): a destroyed socket no longer knows its port.
      const localPort = socket?.localPort;
      abort();
      resolve({ seq, start, end: Date.now(), ...e, ...(localPort !== undefined && { localPort }) });
    };
    const fail = (err: NodeJS.ErrnoException) =>
      settle({ outcome: classify(err), error: err.code ?? err.message });
    // One deadline for the whole request, connect included: socket idle timers do not cover a SYN that
    // is never answered, which is exactly what a blackhole looks like.
    const timer = setTimeout(
      () => fail(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })),
      o.timeoutMs,
    );
    if (o.mode === "tcp") {
      const conn = connect({ host: o.host, port: o.port });
      socket = conn;
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
    });
    req.on("error", fail);
    req.end();
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: "string" },
      path: { type: "string", default: "/" },
      mode: { type: "string", default: "http" },
      count: { type: "string", default: "1" },
      "interval-ms": { type: "string", default: "0" },
      rate: { type: "string", default: "0" },
      "timeout-ms": { type: "string", default: "2000" },
      "max-seconds": { type: "string", default: "60" },
      identify: { type: "boolean", default: false },
    },
  });
  const match = /^(.+):(\d+)$/.exec(values.target ?? "");
  if (!match || (values.mode !== "http" && values.mode !== "keepalive" && values.mode !== "tcp")) {
    process.stderr.write(
      "usage: probe.ts --target HOST:PORT [--path P] [--mode http|keepalive|tcp] [--count N] [--rate PER_S] [--interval-ms MS]\n",
    );
    process.exit(2);
  }
  const options: ProbeOptions = {
    host: match[1] as string,
    port: Number(match[2]),
    path: values.path ?? "/",
    mode: values.mode,
    timeoutMs: Number(values["timeout-ms"]),
    identify: values.identify === true,
    ...(values.mode === "keepalive" && { agent: new Agent({ keepAlive: true, maxSockets: 1 }) }),
  };
  const untilStopped = Number(values.count) === 0;
  const count = untilStopped ? Number.POSITIVE_INFINITY : Math.min(Number(values.count), 1_000_000);
  let stopped = false;
  if (untilStopped) {
    const stop = () => {
      stopped = true;
    };
    process.stdin.on("end", stop).on("close", stop).on("error", stop).resume();
    process.on("SIGTERM", stop);
  }
  const interval = Number(values["interval-ms"]);
  const rate = Number(values.rate);
  const started = Date.now();
  const deadline = started + Number(values["max-seconds"]) * 1000;
  let due = started - 1000 / Math.max(rate, 1);
  // Entries are batched into one write per few milliseconds: at 1000 requests/s a write per line would
  // cost more than the requests.
  let pending: string[] = [];
  const flush = () => {
    if (pending.length > 0) process.stdout.write(pending.join(""));
    pending = [];
  };
  const flusher = setInterval(flush, 20);
  for (let seq = 0; seq < count && !stopped && Date.now() < deadline; seq++) {
    if (rate > 0) {
      // Paced: each request is due 1/rate after the previous one's due time; a loop that fell behind
      // catches up without sleeping, but by at most a second's worth: after an outage of timeouts the
      // client goes on at its rate instead of bursting every missed request at once.
      due = Math.max(due + 1000 / rate, Date.now() - 1000);
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    // Await first: `pending` is swapped by flush() meanwhile, and must be read after the request.
    const entry = await probeOnce(seq, options);
    pending.push(`${JSON.stringify(entry)}\n`);
    if (interval > 0) await new Promise((r) => setTimeout(r, interval));
  }
  clearInterval(flusher);
  flush();
  options.agent?.destroy();
  // stdin (until-stopped mode) would keep the event loop alive.
  if (untilStopped) process.stdin.destroy();
}

if (import.meta.main) await main();
