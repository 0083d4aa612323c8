import { describe, expect, it } from "vitest";
import { blackholed } from "../harness/assert/verdicts.ts";
import { waitFor } from "../harness/core/wait.ts";
import { announcingNode } from "../harness/metallb/announcer.ts";
import { clientIpOf, outcomeOf, runProbe, waitServing } from "../harness/traffic/run-probe.ts";
import { netexecDeployment, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * A LoadBalancer Service gets an address from MetalLB's pool and the external client reaches it, under
 * both traffic policies. With Local the backend sees the client's own IP; with Cluster it may not.
 */
const variants = [
  { policy: "Cluster", sourceIp: "any" },
  { policy: "Local", sourceIp: "preserved" },
] as const;

describe.each(PROXY_MODES)("LoadBalancer via MetalLB L2 (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["l2LoadBalancer", "externalClient"],
    clusterName: `lb${mode[0]}`,
    cluster: { proxyMode: mode },
  });

  it.each(variants)(
    "externalTrafficPolicy $policy: assigned from the pool, reachable from outside",
    async ({ policy, sourceIp }) => {
      const ns = f.ns;
      const name = `lb-${policy.toLowerCase()}`;
      const createdAt = Date.now();
      await f.k8s.apps.createNamespacedDeployment({ namespace: ns, body: netexecDeployment(name, 2) });
      await f.k8s.core.createNamespacedService({
        namespace: ns,
        body: service(name, name, { type: "LoadBalancer", externalTrafficPolicy: policy }),
      });
      const ip = await waitFor(
        async () => {
          const svc = await f.k8s.core.readNamespacedService({ name, namespace: ns });
          const assigned = svc.status?.loadBalancer?.ingress?.[0]?.ip;
          return assigned ? { done: true, value: assigned } : { done: false, state: svc.status };
        },
        { description: `an address for ${name}`, timeoutMs: 30_000, intervalMs: 100 },
      );
      const [low, high] = f.cluster.network.loadBalancerRange.split("-").map((a) => Number(a.split(".")[3]));
      const last = Number(ip.split(".")[3]);
      expect(last).toBeGreaterThanOrEqual(low ?? 0);
      expect(last).toBeLessThanOrEqual(high ?? 0);

      await waitPodsReady(f.k8s, ns, name, 2);
      await waitEndpoints(f.k8s, ns, name, 2);
      await waitServing(f.cluster, { kind: "external" }, { target: `${ip}:80` });
      const firstOkMs = Date.now() - createdAt;
      const entries = await runProbe(
        f.cluster,
        { kind: "external" },
        { target: `${ip}:80`, path: "/clientip", count: 10 },
      );
      expect(entries.map(outcomeOf)).toEqual(Array(10).fill("ok"));
      if (sourceIp === "preserved")
        for (const e of entries) expect(clientIpOf(e)).toBe(f.cluster.network.clientIP);
      // MetalLB writes its ServiceL2Status a moment after it starts answering ARP.
      const announcer = await waitFor(
        async () => {
          const node = await announcingNode(f.k8s, ns, name);
          return node ? { done: true, value: node } : { done: false, state: "no ServiceL2Status yet" };
        },
        { description: `a ServiceL2Status for ${name}`, timeoutMs: 15_000, intervalMs: 100 },
      );
      expect(announcer).toMatch(/-worker\d*$/);
      console.info(
        `[${mode}] ${policy}: Service created → first successful request in ${(firstOkMs / 1000).toFixed(2)} s`,
      );
    },
  );
});

/**
 * Negative control: externalTrafficPolicy Local with no endpoint that can serve. MetalLB gives the
 * Service an address but no node announces it, so the client's packets go nowhere: the harness must
 * report the blackhole (a timeout), not a pass.
 */
describe.each(PROXY_MODES)("LoadBalancer with no endpoint under eTP Local (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["l2LoadBalancer", "externalClient"],
    clusterName: `lbx${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it("is not announced, and the blackhole is caught", async () => {
    await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service("nobody", "matches-nothing", { type: "LoadBalancer", externalTrafficPolicy: "Local" }),
    });
    const ip = await waitFor(
      async () => {
        const svc = await f.k8s.core.readNamespacedService({ name: "nobody", namespace: f.ns });
        const assigned = svc.status?.loadBalancer?.ingress?.[0]?.ip;
        return assigned ? { done: true, value: assigned } : { done: false, state: svc.status };
      },
      { description: "an address for nobody", timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(await announcingNode(f.k8s, f.ns, "nobody")).toBeUndefined();
    const entries = await ledger.probe(
      f.cluster,
      "external->lb",
      { kind: "external" },
      { target: `${ip}:80`, count: 3, timeoutMs: 1_500 },
    );
    ledger.expect(blackholed(entries, "nowhere"));
  });
});
