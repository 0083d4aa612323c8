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

/**
 * Allocatable CPU (cores) per zone over the nodes topology-mode Auto counts: Ready and not control
 * plane. A Ready node without a zone label counts under `undefined` (it disables Auto's hints).
 */
export async function zoneCpu(k8s: KubeClients): Promise<Map<string | undefined, number>> {
  const out = new Map<string | undefined, number>();
  for (const n of (await k8s.core.listNode()).items) {
    const labels = n.metadata?.labels ?? {};
    if ("node-role.kubernetes.io/control-plane" in labels || "node-role.kubernetes.io/master" in labels)
      continue;
    if (n.status?.conditions?.find((c) => c.type === "Ready")?.status !== "True") continue;
    const zone = labels[ZONE_LABEL] || undefined;
    out.set(zone, (out.get(zone) ?? 0) + cpuCores(n.status?.allocatable?.cpu ?? "0"));
  }
  return out;
}

/** "8" → 8, "7500m" → 7.5. */
export function cpuCores(quantity: string): number {
  return quantity.endsWith("m") ? Number(quantity.slice(0, -1)) / 1000 : Number(quantity);
}

/** The messages of `service`'s events with `reason` (e.g. the controller's TopologyAwareHintsDisabled). */
export async function serviceEvents(
  k8s: KubeClients,
  namespace: string,
  service: string,
  reason: string,
): Promise<string[]> {
  const events = await k8s.core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.kind=Service,involvedObject.name=${service}`,
  });
  return events.items.filter((e) => e.reason === reason).map((e) => e.message ?? "");
}
