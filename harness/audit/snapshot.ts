import { DiscoveryV1Api, PolicyV1Api } from "@kubernetes/client-node";
import type { KubeClients } from "../k8s/client.ts";
import type { ClusterSnapshot } from "./rules.ts";

/** Everything the audit rules read, with list calls only: the audit changes nothing. */
export async function readSnapshot(k8s: KubeClients): Promise<ClusterSnapshot> {
  const discovery = k8s.kubeconfig.makeApiClient(DiscoveryV1Api);
  const policy = k8s.kubeconfig.makeApiClient(PolicyV1Api);
  const [nodes, services, endpointSlices, pods, deployments, daemonSets, pdbs] = await Promise.all([
    k8s.core.listNode(),
    k8s.core.listServiceForAllNamespaces(),
    discovery.listEndpointSliceForAllNamespaces(),
    k8s.core.listPodForAllNamespaces(),
    k8s.apps.listDeploymentForAllNamespaces(),
    k8s.apps.listDaemonSetForAllNamespaces(),
    policy.listPodDisruptionBudgetForAllNamespaces(),
  ]);
  return {
    nodes: nodes.items,
    services: services.items,
    endpointSlices: endpointSlices.items,
    pods: pods.items,
    deployments: deployments.items,
    daemonSets: daemonSets.items,
    pdbs: pdbs.items,
  };
}
