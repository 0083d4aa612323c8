import { afterAll, beforeAll, beforeEach } from "vitest";
import type { StartedCluster } from "../../harness/cluster/provider.ts";
import { getProvider } from "../../harness/cluster/providers.ts";
import {
  type ConfigOverrides,
  loadConfig,
  type ProxyMode,
  parseProxyMode,
} from "../../harness/core/config.ts";
import { createLogger } from "../../harness/core/logger.ts";
import { waitFor } from "../../harness/core/wait.ts";
import { apiStatus, type KubeClients, kubeClients } from "../../harness/k8s/client.ts";
import { E2E_STATE_DIR, e2eConfig } from "./env.ts";

/**
 * The dataplanes suites about Service behaviour run under: both of the local provider's by default, or
 * the one TPH_PROXY_MODE names (`tph run --proxy-mode`, the kind workflow's matrix, a reused cluster's).
 */
export const PROXY_MODES: readonly ProxyMode[] = process.env.TPH_PROXY_MODE
  ? [parseProxyMode(process.env.TPH_PROXY_MODE)]
  : ["iptables", "nftables"];

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
}

/**
 * Brings a cluster up before the suite's tests and deletes it after them. Name it per file and mode:
 * names prefix namespaces and links, so two suites never share one. With a reused cluster, attaches to
 * it instead and skips the suite's tests if it has fewer nodes than the suite asks for.
 */
export function useCluster(overrides: ConfigOverrides & { clusterName: string }): ClusterFixture {
  let cluster: StartedCluster | undefined;
  let k8s: KubeClients | undefined;
  let skipReason: string | undefined;
  const ns = REUSE ? `tph-${overrides.clusterName}` : "default";
  beforeAll(async () => {
    if (REUSE) {
      const config = loadConfig({
        clusterName: REUSE,
        ...(REUSE_STATE_DIR && { stateDir: REUSE_STATE_DIR }),
      });
      cluster = await getProvider(config.provider).attach(config, createLogger("quiet"));
      if (!cluster) throw new Error(`cluster ${REUSE} is not running (start it with tph up --name ${REUSE})`);
      k8s = kubeClients(cluster.kubeconfigPath);
      const needed = overrides.cluster?.nodes?.length ?? 2;
      const have = (await cluster.nodes()).length;
      if (have < needed) {
        skipReason = `needs ${needed} worker nodes; cluster ${REUSE} has ${have} (tph up --nodes ${needed})`;
        return;
      }
      await recreateNamespace(k8s, ns);
      return;
    }
    const config = e2eConfig(overrides);
    cluster = await getProvider(config.provider).up(config, { logger: createLogger(config.logLevel) });
    k8s = kubeClients(cluster.kubeconfigPath);
  });
  beforeEach((ctx) => {
    if (skipReason) ctx.skip(skipReason);
  });
  afterAll(async () => {
    if (REUSE) {
      if (k8s && !skipReason && process.env.TPH_RETAIN !== "1")
        await k8s.core.deleteNamespace({ name: ns }).catch(() => undefined);
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
  await k8s.core.createNamespace({ body: { metadata: { name } } });
}
