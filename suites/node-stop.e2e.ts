import { CoordinationV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { waitFor } from "../harness/core/wait.ts";
import { startNode, stopNode } from "../harness/disrupt/actions.ts";
import { netexecPod } from "../manifests/workloads.ts";
import { useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitPodsReady } from "./support/workloads.ts";

/**
 * Stopping a node (agent, kube-proxy and pods die; its link goes down): the real node lifecycle
 * controller marks the Node not Ready after the grace period and marks its pods not ready, which is what
 * removes them from Service endpoints. Starting it again brings the Node and its pods back.
 */
const GRACE_SECONDS = 10;

describe("node stop and start", () => {
  const f = useCluster({
    needs: ["nodePower"],
    clusterName: "nodestop",
    cluster: { nodeMonitorGracePeriodSeconds: GRACE_SECONDS },
  });
  const ledger = useLedger();

  it("turns the Node and its pods not ready through the real controller, and back", async () => {
    const [, victim] = await f.cluster.nodes();
    if (!victim || !f.cluster.nodeOps) return expect.fail("needs two nodes and node operations");
    await f.k8s.core.createNamespacedPod({
      namespace: f.ns,
      body: netexecPod("victim", { node: victim.name }),
    });
    await waitPodsReady(f.k8s, f.ns, "victim", 1);

    const ctx = ledger.disrupt(f.cluster, f.k8s);
    await stopNode(ctx, victim.name);
    // The grace period runs from the last heartbeat, which may predate the stop by up to 10 s.
    const coordination = f.k8s.kubeconfig.makeApiClient(CoordinationV1Api);
    const lease = await coordination.readNamespacedLease({ name: victim.name, namespace: "kube-node-lease" });
    const lastRenew = new Date(lease.spec?.renewTime as unknown as string).getTime();
    const readiness = async () => {
      const node = await f.k8s.core.readNode({ name: victim.name });
      const pod = await f.k8s.core.readNamespacedPod({ name: "victim", namespace: f.ns });
      return {
        node: node.status?.conditions?.find((c) => c.type === "Ready")?.status,
        pod: pod.status?.conditions?.find((c) => c.type === "Ready")?.status,
      };
    };
    await waitFor(
      async () => {
        const r = await readiness();
        return r.node === "Unknown" && r.pod === "False"
          ? { done: true, value: r }
          : { done: false, state: r };
      },
      {
        description: "the Node to go Unknown and its pod not ready",
        timeoutMs: (GRACE_SECONDS + 30) * 1000,
        intervalMs: 500,
      },
    );
    // Not before the grace period after the last heartbeat: it is the controller's doing, not ours.
    // (Transition times have one-second resolution, hence the margin.)
    const node = await f.k8s.core.readNode({ name: victim.name });
    const wentUnknown = new Date(
      node.status?.conditions?.find((c) => c.type === "Ready")?.lastTransitionTime as unknown as string,
    ).getTime();
    expect(wentUnknown - lastRenew).toBeGreaterThanOrEqual((GRACE_SECONDS - 2) * 1000);

    await startNode(ctx, victim.name);
    await waitFor(
      async () => {
        const r = await readiness();
        return r.node === "True" && r.pod === "True" ? { done: true, value: r } : { done: false, state: r };
      },
      { description: "the Node and its pod to be Ready again", timeoutMs: 30_000, intervalMs: 500 },
    );
    // Every component of the node runs again (a speaker left over from before the stop would hold its
    // memberlist port and keep the new one from starting).
    const stopped = (await f.cluster.status()).filter((s) => !s.running).map((s) => s.component);
    expect(stopped).toEqual([]);
  });
});
