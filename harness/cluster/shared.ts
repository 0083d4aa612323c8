import type { ConfigOverrides, ProxyMode } from "../core/config.ts";
import type { Capability } from "./provider.ts";

/**
 * One cluster per proxy mode for the suites of a run that can share one. A suite shares when it asks for
 * nothing but the default cluster shape in a proxy mode and needs nothing that changes nodes: node
 * disruption, node power and kube-proxy releases each get a cluster of their own, as do custom node
 * lists (zones, per-node releases, counts) and settings. Sharing saves a bring-up and a teardown per
 * suite; the suites sharing one run one after another, each in a namespace of its own.
 */
export const SHAREABLE_NEEDS: readonly Capability[] = ["l2LoadBalancer", "externalClient", "externalIPs"];

/** The shared cluster's name and settings for `mode`: a subnet of its own, beside the suites' own clusters. */
export function sharedClusterOverrides(mode: ProxyMode): ConfigOverrides {
  return {
    clusterName: `sh${mode[0]}`,
    cluster: { proxyMode: mode, nodeSubnet: mode === "nftables" ? "10.250.11.0/24" : "10.250.10.0/24" },
  };
}

/** The shared cluster a suite with these settings and needs runs on, or undefined for one of its own. */
export function sharedClusterFor(
  overrides: ConfigOverrides,
  needs: readonly Capability[],
  defaultMode: ProxyMode,
): ConfigOverrides | undefined {
  const { proxyMode, ...rest } = overrides.cluster ?? {};
  if (Object.keys(rest).length > 0) return undefined;
  if (needs.some((n) => !SHAREABLE_NEEDS.includes(n))) return undefined;
  return sharedClusterOverrides(proxyMode ?? defaultMode);
}
