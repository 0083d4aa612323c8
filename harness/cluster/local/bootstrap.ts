import { RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { apiStatus, kubeClients } from "../../k8s/client.ts";

/** The identity the node agents' routing part uses; nodes themselves may only read their own Node. */
export const CNI_USER = "tph:cni";

/**
 * Cluster objects a local cluster needs before its nodes start: read access to Nodes for the agents'
 * routing (the job kindnet does on kind, with its own service account).
 */
export async function applyBootstrapObjects(kubeconfigPath: string): Promise<void> {
  const rbac = kubeClients(kubeconfigPath).kubeconfig.makeApiClient(RbacAuthorizationV1Api);
  const ignoreExisting = (err: unknown) => {
    if (apiStatus(err) !== 409) throw err;
  };
  await rbac
    .createClusterRole({
      body: {
        metadata: { name: CNI_USER },
        rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] }],
      },
    })
    .catch(ignoreExisting);
  await rbac
    .createClusterRoleBinding({
      body: {
        metadata: { name: CNI_USER },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: CNI_USER },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: CNI_USER }],
      },
    })
    .catch(ignoreExisting);
}
