import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type KubernetesObject, KubernetesObjectApi, PatchStrategy } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { KubeClients } from "../k8s/client.ts";

/** The pinned MetalLB release's manifest (metallb/metallb-native.yaml), the same version upstream/metallb builds. */
export const METALLB_NAMESPACE = "metallb-system";
export const SPEAKER_LABELS = { app: "metallb", component: "speaker" } as const;
export const CONTROLLER_LABELS = { app: "metallb", component: "controller" } as const;

/** The manifest of the pinned release, or the one at `path` (another release's, from its Go module). */
export async function loadManifest(repoRoot: string, path?: string): Promise<KubernetesObject[]> {
  const text = await readFile(path ?? join(repoRoot, "metallb/metallb-native.yaml"), "utf8");
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null && typeof o === "object" && "kind" in o);
}

/**
 * The part of the manifest that holds for a MetalLB run as host processes: the namespace, the CRDs, the
 * service accounts and RBAC (the processes authenticate as those service accounts), the excludel2
 * ConfigMap. Not the Deployment, DaemonSet, webhook Service/Secret/configuration: the local provider runs
 * the controller with its webhook off. CRDs lose their conversion webhook for the same reason.
 */
export function forHostProcesses(objects: KubernetesObject[]): KubernetesObject[] {
  const keep = new Set([
    "Namespace",
    "CustomResourceDefinition",
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
  ]);
  return objects
    .filter((o) => keep.has(o.kind ?? ""))
    .map((o) => {
      if (o.kind !== "CustomResourceDefinition") return o;
      const crd = structuredClone(o) as KubernetesObject & { spec?: { conversion?: unknown } };
      if (crd.spec) delete crd.spec.conversion;
      return crd;
    });
}

/**
 * Server-side apply, in order; the same call creates or updates. A request whose connection the
 * apiserver closed before answering ("fetch failed: other side closed", seen once on a cluster just up
 * with two suites running side by side) is sent again, up to twice: an apply is idempotent.
 */
export async function applyObjects(k8s: KubeClients, objects: KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(k8s.kubeconfig);
  for (const o of objects) {
    for (let attempt = 1; ; attempt++) {
      try {
        await api.patch(o, undefined, undefined, "tph", true, PatchStrategy.ServerSideApply);
        break;
      } catch (err) {
        if (attempt >= 3 || !connectionLost(err)) throw err;
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }
}

/** A request that never got an answer because its connection went (not an API error). */
export function connectionLost(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return (
    err instanceof TypeError &&
    err.message === "fetch failed" &&
    ["UND_ERR_SOCKET", "ECONNRESET", "UND_ERR_CLOSED"].includes(String(cause?.code))
  );
}

/** The pool (a range on the cluster network) and an L2Advertisement for it. */
export function l2Pool(range: string, name = "tph-pool"): KubernetesObject[] {
  return [
    {
      apiVersion: "metallb.io/v1beta1",
      kind: "IPAddressPool",
      metadata: { name, namespace: METALLB_NAMESPACE },
      spec: { addresses: [range] },
    } as KubernetesObject,
    {
      apiVersion: "metallb.io/v1beta1",
      kind: "L2Advertisement",
      metadata: { name, namespace: METALLB_NAMESPACE },
      spec: { ipAddressPools: [name] },
    } as KubernetesObject,
  ];
}
