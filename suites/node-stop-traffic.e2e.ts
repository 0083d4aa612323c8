import { describe, expect, it } from "vitest";
import {
  blackholed,
  dropsDetected,
  ranThroughout,
  recoveredWithin,
  windows,
} from "../harness/assert/verdicts.ts";
import { startNode, stopNode } from "../harness/disrupt/actions.ts";
import { announcingNode } from "../harness/metallb/announcer.ts";
import { deployProbeClients } from "../harness/traffic/clients.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import { backendDeployment } from "../manifests/backends.ts";
import { netexecDeployment, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { settledAnnouncer, waitEndpoints, waitLoadBalancerIP } from "./support/workloads.ts";

/**
 * A node stopped as by a power cut, under traffic; how long until traffic is healthy again, per policy:
 * - externalTrafficPolicy Cluster, a replica on each node: requests balanced to the dead node's pod fail
 *   until the node lifecycle controller marks it NotReady (node-monitor-grace-period) and its endpoint
 *   goes; the recovery time is measured and reported.
 * - externalTrafficPolicy Local, a single replica on the stopped node: nobody else may announce or serve
 *   the address; the blackhole lasts until the node is back, and the harness must see it.
 */
const RECOVERY_BOUND_MS = 60_000;

describe.each(PROXY_MODES)("node stop under traffic (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["nodePower", "l2LoadBalancer", "externalClient"],
    clusterName: `nstop${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();
  const ns = f.ns;

  it("eTP Cluster: traffic recovers once the node is NotReady; the recovery time is reported", async () => {
    const nodes = (await f.cluster.nodes()).map((n) => n.name);
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: backendDeployment("spread", 2, { safe: true, spread: true }),
    });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("spread", "spread", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" }),
    });
    const clients = await deployProbeClients(f.k8s, ns, nodes);
    await waitEndpoints(f.k8s, ns, "spread", 2);
    const lb = `${await waitLoadBalancerIP(f.k8s, ns, "spread")}:80`;
    await waitServing(f.cluster, { kind: "external" }, { target: lb });
    // Stop the node that does not announce: this measures endpoint removal, not MetalLB failover
    // (loadbalancer-failover measures that). Chosen once MetalLB's status and the client's ARP entry
    // agree: right after the Service gets its address the status may be missing or still moving, and a
    // choice made from it alone stopped the announcer.
    const announcer = await settledAnnouncer(f.cluster, f.k8s, ns, "spread", lb);
    const victim = nodes.find((n) => n !== announcer) as string;
    const survivor = nodes.find((n) => n !== victim) as string;
    ledger.followAnnouncer(f.k8s, ns, "spread");
    const traffic = await ledger.traffic(f.cluster, [
      { name: "external->lb", source: { kind: "external" }, target: lb, path: "/hostname", rate: 20 },
      {
        name: `pod@${survivor}->clusterip`,
        source: { kind: "pod", namespace: ns, name: clients.get(survivor) as string },
        target: `${svc.spec?.clusterIP}:80`,
        path: "/hostname",
        rate: 20,
      },
    ]);
    await traffic.flowing();
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    await stopNode(ctx, victim);
    const stoppedAt = ledger.timeline.last("stop-node").end;
    await new Promise((r) => setTimeout(r, 45_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));
    // A power cut without a drain drops requests: the stop was real and the harness saw it.
    ledger.expect(dropsDetected(windows(entries, { start: stoppedAt, end: stoppedAt + 5_000 }).during));
    // Once the endpoint is gone, a new connection still fails if it reuses the source port of one whose
    // SYN went to the dead pod: it follows that stale conntrack entry (kube-proxy flushes TCP entries of
    // removed endpoints only for UDP; kubernetes#101607). Seen in about half the runs, up to ~45 s after
    // the stop with these rates. Measured and reported apart; any other late failure fails.
    const recovered = recoveredWithin(entries, stoppedAt, RECOVERY_BOUND_MS - 20_000, {
      staleConntrack: "separate",
    });
    ledger.expect(recovered);
    const stale = recovered.staleConntrack.length
      ? `; ${recovered.staleConntrack.length} later request(s) failed on stale conntrack entries, the last ${recovered.staleTailMs} ms after the stop`
      : "";
    console.log(
      `[node-stop ${mode}] eTP Cluster: traffic healthy again ${recovered.recoveryMs} ms after the stop${stale}`,
    );
    await startNode(ctx, victim);
  });

  it("eTP Local, one replica on the stopped node: blackholed until the node returns", async () => {
    const nodes = (await f.cluster.nodes()).map((n) => n.name);
    const victim = nodes[nodes.length - 1] as string;
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: netexecDeployment("single", 1, { node: victim }),
    });
    await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("single", "single", { type: "LoadBalancer", externalTrafficPolicy: "Local" }),
    });
    await waitEndpoints(f.k8s, ns, "single", 1);
    const lb = `${await waitLoadBalancerIP(f.k8s, ns, "single")}:80`;
    await waitServing(f.cluster, { kind: "external" }, { target: lb });
    expect(await announcingNode(f.k8s, ns, "single")).toBe(victim);
    ledger.followAnnouncer(f.k8s, ns, "single");

    const traffic = await ledger.traffic(f.cluster, [
      { name: "external->lb", source: { kind: "external" }, target: lb, path: "/hostname", rate: 20 },
    ]);
    await traffic.flowing();
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    await stopNode(ctx, victim);
    const stoppedAt = ledger.timeline.last("stop-node").end;
    await new Promise((r) => setTimeout(r, 15_000));
    await startNode(ctx, victim);
    const startedAt = ledger.timeline.last("start-node").end;
    // Back within 0.4-5 s here: the pod restarts, its endpoint turns ready, the speaker announces again,
    // and the client's ARP for the address (failed while the node was down) is retried in 3 s cycles.
    await new Promise((r) => setTimeout(r, 20_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));
    // The blackhole: from a moment after the stop until the node is back, every request went nowhere.
    ledger.expect(
      blackholed(windows(entries, { start: stoppedAt + 2_000, end: startedAt - 1_000 }).during, "nowhere"),
    );
    // As after the eTP Cluster stop: a SYN that reached the node while it came back (before its pod and
    // kube-proxy's rules were current) leaves an unanswered conntrack entry there, to the old endpoint or
    // none, for 120 s; a later request from the same source port follows it and times out (seen 20 s
    // after the node was back). Measured and reported apart; any other late failure fails.
    const recovered = recoveredWithin(entries, startedAt, 15_000, { staleConntrack: "separate" });
    ledger.expect(recovered);
    const stale = recovered.staleConntrack.length
      ? `; ${recovered.staleConntrack.length} later request(s) failed on stale conntrack entries, the last ${recovered.staleTailMs} ms after the start`
      : "";
    console.log(
      `[node-stop ${mode}] eTP Local: blackholed while stopped; healthy ${recovered.recoveryMs} ms after the node was Ready${stale}`,
    );
  });
});
