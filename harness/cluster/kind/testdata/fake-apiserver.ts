import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parse } from "yaml";

/**
 * A stand-in for the API server of the cluster `kind create` made, for the kind provider's unit tests:
 * just what bring-up and the cluster's methods call. Discovery lists the kinds it is told about;
 * server-side apply stores the object under its path; reads return what was applied or seeded, with a
 * Deployment or DaemonSet reported available (its controller "runs"). Every request is recorded as "METHOD path".
 */
export interface FakeApiServer {
  url: string;
  requests: string[];
  /** Objects by API path (/apis/apps/v1/namespaces/ns/deployments/name). */
  objects: Map<string, Record<string, unknown>>;
  close(): Promise<void>;
}

export interface FakeKind {
  apiVersion: string;
  kind: string;
  namespaced: boolean;
}

/** The plural resource name the API uses for a kind (enough for the kinds MetalLB ships). */
export function pluralOf(kind: string): string {
  const lower = kind.toLowerCase();
  if (lower.endsWith("s")) return `${lower}es`;
  if (lower.endsWith("y")) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

export function pathOf(k: FakeKind, name: string, namespace?: string): string {
  const base = k.apiVersion.includes("/") ? `/apis/${k.apiVersion}` : `/api/${k.apiVersion}`;
  const ns = k.namespaced ? `/namespaces/${namespace ?? "default"}` : "";
  return `${base}${ns}/${pluralOf(k.kind)}/${name}`;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startFakeApiServer(
  kinds: FakeKind[],
  seed: Record<string, unknown>[] = [],
): Promise<FakeApiServer> {
  const requests: string[] = [];
  const objects = new Map<string, Record<string, unknown>>();
  const kindOf = (apiVersion: string, kind: string) =>
    kinds.find((k) => k.apiVersion === apiVersion && k.kind === kind);
  for (const o of seed) {
    const meta = o.metadata as { name: string; namespace?: string };
    const k = kindOf(o.apiVersion as string, o.kind as string);
    if (!k) throw new Error(`seed object of unknown kind ${o.apiVersion} ${o.kind}`);
    objects.set(pathOf(k, meta.name, meta.namespace), o);
  }
  const send = (res: import("node:http").ServerResponse, code: number, value: unknown) => {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(value));
  };
  const notFound = (path: string) => ({
    kind: "Status",
    apiVersion: "v1",
    status: "Failure",
    reason: "NotFound",
    code: 404,
    message: `${path} not found`,
  });

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://fake");
      const path = decodeURIComponent(url.pathname);
      requests.push(`${req.method} ${path}`);
      // Discovery: /api/v1 or /apis/GROUP/VERSION.
      const discovery = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))$/.exec(path);
      if (req.method === "GET" && discovery) {
        const groupVersion = discovery[1] ?? discovery[2] ?? "";
        return send(res, 200, {
          kind: "APIResourceList",
          apiVersion: "v1",
          groupVersion,
          resources: kinds
            .filter((k) => k.apiVersion === groupVersion)
            .map((k) => ({
              name: pluralOf(k.kind),
              singularName: k.kind.toLowerCase(),
              namespaced: k.namespaced,
              kind: k.kind,
              verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
            })),
        });
      }
      if (req.method === "PATCH") {
        // Server-side apply sends YAML (JSON is YAML too).
        const o = parse(await body(req)) as Record<string, unknown>;
        objects.set(path, o);
        return send(res, 200, o);
      }
      if (req.method === "GET") {
        const o = objects.get(path);
        if (o) {
          if (o.kind === "Deployment") return send(res, 200, { ...o, status: { availableReplicas: 1 } });
          if (o.kind === "DaemonSet" && !o.status)
            return send(res, 200, { ...o, status: { desiredNumberScheduled: 3, numberAvailable: 3 } });
          return send(res, 200, o);
        }
        // A list: every stored object directly under the path.
        const items = [...objects.entries()]
          .filter(([p]) => p.startsWith(`${path}/`) && !p.slice(path.length + 1).includes("/"))
          .map(([, v]) => v);
        if (items.length > 0) return send(res, 200, { kind: "List", apiVersion: "v1", metadata: {}, items });
        return send(res, 404, notFound(path));
      }
      return send(res, 405, { kind: "Status", code: 405, message: `${req.method} not faked` });
    })().catch((err: unknown) => send(res, 500, { kind: "Status", code: 500, message: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    objects,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
