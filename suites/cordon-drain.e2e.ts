import { PolicyV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { noDrops, ranThroughout, windows } from "../harness/assert/verdicts.ts";
import { cordon, type DisruptContext, drain, uncordon } from "../harness/disrupt/actions.ts";
import { deployProbeClients, pathsFromClients } from "../harness/traffic/clients.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import type { TrafficPath } from "../harness/traffic/stream.ts";
import { backendDeployment } from "../manifests/backends.ts";
import { service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitLoadBalancerIP, waitPodsReady } from "./support/workloads.ts";

/**
 * Cordon alone changes nothing for traffic (it only stops new pods landing). Drain goes through the
 * eviction API, so a PodDisruptionBudget decides: one that allows no disruption blocks it (the control:
 * the harness sees the refusal and traffic is untouched), one that allows it lets a correctly spread,
 * correctly terminating Deployment move with zero drops.
 */
describe.each(PROXY_MODES)("cordon and drain under traffic (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["nodeDisruption", "l2LoadBalancer", "externalClient"],
    clusterName: `drain${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();
  const ns = f.ns;

  async function setup(): Promise<{ paths: TrafficPath[]; nodes: string[] }> {
    const nodes = (await f.cluster.nodes()).map((n) => n.name);
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: backendDeployment("web", 2, { safe: true, spread: true }),
    });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web", "web", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" }),
    });
    const clients = await deployProbeClients(f.k8s, ns, nodes);
    await waitEndpoints(f.k8s, ns, "web", 2);
    const lb = `${await waitLoadBalancerIP(f.k8s, ns, "web")}:80`;
    await waitServing(f.cluster, { kind: "external" }, { target: lb });
    return {
      nodes,
      paths: [
        { name: "external->lb", source: { kind: "external" }, target: lb, path: "/hostname", rate: 50 },
        ...pathsFromClients(clients, ns, `${svc.spec?.clusterIP}:80`, { rate: 20 }),
      ],
    };
  }

  async function budget(minAvailable: number) {
    const policy = f.k8s.kubeconfig.makeApiClient(PolicyV1Api);
    const body = {
      metadata: { name: "web" },
      spec: { minAvailable, selector: { matchLabels: { app: "web" } } },
    };
    await policy.deleteNamespacedPodDisruptionBudget({ name: "web", namespace: ns }).catch(() => undefined);
    await policy.createNamespacedPodDisruptionBudget({ namespace: ns, body });
    // The disruption controller computes what the budget allows; evictions are judged on that.
    await expect
      .poll(
        async () =>
          (await policy.readNamespacedPodDisruptionBudget({ name: "web", namespace: ns })).status
            ?.observedGeneration,
        { timeout: 15_000, interval: 200 },
      )
      .toBeGreaterThan(0);
  }

  it("cordon changes nothing; drain is blocked by a budget that allows no disruption, then moves the pod with zero drops", async () => {
    const { paths } = await setup();
    // The node to drain runs a backend (on a cluster with more nodes than replicas, not every node does).
    const backends = await f.k8s.core.listNamespacedPod({ namespace: ns, labelSelector: "app=web" });
    const first = backends.items.map((p) => p.spec?.nodeName).find((n) => n !== undefined);
    if (!first) return expect.fail("no node runs a backend");
    const ctx: DisruptContext = ledger.disrupt(f.cluster, f.k8s);
    await budget(2);
    const traffic = await ledger.traffic(f.cluster, paths);
    await traffic.flowing();

    await cordon(ctx, first);
    await new Promise((r) => setTimeout(r, 3_000));
    const cordoned = ledger.timeline.last("cordon");

    // Control: minAvailable 2 of 2 allows no eviction; the drain must fail, saying why.
    await expect(drain(ctx, first, { timeoutMs: 5_000 })).rejects.toThrow(
      /PodDisruptionBudget keeps refusing/,
    );
    await budget(1);
    const result = await drain(ctx, first);
    expect(result.evicted).toHaveLength(1);
    await waitPodsReady(f.k8s, ns, "web", 2);
    await new Promise((r) => setTimeout(r, 2_000));
    await uncordon(ctx, first);
    const { entries, exits } = await traffic.stop();

    ledger.expect(ranThroughout(exits));
    ledger.expect(noDrops(windows(entries, { start: cordoned.start, end: cordoned.start + 3_000 }).during));
    ledger.expect(noDrops(entries));
    // Both replicas now run on the other node: the drain did move the pod.
    const pods = await f.k8s.core.listNamespacedPod({ namespace: ns, labelSelector: "app=web" });
    expect(
      pods.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.spec?.nodeName),
    ).not.toContain(first);
  });
});
