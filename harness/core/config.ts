import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { UsageError } from "./errors.ts";
import type { LogLevel } from "./logger.ts";

/**
 * The one place configuration is read. Sources, lowest precedence first: built-in defaults, environment
 * variables (TPH_*), then explicit overrides (CLI flags, test options). Everything downstream takes a
 * `HarnessConfig` and never reads the environment itself.
 */
export interface HarnessConfig {
  /** Cluster name: prefixes every namespace, link, file and process the cluster owns. */
  clusterName: string;
  provider: ProviderName;
  /** Where running clusters keep their state, certificates, kubeconfigs and logs. */
  stateDir: string;
  /** Where built upstream binaries are cached, per version. */
  cacheDir: string;
  /** The repository root (for upstream/ and manifests/). */
  repoRoot: string;
  logLevel: LogLevel;
  cluster: ClusterConfig;
  kind: KindConfig;
  target: TargetConfig;
}

/** Settings only the kubeconfig provider reads: a cluster tph did not create. */
export interface TargetConfig {
  /** The kubeconfig file (--kubeconfig, TPH_KUBECONFIG; default $KUBECONFIG, then ~/.kube/config). */
  kubeconfig: string;
  /** Its context to use (--context, TPH_CONTEXT); default its current context. */
  context?: string;
  /** Run suites that cordon, drain or taint nodes (--allow-disruption, TPH_ALLOW_DISRUPTION=1). */
  allowDisruption: boolean;
  /** The source IP a preserving path must show (--client-ip, TPH_CLIENT_IP); default: detected. */
  clientIP?: string;
}

/** Settings only the kind provider reads. */
export interface KindConfig {
  /** A full node image reference, instead of a version (cluster.kubernetesVersion). */
  nodeImage?: string;
  /** Create the cluster without kindnet (bring your own CNI). */
  disableDefaultCNI: boolean;
}

export type ProviderName = "local" | "kind" | "kubeconfig";
export const PROVIDERS: readonly ProviderName[] = ["local", "kind", "kubeconfig"];

export interface ClusterConfig {
  /** The cluster network: the host's one link, the control plane, nodes, external clients, MetalLB pool. */
  nodeSubnet: string;
  podSubnet: string;
  serviceSubnet: string;
  /** Seconds without a heartbeat before the node lifecycle controller marks a Node NotReady. */
  nodeMonitorGracePeriodSeconds: number;
  /** Seconds to wait for the apiserver (and each controller) to report ready. */
  readyTimeoutSeconds: number;
  /** The worker nodes, in order; node i is named `<cluster>-worker`, `<cluster>-worker2`, ... like kind. */
  nodes: NodeSpec[];
  proxyMode: ProxyMode;
  /**
   * The Kubernetes release (vX.Y.Z) of the control plane and kube-proxy; unset: the pinned one
   * (upstream/kubernetes). The local provider builds it on demand; kind runs kindest/node:vX.Y.Z.
   */
  kubernetesVersion?: string;
  /** The kube-proxy release every node runs (vX.Y.Z); unset: the cluster's own Kubernetes release. */
  kubeProxyVersion?: string;
  /**
   * A KubeProxyConfiguration patch (JSON merge patch: objects merge, null deletes), applied on every
   * provider: detectLocalMode, nodePortAddresses, conntrack and nftables settings... the other half of a
   * kube-proxy upgrade.
   */
  kubeProxyConfig?: Record<string, unknown>;
  /** The MetalLB release (vX.Y.Z); unset: the pinned one (upstream/metallb). */
  metallbVersion?: string;
  /**
   * The pod network (--cni NAME[@VERSION]); unset: the provider's default (the CNI reference plugins on
   * local, kindnet on kind). kind installs calico or cilium at the pinned or given release.
   */
  cni?: CniSpec;
  /** Cilium's kube-proxy replacement: the cluster runs no kube-proxy (kind only, with --cni cilium). */
  kubeProxyReplacement?: boolean;
}

export type CniName = "default" | "calico" | "cilium";
export const CNI_NAMES: readonly CniName[] = ["default", "calico", "cilium"];

export interface CniSpec {
  name: CniName;
  /** The release (vX.Y.Z); unset: the one pinned for the provider. */
  version?: string;
}

/** `NAME[@VERSION]`, e.g. `calico@v3.32.2`, `cilium`, `default`. */
export function parseCni(value: string, source: string): CniSpec {
  const [name = "", version, ...rest] = value.trim().split("@");
  if (!(CNI_NAMES as readonly string[]).includes(name) || rest.length > 0)
    throw new UsageError(
      `${source}: unknown CNI "${value}"`,
      `use NAME[@VERSION] with NAME one of ${CNI_NAMES.join(", ")}, e.g. cilium@v1.20.2`,
    );
  if (version === undefined) return { name: name as CniName };
  if (name === "default")
    throw new UsageError(
      `${source}: the default CNI takes no version`,
      "its release is the provider's own (upstream/cni-plugins on local, the node image's kindnet on kind)",
    );
  if (!/^v\d+\.\d+\.\d+$/.test(version))
    throw new UsageError(
      `${source}: CNI version "${version}" is not of the form vX.Y.Z`,
      `e.g. ${name}@v1.2.3`,
    );
  return { name: name as CniName, version };
}

/** A setting a cluster gets when it is made: the flag that sets it, and what it asks for in words. */
export interface PinnedSetting {
  flag: string;
  what: string;
}

/**
 * The releases and configuration `c` pins (what a cluster can be made with, not changed into): a
 * provider refuses those it cannot make, and a cluster found as it is cannot honour any of them.
 */
export function pinnedSettings(c: Partial<ClusterConfig> | undefined): PinnedSetting[] {
  if (!c) return [];
  const perNode = [...new Set((c.nodes ?? []).map((n) => n.kubeProxyVersion).filter(Boolean))];
  const all: (PinnedSetting | false | undefined)[] = [
    c.kubernetesVersion !== undefined && {
      flag: "--kubernetes-version",
      what: `Kubernetes ${c.kubernetesVersion}`,
    },
    c.kubeProxyVersion !== undefined && {
      flag: "--kube-proxy-version",
      what: `kube-proxy ${c.kubeProxyVersion}`,
    },
    perNode.length > 0 && {
      flag: "per-node kubeProxyVersion",
      what: `kube-proxy ${perNode.join(", ")} on some nodes`,
    },
    c.kubeProxyConfig !== undefined && {
      flag: "--kube-proxy-config",
      what: "a kube-proxy configuration of its own",
    },
    c.metallbVersion !== undefined && { flag: "--metallb-version", what: `MetalLB ${c.metallbVersion}` },
    c.cni !== undefined && c.cni.name !== "default" && { flag: "--cni", what: `the ${cniText(c.cni)} CNI` },
    c.kubeProxyReplacement === true && {
      flag: "--kube-proxy-replacement",
      what: "no kube-proxy (Cilium's replacement)",
    },
  ];
  return all.filter((x): x is PinnedSetting => Boolean(x));
}

/** The CNI as the user writes it. */
export function cniText(cni: CniSpec | undefined): string {
  return cni ? `${cni.name}${cni.version ? `@${cni.version}` : ""}` : "default";
}

export interface NodeSpec {
  /** `topology.kubernetes.io/zone`, for trafficDistribution suites. */
  zone?: string;
  labels?: Record<string, string>;
  /** This node's kube-proxy release, for version skew and mid-upgrade clusters (overrides the cluster's). */
  kubeProxyVersion?: string;
}

/** ipvs exists for kind on hosts with IPVS; the local provider refuses it in its preflight. */
export type ProxyMode = "iptables" | "nftables" | "ipvs";
const PROXY_MODES = ["iptables", "nftables", "ipvs"] as const;

/** Every resource name starts with this, so `tph gc` can find leftovers by name alone. */
export const NAME_PREFIX = "tph-";

const CLUSTER_NAME = /^[a-z][a-z0-9]{0,7}$/;

export const DEFAULTS = {
  clusterName: "tph",
  provider: "local",
  // Kept short of common ranges: docker uses 172.17+/16, kind 172.18/16, many CI VMs 10.0-10.1/16.
  nodeSubnet: "10.250.0.0/24",
  podSubnet: "10.244.0.0/16",
  serviceSubnet: "10.96.0.0/16",
  // Upstream's default is 50 s; a shorter one keeps node-failure suites fast. Reports say which was used.
  nodeMonitorGracePeriodSeconds: 20,
  readyTimeoutSeconds: 120,
  nodes: 2,
  proxyMode: "iptables",
} as const;

export type ConfigOverrides = Partial<Omit<HarnessConfig, "cluster" | "kind" | "target">> & {
  cluster?: Partial<ClusterConfig>;
  kind?: Partial<KindConfig>;
  target?: Partial<TargetConfig>;
};

export function loadConfig(
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): HarnessConfig {
  const home = env.HOME || homedir();
  const config: HarnessConfig = {
    kind: { disableDefaultCNI: false },
    target: { kubeconfig: "", allowDisruption: false },
    clusterName: overrides.clusterName ?? env.TPH_CLUSTER ?? DEFAULTS.clusterName,
    provider: overrides.provider ?? parseProvider(env.TPH_PROVIDER ?? DEFAULTS.provider),
    stateDir: resolve(
      overrides.stateDir ??
        env.TPH_STATE_DIR ??
        join(env.XDG_STATE_HOME || join(home, ".local/state"), "tph"),
    ),
    cacheDir: resolve(
      overrides.cacheDir ?? env.TPH_CACHE_DIR ?? join(env.XDG_CACHE_HOME || join(home, ".cache"), "tph"),
    ),
    repoRoot: resolve(overrides.repoRoot ?? env.TPH_REPO_ROOT ?? join(import.meta.dirname, "../..")),
    logLevel: overrides.logLevel ?? parseLogLevel(env.TPH_LOG ?? "normal"),
    cluster: {
      nodeSubnet: overrides.cluster?.nodeSubnet ?? env.TPH_NODE_SUBNET ?? DEFAULTS.nodeSubnet,
      podSubnet: overrides.cluster?.podSubnet ?? env.TPH_POD_SUBNET ?? DEFAULTS.podSubnet,
      serviceSubnet: overrides.cluster?.serviceSubnet ?? env.TPH_SERVICE_SUBNET ?? DEFAULTS.serviceSubnet,
      nodeMonitorGracePeriodSeconds:
        overrides.cluster?.nodeMonitorGracePeriodSeconds ??
        parseNumber("TPH_NODE_MONITOR_GRACE", env.TPH_NODE_MONITOR_GRACE) ??
        DEFAULTS.nodeMonitorGracePeriodSeconds,
      readyTimeoutSeconds:
        overrides.cluster?.readyTimeoutSeconds ??
        parseNumber("TPH_READY_TIMEOUT", env.TPH_READY_TIMEOUT) ??
        DEFAULTS.readyTimeoutSeconds,
      nodes:
        overrides.cluster?.nodes ??
        Array.from({ length: parseNumber("TPH_NODES", env.TPH_NODES) ?? DEFAULTS.nodes }, () => ({})),
      proxyMode: overrides.cluster?.proxyMode ?? parseProxyMode(env.TPH_PROXY_MODE ?? DEFAULTS.proxyMode),
    },
  };
  const kubeProxyConfig =
    overrides.cluster?.kubeProxyConfig ?? readKubeProxyConfigFile(env.TPH_KUBE_PROXY_CONFIG);
  if (kubeProxyConfig) config.cluster.kubeProxyConfig = kubeProxyConfig;
  const metallbVersion = overrides.cluster?.metallbVersion ?? env.TPH_METALLB_VERSION;
  if (metallbVersion) config.cluster.metallbVersion = parseMetallbVersion(metallbVersion);
  const kubeProxyVersion = overrides.cluster?.kubeProxyVersion ?? env.TPH_KUBE_PROXY_VERSION;
  if (kubeProxyVersion)
    config.cluster.kubeProxyVersion = parseKubernetesVersion(kubeProxyVersion, "TPH_KUBE_PROXY_VERSION");
  // TPH_KIND_K8S_VERSION: its name before the local provider honoured it too.
  const kubernetesVersion =
    overrides.cluster?.kubernetesVersion ?? env.TPH_KUBERNETES_VERSION ?? env.TPH_KIND_K8S_VERSION;
  if (kubernetesVersion)
    config.cluster.kubernetesVersion = parseKubernetesVersion(kubernetesVersion, "Kubernetes version");
  const cni = overrides.cluster?.cni ?? (env.TPH_CNI ? parseCni(env.TPH_CNI, "TPH_CNI") : undefined);
  if (cni && cni.name !== "default") config.cluster.cni = cni;
  if (overrides.cluster?.kubeProxyReplacement ?? env.TPH_KUBE_PROXY_REPLACEMENT === "1") {
    if (config.cluster.cni?.name !== "cilium")
      throw new UsageError(
        "kube-proxy replacement is Cilium's: it needs --cni cilium",
        "e.g. --provider kind --cni cilium --kube-proxy-replacement",
      );
    config.cluster.kubeProxyReplacement = true;
  }
  const kindImage = overrides.kind?.nodeImage ?? env.TPH_KIND_NODE_IMAGE;
  config.kind = {
    ...(kindImage && { nodeImage: kindImage }),
    disableDefaultCNI: overrides.kind?.disableDefaultCNI ?? env.TPH_KIND_DISABLE_CNI === "true",
  };
  const context = overrides.target?.context ?? env.TPH_CONTEXT;
  const clientIP = overrides.target?.clientIP ?? env.TPH_CLIENT_IP;
  config.target = {
    kubeconfig: resolve(
      overrides.target?.kubeconfig ??
        env.TPH_KUBECONFIG ??
        env.KUBECONFIG?.split(":")[0] ??
        join(home, ".kube/config"),
    ),
    ...(context && { context }),
    allowDisruption: overrides.target?.allowDisruption ?? env.TPH_ALLOW_DISRUPTION === "1",
    ...(clientIP && { clientIP }),
  };
  validateClusterName(config.clusterName);
  return config;
}

export function validateClusterName(name: string): void {
  if (!CLUSTER_NAME.test(name)) {
    throw new UsageError(
      `invalid cluster name "${name}"`,
      "use 1-8 characters, lowercase letters and digits, starting with a letter (it prefixes Linux interface names, which are limited to 15 characters)",
    );
  }
}

export function parseProvider(value: string): ProviderName {
  if ((PROVIDERS as readonly string[]).includes(value)) return value as ProviderName;
  throw new UsageError(`unknown provider "${value}"`, `choose one of: ${PROVIDERS.join(", ")}`);
}

/**
 * Fields of the KubeProxyConfiguration the harness sets itself and a patch may not change: the cluster
 * depends on them (the Node name decides endpoint locality; the mode has its own option).
 */
const KUBE_PROXY_OWNED = [
  "apiVersion",
  "kind",
  "clientConnection",
  "hostnameOverride",
  "mode",
  "healthzBindAddress",
];

/** A KubeProxyConfiguration patch from YAML (a file's, or the cluster file's `kubeProxyConfig`). */
export function parseKubeProxyConfig(doc: unknown, source: string): Record<string, unknown> {
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    throw new UsageError(
      `${source}: a KubeProxyConfiguration patch must be a mapping`,
      "e.g. detectLocalMode: NodeCIDR",
    );
  const patch = { ...(doc as Record<string, unknown>) };
  // A whole KubeProxyConfiguration document is accepted: its apiVersion and kind are the harness's too.
  if (patch.kind === "KubeProxyConfiguration") {
    delete patch.kind;
    delete patch.apiVersion;
  }
  const owned = Object.keys(patch).filter((k) => KUBE_PROXY_OWNED.includes(k));
  if (owned.length > 0)
    throw new UsageError(
      `${source}: ${owned.join(", ")} ${owned.length === 1 ? "is" : "are"} set by tph and cannot be patched`,
      "the proxy mode is --proxy-mode; the rest the cluster depends on",
    );
  return patch;
}

/** The patch in the YAML file `path` (TPH_KUBE_PROXY_CONFIG, --kube-proxy-config). */
export function readKubeProxyConfigFile(path: string | undefined): Record<string, unknown> | undefined {
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(
      `cannot read the kube-proxy configuration ${path}: ${err instanceof Error ? err.message : err}`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new UsageError(`${path} is not valid YAML: ${err instanceof Error ? err.message : err}`);
  }
  return parseKubeProxyConfig(doc, path);
}

/** RFC 7386 JSON merge patch: objects merge key by key, null deletes, anything else replaces. */
export function mergePatch(
  base: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const here = out[k];
    if (v === null) delete out[k];
    else if (isMapping(v) && isMapping(here)) out[k] = mergePatch(here, v);
    else out[k] = v;
  }
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A MetalLB release: v0.Y.Z. */
export function parseMetallbVersion(value: string): string {
  if (/^v0\.\d+\.\d+$/.test(value)) return value;
  throw new UsageError(
    `MetalLB version "${value}" is not a MetalLB release`,
    "give it as v0.Y.Z, e.g. v0.15.2",
  );
}

/** A Kubernetes release as kube-proxy and the pins name it: v1.Y.Z, optionally with a pre-release. */
export function parseKubernetesVersion(value: string, what: string): string {
  if (/^v1\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(value)) return value;
  throw new UsageError(`${what} "${value}" is not a Kubernetes release`, "give it as v1.Y.Z, e.g. v1.35.4");
}

export function parseProxyMode(value: string): ProxyMode {
  if (value === "iptables" || value === "nftables" || value === "ipvs") return value;
  throw new UsageError(`unknown kube-proxy mode "${value}"`, `choose one of: ${PROXY_MODES.join(", ")}`);
}

/** Number of nodes from a flag: 1-20 (each node is a namespace, a kube-proxy and an agent). */
export function nodeCount(value: string): NodeSpec[] {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 20)
    throw new UsageError(`--nodes ${value}: give a whole number from 1 to 20`);
  return Array.from({ length: n }, () => ({}));
}

/**
 * A cluster file (YAML), for what flags say poorly: per-node zones and labels.
 *
 *   proxyMode: nftables
 *   kubeProxyVersion: v1.36.3        # every node's kube-proxy (default: the cluster's release)
 *   nodes:
 *     - zone: zone-a
 *     - zone: zone-b
 *       labels: { example.com/rack: r2 }
 *       kubeProxyVersion: v1.35.4    # this node's (a cluster mid-upgrade)
 *   cni: cilium@v1.20.2              # kind: the pod network (default: the provider's own)
 *   kubeProxyReplacement: true       # kind with cilium: no kube-proxy
 */
export function parseClusterFile(text: string, source: string): Partial<ClusterConfig> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new UsageError(`${source} is not valid YAML: ${err instanceof Error ? err.message : err}`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new UsageError(`${source} must be a mapping with keys such as nodes and proxyMode`);
  }
  const known = new Set([
    "nodes",
    "proxyMode",
    "nodeSubnet",
    "podSubnet",
    "serviceSubnet",
    "kubeProxyVersion",
    "kubeProxyConfig",
    "cni",
    "kubeProxyReplacement",
  ]);
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (!known.has(key))
      throw new UsageError(`${source}: unknown key "${key}"`, `known keys: ${[...known].join(", ")}`);
  }
  const out: Partial<ClusterConfig> = {};
  if (d.proxyMode !== undefined) out.proxyMode = parseProxyMode(String(d.proxyMode));
  if (d.kubeProxyConfig !== undefined)
    out.kubeProxyConfig = parseKubeProxyConfig(d.kubeProxyConfig, `${source}: kubeProxyConfig`);
  if (d.kubeProxyVersion !== undefined)
    out.kubeProxyVersion = parseKubernetesVersion(String(d.kubeProxyVersion), `${source}: kubeProxyVersion`);
  if (d.cni !== undefined) out.cni = parseCni(String(d.cni), `${source}: cni`);
  if (d.kubeProxyReplacement !== undefined) {
    if (typeof d.kubeProxyReplacement !== "boolean")
      throw new UsageError(`${source}: kubeProxyReplacement must be true or false`);
    out.kubeProxyReplacement = d.kubeProxyReplacement;
  }
  for (const key of ["nodeSubnet", "podSubnet", "serviceSubnet"] as const) {
    if (d[key] !== undefined) out[key] = String(d[key]);
  }
  if (d.nodes !== undefined) {
    if (!Array.isArray(d.nodes) || d.nodes.length === 0)
      throw new UsageError(`${source}: nodes must be a non-empty list`);
    out.nodes = d.nodes.map((n: unknown, i: number) => {
      const node = (n ?? {}) as Record<string, unknown>;
      for (const key of Object.keys(node)) {
        if (key !== "zone" && key !== "labels" && key !== "kubeProxyVersion")
          throw new UsageError(
            `${source}: nodes[${i}] has unknown key "${key}"`,
            "use zone, labels and kubeProxyVersion",
          );
      }
      const labels = node.labels as Record<string, unknown> | undefined;
      if (labels !== undefined && (typeof labels !== "object" || Array.isArray(labels))) {
        throw new UsageError(`${source}: nodes[${i}].labels must be a mapping`);
      }
      return {
        ...(node.zone !== undefined && { zone: String(node.zone) }),
        ...(node.kubeProxyVersion !== undefined && {
          kubeProxyVersion: parseKubernetesVersion(
            String(node.kubeProxyVersion),
            `${source}: nodes[${i}].kubeProxyVersion`,
          ),
        }),
        ...(labels && { labels: Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])) }),
      };
    });
  }
  return out;
}

function parseLogLevel(value: string): LogLevel {
  if (value === "quiet" || value === "normal" || value === "verbose") return value;
  throw new UsageError(`unknown log level "${value}" in TPH_LOG`, "use quiet, normal or verbose");
}

function parseNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${name}=${value} is not a positive number`);
  return n;
}
