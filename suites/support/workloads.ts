import type { V1Pod } from "@kubernetes/client-node";
import { waitFor } from "../../harness/core/wait.ts";
import type { KubeClients } from "../../harness/k8s/client.ts";
import { ensureProbeConfigMap, probeClientPod } from "../../harness/traffic/clients.ts";

/**
 * A probe client pinned to `node` (labelled app=client): suites send traffic from it. Creates the probe
 * ConfigMap in the namespace first.
 */
export async function createClientPod(k8s: KubeClients, namespace: string, name: string, node: string) {
  await ensureProbeConfigMap(k8s, namespace);
  const pod = probeClientPod(name, node);
  pod.metadata = { name, labels: { app: "client" } };
  return k8s.core.createNamespacedPod({ namespace, body: pod });
}

/** Waits until `count` pods matching `app=<label>` are Ready; returns them. */
export async function waitPodsReady(
  k8s: KubeClients,
  namespace: string,
  label: string,
  count: number,
): Promise<V1Pod[]> {
  return waitFor(
    async () => {
      const pods = (
        await k8s.core.listNamespacedPod({ namespace, labelSelector: `app=${label}` })
      ).items.filter((p) => !p.metadata?.deletionTimestamp);
      const ready = pods.filter((p) =>
        p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      );
      return ready.length === count
        ? { done: true, value: ready }
        : {
            done: false,
            state: pods.map((p) => `${p.metadata?.name}:${p.status?.phase}:${p.spec?.nodeName}`),
          };
    },
    { description: `${count} ready pods with app=${label}`, timeoutMs: 60_000 },
  );
}

/** Waits until the Service's EndpointSlices list `count` ready endpoints. */
export async function waitEndpoints(
  k8s: KubeClients,
  namespace: string,
  svc: string,
  count: number,
  timeoutMs = 30_000,
): Promise<void> {
  const { DiscoveryV1Api } = await import("@kubernetes/client-node");
  const discovery = k8s.kubeconfig.makeApiClient(DiscoveryV1Api);
  await waitFor(
    async () => {
      const slices = await discovery.listNamespacedEndpointSlice({
        namespace,
        labelSelector: `kubernetes.io/service-name=${svc}`,
      });
      const ready = slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready).length;
      return ready === count
        ? { done: true, value: undefined }
        : { done: false, state: `${ready} ready endpoints` };
    },
    { description: `${count} ready endpoints for service ${svc}`, timeoutMs },
  );
}

/** Waits for MetalLB to give the LoadBalancer Service an address; returns it. */
export async function waitLoadBalancerIP(k8s: KubeClients, namespace: string, name: string): Promise<string> {
  return waitFor(
    async () => {
      const svc = await k8s.core.readNamespacedService({ name, namespace });
      const ip = svc.status?.loadBalancer?.ingress?.[0]?.ip;
      return ip ? { done: true, value: ip } : { done: false, state: "pending" };
    },
    { description: `an address for service ${name}`, timeoutMs: 30_000, intervalMs: 100 },
  );
}
