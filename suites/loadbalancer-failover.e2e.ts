import { describe, expect, it } from "vitest";
import { waitFor } from "../harness/core/wait.ts";
import { startNode, stopNode } from "../harness/disrupt/actions.ts";
import { announcingNode } from "../harness/metallb/announcer.ts";
import { runProbe, waitServing } from "../harness/traffic/run-probe.ts";
import { netexecDeployment, netexecPod, service } from "../manifests/workloads.ts";
import { useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitPodsReady } from "./support/workloads.ts";

/**
 * Where MetalLB announces from, and how fast it moves:
 * - with externalTrafficPolicy Local the announcing node always has a local endpoint: move the only
 *   backend from node to node and the announcement follows it;
 * - stop the announcing node and the announcement moves to a healthy node (memberlist notices).
 * Both times are measured and printed.
 */
describe("MetalLB announcement", () => {
  const f = useCluster({
    needs: ["nodePower", "l2LoadBalancer", "externalClient"],
    clusterName: "lbmove",
    cluster: { nodes: [{}, {}, {}] },
  });
  const ledger = useLedger();

  async function lbAddress(name: string): Promise<string> {
    return waitFor(
      async () => {
        const svc = await f.k8s.core.readNamespacedService({ name, namespace: f.ns });
        const ip = svc.status?.loadBalancer?.ingress?.[0]?.ip;
        return ip ? { done: true, value: ip } : { done: false, state: "pending" };
      },
      { description: `an address for ${name}`, timeoutMs: 30_000, intervalMs: 100 },
    );
  }

  async function waitAnnouncer(name: string, want: (node: string | undefined) => boolean, what: string) {
    return waitFor(
      async () => {
        const node = await announcingNode(f.k8s, f.ns, name);
        return want(node) ? { done: true, value: node } : { done: false, state: node ?? "nobody" };
      },
      { description: `${name} to be announced ${what}`, timeoutMs: 60_000, intervalMs: 100 },
    );
  }

  it("follows the only endpoint from node to node under externalTrafficPolicy Local", async () => {
    const nodes = (await f.cluster.nodes()).map((n) => n.name);
    await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service("follow", "follow", { type: "LoadBalancer", externalTrafficPolicy: "Local" }),
    });
    const ip = await lbAddress("follow");
    const timings: string[] = [];
    for (const [i, node] of nodes.entries()) {
      const pod = `follow-${i}`;
      if (i > 0)
        await f.k8s.core.deleteNamespacedPod({
          name: `follow-${i - 1}`,
          namespace: f.ns,
          gracePeriodSeconds: 1,
        });
      const t0 = Date.now();
      await f.k8s.core.createNamespacedPod({
        namespace: f.ns,
        body: netexecPod(pod, { node, labels: { app: "follow" } }),
      });
      await waitPodsReady(f.k8s, f.ns, "follow", 1);
      expect(await waitAnnouncer("follow", (n) => n === node, `from ${node}`)).toBe(node);
      await waitServing(f.cluster, { kind: "external" }, { target: `${ip}:80` });
      timings.push(`${node} ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    }
    console.info(
      `announcement follows the endpoint (pod created → announced and serving): ${timings.join(", ")}`,
    );
  });

  it("moves off a stopped node", async () => {
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    await f.k8s.apps.createNamespacedDeployment({
      namespace: f.ns,
      body: netexecDeployment("spread", 3),
    });
    await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service("spread", "spread", { type: "LoadBalancer", externalTrafficPolicy: "Cluster" }),
    });
    const ip = await lbAddress("spread");
    await waitPodsReady(f.k8s, f.ns, "spread", 3);
    await waitServing(f.cluster, { kind: "external" }, { target: `${ip}:80` });
    const victim = await waitAnnouncer("spread", (n) => n !== undefined, "by some node");
    if (!victim) return expect.fail("nobody announces");

    const stoppedAt = Date.now();
    await stopNode(ctx, victim);
    // A bounded probe loop: one request every 200 ms until one succeeds again.
    let recoveredAt = 0;
    for (let i = 0; i < 300 && !recoveredAt; i++) {
      const [e] = await runProbe(f.cluster, { kind: "external" }, { target: `${ip}:80`, timeoutMs: 500 });
      if (e?.outcome === "ok") recoveredAt = e.end;
      else await new Promise((r) => setTimeout(r, 200));
    }
    expect(recoveredAt).toBeGreaterThan(0);
    const moved = await waitAnnouncer(
      "spread",
      (n) => n !== undefined && n !== victim,
      `by a node other than ${victim}`,
    );
    console.info(
      `announcing node ${victim} stopped → first successful request after ${((recoveredAt - stoppedAt) / 1000).toFixed(2)} s (now ${moved})`,
    );
    await startNode(ctx, victim);
  });
});
