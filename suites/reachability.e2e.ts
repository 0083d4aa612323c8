import { describe, expect, it } from "vitest";
import { blackholed, noDrops } from "../harness/assert/verdicts.ts";
import { clientIpOf, outcomeOf, runProbe, waitServing } from "../harness/traffic/run-probe.ts";
import { netexecDeployment, netexecPod, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { createClientPod, waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * An agnhost netexec Deployment behind ClusterIP and NodePort Services answers from pods on every node
 * and from the external client; a pod client calling the ClusterIP is seen with its own pod IP.
 */
describe.each(PROXY_MODES)("reachability (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["externalClient"],
    clusterName: `reach${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();

  it("serves ClusterIP and NodePort from every node's pods and from outside", async () => {
    const ns = f.ns;
    await f.k8s.apps.createNamespacedDeployment({ namespace: ns, body: netexecDeployment("web", 4) });
    // One client pod per node, so every node's dataplane is exercised.
    const nodes = await f.cluster.nodes();
    for (const node of nodes) {
      await createClientPod(f.k8s, ns, `client-${node.name}`, node.name);
    }
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("web", "web", { type: "NodePort" }),
    });
    await waitPodsReady(f.k8s, ns, "web", 4);
    const clients = await waitPodsReady(f.k8s, ns, "client", nodes.length);
    await waitEndpoints(f.k8s, ns, "web", 4);
    const clusterIP = svc.spec?.clusterIP as string;
    const nodePort = svc.spec?.ports?.[0]?.nodePort as number;

    for (const node of nodes) {
      await waitServing(f.cluster, { kind: "external" }, { target: `${node.internalIP}:${nodePort}` });
      const entries = await runProbe(
        f.cluster,
        { kind: "external" },
        { target: `${node.internalIP}:${nodePort}`, path: "/hostname", count: 8 },
      );
      expect(entries.map(outcomeOf)).toEqual(Array(8).fill("ok"));
      for (const e of entries) expect(e.body).toMatch(/^web-/);
    }
    for (const client of clients) {
      const source = { kind: "pod", namespace: ns, name: client.metadata?.name as string } as const;
      await waitServing(f.cluster, source, { target: `${clusterIP}:80` });
      const entries = await runProbe(f.cluster, source, {
        target: `${clusterIP}:80`,
        path: "/clientip",
        count: 5,
      });
      expect(entries.map(outcomeOf)).toEqual(Array(5).fill("ok"));
      // ClusterIP traffic from a pod is not masqueraded: the backend sees the client pod's own IP.
      for (const e of entries) expect(clientIpOf(e)).toBe(client.status?.podIP);
    }
  });

  it("negative control: a NodePort with externalTrafficPolicy Local on a node without its pod is caught as dropped", async () => {
    const ns = f.ns;
    const [one, two] = await f.cluster.nodes();
    if (!one || !two) return expect.fail("needs two nodes");
    await f.k8s.core.createNamespacedPod({ namespace: ns, body: netexecPod("only", { node: one.name }) });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("only", "only", { type: "NodePort", externalTrafficPolicy: "Local" }),
    });
    await waitEndpoints(f.k8s, ns, "only", 1);
    const nodePort = svc.spec?.ports?.[0]?.nodePort as number;
    await waitServing(f.cluster, { kind: "external" }, { target: `${one.internalIP}:${nodePort}` });
    ledger.expect(
      noDrops(
        await ledger.probe(
          f.cluster,
          `external->nodeport@${one.name}`,
          { kind: "external" },
          {
            target: `${one.internalIP}:${nodePort}`,
            count: 5,
          },
        ),
      ),
    );
    const dropped = await ledger.probe(
      f.cluster,
      `external->nodeport@${two.name}`,
      { kind: "external" },
      {
        target: `${two.internalIP}:${nodePort}`,
        count: 3,
        timeoutMs: 1_000,
      },
    );
    ledger.expect(blackholed(dropped, "timeout"));
  });
});
