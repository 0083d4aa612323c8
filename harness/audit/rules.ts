import type {
  V1DaemonSet,
  V1Deployment,
  V1EndpointSlice,
  V1Node,
  V1Pod,
  V1PodDisruptionBudget,
  V1Service,
} from "@kubernetes/client-node";

/**
 * `tph audit`'s rules: what makes a Service with a Local traffic policy or zone routing drop traffic,
 * judged from the objects alone (read-only). Each rule names its upstream source; docs/audit.md lists
 * them, and audit.test.ts raises each with a manifest set and clears it with the fixed counterpart.
 */
export interface ClusterSnapshot {
  nodes: V1Node[];
  services: V1Service[];
  endpointSlices: V1EndpointSlice[];
  pods: V1Pod[];
  deployments: V1Deployment[];
  daemonSets: V1DaemonSet[];
  pdbs: V1PodDisruptionBudget[];
}

export type Severity = "high" | "medium" | "low";
export const SEVERITIES: readonly Severity[] = ["low", "medium", "high"];

export interface Finding {
  rule: string;
  severity: Severity;
  /** namespace/name of the Service. */
  service: string;
  /** What is wrong, in one sentence. */
  summary: string;
  /** What in the cluster shows it. */
  evidence: string[];
  /** What to change. */
  fix: string;
  /** Nodes where the blackhole is (or would be), for --verify. */
  nodes?: string[];
}

/** What a Service's backends look like, from its EndpointSlices and the pods' owners. */
interface Backing {
  svc: V1Service;
  key: string;
  /** Ready endpoints per node name. */
  readyByNode: Map<string, number>;
  pods: V1Pod[];
  deployment?: V1Deployment;
  daemonSet?: V1DaemonSet;
  pdbs: V1PodDisruptionBudget[];
}

const ZONE = "topology.kubernetes.io/zone";

export function audit(snap: ClusterSnapshot): Finding[] {
  const findings: Finding[] = [];
  for (const svc of auditedServices(snap)) {
    const b = backing(snap, svc);
    for (const rule of RULES) findings.push(...rule.check(b, snap, policies(svc)));
  }
  return findings;
}

function policies(svc: V1Service): Policies {
  const spec = svc.spec ?? {};
  return {
    eLocal:
      spec.externalTrafficPolicy === "Local" && (spec.type === "LoadBalancer" || spec.type === "NodePort"),
    iLocal: spec.internalTrafficPolicy === "Local",
    zoneRouting:
      spec.trafficDistribution !== undefined ||
      svc.metadata?.annotations?.["service.kubernetes.io/topology-mode"] === "Auto",
  };
}

/** The Services the audit looks at: a Local policy or zone routing. */
export function auditedServices(snap: ClusterSnapshot): V1Service[] {
  return snap.services.filter((s) => {
    const p = policies(s);
    return p.eLocal || p.iLocal || p.zoneRouting;
  });
}

interface Policies {
  eLocal: boolean;
  iLocal: boolean;
  zoneRouting: boolean;
}

export interface Rule {
  id: string;
  /** The upstream behaviour the rule rests on. */
  source: string;
  check(b: Backing, snap: ClusterSnapshot, p: Policies): Finding[];
}

function backing(snap: ClusterSnapshot, svc: V1Service): Backing {
  const ns = svc.metadata?.namespace ?? "default";
  const name = svc.metadata?.name ?? "";
  const slices = snap.endpointSlices.filter(
    (s) => s.metadata?.namespace === ns && s.metadata?.labels?.["kubernetes.io/service-name"] === name,
  );
  const readyByNode = new Map<string, number>();
  const podNames = new Set<string>();
  for (const s of slices)
    for (const e of s.endpoints ?? []) {
      if (e.targetRef?.kind === "Pod" && e.targetRef.name) podNames.add(e.targetRef.name);
      if (e.conditions?.ready === false || !e.nodeName) continue;
      readyByNode.set(e.nodeName, (readyByNode.get(e.nodeName) ?? 0) + 1);
    }
  const selector = svc.spec?.selector ?? {};
  const pods = snap.pods.filter(
    (p) =>
      p.metadata?.namespace === ns &&
      (podNames.has(p.metadata?.name ?? "") ||
        (Object.keys(selector).length > 0 && matches(selector, p.metadata?.labels))),
  );
  const owners = new Set(
    pods.flatMap((p) => (p.metadata?.ownerReferences ?? []).map((o) => `${o.kind}/${o.name}`)),
  );
  // A ReplicaSet is named <deployment>-<pod-template-hash> (the hash has no dashes).
  const deployment = snap.deployments.find((d) => {
    const rs = new RegExp(`^ReplicaSet/${escapeRegExp(d.metadata?.name ?? "")}-[a-z0-9]+$`);
    return d.metadata?.namespace === ns && [...owners].some((o) => rs.test(o));
  });
  const daemonSet = snap.daemonSets.find(
    (d) => d.metadata?.namespace === ns && owners.has(`DaemonSet/${d.metadata?.name}`),
  );
  const labels = pods[0]?.metadata?.labels ?? deployment?.spec?.template.metadata?.labels ?? selector;
  const pdbs = snap.pdbs.filter(
    (p) =>
      p.metadata?.namespace === ns &&
      p.spec?.selector?.matchLabels &&
      matches(p.spec.selector.matchLabels, labels),
  );
  return {
    svc,
    key: `${ns}/${name}`,
    readyByNode,
    pods,
    ...(deployment && { deployment }),
    ...(daemonSet && { daemonSet }),
    pdbs,
  };
}

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

/**
 * Nodes that run workloads and take traffic: Ready, not cordoned, not tainted against workloads (a
 * tainted control plane takes neither clients nor load-balancer traffic).
 */
function serviceNodes(snap: ClusterSnapshot): V1Node[] {
  return snap.nodes.filter(
    (n) =>
      !n.spec?.unschedulable &&
      !(n.spec?.taints ?? []).some((t) => t.effect === "NoSchedule" || t.effect === "NoExecute") &&
      n.status?.conditions?.find((c) => c.type === "Ready")?.status !== "False",
  );
}

function name(n: V1Node): string {
  return n.metadata?.name ?? "";
}

function placement(b: Backing): string {
  return [...b.readyByNode].map(([n, c]) => `${n}: ${c}`).join(", ") || "none";
}

const RULES: Rule[] = [
  {
    id: "etp-local-node-without-endpoint",
    source:
      "kube-proxy drops external traffic (NodePort, LoadBalancer IP, externalIPs) for an externalTrafficPolicy: Local Service on a node with no ready local endpoint (pkg/proxy/iptables/proxier.go, KUBE-EXTERNAL-SERVICES DROP; nftables no-endpoint-services drop); the health-check node port answers 503 there so load balancers that check it skip the node",
    check(b, snap, p) {
      if (!p.eLocal) return [];
      const without = serviceNodes(snap).filter((n) => !b.readyByNode.has(name(n)));
      if (without.length === 0) return [];
      const nodePort = b.svc.spec?.type === "NodePort";
      const hc = b.svc.spec?.healthCheckNodePort;
      return [
        {
          rule: this.id,
          severity: nodePort ? "high" : "medium",
          service: b.key,
          summary: `externalTrafficPolicy: Local, and ${without.length} of ${serviceNodes(snap).length} nodes have no ready endpoint: traffic entering them is dropped${nodePort ? "" : " (unless the load balancer honours the health-check node port)"}`,
          evidence: [
            `ready endpoints per node: ${placement(b)}`,
            `nodes without one: ${without.map(name).join(", ")}`,
            ...(hc ? [`healthCheckNodePort ${hc}: 503 on those nodes; a load balancer must check it`] : []),
          ],
          fix: "run a backend on every node that receives the traffic (a DaemonSet), or set externalTrafficPolicy: Cluster (the source IP is then SNATed)",
          nodes: without.map(name),
        },
      ];
    },
  },
  {
    id: "itp-local-client-node-without-endpoint",
    source:
      "kube-proxy drops ClusterIP traffic of an internalTrafficPolicy: Local Service from clients on a node with no local endpoint (KEP-2086; pkg/proxy/iptables/proxier.go 'has no local endpoints' DROP)",
    check(b, snap, p) {
      if (!p.iLocal) return [];
      const without = serviceNodes(snap).filter((n) => !b.readyByNode.has(name(n)));
      if (without.length === 0) return [];
      return [
        {
          rule: this.id,
          severity: "high",
          service: b.key,
          summary: `internalTrafficPolicy: Local, and clients on ${without.length} node(s) have no local endpoint: their requests to the ClusterIP are dropped`,
          evidence: [
            `ready endpoints per node: ${placement(b)}`,
            `nodes without one: ${without.map(name).join(", ")}`,
          ],
          fix: "back the Service with a DaemonSet (an endpoint on every node clients run on), or set internalTrafficPolicy: Cluster",
          nodes: without.map(name),
        },
      ];
    },
  },
  {
    id: "local-single-replica",
    source:
      "with a Local policy a node keeps traffic only while its own endpoint is ready; a single replica leaves every other node without one and, during its rollout or eviction, its own node too",
    check(b, _snap, p) {
      if (!(p.eLocal || p.iLocal) || b.daemonSet) return [];
      const replicas = b.deployment?.spec?.replicas ?? (b.deployment ? 1 : b.pods.length);
      if (replicas !== 1) return [];
      return [
        {
          rule: this.id,
          severity: "high",
          service: b.key,
          summary:
            "a Local policy backed by a single replica: a rollout, eviction or node failure leaves no node with an endpoint",
          evidence: [`${b.deployment ? `deployment/${b.deployment.metadata?.name}` : "pods"}: 1 replica`],
          fix: "run at least one replica per node that receives the traffic (a DaemonSet), or use the Cluster policy",
        },
      ];
    },
  },
  {
    id: "local-rollout-not-surge-first",
    source:
      "a rollout that removes a pod before its replacement is ready (Deployment maxUnavailable > 0; DaemonSet maxSurge 0) leaves that node without a local endpoint for the gap (the rollout-unsafe-drops suite measures it)",
    check(b, _snap, p) {
      if (!(p.eLocal || p.iLocal)) return [];
      if (b.daemonSet) {
        const ru = b.daemonSet.spec?.updateStrategy?.rollingUpdate;
        const surge = ru?.maxSurge;
        if (
          b.daemonSet.spec?.updateStrategy?.type === "OnDelete" ||
          (surge !== undefined && surge !== 0 && surge !== "0" && surge !== "0%")
        )
          return [];
        return [
          {
            rule: this.id,
            severity: "high",
            service: b.key,
            summary:
              "the DaemonSet's rollout stops each node's pod before its replacement is ready: each node blackholes in turn",
            evidence: [
              `daemonset/${b.daemonSet.metadata?.name}: maxSurge ${surge ?? "0 (default)"}, maxUnavailable ${ru?.maxUnavailable ?? "1 (default)"}`,
            ],
            fix: "set updateStrategy.rollingUpdate to maxSurge: 1, maxUnavailable: 0, and give pods a readiness probe and a delayed shutdown",
          },
        ];
      }
      if (!b.deployment) return [];
      const s = b.deployment.spec?.strategy;
      const maxUnavailable = s?.rollingUpdate?.maxUnavailable ?? "25%";
      if (s?.type === "RollingUpdate" || s?.type === undefined) {
        if (maxUnavailable === 0 || maxUnavailable === "0" || maxUnavailable === "0%") return [];
      }
      return [
        {
          rule: this.id,
          severity: "medium",
          service: b.key,
          summary:
            "the Deployment's rollout may remove a node's only endpoint before a replacement is ready there",
          evidence: [
            `deployment/${b.deployment.metadata?.name}: strategy ${s?.type ?? "RollingUpdate"}, maxUnavailable ${maxUnavailable}`,
          ],
          fix: "roll out surge-first (maxSurge: 1, maxUnavailable: 0) with a readiness probe and a delayed shutdown, and keep an endpoint per node (DaemonSet)",
        },
      ];
    },
  },
  {
    id: "local-no-pdb",
    source:
      "a drain evicts through the eviction API, which only a PodDisruptionBudget can refuse; without one a drain (or an autoscaler) can remove the endpoints a Local policy depends on",
    check(b, _snap, p) {
      if (!(p.eLocal || p.iLocal) || b.daemonSet || b.pdbs.length > 0) return [];
      return [
        {
          rule: this.id,
          severity: "medium",
          service: b.key,
          summary:
            "no PodDisruptionBudget covers the backends: a drain can take away the endpoints the Local policy needs",
          evidence: [`no PodDisruptionBudget in ${b.svc.metadata?.namespace} selects the backend pods`],
          fix: "add a PodDisruptionBudget (maxUnavailable: 1) for the backend",
        },
      ];
    },
  },
  {
    id: "zone-routing-zoneless-endpoint",
    source:
      "the EndpointSlice controller gives no zone hint to an endpoint on a node without a topology.kubernetes.io/zone label (pkg/controller/endpointslice trafficdist), and kube-proxy uses zone hints only when every ready endpoint has one (pkg/proxy/topology.go): one endpoint on a zoneless node turns zone routing off for every client",
    check(b, snap, p) {
      if (!p.zoneRouting) return [];
      const zoneless = [...b.readyByNode.keys()].filter((n) => {
        const node = snap.nodes.find((x) => name(x) === n);
        return !node?.metadata?.labels?.[ZONE];
      });
      if (zoneless.length === 0) return [];
      return [
        {
          rule: this.id,
          severity: "medium",
          service: b.key,
          summary:
            "zone routing is on, but endpoints run on nodes without a zone label: kube-proxy ignores the hints for every client",
          evidence: [`endpoints on zoneless nodes: ${zoneless.join(", ")}`],
          fix: `label every node with ${ZONE}, or keep the backends off zoneless nodes`,
        },
      ];
    },
  },
  {
    id: "etp-local-uneven-load",
    source:
      "with externalTrafficPolicy: Local a load balancer spreads traffic over nodes, and each node only over its own endpoints: a pod alone on its node takes as much as all pods of a busier node together (the load-skew suite measures it)",
    check(b, _snap, p) {
      if (!p.eLocal || b.readyByNode.size < 2) return [];
      const counts = [...b.readyByNode.values()];
      const max = Math.max(...counts);
      const min = Math.min(...counts);
      if (max === min) return [];
      const nodes = b.readyByNode.size;
      const share = (c: number) => `${((100 / nodes / c) | 0).toString()}%`;
      return [
        {
          rule: this.id,
          severity: "low",
          service: b.key,
          summary: `uneven endpoints per node under externalTrafficPolicy: Local: a pod on a node with ${min} gets ${share(min)} of the traffic, one on a node with ${max} gets ${share(max)}`,
          evidence: [`ready endpoints per node: ${placement(b)}`],
          fix: "spread the pods evenly (topologySpreadConstraints on kubernetes.io/hostname, or a DaemonSet)",
        },
      ];
    },
  },
];

export const AUDIT_RULES: readonly Pick<Rule, "id" | "source">[] = RULES;

/** Findings at or above `threshold`. */
export function atOrAbove(findings: Finding[], threshold: Severity): Finding[] {
  return findings.filter((f) => SEVERITIES.indexOf(f.severity) >= SEVERITIES.indexOf(threshold));
}

export function renderFindings(findings: Finding[], services: number): string {
  if (findings.length === 0)
    return `no findings: ${services} Service(s) with a Local policy or zone routing checked\n`;
  const lines: string[] = [];
  const order = [...findings].sort(
    (a, b) =>
      SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity) || a.service.localeCompare(b.service),
  );
  for (const f of order) {
    lines.push(`${f.severity.toUpperCase().padEnd(6)} ${f.service}  [${f.rule}]`);
    lines.push(`       ${f.summary}`);
    for (const e of f.evidence) lines.push(`       - ${e}`);
    lines.push(`       fix: ${f.fix}`);
  }
  const flagged = new Set(findings.map((f) => f.service)).size;
  lines.push("", `${findings.length} finding(s) on ${flagged} of ${services} Service(s) checked`);
  return `${lines.join("\n")}\n`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
