import type { StartedCluster } from "../../harness/cluster/provider.ts";
import { previousKubeProxyVersion } from "../../harness/core/releases.ts";
import { e2eConfig } from "./env.ts";

/** A kube-proxy to roll to: a binary on the local provider, an image on kind; with its version. */
export interface KubeProxyBuild {
  version: string;
  /** What NodeOperations.replaceKubeProxy takes. */
  ref: string;
}

/**
 * The cluster's own kube-proxy and the previous minor release's. The provider makes either ready (the
 * local one builds the previous release the first time a suite asks: about 2 minutes cold).
 */
export async function kubeProxyBuilds(
  cluster: StartedCluster,
): Promise<{ current: KubeProxyBuild; previous: KubeProxyBuild }> {
  if (!cluster.kubeProxyRelease) throw new Error(`provider ${cluster.provider} cannot replace kube-proxy`);
  const current = await cluster.kubeProxyRelease();
  const config = e2eConfig();
  const previous = await cluster.kubeProxyRelease(
    await previousKubeProxyVersion(config.repoRoot, config.cluster.kubernetesVersion),
  );
  return { current, previous };
}
