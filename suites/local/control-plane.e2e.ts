import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pinnedVersions } from "../../harness/cluster/local/binaries.ts";
import { localProvider } from "../../harness/cluster/local/provider.ts";
import type { StartedCluster } from "../../harness/cluster/provider.ts";
import { run, which } from "../../harness/core/exec.ts";
import { createLogger } from "../../harness/core/logger.ts";
import { waitFor } from "../../harness/core/wait.ts";
import { type KubeClients, kubeClients, serverVersion } from "../../harness/k8s/client.ts";
import { e2eConfig } from "../support/env.ts";
import { type HostSnapshot, leftovers, snapshotHost } from "../support/host-snapshot.ts";

/**
 * The local provider's control plane is real: the apiserver serves the pinned version, the real
 * controllers turn a Deployment into a ReplicaSet and Pods, the real scheduler binds them to the Nodes
 * the node agents registered, and the agents run them. Tear-down leaves nothing.
 */
const config = e2eConfig({ clusterName: "cpe2e" });
const logger = createLogger(config.logLevel);
let before: HostSnapshot;
let cluster: StartedCluster;
let k8s: KubeClients;

beforeAll(async () => {
  before = await snapshotHost();
  cluster = await localProvider.up(config, { logger });
  k8s = kubeClients(cluster.kubeconfigPath);
});

afterAll(async () => {
  await cluster?.delete();
});

describe("local control plane", () => {
  it("serves the pinned Kubernetes version", async () => {
    const { kubernetes } = await pinnedVersions(config.repoRoot);
    expect(await serverVersion(k8s)).toBe(kubernetes);
  });

  it("is usable by plain kubectl from the host", async () => {
    const kubectl = await which("kubectl");
    if (!kubectl) return expect.fail("kubectl is not on PATH");
    const { stdout } = await run([
      kubectl,
      "--kubeconfig",
      cluster.kubeconfigPath,
      "get",
      "--raw",
      "/version",
    ]);
    expect(JSON.parse(stdout).gitVersion).toBe((await pinnedVersions(config.repoRoot)).kubernetes);
  });

  it("runs the controllers, the scheduler and the nodes: a Deployment becomes a ReplicaSet and running Pods", async () => {
    await k8s.core.createNamespace({ body: { metadata: { name: "e2e" } } });
    await k8s.apps.createNamespacedDeployment({
      namespace: "e2e",
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 4,
          selector: { matchLabels: { app: "web" } },
          template: {
            metadata: { labels: { app: "web" } },
            spec: {
              containers: [
                { name: "web", image: "registry.k8s.io/e2e-test-images/agnhost:2.53", args: ["netexec"] },
              ],
            },
          },
        },
      },
    });

    const replicaSets = await waitFor(
      async () => {
        const list = await k8s.apps.listNamespacedReplicaSet({ namespace: "e2e" });
        return list.items.length === 1
          ? { done: true, value: list.items }
          : { done: false, state: list.items.length };
      },
      { description: "the deployment controller to create a ReplicaSet", timeoutMs: 30_000 },
    );
    expect(replicaSets[0]?.metadata?.ownerReferences?.[0]?.name).toBe("web");

    // The node IPAM controller (--allocate-node-cidrs) gives each Node a podCIDR from the pod subnet.
    const nodes = (await k8s.core.listNode()).items;
    expect(nodes.map((n) => n.metadata?.name).sort()).toEqual(
      (await cluster.nodes()).map((n) => n.name).sort(),
    );
    const cidrOf = new Map(nodes.map((n) => [n.metadata?.name, n.spec?.podCIDR]));
    for (const cidr of cidrOf.values()) expect(cidr).toMatch(/^10\.244\.\d+\.0\/24$/);

    const pods = await waitFor(
      async () => {
        const list = await k8s.core.listNamespacedPod({ namespace: "e2e" });
        const running = list.items.filter((p) => p.status?.phase === "Running" && p.status.podIP);
        return running.length === 4
          ? { done: true, value: running }
          : {
              done: false,
              state: list.items.map(
                (p) => `${p.metadata?.name}@${p.spec?.nodeName ?? "unbound"}:${p.status?.phase}`,
              ),
            };
      },
      { description: "4 pods bound by the scheduler and running on the nodes", timeoutMs: 60_000 },
    );
    for (const pod of pods) {
      // Each pod's IP comes from its own node's podCIDR.
      const prefix = cidrOf.get(pod.spec?.nodeName)?.replace(/0\/24$/, "");
      expect(pod.status?.podIP?.startsWith(prefix ?? "none")).toBe(true);
      expect(pod.status?.podIPs).toEqual([{ ip: pod.status?.podIP }]);
    }
  });

  it("reports every component running", async () => {
    const status = await cluster.status();
    const names = (await cluster.nodes()).map((n) => n.name);
    expect(status.map((s) => s.component).sort()).toEqual(
      [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        ...names.map((n) => `agent/${n}`),
        ...names.map((n) => `kube-proxy/${n}`),
        "metallb-controller",
        ...names.map((n) => `speaker/${n}`),
      ].sort(),
    );
    expect(status.every((s) => s.running)).toBe(true);
  });

  it("tears down completely and leaves the host's firewall, routes and links as they were", async () => {
    await cluster.delete();
    expect(await leftovers(config.clusterName, config.stateDir)).toEqual([]);
    expect(await snapshotHost()).toEqual(before);
    // A second delete is harmless.
    await cluster.delete();
  });
});
