import type { V1Pod } from "@kubernetes/client-node";
import type { StartedCluster } from "../../harness/cluster/provider.ts";
import { waitFor } from "../../harness/core/wait.ts";
import type { KubeClients } from "../../harness/k8s/client.ts";
import { announcingNodes } from "../../harness/metallb/announcer.ts";
import { ensureProbeConfigMap, probeClientPod } from "../../harness/traffic/clients.ts";
import { runProbe } from "../../harness/traffic/run-probe.ts";

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

/**
 * The node that announces `service`'s LoadBalancer address (`target` = ip:port), once MetalLB's status
 * names exactly one node, the external client's ARP entry points at that same node (where the provider
 * can tell) and both have held for 2 s. A choice made from the status alone can name a node that no
 * longer (or not yet) receives the traffic: the status is written after the fact and holds two claims
 * while an announcement moves.
 */
export async function settledAnnouncer(
  cluster: StartedCluster,
  k8s: KubeClients,
  namespace: string,
  service: string,
  target: string,
): Promise<string> {
  const ip = target.replace(/:\d+$/, "");
  let last: string | undefined;
  let since = 0;
  return waitFor(
    async () => {
      const claims = await announcingNodes(k8s, namespace, service);
      // A request refreshes the client's neighbour entry, so it names who answers now.
      await runProbe(cluster, { kind: "external" }, { target, timeoutMs: 1_000 });
      const receiver = cluster.l2Receiver ? await cluster.l2Receiver(ip) : claims[0];
      const agreed = claims.length === 1 && claims[0] === receiver ? receiver : undefined;
      if (agreed !== last) {
        last = agreed;
        since = Date.now();
      }
      return agreed && Date.now() - since >= 2_000
        ? { done: true, value: agreed }
        : { done: false, state: { status: claims, arp: receiver } };
    },
    {
      description: `MetalLB's status and the client's ARP entry to agree on who announces ${service}`,
      timeoutMs: 30_000,
      intervalMs: 250,
    },
  );
}
