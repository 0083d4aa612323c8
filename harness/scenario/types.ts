/**
 * A scenario file, as the runner sees it once it has been read and checked (harness/scenario/load.ts).
 * The format is described in docs/scenario-format.md and, for editors, scenarios/scenario.schema.json.
 *
 * Nodes are named by their 1-based index in the cluster ("1", "2"...) or by name; Services by name in
 * the scenario's namespace; workloads as "deployment/NAME" or "daemonset/NAME".
 */
export interface Scenario {
  /** Where it was read from (absolute). */
  file: string;
  name: string;
  description?: string;
  /** What it reproduces, in a sentence, and where it was reported. */
  reproduces?: string;
  links?: string[];
  cluster: ScenarioCluster;
  /** Kubernetes manifests, already read (paths resolved relative to the file). */
  objects: Record<string, unknown>[];
  traffic: TrafficSpec[];
  steps: Step[];
  expect: Expectation[];
  /**
   * The scenario as written fails on purpose (it reproduces an unsafe setup or a bug): these verdicts
   * must fail, and only these. The library run checks exactly that; `tph scenario run` reports the
   * failure as it is.
   */
  knownFailure?: { verdicts: string[]; because: string };
  /** For a reported upstream bug: the kube-proxy release it was reported on and the one that fixed it. */
  releases?: { reported: string; fixed: string };
}

export interface ScenarioCluster {
  nodes: { zone?: string; labels?: Record<string, string>; kubeProxyVersion?: string }[];
  proxyMode?: "iptables" | "nftables";
  kubeProxyVersion?: string;
  kubeProxyConfig?: Record<string, unknown>;
}

export interface TrafficSpec {
  name: string;
  /** "external", "pod@NODE" or "host@NODE" (a host-network pod on that node). */
  from: string;
  /** "loadbalancer:SERVICE", "nodeport:SERVICE@NODE" or "clusterip:SERVICE". */
  to: string;
  /** The Service port (default its first). */
  port?: number;
  /** HTTP path, or the UDP command for mode udp (default /hostname). */
  path?: string;
  mode?: "http" | "keepalive" | "tcp" | "udp";
  /** Requests per second (default 20). */
  rate?: number;
  /** Send every request from this source port. */
  localPort?: number;
  timeoutMs?: number;
}

/** One action; `id` names it for expectation windows (default: its 1-based position, "1", "2"...). */
export type Step = { id: string } & StepAction;

export type StepAction =
  | { kind: "rolloutRestart"; workload: string }
  | { kind: "rollout"; workload: string; template: Record<string, unknown> }
  | { kind: "scale"; deployment: string; replicas: number }
  | { kind: "deletePod"; selector: string }
  | { kind: "cordon"; node: string }
  | { kind: "uncordon"; node: string }
  | { kind: "drain"; node: string; timeoutSeconds?: number }
  | { kind: "taint"; node: string; key: string; value?: string; effect: string }
  | { kind: "untaint"; node: string; key: string; effect: string }
  | { kind: "patch"; object: string; patch: Record<string, unknown> }
  | { kind: "stopNode"; node: string }
  | { kind: "startNode"; node: string }
  | { kind: "rollNodes"; nodes: string[] }
  | { kind: "rollKubeProxy"; version: string; nodes?: string[] }
  | { kind: "waitEndpoints"; service: string; count: number }
  | { kind: "sleep"; seconds: number };

export const STEP_KINDS = [
  "rolloutRestart",
  "rollout",
  "scale",
  "deletePod",
  "cordon",
  "uncordon",
  "drain",
  "taint",
  "untaint",
  "patch",
  "stopNode",
  "startNode",
  "rollNodes",
  "rollKubeProxy",
  "waitEndpoints",
  "sleep",
] as const;

export const VERDICTS = [
  "NoDrops",
  "SourceIpPreserved",
  "SourceIpSnat",
  "Dropped",
  "Refused",
  "Blackholed",
  "DropsDetected",
  "RecoveredWithin",
] as const;
export type VerdictName = (typeof VERDICTS)[number];

export interface Expectation {
  verdict: VerdictName;
  /** Traffic names it judges (default: every path). */
  paths?: string[];
  /** Which requests: the whole run (default), or before, during or after a step. */
  window?: { before: string } | { during: string } | { after: string };
  /** RecoveredWithin: healthy again at most this long after the window's step ended. */
  withinMs?: number;
}
