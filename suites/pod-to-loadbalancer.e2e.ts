import { describe, it } from "vitest";
import { blackholed, sourceIpPreserved } from "../harness/assert/verdicts.ts";
import { waitFor } from "../harness/core/wait.ts";
import { waitOutcome, waitServing } from "../harness/traffic/run-probe.ts";
import { netexecPod, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { createClientPod, waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * A pod calling a LoadBalancer IP from inside the cluster: kube-proxy short-circuits it (treated as
 * Cluster even under externalTrafficPolicy Local), so a pod on a node without an endpoint is served, and
 * the backend sees the calling pod's own IP.
 */
describe.each(PROXY_MODES)("pod to LoadBalancer IP (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["l2LoadBalancer"],
    clusterName: `p2lb${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it("is served, from a node without a local endpoint too, and shows the pod's own IP", async () => {
    const [one, two] = await f.cluster.nodes();
    if (!one || !two) throw new Error("needs two nodes");
    await f.k8s.core.createNamespacedPod({
      namespace: f.ns,
      body: netexecPod("web", { node: one.name }),
    });
    await createClientPod(f.k8s, f.ns, "client", two.name);
    await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service("web", "web", { type: "LoadBalancer", externalTrafficPolicy: "Local" }),
    });
    await waitPodsReady(f.k8s, f.ns, "web", 1);
    const [client] = await waitPodsReady(f.k8s, f.ns, "client", 1);
    await waitEndpoints(f.k8s, f.ns, "web", 1);
    const ip = await waitFor(
      async () => {
        const a = (await f.k8s.core.readNamespacedService({ name: "web", namespace: f.ns })).status
          ?.loadBalancer?.ingress?.[0]?.ip;
        return a ? { done: true, value: a } : { done: false, state: "pending" };
      },
      { description: "an LB address", timeoutMs: 30_000 },
    );
    const source = { kind: "pod", namespace: f.ns, name: "client" } as const;
    await waitServing(f.cluster, source, { target: `${ip}:80` });
    const entries = await ledger.probe(f.cluster, `pod@${two.name}->lb`, source, {
      target: `${ip}:80`,
      path: "/clientip",
      count: 10,
    });
    ledger.expect(sourceIpPreserved(entries, client?.status?.podIP ?? ""));

    // Negative control, same client, same backend: the ClusterIP of a Service with
    // internalTrafficPolicy Local has no endpoint on the client's node, so the same pod is blackholed.
    const local = await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service("web-itp-local", "web", { type: "ClusterIP", internalTrafficPolicy: "Local" }),
    });
    await waitEndpoints(f.k8s, f.ns, "web-itp-local", 1);
    const target = `${local.spec?.clusterIP}:80`;
    await waitOutcome(f.cluster, source, { target, timeoutMs: 500 }, "timeout");
    const dropped = await ledger.probe(f.cluster, `pod@${two.name}->clusterip(iTP=Local)`, source, {
      target,
      count: 3,
      timeoutMs: 1_000,
    });
    ledger.expect(blackholed(dropped, "timeout"));
  });
});
