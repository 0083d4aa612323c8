import { DiscoveryV1Api, type V1EndpointConditions } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { waitFor } from "../harness/core/wait.ts";
import type { ProbeEntry } from "../harness/traffic/probe.ts";
import { runProbe, waitServing } from "../harness/traffic/run-probe.ts";
import { netexecPod, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * Deleting a pod run with agnhost netexec --delay-shutdown: its endpoint turns serving + terminating
 * (not ready), traffic still reaches it (kube-proxy falls back to serving terminating endpoints when no
 * ready one is left) until the process exits, and then the endpoint is gone and the Service refuses.
 * A request in flight at the instant the process exits is reset by the exit itself.
 */
describe.each(PROXY_MODES)("terminating endpoints (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["externalClient"],
    clusterName: `term${mode[0]}`,
    cluster: { proxyMode: mode, nodes: [{}] },
  });

  it("keep serving while terminating, then disappear", async () => {
    const ns = f.ns;
    const delaySeconds = 5;
    await f.k8s.core.createNamespacedPod({
      namespace: ns,
      body: netexecPod("term", { args: [`--delay-shutdown=${delaySeconds}`] }),
    });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("term", "term", { type: "NodePort" }),
    });
    await waitPodsReady(f.k8s, ns, "term", 1);
    await waitEndpoints(f.k8s, ns, "term", 1);
    const [node] = await f.cluster.nodes();
    const target = `${node?.internalIP}:${svc.spec?.ports?.[0]?.nodePort}`;
    await waitServing(f.cluster, { kind: "external" }, { target });

    const discovery = f.k8s.kubeconfig.makeApiClient(DiscoveryV1Api);
    const conditions = async (): Promise<V1EndpointConditions | undefined> => {
      const slices = await discovery.listNamespacedEndpointSlice({
        namespace: ns,
        labelSelector: "kubernetes.io/service-name=term",
      });
      return slices.items.flatMap((s) => s.endpoints ?? [])[0]?.conditions;
    };

    const deletedAt = Date.now();
    await f.k8s.core.deleteNamespacedPod({ name: "term", namespace: ns, gracePeriodSeconds: 30 });
    const terminating = await waitFor(
      async () => {
        const c = await conditions();
        return c?.terminating ? { done: true, value: c } : { done: false, state: c };
      },
      { description: "the endpoint to turn terminating", timeoutMs: 5_000, intervalMs: 100 },
    );
    expect(terminating).toMatchObject({ ready: false, serving: true, terminating: true });

    // Keep probing until the endpoint is gone and the Service refuses; every answer meanwhile is the pod's.
    // A refusal while the endpoint is still listed is the pod's own kernel (netexec has exited, its
    // namespace not yet deleted): only one sent after the slice lost the endpoint is the Service's.
    const entries: ProbeEntry[] = [];
    await waitFor(
      async () => {
        const gone = (await conditions()) === undefined;
        const [e] = await runProbe(
          f.cluster,
          { kind: "external" },
          { target, path: "/hostname", timeoutMs: 1_000 },
        );
        if (e) entries.push(e);
        return gone && e?.outcome === "refused"
          ? { done: true, value: undefined }
          : { done: false, state: { endpointGone: gone, outcome: e?.outcome } };
      },
      {
        description: "the Service to refuse once the pod is gone",
        timeoutMs: (delaySeconds + 15) * 1000,
        intervalMs: 100,
      },
    );
    const served = entries.filter((e) => e.outcome === "ok");
    expect(served.length).toBeGreaterThan(3);
    for (const e of served) expect(e.body).toBe("term");
    // Served for about the delay-shutdown window after deletion, not cut short at deletion.
    const lastServed = Math.max(...served.map((e) => e.end)) - deletedAt;
    expect(lastServed).toBeGreaterThan((delaySeconds - 1.5) * 1000);
    // While it serves, nothing fails. After its last answer the process exits: a request caught in that
    // instant is reset by the exit (netexec's os.Exit closes the listener under it; one such request at
    // most), then it and the Service refuse. A timeout anywhere would be a blackhole.
    const last = entries.findLastIndex((e) => e.outcome === "ok");
    expect(entries.slice(0, last).filter((e) => e.outcome !== "ok")).toEqual([]);
    const after = entries.slice(last + 1);
    expect(after.filter((e) => e.outcome !== "refused" && e.outcome !== "reset")).toEqual([]);
    expect(after.filter((e) => e.outcome === "reset").length).toBeLessThanOrEqual(1);
    expect(await conditions()).toBeUndefined();
  });
});
