import { describe, expect, it } from "vitest";
import { blackholed, type LedgerEntry, noDrops, ranThroughout } from "../harness/assert/verdicts.ts";
import { rollout } from "../harness/disrupt/actions.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import { netexecDeployment, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * A rollout that moves an externalTrafficPolicy Local backend from node A to node B. While the old pod
 * on A terminates (netexec --delay-shutdown keeps it serving, no readiness probe turns it off), A has no
 * ready local endpoint, only a serving+terminating one:
 * - kube-proxy falls back to it: NodePort on A keeps answering, from the old pod;
 * - A's health-check node port already says 503, so a load balancer stops choosing A;
 * - once the old pod is gone, NodePort on A drops (the eTP Local blackhole, which the harness must see).
 */
describe.each(PROXY_MODES)("terminating fallback under eTP Local (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["l2LoadBalancer", "externalClient"],
    clusterName: `tfb${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it("serves from the terminating pod while the health check says 503, then blackholes", async () => {
    const ns = f.ns;
    const [a, b] = await f.cluster.nodes();
    if (!a || !b) return expect.fail("needs two nodes");
    const delay = 8;
    const deployment = netexecDeployment("web", 1, { node: a.name });
    const container = deployment.spec?.template.spec?.containers[0];
    if (container) container.args = [...(container.args ?? []), `--delay-shutdown=${delay}`];
    if (deployment.spec?.template.spec)
      deployment.spec.template.spec.terminationGracePeriodSeconds = delay + 20;
    if (deployment.spec) deployment.spec.strategy = { rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } };
    await f.k8s.apps.createNamespacedDeployment({ namespace: ns, body: deployment });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web", "web", { type: "LoadBalancer", externalTrafficPolicy: "Local" }),
    });
    const [old] = await waitPodsReady(f.k8s, ns, "web", 1);
    const oldName = old?.metadata?.name;
    await waitEndpoints(f.k8s, ns, "web", 1);
    const nodePort = `${a.internalIP}:${svc.spec?.ports?.[0]?.nodePort}`;
    const hcnp = `${a.internalIP}:${svc.spec?.healthCheckNodePort}`;
    await waitServing(f.cluster, { kind: "external" }, { target: nodePort });

    const traffic = await ledger.traffic(f.cluster, [
      {
        name: `external->nodeport@${a.name}`,
        source: { kind: "external" },
        target: nodePort,
        path: "/hostname",
        rate: 20,
      },
      // The health check as a load balancer polls it; 503 is an answer here, not a failure of the probe.
      { name: `external->hcnp@${a.name}`, source: { kind: "external" }, target: hcnp, rate: 10 },
    ]);
    await traffic.flowing();
    await rollout(
      ledger.disrupt(f.cluster, f.k8s),
      { kind: "Deployment", namespace: ns, name: "web" },
      { spec: { nodeSelector: { "kubernetes.io/hostname": b.name } } },
      `move to ${b.name}`,
    );
    // Past the old pod's exit, so the ledger shows the blackhole that follows.
    await new Promise((r) => setTimeout(r, (delay + 4) * 1000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));

    const byPath = (p: string) => entries.filter((e) => e.path.startsWith(p));
    const health = byPath("external->hcnp");
    const served = byPath("external->nodeport");
    const firstUnhealthy = health.find((e) => e.status === 503);
    if (!firstUnhealthy)
      return expect.fail(`the health check never said 503: ${health.map((e) => e.outcome).join(" ")}`);
    const lastOk = served.filter((e) => e.outcome === "ok").at(-1) as LedgerEntry;
    // Before the rollout took the endpoint's readiness away: healthy and served.
    ledger.expect(noDrops(health.filter((e) => e.end < firstUnhealthy.start)));
    // The fallback window: health check 503 with 0 local endpoints, and A still serves from the old pod.
    const fallback = served.filter((e) => e.start > firstUnhealthy.end && e.end <= lastOk.end);
    ledger.expect(noDrops(fallback));
    expect(new Set(fallback.map((e) => e.body))).toEqual(new Set([oldName]));
    expect(lastOk.end - firstUnhealthy.start).toBeGreaterThan((delay - 3) * 1000);
    for (const h of health.filter((e) => e.start > firstUnhealthy.end && e.end <= lastOk.end))
      expect([h.status, JSON.parse(h.body ?? "{}").localEndpoints]).toEqual([503, 0]);
    // Negative control: after the old pod exited, NodePort on A (no endpoint left there) is a blackhole.
    ledger.expect(
      blackholed(
        served.filter((e) => e.start > lastOk.end + 1_500),
        "timeout",
      ),
    );
  });
});
