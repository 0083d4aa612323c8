import { describe, expect, it } from "vitest";
import {
  cordon,
  excludeFromLoadBalancers,
  scale,
  stopNode,
  TO_BE_DELETED_TAINT,
  taint,
} from "../harness/disrupt/actions.ts";
import { netexecDeployment } from "../manifests/workloads.ts";
import { nodeStates, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitPodsReady } from "./support/workloads.ts";

/**
 * Disruptions always undo: a test that fails half-way through a disruption (here on purpose) must not
 * hand the next test a stopped, cordoned, tainted or excluded node, nor a workload at another scale.
 * The first test changes all of that and then fails (vitest's `it.fails`: it passes only if it fails);
 * the second checks that the fixtures put everything back.
 */
describe("disruptions are undone when a test fails", () => {
  const f = useCluster({
    needs: ["nodeDisruption", "nodePower"],
    clusterName: "undo",
    cluster: { nodes: [{}, {}] },
  });
  const ledger = useLedger();

  it.fails("a test that fails after a cordon, a taint, an LB exclusion, a scale and a node stop", async () => {
    const [a, b] = (await f.cluster.nodes()).map((n) => n.name);
    if (!a || !b) throw new Error("needs two nodes");
    await f.k8s.apps.createNamespacedDeployment({ namespace: f.ns, body: netexecDeployment("undo", 2) });
    await waitPodsReady(f.k8s, f.ns, "undo", 2);
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    await cordon(ctx, a);
    await taint(ctx, b, { key: TO_BE_DELETED_TAINT, value: "1", effect: "NoSchedule" });
    await excludeFromLoadBalancers(ctx, a, true);
    await scale(ctx, { kind: "Deployment", namespace: f.ns, name: "undo" }, 1);
    await stopNode(ctx, b);
    throw new Error("failing on purpose, with every change still in place");
  });

  it("the next test gets every node Ready, schedulable, untainted and included, and the old scale", async () => {
    const states = await nodeStates(f.k8s);
    expect(states.length).toBe(2);
    for (const s of states) {
      expect(s, s.name).toMatchObject({
        ready: "True",
        unschedulable: false,
        taints: [],
        excludedFromLoadBalancers: false,
      });
    }
    const d = await f.k8s.apps.readNamespacedDeployment({ name: "undo", namespace: f.ns });
    expect(d.spec?.replicas).toBe(2);
    await waitPodsReady(f.k8s, f.ns, "undo", 2);
    const stopped = (await f.cluster.status()).filter((s) => !s.running).map((s) => s.component);
    expect(stopped).toEqual([]);
  });
});
