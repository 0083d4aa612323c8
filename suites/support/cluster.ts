import { afterAll, beforeAll } from "vitest";
import type { StartedCluster } from "../../harness/cluster/provider.ts";
import { getProvider } from "../../harness/cluster/providers.ts";
import { type ConfigOverrides, type ProxyMode, parseProxyMode } from "../../harness/core/config.ts";
import { createLogger } from "../../harness/core/logger.ts";
import { type KubeClients, kubeClients } from "../../harness/k8s/client.ts";
import { E2E_STATE_DIR, e2eConfig } from "./env.ts";

/**
 * The dataplanes suites about Service behaviour run under: both of the local provider's by default, or
 * the one TPH_PROXY_MODE names (`tph run --proxy-mode`, the kind workflow's matrix).
 */
export const PROXY_MODES: readonly ProxyMode[] = process.env.TPH_PROXY_MODE
  ? [parseProxyMode(process.env.TPH_PROXY_MODE)]
  : ["iptables", "nftables"];

export interface ClusterFixture {
  readonly cluster: StartedCluster;
  readonly k8s: KubeClients;
}

/**
 * Brings a cluster up before the suite's tests and deletes it after them. Name it per file and mode:
 * names prefix namespaces and links, so two suites never share one.
 */
export function useCluster(overrides: ConfigOverrides & { clusterName: string }): ClusterFixture {
  let cluster: StartedCluster | undefined;
  let k8s: KubeClients | undefined;
  beforeAll(async () => {
    const config = e2eConfig(overrides);
    cluster = await getProvider(config.provider).up(config, { logger: createLogger(config.logLevel) });
    k8s = kubeClients(cluster.kubeconfigPath);
  });
  afterAll(async () => {
    if (cluster && process.env.TPH_RETAIN === "1") {
      console.warn(
        `retained cluster ${cluster.name}: delete it with TPH_STATE_DIR=${E2E_STATE_DIR} tph down --provider ${cluster.provider} --name ${cluster.name}`,
      );
      return;
    }
    await cluster?.delete();
  });
  return {
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
