import { describe, expect, it } from "vitest";
import { blackholed, noDrops, sourceIpPreserved } from "../harness/assert/verdicts.ts";
import { waitOutcome, waitServing } from "../harness/traffic/run-probe.ts";
import { netexecPod, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { createClientPod, waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * internalTrafficPolicy: Local keeps in-cluster traffic on the client's node. With the only backend on
 * node 1, a client on node 2 is blackholed: kube-proxy DROPs (timeout), it does not REJECT. Backed by a
 * DaemonSet, every node's clients are served locally, with zero drops.
 */
describe.each(PROXY_MODES)("internalTrafficPolicy Local (kube-proxy %s)", (mode) => {
  const f = useCluster({ clusterName: `itp${mode[0]}`, cluster: { proxyMode: mode } });
  const ledger = useLedger();

  it("blackholes clients on a node without an endpoint (negative control), serves the others", async () => {
    const [one, two] = await f.cluster.nodes();
    if (!one || !two) return expect.fail("needs two nodes");
    await f.k8s.core.createNamespacedPod({
      namespace: f.ns,
      body: netexecPod("only", { node: one.name }),
    });
    for (const n of [one, two]) await createClientPod(f.k8s, f.ns, `client-${n.name}`, n.name);
    const svc = await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service("only", "only", { type: "ClusterIP", internalTrafficPolicy: "Local" }),
    });
    await waitPodsReady(f.k8s, f.ns, "only", 1);
    const clients = await waitPodsReady(f.k8s, f.ns, "client", 2);
    await waitEndpoints(f.k8s, f.ns, "only", 1);
    const target = `${svc.spec?.clusterIP}:80`;
    const source = (node: string) => ({ kind: "pod", namespace: f.ns, name: `client-${node}` }) as const;

    await waitServing(f.cluster, source(one.name), { target });
    const local = await ledger.probe(f.cluster, `pod@${one.name}->clusterip`, source(one.name), {
      target,
      path: "/clientip",
      count: 5,
    });
    const podIP = clients.find((c) => c.spec?.nodeName === one.name)?.status?.podIP ?? "";
    ledger.expect(sourceIpPreserved(local, podIP));

    await waitOutcome(f.cluster, source(two.name), { target, timeoutMs: 1_000 }, "timeout");
    const remote = await ledger.probe(f.cluster, `pod@${two.name}->clusterip`, source(two.name), {
      target,
      count: 3,
      timeoutMs: 1_000,
    });
    ledger.expect(blackholed(remote, "timeout"));
  });

  it("backed by a DaemonSet: every node's clients are served, zero drops", async () => {
    const nodes = await f.cluster.nodes();
    const pod = netexecPod("ds");
    await f.k8s.apps.createNamespacedDaemonSet({
      namespace: f.ns,
      body: {
        metadata: { name: "ds" },
        spec: {
          selector: { matchLabels: { app: "ds" } },
          template: { metadata: pod.metadata, spec: pod.spec },
        },
      },
    });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service("ds", "ds", { type: "ClusterIP", internalTrafficPolicy: "Local" }),
    });
    await waitPodsReady(f.k8s, f.ns, "ds", nodes.length);
    // A client on every node: the test above made them on its two nodes only.
    const have = (await f.k8s.core.listNamespacedPod({ namespace: f.ns, labelSelector: "app=client" })).items;
    for (const n of nodes)
      if (!have.some((p) => p.metadata?.name === `client-${n.name}`))
        await createClientPod(f.k8s, f.ns, `client-${n.name}`, n.name);
    await waitPodsReady(f.k8s, f.ns, "client", nodes.length);
    await waitEndpoints(f.k8s, f.ns, "ds", nodes.length);
    const target = `${svc.spec?.clusterIP}:80`;
    for (const node of nodes) {
      const source = { kind: "pod", namespace: f.ns, name: `client-${node.name}` } as const;
      await waitServing(f.cluster, source, { target });
      const entries = await ledger.probe(f.cluster, `pod@${node.name}->clusterip`, source, {
        target,
        path: "/hostname",
        count: 20,
      });
      ledger.expect(noDrops(entries));
      // Served on the client's own node: every answer comes from that node's DaemonSet pod.
      const local = (
        await f.k8s.core.listNamespacedPod({ namespace: f.ns, labelSelector: "app=ds" })
      ).items.find((p) => p.spec?.nodeName === node.name);
      expect(new Set(entries.map((e) => e.body))).toEqual(new Set([local?.metadata?.name]));
    }
  });
});
