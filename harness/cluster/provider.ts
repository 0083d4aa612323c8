import type { HarnessConfig, ProxyMode } from "../core/config.ts";
import type { ExecResult } from "../core/exec.ts";
import type { Logger } from "../core/logger.ts";

/**
 * What every cluster provider gives a suite. Suites are written against these types only, so the same
 * suite runs on kind (Docker) and on the local provider (upstream binaries in network namespaces).
 */
export interface ClusterProvider {
  readonly name: string;
  /**
   * What its clusters can do under `config` (known before any cluster exists); suites state what they
   * need and skip, with the reason, what they cannot. A cluster may narrow this once attached (`detected`).
   */
  capabilities(config: HarnessConfig): Capabilities;
  /**
   * Readies this machine for a run of the suites, after the preflight: builds or fetches what the
   * configuration asks for (binaries, kube-proxy releases) and clears leftovers of an earlier run that died.
   */
  prepareRun(config: HarnessConfig, options: { logger: Logger }): Promise<void>;
  /**
   * Checks prerequisites (root, commands, Docker...) in seconds, before anything is built or started;
   * throws one TphError naming every miss and its fix. The local provider installs missing Debian
   * packages unless `install` is false.
   */
  preflight(config: HarnessConfig, options?: PreflightOptions): Promise<void>;
  /** Brings a cluster up. On failure everything created so far is removed before the error is rethrown. */
  up(config: HarnessConfig, options: UpOptions): Promise<StartedCluster>;
  /** Attaches to a cluster that an earlier `up` left running (CLI commands, suites reusing a cluster). */
  attach(config: HarnessConfig, logger: Logger): Promise<StartedCluster | undefined>;
  /** Removes leftovers of runs that died without cleaning up; returns what it removed, in words. */
  gc(config: HarnessConfig, options: GcOptions): Promise<string[]>;
}

/**
 * What a provider's clusters can do beyond the Kubernetes API. A suite names what it needs
 * (suites/support/cluster.ts `needs`); a test whose need is unmet is skipped, the reason in its row.
 */
export interface Capabilities {
  /** Creates clusters of its own and deletes them (else it attaches to a cluster it did not create). */
  createClusters: boolean;
  /** Cordons, drains, taints and labels nodes (shared state: on a cluster tph did not create, only when allowed). */
  nodeDisruption: boolean;
  /** Stops and starts nodes as a power cut would, or only their kubelet (NodeOperations.stop/start...). */
  nodePower: boolean;
  /** Restarts and replaces a node's kube-proxy, with another release too (StartedCluster.kubeProxyRelease). */
  kubeProxyReleases: boolean;
  /** An L2 LoadBalancer it installed (MetalLB), whose announcing node can be read. */
  l2LoadBalancer: boolean;
  /** An external client outside every node, whose source address (network.clientIP) is known. */
  externalClient: boolean;
  /** Routes a Service's spec.externalIPs from the external client to a node (routeExternalIP). */
  externalIPs: boolean;
}

export type Capability = keyof Capabilities;

const CAPABILITY_TEXT: Record<Capability, string> = {
  createClusters: "create and delete clusters",
  nodeDisruption: "cordon, drain and taint nodes",
  nodePower: "stop and start nodes or their kubelet",
  kubeProxyReleases: "restart kube-proxy or replace it with another release",
  l2LoadBalancer: "run an L2 LoadBalancer (MetalLB) whose announcer it can read",
  externalClient: "send from an external client with a known source address",
  externalIPs: "route a Service's spec.externalIPs to a node",
};

/** Why a test that needs `needs` cannot run on `provider`, or undefined when it can. */
export function unmetNeeds(
  provider: string,
  have: Capabilities,
  needs: readonly Capability[],
): string | undefined {
  const missing = needs.filter((n) => !have[n]);
  if (missing.length === 0) return undefined;
  return `needs ${missing.map((m) => `${m} (${CAPABILITY_TEXT[m]})`).join(", ")}: provider ${provider} cannot`;
}

/** Zones asked for (one entry per node) that the cluster's nodes do not cover, counted per zone. */
export function zonesMissing(wanted: (string | undefined)[], have: (string | undefined)[]): string[] {
  const left = [...have];
  const missing: string[] = [];
  for (const z of wanted) {
    if (z === undefined) continue;
    const i = left.indexOf(z);
    if (i === -1) missing.push(z);
    else left.splice(i, 1);
  }
  return missing;
}

export interface PreflightOptions {
  logger?: Logger;
  /** The kube-proxy modes the run will use; default the config's. */
  proxyModes?: ProxyMode[];
  /** Install what is missing where the provider can (Debian packages, as root). Default true. */
  install?: boolean;
}

export interface UpOptions {
  logger: Logger;
  signal?: AbortSignal;
  /** Keep whatever was created if bring-up fails, and print how to delete it. */
  retain?: boolean;
  /** Whether the preflight may install missing packages (default true). */
  install?: boolean;
}

export interface GcOptions {
  logger: Logger;
  /** Also remove clusters that are complete and whose processes still run. */
  all?: boolean;
  /** Only the cluster of this name: others of the state directory may be another worker's, mid-bring-up. */
  only?: string;
}

export type NodeRole = "control-plane" | "worker";

export interface ClusterNode {
  name: string;
  role: NodeRole;
  internalIP: string;
  zone?: string;
}

/**
 * Pods a drain leaves in place although no DaemonSet owns them: a provider's stand-ins for DaemonSet
 * pods (the local provider's MetalLB speaker placeholders) carry this annotation.
 */
export const DRAIN_KEEPS_ANNOTATION = "tph.local/placeholder";

/** On a cluster tph attached to, the namespaces a run made carry this label ("true")... */
export const MANAGED_LABEL = "tph.io/managed";
/** ...and this annotation, "<hostname>/<pid>" of the process that made them (gc removes a dead one's). */
export const HOLDER_ANNOTATION = "tph.io/holder";

/** The network outside the cluster that external clients and LoadBalancer addresses live on. */
export interface ExternalNetwork {
  subnet: string;
  /** A range MetalLB may hand out, e.g. "10.250.0.224-10.250.0.239". */
  loadBalancerRange: string;
  /** The source IP an external client's requests carry (what a preserving path must show). */
  clientIP: string;
  /**
   * Addresses on this network free for a Service's spec.externalIPs, where the provider can route them
   * from the external client to a node (`StartedCluster.routeExternalIP`).
   */
  externalIPs?: readonly string[];
}

/** Where traffic starts: the external client, or a pod (its network namespace). */
export type ProbeSource = { kind: "external" } | { kind: "pod"; namespace: string; name: string };

export interface StartedCluster extends AsyncDisposable {
  readonly provider: string;
  readonly name: string;
  /** Path to a kubeconfig that plain kubectl on the host can use. */
  readonly kubeconfigPath: string;
  /** The apiserver URL as reachable from the host. */
  readonly server: string;
  /** Versions of the components actually running. */
  readonly versions: Record<string, string>;
  nodes(): Promise<ClusterNode[]>;
  readonly network: ExternalNetwork;
  /** How the external client runs the probe program (argv prefix; probe flags follow). */
  readonly probeCommand: string[];
  /**
   * The argv that runs the probe program at `source` with stdin attached (probe flags follow): what
   * continuous traffic streams from. Pod sources must be probe clients (harness/traffic/clients.ts).
   */
  probeArgv(source: ProbeSource): Promise<string[]>;
  /**
   * The node that really receives the external client's traffic for `ip` on an L2 load balancer: the
   * owner of the MAC address in the client's neighbour (ARP) entry. Undefined while the client has no
   * entry. MetalLB's own status can lag or hold two claims during a move; this is the dataplane's answer.
   */
  l2Receiver?(ip: string): Promise<string | undefined>;
  /**
   * Routes `ip` (one of `network.externalIPs`) from the external client to `node`, as a router in front
   * of a cluster does for a Service's spec.externalIPs.
   */
  routeExternalIP?(ip: string, node: string): Promise<void>;
  /**
   * Forgets the neighbour (ARP) entries of the external client and of the nodes: after an announcement
   * moves or is withdrawn, a cached MAC would keep sending to the old node and hide what a fresh client
   * sees. A node caches one when its host-network traffic to a LoadBalancer IP leaves it (no endpoint
   * to capture it), and MetalLB's gratuitous ARP refreshes such an entry when the address comes back.
   */
  flushNeighbors?(): Promise<void>;
  /**
   * ICMP errors `node` did not send because of the kernel's rate limits so far (Icmp OutRateLimitHost +
   * OutRateLimitGlobal): a refusal the client saw as a timeout is told apart from a blackhole by it.
   */
  icmpRateLimited?(node: string): Promise<number>;
  /** Runs a command as the external client: outside every node, with `network.clientIP` as source. */
  runExternal?(argv: string[], options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<ExecResult>;
  /** What attaching found the cluster can do, where the provider could not know it before (MetalLB present?). */
  readonly detected?: Partial<Capabilities>;
  /**
   * How traffic starts in pods, when the provider fixes it: "api" (pods/proxy) where exec is not ours to
   * use; "exec" for test doubles with no apiserver behind them.
   */
  readonly podTraffic?: "api" | "exec";
  /** Node lifecycle operations, where the provider supports them. */
  readonly nodeOps?: NodeOperations;
  /**
   * A kube-proxy of `version` as NodeOperations.replaceKubeProxy takes it (a binary built or cached here;
   * an image on kind), and the cluster's own (its version and reference) when `version` is omitted.
   */
  kubeProxyRelease?(version?: string): Promise<{ version: string; ref: string }>;
  /** Health of each component, for `tph status`. */
  status(): Promise<ComponentStatus[]>;
  /** Copies every component log into `dir`. */
  exportLogs(dir: string): Promise<string[]>;
  /** Removes everything the cluster created. Safe to call twice. */
  delete(): Promise<void>;
}

export interface ComponentStatus {
  component: string;
  where: string;
  running: boolean;
  detail?: string;
}

/** What disruption suites do to nodes. Each resolves once the action is done, not once the cluster reacted. */
export interface NodeOperations {
  /** Stops a node as a power cut would: kube-proxy, the kubelet (or agent) and its pods stop; its link goes down. */
  stop(node: string): Promise<void>;
  /** Starts a stopped node again; resolves once its kubelet (or agent) runs and kube-proxy is healthy. */
  start(node: string): Promise<void>;
  /**
   * Stops only the node's kubelet (or agent), as when it hangs or crashes: heartbeats stop, so the
   * node goes NotReady, while its pods, kube-proxy and network keep running.
   */
  stopKubelet(node: string): Promise<void>;
  /** Runs a stopped kubelet again (it reports the node and its pods as they are). */
  startKubelet(node: string): Promise<void>;
  restartKubeProxy(node: string): Promise<void>;
  /** Replaces kube-proxy on one node with another binary (e.g. another version) and restarts it. */
  replaceKubeProxy(node: string, binary: string): Promise<void>;
  /** What the node's kube-proxy runs now, as replaceKubeProxy takes it (a binary; an image on kind). */
  kubeProxyRef(node: string): Promise<string>;
  /** A kube-proxy that cannot start, as replaceKubeProxy takes it: the "upgrade" that fails. */
  readonly brokenKubeProxy: string;
}
