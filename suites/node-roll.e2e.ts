import { PolicyV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { dropsDetected, noDrops, ranThroughout, windows } from "../harness/assert/verdicts.ts";
import { waitFor } from "../harness/core/wait.ts";
import { excludeFromLoadBalancers, rollNodes } from "../harness/disrupt/actions.ts";
import { announcingNode } from "../harness/metallb/announcer.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import { backendDeployment } from "../manifests/backends.ts";
import { service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { settledAnnouncer, waitEndpoints, waitLoadBalancerIP, waitPodsReady } from "./support/workloads.ts";

/**
 * Every node rolled in turn under external traffic — cordon, move load balancing off the node
 * (exclude-from-external-load-balancers: MetalLB re-elects an announcer while both nodes still forward),
 * drain through a PodDisruptionBudget, stop, start, uncordon, take load balancing back — with a correct
 * setup drops nothing. The node that announces the address is rolled too: that is the point. The one
 * exception is the dataplane's own: a connection in flight at the instant the announcement moves between
 * two live nodes may be reset (L2 mode has no connection sync); those are counted and reported, at most
 * one per move.
 */
describe.each(PROXY_MODES)("node roll under traffic (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["nodePower", "nodeDisruption", "l2LoadBalancer", "externalClient"],
    clusterName: `nroll${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();
  const ns = f.ns;

  it("rolls every node with zero drops", async () => {
    const nodes = (await f.cluster.nodes()).map((n) => n.name);
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: backendDeployment("web", 2, { safe: true, spread: true }),
    });
    await f.k8s.kubeconfig.makeApiClient(PolicyV1Api).createNamespacedPodDisruptionBudget({
      namespace: ns,
      body: {
        metadata: { name: "web" },
        spec: { minAvailable: 1, selector: { matchLabels: { app: "web" } } },
      },
    });
    await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web", "web", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" }),
    });
    await waitEndpoints(f.k8s, ns, "web", 2);
    const lb = `${await waitLoadBalancerIP(f.k8s, ns, "web")}:80`;
    await waitServing(f.cluster, { kind: "external" }, { target: lb });
    const announcers: string[] = [];
    const waitAnnouncer = (what: string, ok: (n: string | undefined) => boolean) =>
      waitFor(
        async () => {
          const n = await announcingNode(f.k8s, ns, "web");
          return ok(n) ? { done: true, value: n } : { done: false, state: n ?? "nobody" };
        },
        { description: `the address to be announced ${what}`, timeoutMs: 30_000, intervalMs: 100 },
      );
    announcers.push((await waitAnnouncer("by someone", Boolean)) as string);
    ledger.followAnnouncer(f.k8s, ns, "web");

    const traffic = await ledger.traffic(f.cluster, [
      { name: "external->lb", source: { kind: "external" }, target: lb, path: "/hostname", rate: 50 },
    ]);
    await traffic.flowing();
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    await rollNodes(ctx, nodes, {
      afterCordon: async (node) => {
        await excludeFromLoadBalancers(ctx, node, true);
        announcers.push((await waitAnnouncer(`off ${node}`, (n) => n !== undefined && n !== node)) as string);
        // The new announcer's gratuitous ARP reaches the client; let one more second of traffic show it.
        await new Promise((r) => setTimeout(r, 1_000));
      },
      afterReturn: async (node) => {
        await excludeFromLoadBalancers(ctx, node, false);
        await waitPodsReady(f.k8s, ns, "web", 2);
      },
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));
    // MetalLB L2 moves the address between live nodes without connection sync: a request in flight at
    // the very moment of a move may be reset (seen in about 1 run in 3, one request). That is the
    // dataplane's behaviour, reported here; anything else, or any other failure, fails the roll.
    const moves = ledger.timeline.events.filter(
      (e) => e.action === "exclude-from-lb" || e.action === "include-in-lb",
    );
    const atMove = (e: (typeof entries)[number]) =>
      e.outcome === "reset" && moves.some((m) => e.end >= m.start - 100 && e.start <= m.end + 1_000);
    const resetAtMove = entries.filter(atMove);
    if (resetAtMove.length > 0)
      console.log(
        `[node-roll ${mode}] ${resetAtMove.length} in-flight request(s) reset by an announcement move`,
      );
    expect(resetAtMove.length).toBeLessThanOrEqual(moves.length);
    ledger.expect(noDrops(entries.filter((e) => !atMove(e))));
    // Every node was stopped once, and the announcement moved at least once: the roll was real.
    expect(ledger.timeline.events.filter((e) => e.action === "stop-node").map((e) => e.target)).toEqual(
      nodes,
    );
    expect(new Set(announcers).size).toBeGreaterThan(1);
  });

  it("negative control: the same roll of the announcing node without moving the announcement first drops", async () => {
    const lb = `${await waitLoadBalancerIP(f.k8s, ns, "web")}:80`;
    await waitPodsReady(f.k8s, ns, "web", 2);
    await waitServing(f.cluster, { kind: "external" }, { target: lb });
    // The announcement may still be settling after the last roll put the node back in: roll the node
    // that MetalLB's status and the client's ARP entry agree on.
    const announcer = await settledAnnouncer(f.cluster, f.k8s, ns, "web", lb);
    ledger.followAnnouncer(f.k8s, ns, "web");
    const traffic = await ledger.traffic(f.cluster, [
      { name: "external->lb", source: { kind: "external" }, target: lb, path: "/hostname", rate: 50 },
    ]);
    await traffic.flowing();
    await rollNodes(ledger.disrupt(f.cluster, f.k8s), [announcer], {
      // Down long enough for memberlist to notice (a reboot takes longer still).
      downMs: 12_000,
      afterReturn: () => waitPodsReady(f.k8s, ns, "web", 2).then(() => undefined),
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const { entries, exits } = await traffic.stop();
    ledger.expect(ranThroughout(exits));
    // The address goes dark from the stop until memberlist declares the node dead and another speaker
    // takes over: the harness must show it.
    const stop = ledger.timeline.events.find((e) => e.action === "stop-node");
    if (!stop) return expect.fail("no stop on the timeline");
    ledger.expect(dropsDetected(windows(entries, { start: stop.start, end: stop.end + 12_000 }).during));
  });
});
