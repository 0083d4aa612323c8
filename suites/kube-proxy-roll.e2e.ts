import { describe, expect, it } from "vitest";
import { dropsDetected, noDrops, ranThroughout, recoveredWithin } from "../harness/assert/verdicts.ts";
import { restartKubeProxy, rollKubeProxy, rolloutRestart } from "../harness/disrupt/actions.ts";
import { deployProbeClients, pathsFromClients } from "../harness/traffic/clients.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import { backendDeployment } from "../manifests/backends.ts";
import { service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { kubeProxyBuilds } from "./support/kube-proxy-versions.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitLoadBalancerIP } from "./support/workloads.ts";

/**
 * Pre-upgrade validation of kube-proxy: the cluster runs the previous minor release's kube-proxy, then
 * it is rolled to the current one node by node (each healthy before the next) under external and
 * in-cluster traffic. The rules in the kernel outlive the process, and the new version takes them over
 * in place: no request may fail. The negative control: a node whose new kube-proxy never starts keeps
 * serving from stale rules until the endpoints move, and then drops; the harness must see it.
 */
describe.each(PROXY_MODES)("kube-proxy version roll (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["kubeProxyReleases", "l2LoadBalancer", "externalClient"],
    clusterName: `kproll${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it("rolls kube-proxy from the previous release to the current one with zero drops", async () => {
    const ns = f.ns;
    const nodes = (await f.cluster.nodes()).map((n) => n.name);
    const { current, previous } = await kubeProxyBuilds(f.cluster);
    expect(previous.version).not.toBe(current.version);
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    // Setup, before any traffic: the cluster as it is before the upgrade.
    await rollKubeProxy(ctx, nodes, previous.ref, previous.version);

    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: backendDeployment("web", 2, { safe: true, spread: true }),
    });
    const cluster = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web", "web", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" }),
    });
    const local = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: { ...service("web-local", "web", { type: "LoadBalancer", externalTrafficPolicy: "Local" }) },
    });
    const clients = await deployProbeClients(f.k8s, ns, nodes);
    await waitEndpoints(f.k8s, ns, "web", 2);
    const lb = `${await waitLoadBalancerIP(f.k8s, ns, "web")}:80`;
    const lbLocal = `${await waitLoadBalancerIP(f.k8s, ns, "web-local")}:80`;
    await waitServing(f.cluster, { kind: "external" }, { target: lb });
    await waitServing(f.cluster, { kind: "external" }, { target: lbLocal });

    const traffic = await ledger.traffic(f.cluster, [
      {
        name: "external->lb(eTP=Cluster)",
        source: { kind: "external" },
        target: lb,
        path: "/hostname",
        rate: 50,
      },
      {
        name: "external->lb(eTP=Local)",
        source: { kind: "external" },
        target: lbLocal,
        path: "/hostname",
        rate: 50,
      },
      ...pathsFromClients(clients, ns, `${cluster.spec?.clusterIP}:80`, { rate: 20 }),
      ...pathsFromClients(clients, ns, `${local.spec?.clusterIP}:80`, {
        what: "clusterip(local svc)",
        rate: 10,
      }),
    ]);
    await traffic.flowing();
    await new Promise((r) => setTimeout(r, 1_000));
    await rollKubeProxy(ctx, nodes, current.ref, current.version);
    // A plain restart of the new version, too, as a config change or a crash-loop recovery does.
    for (const node of nodes) await restartKubeProxy(ctx, node);
    await new Promise((r) => setTimeout(r, 3_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));
    ledger.expect(noDrops(entries));
    expect(ledger.timeline.events.filter((e) => e.target.endsWith(`→ ${current.version}`))).toHaveLength(
      nodes.length,
    );
  });

  it("negative control: a node whose new kube-proxy never comes up keeps stale rules, and drops once endpoints move", async () => {
    const ns = f.ns;
    const nodes = await f.cluster.nodes();
    const [a] = nodes;
    if (!a) return expect.fail("needs a node");
    const { current } = await kubeProxyBuilds(f.cluster);
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: backendDeployment("stale", 2, { safe: true }),
    });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("stale", "stale", { type: "NodePort", externalTrafficPolicy: "Cluster" }),
    });
    await waitEndpoints(f.k8s, ns, "stale", 2);
    const target = `${a.internalIP}:${svc.spec?.ports?.[0]?.nodePort}`;
    await waitServing(f.cluster, { kind: "external" }, { target });
    const traffic = await ledger.traffic(f.cluster, [
      {
        name: `external->nodeport@${a.name}`,
        source: { kind: "external" },
        target,
        rate: 20,
        timeoutMs: 500,
      },
    ]);
    await traffic.flowing();
    // The "upgrade" to a kube-proxy that cannot start: a program that exits at once (an image that
    // cannot be pulled, on kind). The rules it left in the kernel keep working...
    const broken = f.cluster.nodeOps?.brokenKubeProxy as string;
    await expect(rollKubeProxy(ctx, [a.name], broken, "broken")).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 2_000));
    const stale = ledger.timeline.last("replace-kube-proxy").end;
    // ...until the endpoints move: every backend is replaced, and node A still sends to the old ones.
    await rolloutRestart(ctx, { kind: "Deployment", namespace: ns, name: "stale" });
    await new Promise((r) => setTimeout(r, 8_000));
    await rollKubeProxy(ctx, [a.name], current.ref, current.version);
    const fixed = ledger.timeline.last("replace-kube-proxy").end;
    await new Promise((r) => setTimeout(r, 6_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));
    ledger.expect(noDrops(entries.filter((e) => e.end < stale)));
    ledger.expect(dropsDetected(entries.filter((e) => e.start > stale && e.end < fixed)));
    // Requests that went to the replaced pods left unanswered SYNs in conntrack; a later connection on
    // one of their source ports follows that entry, fixed rules or not (staleConntrackReuse).
    ledger.expect(recoveredWithin(entries, fixed, 3_000, { staleConntrack: "separate" }));
  });
});
