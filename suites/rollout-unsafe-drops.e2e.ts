import { describe, expect, it } from "vitest";
import {
  dropsDetected,
  noDrops,
  ranThroughout,
  staleConntrackReuse,
  windows,
} from "../harness/assert/verdicts.ts";
import { rolloutRestart } from "../harness/disrupt/actions.ts";
import { deployProbeClients, pathsFromClients } from "../harness/traffic/clients.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import type { TrafficPath } from "../harness/traffic/stream.ts";
import { backendDeployment } from "../manifests/backends.ts";
import { service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitLoadBalancerIP } from "./support/workloads.ts";

/**
 * The negative control of rollout-zero-drop: the same rollout without the safeguards (no readiness
 * probe, no delay on shutdown, remove before surge). The process exits on SIGTERM while kube-proxy still
 * sends it traffic, so requests fail; the harness must see them, and say when (during the rollout, none
 * before it), on which path and how.
 */
describe.each(PROXY_MODES)("unsafe rollout drops are detected (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["l2LoadBalancer", "externalClient"],
    clusterName: `unsafe${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it("drops during the rollout are caught and located", async () => {
    const ns = f.ns;
    const nodes = (await f.cluster.nodes()).map((n) => n.name);
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: backendDeployment("web", 3, { safe: false }),
    });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web", "web", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" }),
    });
    const clients = await deployProbeClients(f.k8s, ns, nodes);
    await waitEndpoints(f.k8s, ns, "web", 3);
    const lb = `${await waitLoadBalancerIP(f.k8s, ns, "web")}:80`;
    await waitServing(f.cluster, { kind: "external" }, { target: lb });

    const paths: TrafficPath[] = [
      { name: "external->lb", source: { kind: "external" }, target: lb, path: "/hostname", rate: 100 },
      ...pathsFromClients(clients, ns, `${svc.spec?.clusterIP}:80`, { rate: 50 }),
    ];
    const traffic = await ledger.traffic(f.cluster, paths);
    await traffic.flowing();
    await new Promise((r) => setTimeout(r, 1_000));
    await rolloutRestart(ledger.disrupt(f.cluster, f.k8s), {
      kind: "Deployment",
      namespace: ns,
      name: "web",
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));

    const [rollout] = ledger.timeline.events;
    if (!rollout) return expect.fail("the rollout is not on the timeline");
    const { before, during, after } = windows(entries, { start: rollout.start, end: rollout.end + 2_000 });
    // Healthy before the rollout (so the drops are the rollout's), drops during it, none long after
    // but those on stale conntrack entries (a source port reused from a SYN sent to a pod that was gone;
    // see staleConntrackReuse).
    ledger.expect(noDrops(before));
    ledger.expect(dropsDetected(during));
    const stale = new Set(staleConntrackReuse(entries));
    expect(after.filter((e) => e.outcome !== "ok" && !stale.has(e))).toEqual([]);
  });
});
