import { hostname } from "node:os";
import { dirname, join } from "node:path";
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
import { sharedClusterFor } from "../../harness/cluster/shared.ts";
import { type ConfigOverrides, loadConfig, pinnedSettings } from "../../harness/core/config.ts";
import { createLogger } from "../../harness/core/logger.ts";
import { takeTurn } from "../../harness/core/turn-lock.ts";
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

/**
 * One cluster per proxy mode for the run's suites that can share one (`tph run --cluster-per-suite`, or
 * TPH_SHARE_CLUSTERS=0, gives each its own): a suite shares when it asks for nothing but the default
 * cluster shape in a proxy mode, and needs nothing that changes nodes (no node disruption, no node power,
 * no kube-proxy releases). It works in a namespace of its own, deleted after it, as on a reused cluster.
 * The first suite that needs a mode's shared cluster brings it up; the e2e global setup's teardown
 * deletes it at the end of the run (gc at the start of the next run, after a crash).
 */
const SHARE = process.env.TPH_SHARE_CLUSTERS !== "0" && REUSE === undefined;

/** How long a suite waits for its turn on a shared cluster: the longest suite half takes about 5 min. */
const SHARED_TURN_WAIT_MS = 540_000;

/** The shared cluster a suite runs on, or undefined when it needs a cluster of its own. */
function sharedFor(overrides: ConfigOverrides, needs: readonly Capability[]): ConfigOverrides | undefined {
  return SHARE ? sharedClusterFor(overrides, needs, e2eConfig().cluster.proxyMode) : undefined;
}

export interface ClusterFixture {
  readonly cluster: StartedCluster;
  readonly k8s: KubeClients;
  /** The namespace the suite's objects go in: "default" on its own cluster, its own on a shared one. */
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
  let releaseTurn: (() => Promise<void>) | undefined;
  // A cluster this suite does not make (one left running by `tph up`, or the kubeconfig provider's):
  // the suite works in a namespace of its own there and deletes it afterwards.
  const wanted = REUSE ? loadConfig({}) : e2eConfig(overrides);
  const provider = getProvider(wanted.provider);
  const attached = REUSE !== undefined || !provider.capabilities(wanted).createClusters;
  const shared = attached ? undefined : sharedFor(overrides, needs);
  const ns = attached || shared ? `tph-${overrides.clusterName}` : "default";
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
      // Releases and kube-proxy's configuration are set when a cluster is made: one found as it is
      // cannot give them, and a run on it would prove nothing about them.
      const c = overrides.cluster;
      const pinned = [
        ...pinnedSettings(c).map((s) => s.what),
        c?.proxyMode &&
          cluster.versions.proxyMode &&
          c.proxyMode !== cluster.versions.proxyMode &&
          `kube-proxy in ${c.proxyMode} mode (it runs ${cluster.versions.proxyMode})`,
      ].filter(Boolean);
      if (pinned.length > 0) {
        skipReason = `needs ${pinned.join(", ")}, set when a cluster is made; cluster ${cluster.name} was not made for it`;
        return;
      }
      await recreateNamespace(k8s, ns);
      return;
    }
    if (shared) {
      const config = e2eConfig(shared);
      // One suite at a time on a shared cluster, whichever worker runs it: suites side by side on one
      // cluster would share its kube-proxy syncs, MetalLB pool and nodes' load, which no suite expects.
      releaseTurn = await takeTurn(join(dirname(E2E_STATE_DIR), `shared-${config.clusterName}.turn`), {
        description: `a turn on the shared cluster ${config.clusterName}`,
        timeoutMs: SHARED_TURN_WAIT_MS,
      });
      cluster = await provider.attach(config, createLogger("quiet"));
      if (!cluster) {
        // What a crashed worker left half made under the shared name goes first.
        await provider.gc(config, { logger: createLogger("quiet"), only: config.clusterName });
        cluster = await provider.up(config, { logger: createLogger(config.logLevel) });
      }
      // As on a fresh cluster, the external client knows no node's MAC yet: an entry left by an earlier
      // suite's LoadBalancer IP (handed out again) would send to a node that no longer announces it.
      await cluster.flushNeighbors?.();
      k8s = kubeClients(cluster.kubeconfigPath);
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
    // A suite that failed leaves its cluster's logs with the run's artifacts, taken before the delete; a
    // shared cluster's under the suite's name too, since several suites may fail on it.
    if (!attached && cluster && failed && process.env.TPH_ARTIFACTS) {
      const dir = shared ? `${cluster.name}-${overrides.clusterName}` : cluster.name;
      await cluster
        .exportLogs(join(process.env.TPH_ARTIFACTS, "logs", dir))
        .catch((err: unknown) => console.warn(`could not export the logs of ${cluster?.name}: ${err}`));
    }
    if (attached || shared) {
      // Not waited for: its Services go at once (addresses, NodePorts and endpoints released); its pods
      // may take their grace period, in a namespace no later suite uses.
      try {
        if (k8s && process.env.TPH_RETAIN !== "1") await deleteNamespace(k8s, ns, false);
      } finally {
        await releaseTurn?.();
      }
      return;
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
  await deleteNamespace(k8s, name, true);
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

/** Deletes a namespace; with `wait`, until it is gone (its pods terminated, its Services released). */
async function deleteNamespace(k8s: KubeClients, name: string, wait: boolean): Promise<void> {
  await k8s.core.deleteNamespace({ name }).catch(() => undefined);
  if (!wait) return;
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
    { description: `namespace ${name} to go`, timeoutMs: 120_000, intervalMs: 500 },
  );
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
