import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import {
  type Capability,
  HOLDER_ANNOTATION,
  MANAGED_LABEL,
  type StartedCluster,
  unmetNeeds,
  zonesMissing,
} from "../../harness/cluster/provider.ts";
import { getProvider } from "../../harness/cluster/providers.ts";
import { type ConfigOverrides, loadConfig } from "../../harness/core/config.ts";
import { createLogger } from "../../harness/core/logger.ts";
import { waitFor } from "../../harness/core/wait.ts";
import { apiStatus, type KubeClients, kubeClients } from "../../harness/k8s/client.ts";
import { ZONE_LABEL } from "../../harness/k8s/topology.ts";
import { E2E_STATE_DIR, e2eConfig } from "./env.ts";

export { PROXY_MODES } from "./env.ts";

/**
 * A running cluster to use instead of bringing one up per suite (`tph run --use-running`): its name
 * and state directory. Suites then work in a namespace of their own, which they delete afterwards.
 */
const REUSE = process.env.TPH_REUSE_CLUSTER;
const REUSE_STATE_DIR = process.env.TPH_REUSE_STATE_DIR;

export interface ClusterFixture {
  readonly cluster: StartedCluster;
  readonly k8s: KubeClients;
  /** The namespace the suite's objects go in: "default" on its own cluster, its own on a reused one. */
  readonly ns: string;
  /**
   * Why the suite's tests skip (an unmet need), or undefined: a suite's own beforeAll returns early on
   * it, since there is no cluster to set up.
   */
  readonly skipped: string | undefined;
  /**
   * Why a part of the suite that needs more than the suite as a whole cannot run here (say, node
   * disruption for one describe of cells), or undefined when it can.
   */
  lacking(needs: Capability[]): string | undefined;
}

/**
 * Brings a cluster up before the suite's tests and deletes it after them. Name it per file and mode:
 * names prefix namespaces and links, so two suites never share one. With a reused cluster, attaches to
 * it instead and skips the suite's tests if it has fewer nodes than the suite asks for.
 */
export function useCluster(
  options: ConfigOverrides & {
    clusterName: string;
    /** What the suite needs of the provider beyond the API; unmet, its tests skip with the reason. */
    needs?: Capability[];
  },
): ClusterFixture {
  const { needs = [], ...overrides } = options;
  let cluster: StartedCluster | undefined;
  let k8s: KubeClients | undefined;
  let skipReason: string | undefined;
  // A cluster this suite does not make (one left running by `tph up`, or the kubeconfig provider's):
  // the suite works in a namespace of its own there and deletes it afterwards.
  const wanted = REUSE ? loadConfig({}) : e2eConfig(overrides);
  const provider = getProvider(wanted.provider);
  const attached = REUSE !== undefined || !provider.capabilities(wanted).createClusters;
  const ns = attached ? `tph-${overrides.clusterName}` : "default";
  /** What of `more` this provider (and, once attached, the cluster it found) cannot do. */
  const lacking = (more: Capability[]) =>
    unmetNeeds(
      cluster?.provider ?? provider.name,
      { ...provider.capabilities(wanted), ...cluster?.detected },
      more,
    );
  beforeAll(async () => {
    // Decided before any cluster is made: a suite the provider cannot serve costs nothing.
    skipReason = lacking(needs);
    if (skipReason) return;
    if (attached) {
      const config = REUSE
        ? loadConfig({ clusterName: REUSE, ...(REUSE_STATE_DIR && { stateDir: REUSE_STATE_DIR }) })
        : wanted;
      cluster = await getProvider(config.provider).attach(config, createLogger("quiet"));
      if (!cluster) throw new Error(`cluster ${REUSE} is not running (start it with tph up --name ${REUSE})`);
      k8s = kubeClients(cluster.kubeconfigPath);
      skipReason = lacking(needs);
      if (skipReason) return;
      const nodes = await cluster.nodes();
      const needed = overrides.cluster?.nodes?.length ?? 2;
      if (nodes.length < needed) {
        skipReason = `needs ${needed} worker nodes; cluster ${cluster.name} has ${nodes.length}${REUSE ? ` (tph up --nodes ${needed})` : ""}`;
        return;
      }
      const missingZones = zonesMissing(
        (overrides.cluster?.nodes ?? []).map((n) => n.zone),
        nodes.map((n) => n.zone),
      );
      if (missingZones.length > 0) {
        skipReason = `needs nodes in zones ${missingZones.join(", ")}; cluster ${cluster.name} lacks them${REUSE ? " (give tph up a cluster file with zones)" : ""}`;
        return;
      }
      await recreateNamespace(k8s, ns);
      return;
    }
    cluster = await provider.up(wanted, { logger: createLogger(wanted.logLevel) });
    k8s = kubeClients(cluster.kubeconfigPath);
  });
  let baseline: NodeState[] = [];
  beforeEach(async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    if (k8s) baseline = await nodeStates(k8s);
  });
  // A test must hand the next one the nodes as it found them (disruption actions register their undo,
  // run by the ledger fixture when the test ends): a node left stopped, cordoned, tainted or excluded from
  // load balancers fails the test that left it, by name, instead of the innocent test after it.
  let failed = false;
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === "fail") failed = true;
    if (!k8s || skipReason) return;
    const leaks = diffNodeStates(baseline, await nodeStates(k8s));
    if (leaks.length > 0) throw new Error(`the test left the cluster changed: ${leaks.join("; ")}`);
  });
  afterAll(async () => {
    if (attached) {
      if (k8s && process.env.TPH_RETAIN !== "1")
        await k8s.core.deleteNamespace({ name: ns }).catch(() => undefined);
      return;
    }
    // A suite that failed leaves its cluster's logs with the run's artifacts, taken before the delete.
    if (cluster && failed && process.env.TPH_ARTIFACTS) {
      const dir = join(process.env.TPH_ARTIFACTS, "logs", cluster.name);
      await cluster
        .exportLogs(dir)
        .catch((err: unknown) => console.warn(`could not export the logs of ${cluster?.name}: ${err}`));
    }
    if (cluster && process.env.TPH_RETAIN === "1") {
      console.warn(
        `retained cluster ${cluster.name}: delete it with TPH_STATE_DIR=${E2E_STATE_DIR} tph down --provider ${cluster.provider} --name ${cluster.name}`,
      );
      return;
    }
    await cluster?.delete();
  });
  return {
    ns,
    get skipped() {
      return skipReason;
    },
    lacking,
    get cluster() {
      if (!cluster) throw new Error("cluster is not up (beforeAll failed?)");
      return cluster;
    },
    get k8s() {
      if (!k8s) throw new Error("cluster is not up (beforeAll failed?)");
      return k8s;
    },
  };
}

/** A fresh namespace: a leftover of an earlier run on the same cluster is deleted first. */
async function recreateNamespace(k8s: KubeClients, name: string): Promise<void> {
  await k8s.core.deleteNamespace({ name }).catch(() => undefined);
  await waitFor(
    async () => {
      try {
        await k8s.core.readNamespace({ name });
        return { done: false, state: "terminating" };
      } catch (err) {
        if (apiStatus(err) === 404) return { done: true, value: undefined };
        throw err;
      }
    },
    { description: `namespace ${name} from an earlier run to go`, timeoutMs: 120_000, intervalMs: 500 },
  );
  // Labelled as tph's and annotated with who made it: `tph gc` finds it after a crash.
  await k8s.core.createNamespace({
    body: {
      metadata: {
        name,
        labels: { [MANAGED_LABEL]: "true" },
        annotations: { [HOLDER_ANNOTATION]: `${hostname()}/${process.pid}` },
      },
    },
  });
}

/** What a test may change on a node and must put back. */
export interface NodeState {
  name: string;
  ready: string;
  unschedulable: boolean;
  taints: string[];
  excludedFromLoadBalancers: boolean;
  zone?: string;
}

export async function nodeStates(k8s: KubeClients): Promise<NodeState[]> {
  return (await k8s.core.listNode()).items.map((n) => ({
    name: n.metadata?.name ?? "",
    ready: n.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown",
    unschedulable: n.spec?.unschedulable === true,
    taints: (n.spec?.taints ?? []).map((t) => `${t.key}:${t.effect}`).sort(),
    excludedFromLoadBalancers:
      n.metadata?.labels?.["node.kubernetes.io/exclude-from-external-load-balancers"] !== undefined,
    ...(n.metadata?.labels?.[ZONE_LABEL] && { zone: n.metadata.labels[ZONE_LABEL] }),
  }));
}

/** How `after` differs from `before`, node by node, in words. */
export function diffNodeStates(before: NodeState[], after: NodeState[]): string[] {
  const leaks: string[] = [];
  for (const b of before) {
    const a = after.find((x) => x.name === b.name);
    if (!a) {
      leaks.push(`node ${b.name} is gone`);
      continue;
    }
    if (a.ready !== b.ready) leaks.push(`node ${b.name} is Ready=${a.ready} (was ${b.ready})`);
    if (a.unschedulable !== b.unschedulable)
      leaks.push(`node ${b.name} is ${a.unschedulable ? "cordoned" : "uncordoned"}`);
    const added = a.taints.filter((t) => !b.taints.includes(t));
    const removed = b.taints.filter((t) => !a.taints.includes(t));
    if (added.length > 0) leaks.push(`node ${b.name} is tainted ${added.join(", ")}`);
    if (removed.length > 0) leaks.push(`node ${b.name} lost its taints ${removed.join(", ")}`);
    if (a.excludedFromLoadBalancers !== b.excludedFromLoadBalancers)
      leaks.push(
        `node ${b.name} ${a.excludedFromLoadBalancers ? "is" : "is no longer"} excluded from load balancers`,
      );
    if (a.zone !== b.zone)
      leaks.push(`node ${b.name} is in zone ${a.zone ?? "(none)"} (was ${b.zone ?? "(none)"})`);
  }
  return leaks;
}
