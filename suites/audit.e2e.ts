import { describe, expect, it } from "vitest";
import { audit } from "../harness/audit/rules.ts";
import { readSnapshot } from "../harness/audit/snapshot.ts";
import { verifyFindings } from "../harness/audit/verify.ts";
import { backendDaemonSet } from "../manifests/backends.ts";
import { netexecDeployment, service } from "../manifests/workloads.ts";
import { useCluster } from "./support/cluster.ts";
import { waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * `tph audit` on a cluster holding one safe and three unsafe Services with Local policies: it names
 * exactly the three unsafe ones with their causes, and `--verify` confirms each blackhole from the nodes
 * that have it (the unsafe Services are the negative controls: their blackholes must be found and be
 * real; the safe one must raise nothing).
 */
describe("tph audit", () => {
  const f = useCluster({ clusterName: "audit", cluster: { nodes: [{}, {}, {}] } });

  it("names exactly the unsafe Services, with their causes, and --verify confirms the blackholes", async () => {
    const ns = f.ns;
    const [w1, w2] = (await f.cluster.nodes()).map((n) => n.name) as [string, string, string];
    // Safe: a DaemonSet rolled surge-first behind eTP=Local.
    await f.k8s.apps.createNamespacedDaemonSet({
      namespace: ns,
      body: backendDaemonSet("safe", { safe: true }),
    });
    await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("safe", "safe", { type: "NodePort", externalTrafficPolicy: "Local" }),
    });
    // Unsafe 1: eTP=Local on a single replica.
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: netexecDeployment("single", 1, { node: w1 }),
    });
    await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("single", "single", { type: "NodePort", externalTrafficPolicy: "Local" }),
    });
    // Unsafe 2: iTP=Local backed by a Deployment on two of three nodes.
    const cache = netexecDeployment("cache", 2);
    const spec = cache.spec?.template.spec;
    if (spec)
      spec.affinity = {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: [w1, w2] }] },
            ],
          },
        },
      };
    await f.k8s.apps.createNamespacedDeployment({ namespace: ns, body: cache });
    await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("cache", "cache", { type: "ClusterIP", internalTrafficPolicy: "Local" }),
    });
    // Unsafe 3: eTP=Local with three replicas all on one node of three.
    await f.k8s.apps.createNamespacedDeployment({
      namespace: ns,
      body: netexecDeployment("packed", 3, { node: w2 }),
    });
    await f.k8s.core.createNamespacedService({
      namespace: ns,
      body: service("packed", "packed", { type: "NodePort", externalTrafficPolicy: "Local" }),
    });
    await waitPodsReady(f.k8s, ns, "safe", 3);
    await waitPodsReady(f.k8s, ns, "cache", 2);
    for (const [name, n] of [
      ["safe", 3],
      ["single", 1],
      ["cache", 2],
      ["packed", 3],
    ] as const)
      await waitEndpoints(f.k8s, ns, name, n);

    const findings = audit(await readSnapshot(f.k8s)).filter((x) => x.service.startsWith(`${ns}/`));
    const byService = (name: string) =>
      findings.filter((x) => x.service === `${ns}/${name}`).map((x) => x.rule);
    expect(byService("safe")).toEqual([]);
    expect(byService("single")).toEqual(
      expect.arrayContaining(["etp-local-node-without-endpoint", "local-single-replica", "local-no-pdb"]),
    );
    expect(byService("cache")).toEqual(expect.arrayContaining(["itp-local-client-node-without-endpoint"]));
    expect(byService("packed")).toEqual(expect.arrayContaining(["etp-local-node-without-endpoint"]));
    expect(new Set(findings.map((x) => x.service))).toEqual(
      new Set([`${ns}/single`, `${ns}/cache`, `${ns}/packed`]),
    );

    // --verify: the flagged nodes really blackhole (timeouts), from where the findings say.
    const verified = await verifyFindings(f.cluster, f.k8s, findings);
    expect(verified.length).toBeGreaterThan(0);
    for (const v of verified)
      expect(v.blackhole, `${v.service} from ${v.path}: ${v.outcomes.join(",")}`).toBe(true);
    const cacheFrom = verified.filter((v) => v.service === `${ns}/cache`).map((v) => v.node);
    expect(cacheFrom.length).toBe(1);
    // Nothing of the verification is left.
    const leftovers = (await f.k8s.core.listNamespace()).items.filter((n) =>
      n.metadata?.name?.startsWith("tph-audit-"),
    );
    expect(leftovers).toEqual([]);
  });
});
