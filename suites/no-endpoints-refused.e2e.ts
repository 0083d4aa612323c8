import { describe, expect, it } from "vitest";
import { outcomeOf, runProbe, waitOutcome } from "../harness/traffic/run-probe.ts";
import { service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { createClientPod, waitPodsReady } from "./support/workloads.ts";

/**
 * A Service with no endpoints anywhere is REJECTed: the client sees connection refused at once, not a
 * timeout. (The opposite, a timeout, is what a Local policy's blackhole looks like: see the eTP suite.)
 */
describe.each(PROXY_MODES)("service without endpoints (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["externalClient"],
    clusterName: `noep${mode[0]}`,
    cluster: { proxyMode: mode, nodes: [{}] },
  });

  it("refuses quickly, from outside and from a pod", async () => {
    const svc = await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service("empty", "matches-nothing", { type: "NodePort" }),
    });
    const [node] = await f.cluster.nodes();
    if (!node) return expect.fail("no node");
    await createClientPod(f.k8s, f.ns, "client", node.name);
    await waitPodsReady(f.k8s, f.ns, "client", 1);
    const paths = [
      {
        source: { kind: "external" } as const,
        target: `${node.internalIP}:${svc.spec?.ports?.[0]?.nodePort}`,
      },
      {
        source: { kind: "pod", namespace: f.ns, name: "client" } as const,
        target: `${svc.spec?.clusterIP}:80`,
      },
    ];
    for (const { source, target } of paths) {
      // kube-proxy programs the REJECT within its sync period; wait for it, then measure.
      await waitOutcome(f.cluster, source, { target, timeoutMs: 3_000 }, "refused");
      const entries = await runProbe(f.cluster, source, { target, count: 5, timeoutMs: 3_000 });
      expect(entries.map(outcomeOf)).toEqual(Array(5).fill("refused:ECONNREFUSED"));
      for (const e of entries) expect(e.end - e.start).toBeLessThan(500);
    }
  });
});
