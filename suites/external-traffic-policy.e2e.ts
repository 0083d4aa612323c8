import { describe, expect, it } from "vitest";
import type { ProbeEntry } from "../harness/traffic/probe.ts";
import { clientIpOf, outcomeOf, runProbe, waitServing } from "../harness/traffic/run-probe.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { netexecPod, service, waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * NodePort with externalTrafficPolicy. One backend, on the first node; the external client calls the
 * NodePort on both nodes. Expected outcomes, as data:
 *
 *   Local   via the node with the endpoint     → served, the backend sees the client's own IP
 *   Local   via the node without an endpoint   → dropped (timeout): the blackhole the harness must catch
 *   Cluster via either node                    → served, source NATed (a cross-node request shows a node IP)
 */
type Outcome = "preserved" | "dropped" | "snat";
const cases: { policy: "Local" | "Cluster"; via: "with" | "without"; expect: Outcome }[] = [
  { policy: "Local", via: "with", expect: "preserved" },
  { policy: "Local", via: "without", expect: "dropped" },
  { policy: "Cluster", via: "with", expect: "snat" },
  { policy: "Cluster", via: "without", expect: "snat" },
];

describe.each(PROXY_MODES)("NodePort externalTrafficPolicy (kube-proxy %s)", (mode) => {
  const f = useCluster({ clusterName: `etp${mode[0]}`, cluster: { proxyMode: mode } });

  it.each(cases)(
    "$policy via the node $via an endpoint: $expect",
    async ({ policy, via, expect: expected }) => {
      const ns = "default";
      const name = `web-${policy.toLowerCase()}-${via}`;
      const [withEndpoint, withoutEndpoint] = await f.cluster.nodes();
      if (!withEndpoint || !withoutEndpoint) return expect.fail("needs two nodes");
      await f.k8s.core.createNamespacedPod({
        namespace: ns,
        body: netexecPod(name, { node: withEndpoint.name }),
      });
      const svc = await f.k8s.core.createNamespacedService({
        namespace: ns,
        body: service(name, name, { type: "NodePort", externalTrafficPolicy: policy }),
      });
      await waitPodsReady(f.k8s, ns, name, 1);
      await waitEndpoints(f.k8s, ns, name, 1);
      const nodePort = svc.spec?.ports?.[0]?.nodePort;
      // The node with the endpoint serves under both policies: wait for kube-proxy there first.
      await waitServing(
        f.cluster,
        { kind: "external" },
        { target: `${withEndpoint.internalIP}:${nodePort}` },
      );

      const node = via === "with" ? withEndpoint : withoutEndpoint;
      const entries = await runProbe(
        f.cluster,
        { kind: "external" },
        {
          target: `${node.internalIP}:${nodePort}`,
          path: "/clientip",
          count: 3,
          timeoutMs: 1_500,
        },
      );
      expect(classify(entries, f.cluster.network.clientIP)).toEqual(Array(3).fill(expected));
      if (policy === "Cluster" && via === "without") {
        // Forwarded to the other node: SNATed to the forwarding node's own address.
        for (const e of entries) expect(clientIpOf(e)).toBe(withoutEndpoint.internalIP);
      }
    },
  );
});

function classify(entries: ProbeEntry[], clientIP: string): (Outcome | string)[] {
  return entries.map((e) => {
    if (e.outcome === "timeout") return "dropped";
    if (e.outcome !== "ok") return outcomeOf(e);
    return clientIpOf(e) === clientIP ? "preserved" : "snat";
  });
}
