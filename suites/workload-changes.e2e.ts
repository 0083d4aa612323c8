import { describe, expect, it } from "vitest";
import { blackholed, noDrops, ranThroughout, recoveredWithin, windows } from "../harness/assert/verdicts.ts";
import { deletePod, scale, setTrafficPolicy } from "../harness/disrupt/actions.ts";
import { deployProbeClients, pathsFromClients } from "../harness/traffic/clients.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import { backendDeployment } from "../manifests/backends.ts";
import { netexecDeployment, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitLoadBalancerIP, waitPodsReady } from "./support/workloads.ts";

/**
 * The everyday changes besides rollouts, under traffic:
 * - scaling a safe backend up and down and deleting one of its pods drops nothing;
 * - flipping a Service's externalTrafficPolicy live from Cluster to Local makes a node without an
 *   endpoint drop its NodePort traffic from that moment (the blackhole, caught and located), while the
 *   node with the endpoint keeps serving; flipping back heals it.
 */
describe.each(PROXY_MODES)("workload and Service changes under traffic (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["l2LoadBalancer", "externalClient"],
    clusterName: `wchg${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it("scale up, scale down and a pod delete drop nothing", async () => {
    const ns = f.ns;
    const nodes = (await f.cluster.nodes()).map((n) => n.name);
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: backendDeployment("web", 2, { safe: true }),
    });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web", "web", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" }),
    });
    const clients = await deployProbeClients(f.k8s, ns, nodes);
    await waitEndpoints(f.k8s, ns, "web", 2);
    const lb = `${await waitLoadBalancerIP(f.k8s, ns, "web")}:80`;
    await waitServing(f.cluster, { kind: "external" }, { target: lb });
    // A failure on the LB path then stands next to the node it entered (an announcement move would show).
    ledger.followAnnouncer(f.k8s, ns, "web");
    const traffic = await ledger.traffic(f.cluster, [
      { name: "external->lb", source: { kind: "external" }, target: lb, path: "/hostname", rate: 50 },
      ...pathsFromClients(clients, ns, `${svc.spec?.clusterIP}:80`, { rate: 20 }),
    ]);
    await traffic.flowing();
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    const web = { kind: "Deployment" as const, namespace: ns, name: "web" };
    await scale(ctx, web, 4);
    await scale(ctx, web, 2);
    const [victim] = await waitPodsReady(f.k8s, ns, "web", 2);
    await deletePod(ctx, ns, victim?.metadata?.name as string);
    await waitPodsReady(f.k8s, ns, "web", 2);
    // The deleted pod keeps serving through its --delay-shutdown; stop once it has exited.
    await new Promise((r) => setTimeout(r, 7_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));
    ledger.expect(noDrops(entries));
  });

  it("a live flip to externalTrafficPolicy Local blackholes the node without an endpoint; flipping back heals it", async () => {
    const ns = f.ns;
    const [a, b] = await f.cluster.nodes();
    if (!a || !b) return expect.fail("needs two nodes");
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: netexecDeployment("flip", 1, { node: a.name }),
    });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("flip", "flip", { type: "NodePort", externalTrafficPolicy: "Cluster" }),
    });
    await waitEndpoints(f.k8s, ns, "flip", 1);
    const port = svc.spec?.ports?.[0]?.nodePort;
    const viaA = `external->nodeport@${a.name}`;
    const viaB = `external->nodeport@${b.name}`;
    await waitServing(f.cluster, { kind: "external" }, { target: `${b.internalIP}:${port}` });
    const traffic = await ledger.traffic(f.cluster, [
      {
        name: viaA,
        source: { kind: "external" },
        target: `${a.internalIP}:${port}`,
        rate: 20,
        timeoutMs: 500,
      },
      {
        name: viaB,
        source: { kind: "external" },
        target: `${b.internalIP}:${port}`,
        rate: 20,
        timeoutMs: 500,
      },
    ]);
    await traffic.flowing();
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    await new Promise((r) => setTimeout(r, 2_000));
    await setTrafficPolicy(ctx, ns, "flip", { externalTrafficPolicy: "Local" });
    await new Promise((r) => setTimeout(r, 5_000));
    await setTrafficPolicy(ctx, ns, "flip", { externalTrafficPolicy: "Cluster" });
    await new Promise((r) => setTimeout(r, 5_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));
    const [toLocal, toCluster] = ledger.timeline.events;
    if (!toLocal || !toCluster) return expect.fail("both flips belong on the timeline");
    const on = (path: string) => entries.filter((e) => e.path === path);
    // Before the flip both nodes serve; the node with the endpoint serves throughout.
    ledger.expect(noDrops(windows(on(viaB), toLocal).before));
    ledger.expect(noDrops(on(viaA)));
    // kube-proxy programs the flip within about a second: from then until the flip back, B drops.
    ledger.expect(
      blackholed(
        on(viaB).filter((e) => e.start > toLocal.end + 1_500 && e.end < toCluster.start),
        "timeout",
      ),
    );
    ledger.expect(recoveredWithin(on(viaB), toCluster.end, 2_000));
  });
});
