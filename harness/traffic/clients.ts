import { readFileSync } from "node:fs";
import type { V1ConfigMap, V1Container, V1DaemonSet, V1Pod, V1PodSpec } from "@kubernetes/client-node";
import { waitFor } from "../core/wait.ts";
import { apiStatus, type KubeClients } from "../k8s/client.ts";
import { PROBE_CONTROL_PORT } from "./probe-control.ts";
import { PROBE_PATH } from "./run-probe.ts";
import type { TrafficPath } from "./stream.ts";

/**
 * Probe clients: pods that traffic starts from inside the cluster. They run Node's official image with
 * probe.ts mounted from a ConfigMap, so on kind `kubectl exec` runs the very program the external client
 * runs. (The local provider maps the image to this machine's Node and runs probe.ts in the pod's network
 * namespace; the ConfigMap is then unused.)
 */
export const PROBE_IMAGE = "node:24-alpine";
export const PROBE_CONFIGMAP = "tph-probe";
/** Where probe.ts is inside a probe client pod. */
export const PROBE_IN_POD = "/tph/probe.ts";
export const PROBE_CLIENT_LABEL = "tph-probe-client";

export function probeConfigMap(): V1ConfigMap {
  return { metadata: { name: PROBE_CONFIGMAP }, data: { "probe.ts": readFileSync(PROBE_PATH, "utf8") } };
}

/**
 * The client runs the probe's control server (probe.ts --serve): the harness starts runs through the
 * apiserver's pod proxy, or execs the probe beside it. Ready once the server answers. Exits at once on
 * SIGTERM (Node's default).
 */
function probeContainer(port = PROBE_CONTROL_PORT): V1Container {
  return {
    name: "probe",
    image: PROBE_IMAGE,
    command: ["node", PROBE_IN_POD, "--serve", String(port)],
    ports: [{ name: CONTROL_PORT_NAME, containerPort: port }],
    readinessProbe: { httpGet: { path: "/healthz", port }, periodSeconds: 1, failureThreshold: 3 },
    volumeMounts: [{ name: "probe", mountPath: "/tph" }],
  };
}
const CONTROL_PORT_NAME = "tph-control";
const PROBE_VOLUME = { name: "probe", configMap: { name: PROBE_CONFIGMAP } };

function probeClientSpec(port?: number): V1PodSpec {
  return { containers: [probeContainer(port)], volumes: [PROBE_VOLUME], terminationGracePeriodSeconds: 2 };
}

/**
 * A host-network client shares its node's ports: each gets its own control port, from its name, outside
 * the NodePort range (two on one node collide only if their names hash alike: 1 in 900).
 */
export function hostNetworkControlPort(name: string): number {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return 18090 + (h % 900);
}

/** The control port of a probe client pod (or of the probe container beside a backend), from its spec. */
export function controlPortOf(pod: V1Pod): number | undefined {
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? []) if (p.name === CONTROL_PORT_NAME) return p.containerPort;
  return undefined;
}

/**
 * One probe client pinned to `node`. Needs the ConfigMap (ensureProbeConfigMap) in its namespace. With
 * `hostNetwork`, it sends from the node's own network stack: the source a node-local agent, a
 * hostNetwork DaemonSet or the kubelet is.
 */
export function probeClientPod(name: string, node: string, options: { hostNetwork?: boolean } = {}): V1Pod {
  return {
    metadata: { name, labels: { app: PROBE_CLIENT_LABEL } },
    spec: {
      ...probeClientSpec(options.hostNetwork ? hostNetworkControlPort(name) : undefined),
      nodeSelector: { "kubernetes.io/hostname": node },
      ...(options.hostNetwork && { hostNetwork: true }),
    },
  };
}

/**
 * `pod` with a probe container beside its own: traffic can then start from inside it (a backend
 * calling its own Service: hairpin). Needs the ConfigMap in its namespace.
 */
export function withProbeContainer(pod: V1Pod): V1Pod {
  const spec = pod.spec as V1PodSpec;
  return {
    ...pod,
    spec: {
      ...spec,
      containers: [
        ...spec.containers,
        probeContainer(spec.hostNetwork ? hostNetworkControlPort(pod.metadata?.name ?? "") : undefined),
      ],
      volumes: [...(spec.volumes ?? []), PROBE_VOLUME],
    },
  };
}

/**
 * A probe client on every node, tolerating every taint so that cordon, drain (which skips DaemonSet
 * pods) and ToBeDeletedByClusterAutoscaler leave it in place: the client must outlive the disruption it
 * measures.
 */
export function probeClientDaemonSet(name = "tph-probe"): V1DaemonSet {
  return {
    metadata: { name },
    spec: {
      selector: { matchLabels: { app: PROBE_CLIENT_LABEL } },
      template: {
        metadata: { labels: { app: PROBE_CLIENT_LABEL } },
        spec: { ...probeClientSpec(), tolerations: [{ operator: "Exists" }] },
      },
    },
  };
}

export async function ensureProbeConfigMap(k8s: KubeClients, namespace: string): Promise<void> {
  await createIfAbsent(() => k8s.core.createNamespacedConfigMap({ namespace, body: probeConfigMap() }));
}

/** Creates an object; one that exists already (409) is fine: probe clients are shared by a file's tests. */
async function createIfAbsent(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (apiStatus(err) !== 409) throw err;
  }
}

/**
 * Deploys the probe client DaemonSet and waits until a client runs on each of `nodes`; returns the
 * client pod's name per node.
 */
export async function deployProbeClients(
  k8s: KubeClients,
  namespace: string,
  nodes: string[],
): Promise<Map<string, string>> {
  await ensureProbeConfigMap(k8s, namespace);
  await createIfAbsent(() => k8s.apps.createNamespacedDaemonSet({ namespace, body: probeClientDaemonSet() }));
  return waitFor(
    async () => {
      const pods = await k8s.core.listNamespacedPod({
        namespace,
        labelSelector: `app=${PROBE_CLIENT_LABEL}`,
      });
      const byNode = new Map<string, string>();
      for (const p of pods.items) {
        const ready = p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
        if (ready && p.spec?.nodeName && p.metadata?.name && !p.metadata.deletionTimestamp)
          byNode.set(p.spec.nodeName, p.metadata.name);
      }
      const missing = nodes.filter((n) => !byNode.has(n));
      return missing.length === 0
        ? { done: true, value: byNode }
        : { done: false, state: `no ready probe client on ${missing.join(", ")}` };
    },
    { description: `a probe client on each of ${nodes.join(", ")}`, timeoutMs: 60_000 },
  );
}

/**
 * One traffic path per probe client (from deployProbeClients) to `target`, named `pod@<node>-><what>`:
 * in-cluster traffic from every node.
 */
export function pathsFromClients(
  clients: Map<string, string>,
  namespace: string,
  target: string,
  options: { what?: string; rate: number; path?: string },
): TrafficPath[] {
  return [...clients].map(([node, pod]) => ({
    name: `pod@${node}->${options.what ?? "clusterip"}`,
    source: { kind: "pod" as const, namespace, name: pod },
    target,
    path: options.path ?? "/hostname",
    rate: options.rate,
  }));
}
