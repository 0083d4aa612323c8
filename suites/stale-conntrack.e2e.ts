import { describe, expect, it } from "vitest";
import {
  blackholed,
  dropsDetected,
  noDrops,
  ranThroughout,
  recoveredWithin,
  staleConntrackReuse,
} from "../harness/assert/verdicts.ts";
import { startNode, stopNode } from "../harness/disrupt/actions.ts";
import { deployProbeClients } from "../harness/traffic/clients.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import type { TrafficPath } from "../harness/traffic/stream.ts";
import { netexecPod, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints } from "./support/workloads.ts";

/**
 * A node's power cut leaves conntrack entries that point at its pods, and kube-proxy treats them by
 * protocol (pkg/proxy/conntrack/cleanup.go):
 * - UDP: it deletes every entry of the Service that is not DNATed to a serving endpoint, so a client
 *   that keeps one source port (a DNS resolver, statsd) is served by another endpoint again as soon as
 *   the dead one stops serving. Without that cleanup each datagram would renew the entry for ever.
 * - TCP: it leaves them to time out (kubernetes/kubernetes#101607, #104098). A client that retries from
 *   one source port sends every SYN along its old entry to the dead pod, renewing it each time: it stays
 *   blackholed as long as it keeps trying, however long ago the endpoint went, while the same client on
 *   fresh ports is served. That half is also this suite's negative control: the harness sees a blackhole
 *   that no rule explains.
 * If a kube-proxy release starts clearing TCP entries too, the TCP expectation fails and says so.
 */
const UDP_PORT = 40_053;
const TCP_PORT = 40_080;

describe.each(PROXY_MODES)("stale conntrack entries after a node power cut (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["nodePower", "externalClient"],
    clusterName: `ctrk${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it("UDP from a fixed port is served again once the endpoint is gone; TCP from a fixed port stays blackholed", async () => {
    const ns = f.ns;
    const [doomed, survivor] = (await f.cluster.nodes()).map((n) => n.name) as [string, string];
    const backend = (node: string, name: string) =>
      netexecPod(name, { node, labels: { app: "sticky" }, args: ["--udp-port=8081"] });
    await f.k8s.core.createNamespacedPod({ namespace: ns, body: backend(doomed, "sticky-doomed") });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("sticky", "sticky", { type: "ClusterIP", udp: true }),
    });
    const clients = await deployProbeClients(f.k8s, ns, [survivor]);
    await waitEndpoints(f.k8s, ns, "sticky", 1);
    const ip = svc.spec?.clusterIP as string;
    const source = { kind: "pod" as const, namespace: ns, name: clients.get(survivor) as string };
    const from = `pod@${survivor}`;
    const paths: TrafficPath[] = [
      // Started while the doomed pod is the only endpoint: the UDP flow's entry points at it.
      {
        name: `${from}->clusterip:udp from port ${UDP_PORT}`,
        source,
        target: `${ip}:81`,
        mode: "udp",
        path: "/hostname",
        localPort: UDP_PORT,
        rate: 5,
        timeoutMs: 500,
      },
      {
        name: `${from}->clusterip:tcp from port ${TCP_PORT}`,
        source,
        target: `${ip}:80`,
        path: "/hostname",
        localPort: TCP_PORT,
        rate: 5,
        timeoutMs: 500,
      },
      {
        name: `${from}->clusterip:tcp`,
        source,
        target: `${ip}:80`,
        path: "/hostname",
        rate: 5,
        timeoutMs: 500,
      },
    ];
    const [udpFixed, tcpFixed, tcpFresh] = paths.map((p) => p.name) as [string, string, string];
    // kube-proxy on the client's node has the endpoint (an EndpointSlice alone does not say so).
    await waitServing(f.cluster, source, { target: `${ip}:80` });
    await waitServing(f.cluster, source, { target: `${ip}:81`, mode: "udp", path: "/hostname" });
    const traffic = await ledger.traffic(f.cluster, paths);
    await traffic.flowing();
    await new Promise((r) => setTimeout(r, 2_000));

    const ctx = ledger.disrupt(f.cluster, f.k8s);
    await stopNode(ctx, doomed);
    const { start: cut, end: stopped } = ledger.timeline.last("stop-node");
    // The replacement, as a controller would start one: a second endpoint on the surviving node, for
    // every flow to end up on. Until now the doomed pod was the only one, so every flow's conntrack
    // entry points at it.
    await f.k8s.core.createNamespacedPod({ namespace: ns, body: backend(survivor, "sticky-survivor") });
    await waitEndpoints(f.k8s, ns, "sticky", 2);
    // The node lifecycle controller marks the node's pods not ready after node-monitor-grace-period.
    await ledger.timeline.step("endpoint-not-serving", `sticky-doomed`, () =>
      waitEndpoints(f.k8s, ns, "sticky", 1, 120_000),
    );
    const gone = ledger.timeline.last("endpoint-not-serving").end;
    await new Promise((r) => setTimeout(r, 15_000));
    const { entries, exits } = await traffic.stop();
    await startNode(ctx, doomed);

    ledger.expect(ranThroughout(exits));
    const on = (path: string) => entries.filter((e) => e.path === path);
    const settled = gone + 2_000; // kube-proxy's sync after the endpoint change, with margin
    // Healthy before the cut (the stop kills the pod's process before it takes the link down: a request
    // in those ~100 ms may be refused).
    ledger.expect(noDrops(entries.filter((e) => e.end < cut)));
    // Before the cut the doomed pod answered every flow (else this test would prove nothing).
    const udpServedBy = new Set(
      on(udpFixed)
        .filter((e) => e.end < cut)
        .map((e) => e.body),
    );
    expect([...udpServedBy], "who answered the fixed-port UDP flow before the cut").toEqual([
      "sticky-doomed",
    ]);
    // UDP: the flow was pinned to the dead pod (it failed), and kube-proxy's cleanup freed it.
    ledger.expect(dropsDetected(on(udpFixed).filter((e) => e.start > stopped && e.end < gone)));
    const udpBack = recoveredWithin(on(udpFixed), stopped, gone + 2_000 - stopped);
    ledger.expect(udpBack);
    // TCP on fresh ports: served once the endpoint is gone (a port that happens to repeat one sent to
    // the dead pod is the stale-entry case, judged apart).
    ledger.expect(recoveredWithin(on(tcpFresh), gone, 2_000, { staleConntrack: "separate" }));
    // TCP from the fixed port: still blackholed long after the rules were right, and every such
    // failure is a reuse of the port's unanswered SYN, not something else.
    const stuck = on(tcpFixed).filter((e) => e.start > settled);
    ledger.expect(blackholed(stuck, "nowhere"));
    const stale = new Set(staleConntrackReuse(on(tcpFixed)));
    expect(
      stuck.filter((e) => !stale.has(e)),
      "failures from the fixed TCP port not explained by its stale entry",
    ).toEqual([]);
    console.log(
      `[stale-conntrack ${mode}] endpoint not serving ${((gone - stopped) / 1000).toFixed(1)} s after the cut; UDP from port ${UDP_PORT} failed until ${(udpBack.recoveryMs / 1000).toFixed(1)} s after the cut; TCP from port ${TCP_PORT} still blackholed ${((Math.max(...stuck.map((e) => e.end)) - gone) / 1000).toFixed(1)} s after it (${stuck.length} requests)`,
    );
  });
});
