import { DiscoveryV1Api } from "@kubernetes/client-node";
import type { HintedEndpoint, Topology } from "../assert/placement.ts";
import type { KubeClients } from "./client.ts";

export const ZONE_LABEL = "topology.kubernetes.io/zone";

/**
 * Where things are, read once: every Node's zone label and the node of every pod in `namespace`
 * (read again after pods change: a rollout's new pods are not in an earlier read).
 */
export async function readTopology(k8s: KubeClients, namespace: string): Promise<Topology> {
  const zones = new Map<string, string | undefined>();
  for (const n of (await k8s.core.listNode()).items)
    zones.set(n.metadata?.name as string, n.metadata?.labels?.[ZONE_LABEL]);
  const pods = new Map<string, string>();
  for (const p of (await k8s.core.listNamespacedPod({ namespace })).items)
    if (p.metadata?.name && p.spec?.nodeName) pods.set(p.metadata.name, p.spec.nodeName);
  return { zones, pods };
}

/** The endpoints of `service`'s EndpointSlices with the hints the EndpointSlice controller wrote. */
export async function hintedEndpoints(
  k8s: KubeClients,
  namespace: string,
  service: string,
): Promise<HintedEndpoint[]> {
  const discovery = k8s.kubeconfig.makeApiClient(DiscoveryV1Api);
  const slices = await discovery.listNamespacedEndpointSlice({
    namespace,
    labelSelector: `kubernetes.io/service-name=${service}`,
  });
  return slices.items
    .flatMap((s) => s.endpoints ?? [])
    .map((ep) => ({
      pod: ep.targetRef?.name ?? ep.addresses.join(","),
      ...(ep.nodeName && { node: ep.nodeName }),
      ...(ep.zone && { zone: ep.zone }),
      ready: ep.conditions?.ready === true,
      forZones: (ep.hints?.forZones ?? []).map((z) => z.name).sort(),
      forNodes: (ep.hints?.forNodes ?? []).map((n) => n.name).sort(),
    }))
    .sort((a, b) => a.pod.localeCompare(b.pod));
}
