import { DiscoveryV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { waitFor } from "../harness/core/wait.ts";
import { outcomeOf, runProbe, waitOutcome } from "../harness/traffic/run-probe.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { netexecPod, service, waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * A LoadBalancer Service with externalTrafficPolicy: Local gets a healthCheckNodePort, served by
 * kube-proxy on every node: 200 with localEndpoints = N where the node has N ready endpoints, 503 with 0
 * elsewhere (that 503 is what keeps a load balancer away from a node that would blackhole). The ground
 * truth is the EndpointSlices. Switching the Service to Cluster releases the port on every node.
 */
describe.each(PROXY_MODES)("health-check node port (kube-proxy %s)", (mode) => {
  const f = useCluster({ clusterName: `hcnp${mode[0]}`, cluster: { proxyMode: mode } });

  it("agrees with the EndpointSlices on every node, and is released when the policy becomes Cluster", async () => {
    const ns = "default";
    const nodes = await f.cluster.nodes();
    const [first] = nodes;
    if (!first || nodes.length < 2) return expect.fail("needs two nodes");
    for (const i of [1, 2])
      await f.k8s.core.createNamespacedPod({
        namespace: ns,
        body: netexecPod(`web-${i}`, { node: first.name, labels: { app: "web" } }),
      });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web", "web", { type: "LoadBalancer", externalTrafficPolicy: "Local" }),
    });
    const hcnp = svc.spec?.healthCheckNodePort;
    expect(hcnp).toBeGreaterThan(0);
    await waitPodsReady(f.k8s, ns, "web", 2);
    await waitEndpoints(f.k8s, ns, "web", 2);

    // Ground truth: ready endpoints per node, from the EndpointSlices.
    const discovery = f.k8s.kubeconfig.makeApiClient(DiscoveryV1Api);
    const slices = await discovery.listNamespacedEndpointSlice({
      namespace: ns,
      labelSelector: "kubernetes.io/service-name=web",
    });
    const readyPerNode = new Map<string, number>();
    for (const e of slices.items.flatMap((s) => s.endpoints ?? [])) {
      if (e.conditions?.ready && e.nodeName)
        readyPerNode.set(e.nodeName, (readyPerNode.get(e.nodeName) ?? 0) + 1);
    }
    expect(readyPerNode.get(first.name)).toBe(2);

    for (const node of nodes) {
      const want = readyPerNode.get(node.name) ?? 0;
      const target = `${node.internalIP}:${hcnp}`;
      const health = await waitFor(
        async () => {
          const [entry] = await runProbe(f.cluster, { kind: "external" }, { target, path: "/healthz" });
          const body = entry?.body
            ? (JSON.parse(entry.body) as { localEndpoints: number; serviceProxyHealthy: boolean })
            : undefined;
          return body?.localEndpoints === want
            ? { done: true, value: { entry, body } }
            : { done: false, state: entry && outcomeOf(entry) };
        },
        {
          description: `health check on ${node.name} to report ${want} local endpoints`,
          timeoutMs: 15_000,
          intervalMs: 250,
        },
      );
      expect(health.entry?.status).toBe(want > 0 ? 200 : 503);
      expect(health.body).toMatchObject({
        service: { namespace: ns, name: "web" },
        localEndpoints: want,
        serviceProxyHealthy: true,
      });
    }

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
