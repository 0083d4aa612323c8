import { describe, it } from "vitest";
import { noDrops, ranThroughout } from "../harness/assert/verdicts.ts";
import { rolloutRestart, type Workload } from "../harness/disrupt/actions.ts";
import { deployProbeClients, pathsFromClients } from "../harness/traffic/clients.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import type { TrafficPath } from "../harness/traffic/stream.ts";
import { backendDaemonSet, backendDeployment } from "../manifests/backends.ts";
import { service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitLoadBalancerIP } from "./support/workloads.ts";

/**
 * A rolling update of a correctly set up backend (readiness, --delay-shutdown, grace, surge before
 * remove) drops nothing: every request from outside (LoadBalancer) and from every node (ClusterIP)
 * succeeds while every pod is replaced. Upstream's rollout test accepts 95%; we require 100%.
 * The same rollout without the safeguards is rollout-unsafe-drops, the negative control.
 */
const variants = [
  { name: "Deployment behind externalTrafficPolicy Cluster", kind: "Deployment", policy: "Cluster" },
  { name: "DaemonSet behind externalTrafficPolicy Local", kind: "DaemonSet", policy: "Local" },
] as const;

describe.each(PROXY_MODES)("zero-drop rollout (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["l2LoadBalancer", "externalClient"],
    clusterName: `roll${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it.each(variants)("$name: every request succeeds through the rollout", async ({ kind, policy }) => {
    const ns = f.ns;
    const name = `web-${policy.toLowerCase()}`;
    const nodes = (await f.cluster.nodes()).map((n) => n.name);
    const workload: Workload = { kind, namespace: ns, name };
    if (kind === "Deployment")
      await f.k8s.apps.createNamespacedDeployment({
        namespace: ns,
        body: backendDeployment(name, 3, { safe: true }),
      });
    else
      await f.k8s.apps.createNamespacedDaemonSet({
        namespace: ns,
        body: backendDaemonSet(name, { safe: true }),
      });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service(name, name, { type: "LoadBalancer", externalTrafficPolicy: policy }),
    });
    const clients = await deployProbeClients(f.k8s, ns, nodes);
    await waitEndpoints(f.k8s, ns, name, kind === "Deployment" ? 3 : nodes.length);
    const lbIP = await waitLoadBalancerIP(f.k8s, ns, name);
    const lb = `${lbIP}:80`;
    const clusterIP = `${svc.spec?.clusterIP}:80`;
    await waitServing(f.cluster, { kind: "external" }, { target: lb });

    const paths: TrafficPath[] = [
      { name: "external->lb", source: { kind: "external" }, target: lb, path: "/hostname", rate: 50 },
      ...pathsFromClients(clients, ns, clusterIP, { rate: 20 }),
    ];
    const traffic = await ledger.traffic(f.cluster, paths);
    await traffic.flowing();
    await rolloutRestart(ledger.disrupt(f.cluster, f.k8s), workload);
    // Requests in flight when the last old pod went are part of the rollout too.
    await new Promise((r) => setTimeout(r, 2_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));
    ledger.expect(noDrops(entries));
  });
});
