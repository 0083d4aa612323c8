import { DiscoveryV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { type HealthSample, healthCheckMatchesEndpoints } from "../harness/assert/verdicts.ts";
import type { ClusterNode } from "../harness/cluster/provider.ts";
import { waitFor } from "../harness/core/wait.ts";
import { runProbe, waitOutcome } from "../harness/traffic/run-probe.ts";
import { netexecPod, service } from "../manifests/workloads.ts";
import { type ClusterFixture, PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * A LoadBalancer Service with externalTrafficPolicy: Local gets a healthCheckNodePort, served by
 * kube-proxy on every node: 200 with localEndpoints = N where the node has N ready endpoints, 503 with 0
 * elsewhere (the 503 keeps a health-checking load balancer away from a node that would blackhole). The
 * ground truth is the EndpointSlices, read at the same moment, over time while endpoints move:
 * 2 pods on node A; then one more on node B; then A's pods deleted (terminating: A must say 503 while
 * they still drain). Switching the Service to Cluster then releases the port on every node.
 */
describe.each(PROXY_MODES)("health-check node port (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["l2LoadBalancer", "externalClient"],
    clusterName: `hcnp${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it("agrees with the EndpointSlices on every node over time, and is released for Cluster", async () => {
    const ns = f.ns;
    const nodes = await f.cluster.nodes();
    const [a, b] = nodes;
    if (!a || !b) return expect.fail("needs two nodes");
    for (const name of ["web-a1", "web-a2"]) {
      // A long grace with --delay-shutdown keeps A's pods terminating (serving) for a while after deletion.
      const pod = netexecPod(name, { node: a.name, labels: { app: "web" }, args: ["--delay-shutdown=8"] });
      await f.k8s.core.createNamespacedPod({ namespace: ns, body: pod });
    }
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web", "web", { type: "LoadBalancer", externalTrafficPolicy: "Local" }),
    });
    const hcnp = svc.spec?.healthCheckNodePort ?? 0;
    expect(hcnp).toBeGreaterThan(0);
    await waitPodsReady(f.k8s, ns, "web", 2);
    await waitEndpoints(f.k8s, ns, "web", 2);
    const samples: HealthSample[] = [];
    // Each phase names the EndpointSlices' state it waits for (ready endpoints per node), so a sample taken
    // before the change reached the slices cannot count as settled.
    const phase = async (what: string, want: Record<string, number>) =>
      samples.push(...(await sampleWhenSettled(f, nodes, hcnp, what, want)));

    await phase("2 endpoints on A", { [a.name]: 2, [b.name]: 0 });
    await f.k8s.core.createNamespacedPod({
      namespace: ns,
      body: netexecPod("web-b1", { node: b.name, labels: { app: "web" } }),
    });
    await waitPodsReady(f.k8s, ns, "web", 3);
    await phase("2 on A, 1 on B", { [a.name]: 2, [b.name]: 1 });
    for (const name of ["web-a1", "web-a2"])
      await f.k8s.core.deleteNamespacedPod({ name, namespace: ns, gracePeriodSeconds: 30 });
    await phase("A's endpoints terminating, 1 on B", { [a.name]: 0, [b.name]: 1 });
    expect(samples.some((s) => s.node === a.name && s.status === 503)).toBe(true);
    ledger.expect(healthCheckMatchesEndpoints(samples));

    await f.k8s.core.patchNamespacedService({
      name: "web",
      namespace: ns,
      body: [{ op: "replace", path: "/spec/externalTrafficPolicy", value: "Cluster" }],
    });
    const patched = await f.k8s.core.readNamespacedService({ name: "web", namespace: ns });
    expect(patched.spec?.healthCheckNodePort).toBeUndefined();
    for (const node of nodes) {
      // No leaked listener: the port closes (refused) on every node.
      await waitOutcome(
        f.cluster,
        { kind: "external" },
        { target: `${node.internalIP}:${hcnp}`, mode: "tcp" },
        "refused",
      );
    }
  });
});

/** One health reading per node, next to the EndpointSlices' count of ready endpoints on that node. */
async function sample(f: ClusterFixture, nodes: ClusterNode[], hcnp: number): Promise<HealthSample[]> {
  const discovery = f.k8s.kubeconfig.makeApiClient(DiscoveryV1Api);
  const slices = await discovery.listNamespacedEndpointSlice({
    namespace: f.ns,
    labelSelector: "kubernetes.io/service-name=web",
  });
  const ready = new Map<string, number>();
  for (const e of slices.items.flatMap((s) => s.endpoints ?? [])) {
    if (e.conditions?.ready && e.nodeName) ready.set(e.nodeName, (ready.get(e.nodeName) ?? 0) + 1);
  }
  return Promise.all(
    nodes.map(async (node) => {
      const [entry] = await runProbe(
        f.cluster,
        { kind: "external" },
        { target: `${node.internalIP}:${hcnp}`, path: "/healthz" },
      );
      const body = entry?.body
        ? (JSON.parse(entry.body) as { localEndpoints?: number; serviceProxyHealthy?: boolean })
        : {};
      expect(body.serviceProxyHealthy).toBe(true);
      return {
        at: entry?.start ?? Date.now(),
        node: node.name,
        status: entry?.status ?? 0,
        localEndpoints: body.localEndpoints ?? -1,
        readyEndpoints: ready.get(node.name) ?? 0,
      };
    }),
  );
}

/**
 * Waits until the EndpointSlices show `want` (ready endpoints per node) and kube-proxy has caught up
 * with them (about a second), then samples three times. Waiting for agreement alone is not enough: right
 * after a change both sides may still show the old state and agree, and kube-proxy, rate-limited to one
 * sync a second, may then show an intermediate state (seen: localEndpoints 1 while the slices said 0,
 * after two pods were deleted one after the other).
 */
async function sampleWhenSettled(
  f: ClusterFixture,
  nodes: ClusterNode[],
  hcnp: number,
  what: string,
  want: Record<string, number>,
): Promise<HealthSample[]> {
  await waitFor(
    async () => {
      const s = await sample(f, nodes, hcnp);
      const reached = s.every((x) => want[x.node] === undefined || x.readyEndpoints === want[x.node]);
      return reached && healthCheckMatchesEndpoints(s).passed
        ? { done: true, value: undefined }
        : { done: false, state: s };
    },
    { description: `the health checks to settle (${what})`, timeoutMs: 15_000, intervalMs: 250 },
  );
  const out: HealthSample[] = [];
  for (let i = 0; i < 3; i++) {
    out.push(...(await sample(f, nodes, hcnp)));
    await new Promise((r) => setTimeout(r, 300));
  }
  return out;
}
