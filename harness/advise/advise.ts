import type {
  V1DaemonSet,
  V1Deployment,
  V1PodDisruptionBudget,
  V1PodTemplateSpec,
  V1Service,
} from "@kubernetes/client-node";
import { UsageError } from "../core/errors.ts";

/**
 * `tph advise`: from a Service, its workload and a goal, the four answers a platform engineer needs:
 * (a) the Service spec to apply, each setting justified; (b) the placement the policy depends on, as the
 * exact workload changes, and which the objects already meet; (c) the objects with (a) and (b) applied,
 * for a scenario that proves them (cli/advise.ts writes it); (d) the rollback and what should trigger it.
 * The default is caution: a Local policy only where a ready local endpoint is guaranteed on every node
 * that receives the traffic.
 */
export const GOALS = ["source-ip", "node-local", "zone-local", "even-load"] as const;
export type Goal = (typeof GOALS)[number];

export interface AdviceInput {
  service: V1Service;
  workload?: V1Deployment | V1DaemonSet;
  pdbs: V1PodDisruptionBudget[];
  goal: Goal;
}

export interface Setting {
  field: string;
  value: string | undefined;
  why: string;
}

export interface Requirement {
  what: string;
  /** Already true of the objects as given. */
  met: boolean;
  /** The change that meets it (empty when met). */
  change: string;
}

export interface Advice {
  goal: Goal;
  service: string;
  spec: Setting[];
  placement: Requirement[];
  /** The objects with (a) and (b) applied: what the proving scenario runs. */
  advised: Record<string, unknown>[];
  rollback: { patch: Record<string, unknown>; command: string; trigger: string[] };
}

export function advise(input: AdviceInput): Advice {
  const { service, workload, goal } = input;
  const name = service.metadata?.name ?? "";
  const ns = service.metadata?.namespace ?? "default";
  const external = service.spec?.type === "LoadBalancer" || service.spec?.type === "NodePort";
  const spec = settings(goal, external);
  const daemonSet = workload?.kind === "DaemonSet";
  const local = spec.some((s) => s.value === "Local");
  // A Local policy is advised only with a backend on every node: the workload becomes a DaemonSet.
  const willBeDaemonSet = daemonSet || local;
  const placement: Requirement[] = [];
  const template = (workload?.spec as { template?: V1PodTemplateSpec } | undefined)?.template;
  const container = template?.spec?.containers?.[0];

  if (local) {
    // A nodeSelector or a required (anti-)affinity keeps even a DaemonSet off some nodes.
    const confined = confinement(template);
    const drop = confined.length > 0 ? `, without its ${confined.join(" and ")}` : "";
    placement.push({
      what: "a ready backend on every node that receives the traffic (a Local policy drops on the others)",
      met: daemonSet && confined.length === 0,
      change: daemonSet
        ? `remove the DaemonSet's ${confined.join(" and ")}, so it runs on every node`
        : `run ${workload?.metadata?.name ?? name} as a DaemonSet (same pod template${drop})`,
    });
  }
  if (goal === "zone-local")
    placement.push({
      what: "backends spread over every zone (topology.kubernetes.io/zone), at least one per zone",
      met: hasSpread(template, "topology.kubernetes.io/zone"),
      change:
        "add topologySpreadConstraints: maxSkew 1 on topology.kubernetes.io/zone, whenUnsatisfiable DoNotSchedule; label every node with its zone",
    });
  if (goal === "even-load" || goal === "source-ip")
    if (!daemonSet && !local)
      placement.push({
        what: "backends spread over the nodes (even load, no node holds them all)",
        met: hasSpread(template, "kubernetes.io/hostname"),
        change: "add topologySpreadConstraints: maxSkew 1 on kubernetes.io/hostname",
      });
  placement.push({
    what: "a readiness probe that fails as soon as the pod starts terminating, and a shutdown delayed past kube-proxy's sync",
    met:
      container?.readinessProbe !== undefined && (template?.spec?.terminationGracePeriodSeconds ?? 30) >= 10,
    change:
      "add a readinessProbe (periodSeconds 1, failureThreshold 1) and a preStop sleep of 5 s (or a delayed shutdown), with terminationGracePeriodSeconds above it",
  });
  placement.push(surgeFirst(workload, willBeDaemonSet));
  // Drains leave DaemonSet pods in place: a budget matters for Deployments only.
  if (!willBeDaemonSet)
    placement.push({
      what: "a PodDisruptionBudget so a drain cannot take the backends all at once",
      met: input.pdbs.length > 0,
      change: "add a PodDisruptionBudget with maxUnavailable: 1 selecting the backend pods",
    });

  return {
    goal,
    service: `${ns}/${name}`,
    spec,
    placement,
    advised: advisedObjects(input, spec, placement),
    rollback: {
      patch: {
        spec: {
          externalTrafficPolicy: external ? "Cluster" : undefined,
          internalTrafficPolicy: "Cluster",
          trafficDistribution: null,
        },
      },
      command: `kubectl -n ${ns} patch service ${name} --type merge -p '{"spec":{${external ? '"externalTrafficPolicy":"Cluster",' : ""}"internalTrafficPolicy":"Cluster","trafficDistribution":null}}'`,
      trigger: [
        "kube-proxy's kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy=...} above 0 on a node that receives traffic",
        // Only a LoadBalancer with eTP=Local has a health-check node port (service validation).
        ...(service.spec?.type === "LoadBalancer" &&
        spec.some((s) => s.field === "spec.externalTrafficPolicy" && s.value === "Local")
          ? [
              "the health-check node port (spec.healthCheckNodePort) answering 503 on a node the load balancer still sends to",
            ]
          : []),
        "client timeouts (not refusals) to the Service during a rollout, a drain or a node loss",
      ],
    },
  };
}

function settings(goal: Goal, external: boolean): Setting[] {
  const eTP = (value: "Local" | "Cluster", why: string): Setting[] =>
    external ? [{ field: "spec.externalTrafficPolicy", value, why }] : [];
  switch (goal) {
    case "source-ip":
      return [
        ...eTP(
          "Local",
          "only Local delivers external traffic without SNAT, so the backend sees the client's address; it requires a ready backend on every node the load balancer sends to",
        ),
        {
          field: "spec.internalTrafficPolicy",
          value: "Cluster",
          why: "in-cluster clients see their own address either way; Cluster never drops them",
        },
        { field: "spec.trafficDistribution", value: undefined, why: "not needed for the goal" },
      ];
    case "node-local":
      return [
        ...eTP("Local", "external traffic stays on the node it entered"),
        {
          field: "spec.internalTrafficPolicy",
          value: "Local",
          why: "in-cluster traffic stays on the client's node; a node without a ready backend drops it, hence the DaemonSet",
        },
        {
          field: "spec.trafficDistribution",
          value: undefined,
          why: "Local already keeps traffic on the node",
        },
      ];
    case "zone-local":
      return [
        ...eTP("Cluster", "Cluster never drops; zone routing filters by the receiving node's zone"),
        {
          field: "spec.internalTrafficPolicy",
          value: "Cluster",
          why: "Local would override zone routing and drop on nodes without a backend",
        },
        {
          field: "spec.trafficDistribution",
          value: "PreferSameZone",
          why: "clients are served in their own zone when it has a ready backend, and by all backends when it has none",
        },
      ];
    case "even-load":
      return [
        ...eTP(
          "Cluster",
          "Cluster spreads over every backend; Local splits per node first, so uneven placement skews the load",
        ),
        { field: "spec.internalTrafficPolicy", value: "Cluster", why: "every backend takes an equal share" },
        {
          field: "spec.trafficDistribution",
          value: undefined,
          why: "zone preference would load the zones unevenly",
        },
      ];
  }
}

/** What in a pod template keeps its pods off some nodes: a nodeSelector, required node or pod affinity. */
function confinement(template: V1PodTemplateSpec | undefined): string[] {
  const spec = template?.spec;
  const out: string[] = [];
  if (spec?.nodeSelector && Object.keys(spec.nodeSelector).length > 0) out.push("nodeSelector");
  if (spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution)
    out.push("required node affinity");
  if (spec?.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution)
    out.push("required pod affinity");
  if (spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution)
    out.push("required pod anti-affinity");
  return out;
}

/** A DaemonSet's pods go to every node only without what confines them (see `confinement`). */
function unconfine(pod: NonNullable<V1PodTemplateSpec["spec"]>): void {
  delete pod.nodeSelector;
  const a = pod.affinity;
  if (!a) return;
  if (a.nodeAffinity) delete a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  if (a.podAffinity) delete a.podAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  if (a.podAntiAffinity) delete a.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  for (const k of ["nodeAffinity", "podAffinity", "podAntiAffinity"] as const)
    if (a[k] && Object.keys(a[k]).length === 0) delete a[k];
  if (Object.keys(a).length === 0) delete pod.affinity;
}

function hasSpread(template: V1PodTemplateSpec | undefined, key: string): boolean {
  return (template?.spec?.topologySpreadConstraints ?? []).some((c) => c.topologyKey === key);
}

function surgeFirst(workload: V1Deployment | V1DaemonSet | undefined, asDaemonSet: boolean): Requirement {
  const what = "rollouts that start the new pod before stopping the old one (surge first)";
  if (asDaemonSet && workload?.kind !== "DaemonSet")
    return {
      what,
      met: false,
      change: "the DaemonSet's updateStrategy.rollingUpdate: { maxSurge: 1, maxUnavailable: 0 }",
    };
  if (workload?.kind === "DaemonSet") {
    const ru = (workload as V1DaemonSet).spec?.updateStrategy?.rollingUpdate;
    const met =
      ru?.maxSurge !== undefined &&
      ru.maxSurge !== 0 &&
      ru.maxSurge !== "0" &&
      (ru.maxUnavailable === 0 || ru.maxUnavailable === "0");
    return {
      what,
      met,
      change: met ? "" : "updateStrategy.rollingUpdate: { maxSurge: 1, maxUnavailable: 0 }",
    };
  }
  const ru = (workload as V1Deployment | undefined)?.spec?.strategy?.rollingUpdate;
  const met = ru?.maxUnavailable === 0 || ru?.maxUnavailable === "0" || ru?.maxUnavailable === "0%";
  return { what, met, change: met ? "" : "strategy.rollingUpdate: { maxSurge: 1, maxUnavailable: 0 }" };
}

/** The Service with the advised spec, and the workload (and a PDB) with the placement changes applied. */
function advisedObjects(
  input: AdviceInput,
  spec: Setting[],
  placement: Requirement[],
): Record<string, unknown>[] {
  const svc = structuredClone(input.service) as V1Service & { spec: Record<string, unknown> };
  svc.spec = svc.spec ?? {};
  for (const s of spec) {
    const field = s.field.replace(/^spec\./, "");
    if (s.value === undefined) delete svc.spec[field];
    else svc.spec[field] = s.value;
  }
  const out: Record<string, unknown>[] = [svc as unknown as Record<string, unknown>];
  const w = input.workload;
  if (!w) return out;
  const template = structuredClone((w.spec as { template: V1PodTemplateSpec }).template);
  const pod = template.spec ?? { containers: [] };
  const unmet = (prefix: string) => placement.some((p) => !p.met && p.what.startsWith(prefix));
  if (unmet("a readiness probe")) {
    const c = pod.containers[0];
    if (c) {
      c.readinessProbe ??= {
        httpGet: { path: "/readyz", port: 8080 },
        periodSeconds: 1,
        failureThreshold: 1,
      };
      c.lifecycle = { ...c.lifecycle, preStop: { sleep: { seconds: 5 } } };
    }
    pod.terminationGracePeriodSeconds = Math.max(pod.terminationGracePeriodSeconds ?? 30, 15);
  }
  const spread = (key: string) => ({
    maxSkew: 1,
    topologyKey: key,
    whenUnsatisfiable: "DoNotSchedule",
    labelSelector: { matchLabels: (w.spec?.selector?.matchLabels ?? {}) as Record<string, string> },
  });
  if (unmet("backends spread over every zone"))
    pod.topologySpreadConstraints = [
      ...(pod.topologySpreadConstraints ?? []),
      spread("topology.kubernetes.io/zone"),
    ];
  if (unmet("backends spread over the nodes"))
    pod.topologySpreadConstraints = [
      ...(pod.topologySpreadConstraints ?? []),
      spread("kubernetes.io/hostname"),
    ];
  template.spec = pod;
  const selector = w.spec?.selector;
  const meta = { name: w.metadata?.name, ...(w.metadata?.labels && { labels: w.metadata.labels }) };
  if (unmet("a ready backend on every node") || w.kind === "DaemonSet") {
    if (unmet("a ready backend on every node")) unconfine(pod);
    out.push({
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: meta,
      spec: {
        selector,
        template,
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      },
    });
    return out;
  }
  const d = w as V1Deployment;
  out.push({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta,
    spec: {
      ...(d.spec?.replicas !== undefined && { replicas: Math.max(d.spec.replicas, 2) }),
      selector,
      template,
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    },
  });
  if (unmet("a PodDisruptionBudget"))
    out.push({
      apiVersion: "policy/v1",
      kind: "PodDisruptionBudget",
      metadata: { name: w.metadata?.name },
      spec: { maxUnavailable: 1, selector },
    });
  else out.push(...input.pdbs.map((p) => p as unknown as Record<string, unknown>));
  return out;
}

export function parseGoal(value: string): Goal {
  if ((GOALS as readonly string[]).includes(value)) return value as Goal;
  throw new UsageError(`unknown goal "${value}"`, `choose one of: ${GOALS.join(", ")}`);
}

export function renderAdvice(a: Advice): string {
  const lines = [`${a.service}, goal ${a.goal}`, "", "(a) the Service spec to apply:"];
  for (const s of a.spec) lines.push(`    ${s.field}: ${s.value ?? "(unset)"}`, `        ${s.why}`);
  lines.push("", "(b) the placement it depends on:");
  for (const p of a.placement)
    lines.push(`    [${p.met ? "met" : "TODO"}] ${p.what}${p.met ? "" : `\n        change: ${p.change}`}`);
  lines.push(
    "",
    "(d) rollback: the patch back to the safe policy, and when to apply it:",
    `    ${a.rollback.command}`,
  );
  for (const t of a.rollback.trigger) lines.push(`    - ${t}`);
  return `${lines.join("\n")}\n`;
}
