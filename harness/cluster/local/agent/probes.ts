import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import type { V1ContainerPort, V1Probe } from "@kubernetes/client-node";

/** The outcome of one probe run, as the kubelet sees it. */
export type ProbeResult = { ok: true } | { ok: false; message: string };

export interface ProbeTarget {
  podIP: string;
  ports: V1ContainerPort[];
  /** Runs a command inside the pod's network namespace; resolves with its exit code. */
  exec(argv: string[], timeoutMs: number): Promise<number>;
}

/** Upstream's Probe defaults (core/v1 field docs). */
export function probeTiming(probe: V1Probe) {
  return {
    initialDelayMs: (probe.initialDelaySeconds ?? 0) * 1000,
    periodMs: (probe.periodSeconds ?? 10) * 1000,
    timeoutMs: (probe.timeoutSeconds ?? 1) * 1000,
    successThreshold: probe.successThreshold ?? 1,
    failureThreshold: probe.failureThreshold ?? 3,
  };
}

export async function runProbe(probe: V1Probe, target: ProbeTarget): Promise<ProbeResult> {
  const { timeoutMs } = probeTiming(probe);
  try {
    if (probe.httpGet) {
      const port = resolvePort(probe.httpGet.port, target.ports);
      const status = await httpGet(
        probe.httpGet.scheme === "HTTPS" ? "https" : "http",
        probe.httpGet.host || target.podIP,
        port,
        probe.httpGet.path ?? "/",
        Object.fromEntries((probe.httpGet.httpHeaders ?? []).map((h) => [h.name, h.value])),
        timeoutMs,
      );
      // The kubelet counts 200-399 as success.
      return status >= 200 && status < 400
        ? { ok: true }
        : { ok: false, message: `HTTP probe failed with statuscode: ${status}` };
    }
    if (probe.tcpSocket) {
      await tcpConnect(
        probe.tcpSocket.host || target.podIP,
        resolvePort(probe.tcpSocket.port, target.ports),
        timeoutMs,
      );
      return { ok: true };
    }
    if (probe.exec?.command) {
      const code = await target.exec(probe.exec.command, timeoutMs);
      return code === 0 ? { ok: true } : { ok: false, message: `command exited ${code}` };
    }
    return {
      ok: false,
      message: "unsupported probe handler (the local provider runs httpGet, tcpSocket and exec)",
    };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

export function resolvePort(port: number | string | object, ports: V1ContainerPort[]): number {
  if (typeof port === "number") return port;
  const text = String(port);
  if (/^\d+$/.test(text)) return Number(text);
  const named = ports.find((p) => p.name === text);
  if (!named) throw new Error(`named port "${text}" is not declared by the container`);
  return named.containerPort;
}

function httpGet(
  scheme: "http" | "https",
  host: string,
  port: number,
  path: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = (scheme === "https" ? httpsRequest : httpRequest)(
      {
        host,
        port,
        path,
        method: "GET",
        headers: { "User-Agent": "kube-probe/tph", ...headers },
        agent: false,
        rejectUnauthorized: false,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`probe timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`dial tcp ${host}:${port}: i/o timeout`)));
    socket.once("connect", () => {
      socket.destroy();
      resolve();
    });
    socket.once("error", reject);
  });
}
