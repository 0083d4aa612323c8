import { describe, expect, it } from "vitest";
import { loadShares, loadSkewWithin } from "../harness/assert/verdicts.ts";
import { waitFor } from "../harness/core/wait.ts";
import { runProbe, waitServing } from "../harness/traffic/run-probe.ts";
import { netexecPod, service } from "../manifests/workloads.ts";
import { useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * Load skew under externalTrafficPolicy Local: pods placed 3/1/0 on three nodes, traffic spread evenly
 * over the nodes a health-checking load balancer would use (those whose health-check node port says 200).
 * With Local each node splits its share among its own pods (1/6, 1/6, 1/6 and 1/2); with Cluster every pod
 * gets about 1/4. The shares are measured and printed, and each must be near its expected value.
 */
const PER_NODE = 150;
const variants = [
  { policy: "Local", expected: { "a-1": 1 / 6, "a-2": 1 / 6, "a-3": 1 / 6, "b-1": 1 / 2 } },
  { policy: "Cluster", expected: { "a-1": 1 / 4, "a-2": 1 / 4, "a-3": 1 / 4, "b-1": 1 / 4 } },
] as const;

describe("load skew with pods placed 3/1/0", () => {
  const f = useCluster({
    needs: ["l2LoadBalancer", "externalClient"],
    clusterName: "skew",
    cluster: { nodes: [{}, {}, {}] },
  });
  const ledger = useLedger();

  it.each(variants)("externalTrafficPolicy $policy", async ({ policy, expected }) => {
    const [a, b, c] = await f.cluster.nodes();
    if (!a || !b || !c) return expect.fail("needs three nodes");
    const label = `skew-${policy.toLowerCase()}`;
    for (const [node, names] of [
      [a, ["a-1", "a-2", "a-3"]],
      [b, ["b-1"]],
    ] as const) {
      for (const name of names) {
        const pod = netexecPod(`${label}-${name}`, { node: node.name, labels: { app: label } });
        await f.k8s.core.createNamespacedPod({ namespace: f.ns, body: pod });
      }
    }
    const svc = await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service(label, label, { type: "LoadBalancer", externalTrafficPolicy: policy }),
    });
    await waitPodsReady(f.k8s, f.ns, label, 4);
    await waitEndpoints(f.k8s, f.ns, label, 4);
    const nodePort = svc.spec?.ports?.[0]?.nodePort;
    const hcnp = svc.spec?.healthCheckNodePort;

    // The nodes a health-checking load balancer sends to: all of them under Cluster, 200s under Local
    // (waited on: kube-proxy takes about a second to report new endpoints).
    const healthy = async () => {
      const out = [];
      for (const node of [a, b, c]) {
        if (hcnp) {
          const [h] = await runProbe(
            f.cluster,
            { kind: "external" },
            { target: `${node.internalIP}:${hcnp}`, path: "/" },
          );
          if (h?.status !== 200) continue;
        }
        out.push(node);
      }
      return out;
    };
    const want = policy === "Local" ? [a.name, b.name] : [a.name, b.name, c.name];
    const targets = await waitFor(
      async () => {
        const h = await healthy();
        const names = h.map((n) => n.name);
        return names.join() === want.join() ? { done: true, value: h } : { done: false, state: names };
      },
      { description: `health checks to pass on ${want.join(", ")} only`, timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(targets.map((n) => n.name)).toEqual(
      policy === "Local" ? [a.name, b.name] : [a.name, b.name, c.name],
    );

    for (const node of targets) {
      await waitServing(f.cluster, { kind: "external" }, { target: `${node.internalIP}:${nodePort}` });
      // Each node's kube-proxy programs the endpoints on its own sync: measure once this node reaches
      // every pod it should (all four under Cluster, its own under Local), not while it still misses one.
      const reachable = Object.keys(expected).filter((pod) =>
        policy === "Cluster" ? true : pod.startsWith(node === a ? "a-" : "b-"),
      );
      await waitFor(
        async () => {
          const seen = new Set(
            (
              await runProbe(
                f.cluster,
                { kind: "external" },
                { target: `${node.internalIP}:${nodePort}`, path: "/hostname", count: 40 },
              )
            ).map((e) => e.body?.replace(`${label}-`, "")),
          );
          const missing = reachable.filter((pod) => !seen.has(pod));
          return missing.length === 0 ? { done: true, value: undefined } : { done: false, state: missing };
        },
        { description: `${node.name} to reach ${reachable.join(", ")}`, timeoutMs: 15_000, intervalMs: 200 },
      );
      await ledger.probe(
        f.cluster,
        `external->nodeport@${node.name}`,
        { kind: "external" },
        {
          target: `${node.internalIP}:${nodePort}`,
          path: "/hostname",
          count: PER_NODE,
        },
      );
    }
    // Pod names carry the label prefix; compare by the placement name.
    const entries = ledger.entries.map((e) => ({
      ...e,
      ...(e.body && { body: e.body.replace(`${label}-`, "") }),
    }));
    const shares = [...loadShares(entries)].map(([p, s]) => `${p} ${(s * 100).toFixed(1)}%`).join(", ");
    console.info(`load shares under ${policy}: ${shares}`);
    ledger.expect(loadSkewWithin(entries, expected, 0.1));
  });
});
