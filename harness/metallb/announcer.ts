import { CustomObjectsApi } from "@kubernetes/client-node";
import type { KubeClients } from "../k8s/client.ts";
import { METALLB_NAMESPACE } from "./manifests.ts";

interface ServiceL2Status {
  metadata?: { name?: string };
  status?: { node?: string; serviceName?: string; serviceNamespace?: string };
}

/**
 * The node MetalLB announces a Service's LoadBalancer IP from, as MetalLB itself reports it in its
 * ServiceL2Status objects (one per announcing speaker). Undefined while nobody announces.
 */
export async function announcingNode(
  k8s: KubeClients,
  namespace: string,
  service: string,
): Promise<string | undefined> {
  return (await announcingNodes(k8s, namespace, service))[0];
}

/** Every node with a ServiceL2Status for the Service: more than one while an announcement moves. */
export async function announcingNodes(
  k8s: KubeClients,
  namespace: string,
  service: string,
): Promise<string[]> {
  const api = k8s.kubeconfig.makeApiClient(CustomObjectsApi);
  const list = (await api.listNamespacedCustomObject({
    group: "metallb.io",
    version: "v1beta1",
    namespace: METALLB_NAMESPACE,
    plural: "servicel2statuses",
  })) as { items: ServiceL2Status[] };
  const mine = list.items.filter(
    (s) => s.status?.serviceName === service && s.status.serviceNamespace === namespace,
  );
  return mine.map((s) => s.status?.node).filter((n): n is string => n !== undefined);
}
