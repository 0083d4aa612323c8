import { afterAll, beforeAll } from "vitest";
import type { StartedCluster } from "../../harness/cluster/provider.ts";
import { getProvider } from "../../harness/cluster/providers.ts";
import type { ConfigOverrides, ProxyMode } from "../../harness/core/config.ts";
import { createLogger } from "../../harness/core/logger.ts";
import { type KubeClients, kubeClients } from "../../harness/k8s/client.ts";
import { e2eConfig } from "./env.ts";

/** Both dataplanes the local provider offers; suites about Service behaviour run under each. */
export const PROXY_MODES: readonly ProxyMode[] = ["iptables", "nftables"];

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
