import { describe, expect, it } from "vitest";
import { cellVerdict } from "../harness/assert/matrix.ts";
import { blackholed } from "../harness/assert/verdicts.ts";
import { nthAddress, parseCidr } from "../harness/core/cidr.ts";
import { waitFor } from "../harness/core/wait.ts";
import { ensureProbeConfigMap, PROBE_CLIENT_LABEL, probeClientPod } from "../harness/traffic/clients.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import { netexecDeployment, service } from "../manifests/workloads.ts";
import { useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitLoadBalancerIP } from "./support/workloads.ts";

/**
 * kubernetes/kubernetes#131765, caught: kube-proxy in nftables mode before the fix (v1.33.5; fixed in
 * v1.33.6 and v1.34.0 by kubernetes#132456) drops traffic from a host-network source on a node without
 * an endpoint to the LoadBalancer IP and the externalIPs of an externalTrafficPolicy=Local Service: its
 * no-endpoint check ran before DNAT. Pod sources never showed it, which is why every other suite passed
 * on the buggy release. One cluster holds both releases: node N runs v1.33.5, node F the current one;
 * the endpoint is on node E. The policy matrix's cell "host@N -> loadbalancer: own" must fail on N with
 * the blackhole (its verdict is the negative control) and hold on F.
 */
const BUGGY = "v1.33.5";

describe("kubernetes#131765 (kube-proxy nftables before v1.33.6)", () => {
  const f = useCluster({
    needs: ["kubeProxyReleases", "externalIPs", "l2LoadBalancer", "externalClient"],
    clusterName: "k131765",
    cluster: { proxyMode: "nftables", nodes: [{}, { kubeProxyVersion: BUGGY }, {}] },
  });
  const ledger = useLedger();

  it(`a host-network source on the node running ${BUGGY} is blackholed; on the fixed release it is served`, async (ctx) => {
    const ns = f.ns;
    const [E, N, F] = (await f.cluster.nodes()).map((n) => n.name) as [string, string, string];
    // The cluster must really run both releases (a provider that cannot pin one node's kube-proxy skips).
    const proxies = (await f.cluster.status()).filter((s) => s.component.startsWith("kube-proxy/"));
    const onN = proxies.find((p) => p.component === `kube-proxy/${N}`)?.detail ?? "";
    if (!onN.includes(BUGGY)) ctx.skip(`the provider did not run kube-proxy ${BUGGY} on ${N} (${onN})`);
    const externalIP = f.cluster.network.externalIPs?.[0];
    if (!externalIP) ctx.skip("the provider has no addresses for spec.externalIPs");

    await ensureProbeConfigMap(f.k8s, ns);
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: netexecDeployment("web", 1, { node: E }),
    });
    for (const [name, node] of [
      ["host-n", N],
      ["host-f", F],
    ] as const)
      await f.k8s.core.createNamespacedPod({
        namespace: ns,
        body: probeClientPod(name, node, { hostNetwork: true }),
      });
    const local = service("web-local", "web", { type: "LoadBalancer", externalTrafficPolicy: "Local" });
    local.spec = { ...local.spec, externalIPs: [externalIP as string] };
    await f.k8s.core.createNamespacedService({ namespace: ns, body: local });
    await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web-cluster", "web", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" }),
    });
    await waitEndpoints(f.k8s, ns, "web-local", 1);
    const lbLocal = `${await waitLoadBalancerIP(f.k8s, ns, "web-local")}:80`;
    const lbCluster = `${await waitLoadBalancerIP(f.k8s, ns, "web-cluster")}:80`;
    await waitServing(f.cluster, { kind: "external" }, { target: lbLocal });
    await waitServing(f.cluster, { kind: "external" }, { target: lbCluster });
    await waitFor(
      async () => {
        const pods = await f.k8s.core.listNamespacedPod({
          namespace: ns,
          labelSelector: `app=${PROBE_CLIENT_LABEL}`,
        });
        const ready = pods.items.filter((p) =>
          p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return ready.length === 2 ? { done: true, value: undefined } : { done: false, state: ready.length };
      },
      { description: "the host-network clients to run", timeoutMs: 60_000 },
    );
    const nodeAddrs = async (node: string) => {
      const n = await f.k8s.core.readNode({ name: node });
      return [
        n.status?.addresses?.find((a) => a.type === "InternalIP")?.address as string,
        nthAddress(parseCidr(n.spec?.podCIDR as string), 1),
      ];
    };
    const [eAddrs, nAddrs, fAddrs] = [await nodeAddrs(E), await nodeAddrs(N), await nodeAddrs(F)];
    const send = (node: "N" | "F", entry: string, target: string) =>
      ledger.probe(
        f.cluster,
        `host@${node}->${entry}`,
        { kind: "pod", namespace: ns, name: `host-${node.toLowerCase()}` },
        {
          target,
          path: "/clientip",
          count: 3,
          timeoutMs: 1_000,
        },
      );
    const cell = (own: string[]) => ({ own: own[0] as string, E: eAddrs, N: nAddrs });

    // The bug: the matrix's expectation for these cells (served, N's own address) fails on N, and the
    // requests are a blackhole: timeouts, not refusals.
    for (const [entry, target] of [
      ["loadbalancer(eTP=Local)", lbLocal],
      ["externalip(eTP=Local)", `${externalIP}:80`],
    ] as const) {
      const entries = await send("N", entry, target);
      const matrixCell = cellVerdict(entries, "own", cell(nAddrs));
      expect(
        matrixCell.passed,
        `the matrix cell host@N -> ${entry} must catch the bug: ${matrixCell.summary}`,
      ).toBe(false);
      ledger.expect(blackholed(entries, "timeout"));
    }
    // The same cells on the node with the fixed release, and eTP=Cluster on the buggy one, are served.
    ledger.expect(cellVerdict(await send("F", "loadbalancer(eTP=Local)", lbLocal), "own", cell(fAddrs)));
    ledger.expect(
      cellVerdict(await send("F", "externalip(eTP=Local)", `${externalIP}:80`), "own", cell(fAddrs)),
    );
    const viaCluster = await send("N", "loadbalancer(eTP=Cluster)", lbCluster);
    expect(viaCluster.every((e) => e.outcome === "ok")).toBe(true);
  });
});
