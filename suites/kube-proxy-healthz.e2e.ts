import { describe, expect, it } from "vitest";
import { waitFor } from "../harness/core/wait.ts";
import { cordon, TO_BE_DELETED_TAINT, taint, uncordon } from "../harness/disrupt/actions.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";

/**
 * kube-proxy's /healthz is what load balancers for externalTrafficPolicy Cluster Services check: it
 * answers 503 ("nodeEligible": false) on a node tainted ToBeDeletedByClusterAutoscaler, so traffic leaves
 * the node before the autoscaler deletes it, while /livez (is kube-proxy itself alive?) stays 200. A
 * cordon is not a deletion: /healthz stays 200 (the control: the check sees the taint, not any change).
 */
describe.each(PROXY_MODES)("kube-proxy /healthz and /livez (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["nodeDisruption", "externalClient"],
    clusterName: `hz${mode[0]}`,
    cluster: { proxyMode: mode, nodes: [{}] },
  });
  const ledger = useLedger();

  it("healthz turns 503 on ToBeDeletedByClusterAutoscaler, livez stays 200; cordon changes neither", async () => {
    const [node] = await f.cluster.nodes();
    if (!node) return expect.fail("needs a node");
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    const read = async (path: "/healthz" | "/livez") => {
      const [e] = await ledger.probe(
        f.cluster,
        `external->${node.name}:10256${path}`,
        { kind: "external" },
        {
          target: `${node.internalIP}:10256`,
          path,
        },
      );
      return {
        status: e?.status,
        eligible: e?.body ? (JSON.parse(e.body) as { nodeEligible?: boolean }).nodeEligible : undefined,
      };
    };
    // kube-proxy learns of node changes through its informer: give it a moment, but no more than that.
    const expectSoon = (path: "/healthz" | "/livez", status: number, eligible?: boolean) =>
      waitFor(
        async () => {
          const r = await read(path);
          return r.status === status && (eligible === undefined || r.eligible === eligible)
            ? { done: true, value: r }
            : { done: false, state: r };
        },
        { description: `${path} on ${node.name} to answer ${status}`, timeoutMs: 10_000, intervalMs: 200 },
      );

    await expectSoon("/healthz", 200, true);
    await expectSoon("/livez", 200);

    await cordon(ctx, node.name);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await read("/healthz")).toEqual({ status: 200, eligible: true });
    await uncordon(ctx, node.name);

    const tbd = { key: TO_BE_DELETED_TAINT, value: `${Math.floor(Date.now() / 1000)}`, effect: "NoSchedule" };
    await taint(ctx, node.name, tbd);
    await expectSoon("/healthz", 503, false);
    expect((await read("/livez")).status).toBe(200);

    await taint(ctx, node.name, tbd, { remove: true });
    await expectSoon("/healthz", 200, true);
  });
});
