import { stringify } from "yaml";
import { mergePatch } from "../../core/config.ts";
import { UsageError } from "../../core/errors.ts";

/**
 * kind's cluster config (kind.x-k8s.io/v1alpha4), generated from the harness's options and validated
 * before anything is created. Field names are kind's own (sigs.k8s.io/kind/pkg/apis/config/v1alpha4).
 */
export type KindProxyMode = "iptables" | "nftables" | "ipvs";

export interface KindOptions {
  workers: number;
  /** A Kubernetes version (vX.Y.Z, mapped to kindest/node:vX.Y.Z) or a full node image reference. */
  nodeImage?: string;
  kubernetesVersion?: string;
  proxyMode: KindProxyMode;
  /** Zones of the workers, in order (topology.kubernetes.io/zone); fewer zones than workers is fine. */
  zones?: string[];
  /** Leave the cluster without kindnet, for users who install their own CNI. */
  disableDefaultCNI?: boolean;
  /** No kube-proxy at all (kubeProxyMode none): Cilium's kube-proxy replacement takes its place. */
  kubeProxyReplacement?: boolean;
  /** A KubeProxyConfiguration patch: kubeadm merges it into kube-proxy's configuration. */
  kubeProxyConfig?: Record<string, unknown>;
}

/** The fields of v1alpha4 this generator may emit, per object; the unit tests check the output against them. */
export const V1ALPHA4_FIELDS = {
  cluster: [
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "networking",
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
  ],
  node: [
    "role",
    "image",
    "labels",
    "extraMounts",
    "extraPortMappings",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
  ],
  networking: [
    "ipFamily",
    "apiServerPort",
    "apiServerAddress",
    "podSubnet",
    "serviceSubnet",
    "disableDefaultCNI",
    "kubeProxyMode",
    "dnsSearch",
  ],
  kubeProxyMode: ["iptables", "ipvs", "nftables", "none"],
  role: ["control-plane", "worker"],
} as const;

export function validateKindOptions(o: KindOptions): void {
  if (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 10) {
    throw new UsageError(`--nodes ${o.workers}: kind clusters here take 1 to 10 workers`);
  }
  if (!(["iptables", "nftables", "ipvs"] as string[]).includes(o.proxyMode)) {
    throw new UsageError(`unknown kube-proxy mode "${o.proxyMode}"`, "choose iptables, nftables or ipvs");
  }
  if (o.kubernetesVersion && !/^v\d+\.\d+\.\d+$/.test(o.kubernetesVersion)) {
    throw new UsageError(
      `Kubernetes version "${o.kubernetesVersion}" is not of the form vX.Y.Z`,
      "e.g. --kubernetes-version v1.35.1",
    );
  }
  if (o.kubeProxyReplacement && !o.disableDefaultCNI) {
    throw new UsageError(
      "a cluster without kube-proxy needs a CNI that replaces it",
      "use --cni cilium --kube-proxy-replacement",
    );
  }
  if (o.kubeProxyReplacement && o.kubeProxyConfig) {
    throw new UsageError(
      "a kube-proxy configuration patch has no kube-proxy to apply to under kube-proxy replacement",
    );
  }
  if (o.kubernetesVersion && o.nodeImage) {
    throw new UsageError("give either a Kubernetes version or a node image, not both");
  }
  for (const zone of o.zones ?? []) {
    if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(zone))
      throw new UsageError(`zone "${zone}" is not a valid label value`);
  }
}

export function kindConfig(clusterName: string, o: KindOptions): Record<string, unknown> {
  validateKindOptions(o);
  const image = o.nodeImage ?? (o.kubernetesVersion ? `kindest/node:${o.kubernetesVersion}` : undefined);
  const node = (role: "control-plane" | "worker", labels?: Record<string, string>) => ({
    role,
    ...(image && { image }),
    ...(labels && Object.keys(labels).length > 0 && { labels }),
  });
  return {
    kind: "Cluster",
    apiVersion: "kind.x-k8s.io/v1alpha4",
    name: clusterName,
    networking: {
      kubeProxyMode: o.kubeProxyReplacement ? "none" : o.proxyMode,
      ...(o.disableDefaultCNI && { disableDefaultCNI: true }),
    },
    // MetalLB's L2 mode needs ARP answered only by the announcing speaker: with IPVS, kube-proxy must
    // set strictARP (MetalLB's installation docs). The user's kube-proxy patch goes over it.
    ...(!o.kubeProxyReplacement &&
      (o.proxyMode === "ipvs" || o.kubeProxyConfig) && {
        kubeadmConfigPatches: [
          stringify({
            kind: "KubeProxyConfiguration",
            apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
            ...mergePatch(
              o.proxyMode === "ipvs" ? { ipvs: { strictARP: true } } : {},
              o.kubeProxyConfig ?? {},
            ),
          }),
        ],
      }),
    nodes: [
      node("control-plane"),
      ...Array.from({ length: o.workers }, (_, i) => {
        const zone = o.zones?.[i];
        return node("worker", zone ? { "topology.kubernetes.io/zone": zone } : undefined);
      }),
    ],
  };
}

export function kindConfigYaml(clusterName: string, o: KindOptions): string {
  return stringify(kindConfig(clusterName, o));
}
