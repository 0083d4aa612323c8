import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { createInterface } from "node:readline";
import type { KubeConfig } from "@kubernetes/client-node";
import { TphError } from "../core/errors.ts";
import type { ExitRecord, ProbeEntry } from "./probe.ts";

/**
 * The harness's side of a probe client's control server (probe.ts --serve): start a run, read its
 * entries as they come, stop it, read the pod's clock. Through the apiserver's pod proxy
 * (`pods/proxy`), traffic starts inside a pod with nothing but the Kubernetes API: no kubectl, no exec,
 * no access to the node. In tests the endpoint is the server's own address.
 */
export interface ControlEndpoint {
  /** Base URL, e.g. https://<apiserver>/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy */
  url: string;
  /** TLS material and headers for the apiserver (from the kubeconfig). */
  options?: RequestOptions;
}

/** The control port probe-client pods listen on. */
export const PROBE_CONTROL_PORT = 8090;

/** The control endpoint of `pod` through the apiserver's pod proxy, authenticated as the kubeconfig says. */
export async function podProxyEndpoint(
  kubeconfig: KubeConfig,
  namespace: string,
  pod: string,
  port = PROBE_CONTROL_PORT,
): Promise<ControlEndpoint> {
  const cluster = kubeconfig.getCurrentCluster();
  if (!cluster) throw new TphError("the kubeconfig has no current cluster");
  const options: RequestOptions = {};
  await kubeconfig.applyToHTTPSOptions(options);
  return {
    url: `${cluster.server.replace(/\/$/, "")}/api/v1/namespaces/${namespace}/pods/${pod}:${port}/proxy`,
    options,
  };
}

function send(
  endpoint: ControlEndpoint,
  method: string,
  path: string,
  timeoutMs: number,
): Promise<IncomingMessage> {
  const url = new URL(`${endpoint.url}${path}`);
  const request = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { ...endpoint.options, method, timeout: timeoutMs }, resolve);
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url.href} within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

async function readBody(res: IncomingMessage): Promise<string> {
  let body = "";
  res.setEncoding("utf8");
  for await (const chunk of res) body += chunk;
  return body.trim();
}

/** A request that must answer 2xx; otherwise an error with the status and the body (the proxy's too). */
async function call(
  endpoint: ControlEndpoint,
  method: string,
  path: string,
  timeoutMs = 10_000,
): Promise<string> {
  const res = await send(endpoint, method, path, timeoutMs);
  const body = await readBody(res);
  if ((res.statusCode ?? 0) >= 300)
    throw new TphError(`${method} ${endpoint.url}${path}: ${res.statusCode} ${body.slice(0, 300)}`);
  return body;
}

/**
 * How far the pod's clock is from the harness's, in ms to add to the pod's times: from the sample with
 * the shortest round trip of `samples`, taking the pod's reading as made at its midpoint.
 */
export async function clockOffset(endpoint: ControlEndpoint, samples = 3): Promise<number> {
  let best: { rtt: number; offset: number } | undefined;
  for (let i = 0; i < samples; i++) {
    const sent = Date.now();
    const { now } = JSON.parse(await call(endpoint, "GET", "/clock")) as { now: number };
    const back = Date.now();
    const sample = { rtt: back - sent, offset: (sent + back) / 2 - now };
    if (!best || sample.rtt < best.rtt) best = sample;
  }
  return Math.round(best?.offset ?? 0);
}

/** How a remote run ended: its exit record, or why there is none (the control stream was lost). */
export type RemoteExit = { exit: ExitRecord["exit"] } | { lost: string };

export interface RemoteRun {
  /** Resolves when the stream ends. */
  readonly done: Promise<RemoteExit>;
  /** Asks the run to stop (it finishes the request in flight, flushes, then the stream ends). */
  stop(): Promise<void>;
  /** Drops the stream at once: the server stops a run nobody reads. */
  abort(): void;
}

/**
 * Starts run `id` with the probe's flags (`{ target, rate, count, ... }`) and calls `onEntry` for each
 * entry as it arrives, its times moved by `offsetMs` onto the harness's clock. Resolves once the server
 * took the run (a refused run throws, with the server's reason).
 */
export async function startRemoteRun(
  endpoint: ControlEndpoint,
  id: string,
  flags: Record<string, string | number | boolean>,
  onEntry: (entry: ProbeEntry) => void,
  options: { offsetMs?: number; maxSeconds?: number } = {},
): Promise<RemoteRun> {
  const query = new URLSearchParams(Object.entries(flags).map(([k, v]): [string, string] => [k, String(v)]));
  const maxSeconds = Number(flags["max-seconds"] ?? options.maxSeconds ?? 60);
  // The stream lives as long as the run may: its bound plus a margin; no idle timeout meanwhile.
  const res = await send(endpoint, "POST", `/runs/${id}?${query}`, (maxSeconds + 30) * 1000);
  if ((res.statusCode ?? 0) >= 300)
    throw new TphError(
      `the probe client refused run ${id}: ${res.statusCode} ${(await readBody(res)).slice(0, 300)}`,
    );
  const offset = options.offsetMs ?? 0;
  const done = new Promise<RemoteExit>((resolve) => {
    let exit: ExitRecord["exit"] | undefined;
    let problem: string | undefined;
    let received = 0;
    const lines = createInterface({ input: res });
    lines.on("line", (line) => {
      if (!line.trim()) return;
      try {
        const parsed = JSON.parse(line) as ProbeEntry | ExitRecord | { error: string };
        if ("exit" in parsed) exit = parsed.exit;
        // An entry of a failed request carries `error` too (its code): only a line without an outcome
        // is the server's own failure.
        else if ("outcome" in parsed) {
          received += 1;
          onEntry({ ...parsed, start: parsed.start + offset, end: parsed.end + offset });
        } else problem = `the probe failed: ${parsed.error}`;
      } catch {
        problem = `not a probe line: ${line.slice(0, 200)}`;
      }
    });
    // readline re-emits its input's errors (a reset mid-stream: "aborted") and does not close by itself.
    lines.on("error", (err) => {
      problem ??= `the control stream broke: ${err.message}`;
      lines.close();
    });
    lines.on("close", () => {
      if (!exit) resolve({ lost: problem ?? "the control stream ended without an exit record" });
      // Every request the run sent has its entry: a missing one would hide a failure.
      else if (exit.count !== received)
        resolve({ lost: `the run sent ${exit.count} requests but the stream carried ${received} entries` });
      else resolve({ exit });
    });
  });
  return {
    done,
    abort: () => res.destroy(),
    async stop() {
      await call(endpoint, "POST", `/runs/${id}/stop`).catch((err: unknown) => {
        // Already over (404): nothing to stop.
        if (!String(err).includes(" 404 ")) throw err;
      });
    },
  };
}
