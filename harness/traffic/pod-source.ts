import type { ProbeSource, StartedCluster } from "../cluster/provider.ts";
import { TphError } from "../core/errors.ts";
import { kubeClients } from "../k8s/client.ts";
import { controlPortOf } from "./clients.ts";
import { type ControlEndpoint, clockOffset, podProxyEndpoint } from "./probe-control.ts";

/**
 * How traffic starts inside a pod: "api" (the default, on every provider) — through the probe client's
 * control server, reached by the apiserver's pod proxy (no exec, no node access: what works on any
 * cluster, so the path the suites run here is the one kind and attached clusters run); "exec" — the
 * provider runs the probe program in the pod (ip netns exec here, kubectl exec on kind), kept to compare
 * the two. One switch, here: TPH_POD_TRAFFIC, unless the cluster's provider fixes the path.
 */
export function podTrafficVia(cluster?: StartedCluster): "api" | "exec" {
  // A provider that may not exec into pods (a cluster tph did not create) says so.
  if (cluster?.podTraffic) return cluster.podTraffic;
  const v = process.env.TPH_POD_TRAFFIC ?? "api";
  if (v !== "api" && v !== "exec") throw new TphError(`TPH_POD_TRAFFIC=${v}: use api or exec`);
  return v;
}

/** The pod's control server through the apiserver, and its clock's offset from ours. */
export async function podControl(
  cluster: StartedCluster,
  source: Extract<ProbeSource, { kind: "pod" }>,
): Promise<{ endpoint: ControlEndpoint; offsetMs: number; alive: () => Promise<boolean> }> {
  const k8s = kubeClients(cluster.kubeconfigPath);
  const pod = await k8s.core.readNamespacedPod({ namespace: source.namespace, name: source.name });
  const port = controlPortOf(pod);
  if (port === undefined)
    throw new TphError(`pod ${source.namespace}/${source.name} is not a probe client (no control port)`, {
      hint: "send from a pod made by harness/traffic/clients.ts (probeClientPod, the DaemonSet, withProbeContainer)",
    });
  const endpoint = await podProxyEndpoint(k8s.kubeconfig, source.namespace, source.name, port);
  // Whether the source itself still runs: a lost stream from a live pod is the transport's fault.
  const alive = async () => {
    try {
      const p = await k8s.core.readNamespacedPod({ namespace: source.namespace, name: source.name });
      return (
        p.metadata?.uid === pod.metadata?.uid &&
        !p.metadata?.deletionTimestamp &&
        p.status?.phase === "Running" &&
        (p.status?.containerStatuses ?? []).every((c) => c.ready)
      );
    } catch {
      return false;
    }
  };
  return { endpoint, offsetMs: await clockOffset(endpoint), alive };
}

let runs = 0;
/** A run id unique to this process. */
export function runId(): string {
  runs += 1;
  return `${process.pid}-${Date.now().toString(36)}-${runs}`;
}
