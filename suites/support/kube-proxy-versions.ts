import { ensureBinaries, ensureExtraBinary, pinnedVersions } from "../../harness/cluster/local/binaries.ts";
import type { StartedCluster } from "../../harness/cluster/provider.ts";
import { createLogger } from "../../harness/core/logger.ts";
import type { KubeClients } from "../../harness/k8s/client.ts";
import { e2eConfig } from "./env.ts";

/** A kube-proxy to roll to: a binary on the local provider, an image on kind; with its version. */
export interface KubeProxyBuild {
  version: string;
  /** What NodeOperations.replaceKubeProxy takes. */
  ref: string;
}

/**
 * The cluster's own kube-proxy and the previous minor release's (upstream/kube-proxy-previous pins it;
 * the local provider builds it, kind pulls registry.k8s.io/kube-proxy at that version).
 */
export async function kubeProxyBuilds(
  cluster: StartedCluster,
  k8s: KubeClients,
): Promise<{ current: KubeProxyBuild; previous: KubeProxyBuild }> {
  const config = e2eConfig();
  const previousVersion = (await pinnedVersions(config.repoRoot))["kube-proxy-previous"] as string;
  if (cluster.provider === "kind") {
    const ds = await k8s.apps.readNamespacedDaemonSet({ name: "kube-proxy", namespace: "kube-system" });
    const image = ds.spec?.template.spec?.containers[0]?.image ?? "";
    return {
      current: { version: image.split(":").pop() ?? image, ref: image },
      previous: { version: previousVersion, ref: `registry.k8s.io/kube-proxy:${previousVersion}` },
    };
  }
  // The cluster's own was built (or found cached) by the e2e global setup; the previous release's is
  // built here, the first time a suite asks for it (about 2 minutes cold), so runs without the
  // kube-proxy roll never build it.
  const binaries = await ensureBinaries(config, createLogger("quiet"));
  const previous = await ensureExtraBinary(config, "kube-proxy-previous", createLogger("normal"));
  return {
    current: { version: binaries.versions.kubernetes as string, ref: binaries.paths["kube-proxy"] },
    previous: { version: previous.version, ref: previous.path },
  };
}
