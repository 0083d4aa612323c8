import type {
  V1DaemonSet,
  V1Deployment,
  V1EndpointSlice,
  V1Node,
  V1Pod,
  V1Service,
} from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { atOrAbove, audit, type ClusterSnapshot, renderFindings } from "./rules.ts";

/**
 * Each rule both ways: a manifest set that must raise it, and its fixed counterpart that must not. The
 * objects are what the API server returns for a 3-node cluster (names w1..w3).
 */
const node = (n: string, zone?: string): V1Node => ({
  metadata: {
    name: n,
    labels: { "kubernetes.io/hostname": n, ...(zone && { "topology.kubernetes.io/zone": zone }) },
  },
  status: { conditions: [{ type: "Ready", status: "True" }] },
});
const NODES = [node("w1", "a"), node("w2", "b"), node("w3", "c")];

function svc(name: string, spec: V1Service["spec"], annotations?: Record<string, string>): V1Service {
  return {
    metadata: { name, namespace: "prod", ...(annotations && { annotations }) },
    spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec },
  };
}

/** Backends of `app` on the given nodes (one pod each entry), owned by a Deployment or a DaemonSet. */
function backends(app: string, on: string[], owner: { kind: "Deployment" | "DaemonSet"; name: string }) {
  const pods: V1Pod[] = on.map((n, i) => ({
    metadata: {
      name: `${app}-${i}`,
      namespace: "prod",
      labels: { app },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: owner.kind === "Deployment" ? "ReplicaSet" : "DaemonSet",
          name: owner.kind === "Deployment" ? `${owner.name}-5d8f` : owner.name,
          uid: "u",
        },
      ],
    },
    spec: { nodeName: n, containers: [] },
  }));
  const slice: V1EndpointSlice = {
    addressType: "IPv4",
    metadata: { name: `${app}-x`, namespace: "prod", labels: { "kubernetes.io/service-name": app } },
    endpoints: on.map((n, i) => ({
      addresses: [`10.244.${i}.5`],
      nodeName: n,
      conditions: { ready: true },
      targetRef: { kind: "Pod", name: `${app}-${i}` },
    })),
  };
  return { pods, slice };
}

function deployment(name: string, replicas: number, surgeFirst: boolean): V1Deployment {
  return {
    metadata: { name, namespace: "prod" },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: surgeFirst ? { maxSurge: 1, maxUnavailable: 0 } : { maxUnavailable: 1 },
      },
      template: { metadata: { labels: { app: name } } },
    },
  };
}

function daemonSet(name: string, surge: boolean): V1DaemonSet {
  return {
    metadata: { name, namespace: "prod" },
    spec: {
      selector: { matchLabels: { app: name } },
      updateStrategy: {
        type: "RollingUpdate",
        rollingUpdate: surge ? { maxSurge: 1, maxUnavailable: 0 } : { maxUnavailable: 1 },
      },
      template: { metadata: { labels: { app: name } } },
    },
  };
}

function snapshot(
  parts: Partial<ClusterSnapshot> & { backends?: ReturnType<typeof backends>[] },
): ClusterSnapshot {
  return {
    nodes: parts.nodes ?? NODES,
    services: parts.services ?? [],
    endpointSlices: (parts.backends ?? []).map((b) => b.slice),
    pods: (parts.backends ?? []).flatMap((b) => b.pods),
    deployments: parts.deployments ?? [],
    daemonSets: parts.daemonSets ?? [],
    pdbs: parts.pdbs ?? [],
  };
}

const pdb = (app: string) => ({
  metadata: { name: app, namespace: "prod" },
  spec: { maxUnavailable: 1, selector: { matchLabels: { app } } },
});
const rules = (s: ClusterSnapshot) => audit(s).map((f) => `${f.service} ${f.rule}`);

describe("audit rules", () => {
  it("eTP Local with an endpoint on one of three nodes: the other two drop (a NodePort: high)", () => {
    const unsafe = snapshot({
      services: [svc("web", { type: "NodePort", externalTrafficPolicy: "Local" })],
      backends: [backends("web", ["w1", "w1"], { kind: "Deployment", name: "web" })],
      deployments: [deployment("web", 2, true)],
      pdbs: [pdb("web")],
    });
    const [f] = audit(unsafe).filter((x) => x.rule === "etp-local-node-without-endpoint");
    expect(f).toMatchObject({ severity: "high", nodes: ["w2", "w3"] });
    // Fixed: a DaemonSet with surge-first rollouts on every node.
    const safe = snapshot({
      services: [svc("web", { type: "NodePort", externalTrafficPolicy: "Local" })],
      backends: [backends("web", ["w1", "w2", "w3"], { kind: "DaemonSet", name: "web" })],
      daemonSets: [daemonSet("web", true)],
    });
    expect(rules(safe)).toEqual([]);
  });

  it("eTP Local on one replica: single replica, no endpoint elsewhere, no PDB, unsafe rollout", () => {
    const s = snapshot({
      services: [
        svc("one", { type: "LoadBalancer", externalTrafficPolicy: "Local", healthCheckNodePort: 31000 }),
      ],
      backends: [backends("one", ["w2"], { kind: "Deployment", name: "one" })],
      deployments: [deployment("one", 1, false)],
    });
    expect(rules(s).sort()).toEqual([
      "prod/one etp-local-node-without-endpoint",
      "prod/one local-no-pdb",
      "prod/one local-rollout-not-surge-first",
      "prod/one local-single-replica",
    ]);
    // A LoadBalancer that may honour the health-check node port: medium, with the port as evidence.
    const lb = audit(s).find((f) => f.rule === "etp-local-node-without-endpoint");
    expect(lb?.severity).toBe("medium");
    expect(lb?.evidence.join(" ")).toMatch(/healthCheckNodePort 31000/);
  });

  it("iTP Local without a DaemonSet drops clients on nodes without an endpoint; a DaemonSet fixes it", () => {
    const unsafe = snapshot({
      services: [svc("cache", { type: "ClusterIP", internalTrafficPolicy: "Local" })],
      backends: [backends("cache", ["w1", "w2"], { kind: "Deployment", name: "cache" })],
      deployments: [deployment("cache", 2, true)],
      pdbs: [pdb("cache")],
    });
    expect(rules(unsafe)).toEqual(["prod/cache itp-local-client-node-without-endpoint"]);
    expect(audit(unsafe)[0]?.nodes).toEqual(["w3"]);
    const safe = snapshot({
      services: [svc("cache", { type: "ClusterIP", internalTrafficPolicy: "Local" })],
      backends: [backends("cache", ["w1", "w2", "w3"], { kind: "DaemonSet", name: "cache" })],
      daemonSets: [daemonSet("cache", true)],
    });
    expect(rules(safe)).toEqual([]);
  });

  it("a DaemonSet rolled without surge blackholes each node in turn", () => {
    const s = snapshot({
      services: [svc("agent", { type: "NodePort", externalTrafficPolicy: "Local" })],
      backends: [backends("agent", ["w1", "w2", "w3"], { kind: "DaemonSet", name: "agent" })],
      daemonSets: [daemonSet("agent", false)],
    });
    expect(rules(s)).toEqual(["prod/agent local-rollout-not-surge-first"]);
  });

  it("zone routing with an endpoint on a zoneless node; labelled nodes clear it", () => {
    const parts = {
      services: [svc("api", { type: "ClusterIP", trafficDistribution: "PreferSameZone" })],
      backends: [backends("api", ["w1", "w3"], { kind: "Deployment" as const, name: "api" })],
      deployments: [deployment("api", 2, true)],
    };
    const unsafe = snapshot({ ...parts, nodes: [node("w1", "a"), node("w2", "b"), node("w3")] });
    expect(rules(unsafe)).toEqual(["prod/api zone-routing-zoneless-endpoint"]);
    expect(rules(snapshot(parts))).toEqual([]);
  });

  it("uneven endpoints per node under eTP Local: the per-pod load is stated", () => {
    const s = snapshot({
      services: [svc("skew", { type: "LoadBalancer", externalTrafficPolicy: "Local" })],
      backends: [backends("skew", ["w1", "w1", "w1", "w2", "w3"], { kind: "Deployment", name: "skew" })],
      deployments: [deployment("skew", 5, true)],
      pdbs: [pdb("skew")],
    });
    const [f] = audit(s);
    expect(f?.rule).toBe("etp-local-uneven-load");
    expect(f?.summary).toMatch(/a node with 1 gets 33% .* a node with 3 gets 11%/);
  });

  it("leaves Cluster-policy Services alone, and filters by severity", () => {
    const s = snapshot({
      services: [svc("plain", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" })],
      backends: [backends("plain", ["w1"], { kind: "Deployment", name: "plain" })],
      deployments: [deployment("plain", 1, false)],
    });
    expect(audit(s)).toEqual([]);
    expect(renderFindings([], 0)).toMatch(/no findings/);
    const one = snapshot({
      services: [svc("one", { type: "LoadBalancer", externalTrafficPolicy: "Local" })],
      backends: [backends("one", ["w2"], { kind: "Deployment", name: "one" })],
      deployments: [deployment("one", 1, true)],
      pdbs: [pdb("one")],
    });
    expect(atOrAbove(audit(one), "high").map((f) => f.rule)).toEqual(["local-single-replica"]);
  });
});

describe("docs/audit.md", () => {
  it("documents every rule", async () => {
    const { readFile } = await import("node:fs/promises");
    const { AUDIT_RULES } = await import("./rules.ts");
    const doc = await readFile(new URL("../../docs/audit.md", import.meta.url), "utf8");
    for (const r of AUDIT_RULES) expect(doc, r.id).toContain(`\`${r.id}\``);
  });
});
