import { describe, expect, it } from "vitest";
import { blackholed, sourceIpPreserved, sourceIpSnat } from "../harness/assert/verdicts.ts";
import { waitServing } from "../harness/traffic/run-probe.ts";
import { netexecPod, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * NodePort with externalTrafficPolicy. One backend, on the first node; the external client calls the
 * NodePort on both nodes. Expected outcomes (verdicts), as data:
 *
 *   Local   via the node with the endpoint     → SourceIpPreserved: the backend sees the client's own IP
 *   Local   via the node without an endpoint   → Dropped (timeout): the blackhole the harness must catch
 *   Cluster via the node with the endpoint     → SourceIpSnat
 *   Cluster via the node without an endpoint   → SourceIpSnat, to that node's own address
 */
type Expected = "SourceIpPreserved" | "Dropped" | "SourceIpSnat";
const cases: { policy: "Local" | "Cluster"; via: "with" | "without"; expect: Expected }[] = [
  { policy: "Local", via: "with", expect: "SourceIpPreserved" },
  { policy: "Local", via: "without", expect: "Dropped" },
  { policy: "Cluster", via: "with", expect: "SourceIpSnat" },
  { policy: "Cluster", via: "without", expect: "SourceIpSnat" },
];

describe.each(PROXY_MODES)("NodePort externalTrafficPolicy (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["externalClient"],
    clusterName: `etp${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it.each(cases)(
    "$policy via the node $via an endpoint: $expect",
    async ({ policy, via, expect: expected }) => {
      const ns = f.ns;
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
      const entries = await ledger.probe(
        f.cluster,
        `external->nodeport@${node.name}`,
        { kind: "external" },
        {
          target: `${node.internalIP}:${nodePort}`,
          // Each entry: who served (/hostname) and the source IP it saw (/clientip), on one connection.
          identify: true,
          count: 3,
          timeoutMs: 1_500,
        },
      );
      for (const e of entries.filter((x) => x.outcome === "ok")) expect(e.servedBy).toBe(name);
      const clientIP = f.cluster.network.clientIP;
      if (expected === "SourceIpPreserved") ledger.expect(sourceIpPreserved(entries, clientIP));
      if (expected === "Dropped") ledger.expect(blackholed(entries, "timeout"));
      if (expected === "SourceIpSnat") {
        // Forwarded to the other node: SNATed to the forwarding node's own address.
        ledger.expect(
          sourceIpSnat(entries, clientIP, via === "without" ? [withoutEndpoint.internalIP] : undefined),
        );
      }
    },
  );
});
