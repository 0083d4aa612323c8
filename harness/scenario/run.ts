import {
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Service,
} from "@kubernetes/client-node";
import {
  blackholed,
  dropsDetected,
  type LedgerEntry,
  noDrops,
  type PathExit,
  recoveredWithin,
  sourceIpPreserved,
  sourceIpSnat,
  type Verdict,
  windows,
} from "../assert/verdicts.ts";
import type { ProbeSource, StartedCluster } from "../cluster/provider.ts";
import { TphError } from "../core/errors.ts";
import { waitFor } from "../core/wait.ts";
import {
  cordon,
  type DisruptContext,
  deletePod,
  drain,
  rollKubeProxy,
  rollNodes,
  rollout,
  rolloutRestart,
  scale,
  startNode,
  stopNode,
  taint,
  uncordon,
  type Workload,
  waitRolledOut,
} from "../disrupt/actions.ts";
import type { KubeClients } from "../k8s/client.ts";
import { ensureProbeConfigMap, PROBE_CLIENT_LABEL, probeClientPod } from "../traffic/clients.ts";
import { waitOutcome } from "../traffic/run-probe.ts";
import type { TrafficPath } from "../traffic/stream.ts";
import type { Expectation, Scenario, Step, TrafficSpec } from "./types.ts";

/**
 * Runs a scenario on a cluster: applies its objects in `namespace`, waits for them, starts its traffic,
 * takes its steps in order (each a disruption action on the test's timeline, undone when the test
 * ends), stops the traffic and judges the ledger with its expectations.
 */
export interface ScenarioContext {
  cluster: StartedCluster;
  k8s: KubeClients;
  namespace: string;
  disrupt: DisruptContext;
  /** Starts continuous traffic recorded in the test's ledger. */
  traffic(paths: TrafficPath[]): Promise<{
    flowing(): Promise<void>;
    stop(): Promise<{ entries: LedgerEntry[]; exits: PathExit[] }>;
  }>;
}

export interface ScenarioResult {
  verdicts: Verdict[];
  entries: LedgerEntry[];
  /** Each step's start and end, by id. */
  steps: Map<string, { start: number; end: number }>;
}

const DEFAULT_RATE = 20;

export async function runScenario(s: Scenario, c: ScenarioContext): Promise<ScenarioResult> {
  const nodes = (await c.cluster.nodes()).map((n) => n.name);
  const node = (ref: string) => resolveNode(ref, nodes);
  await applyObjects(s, c, node);
  await waitObjects(s, c);
  const paths = await trafficPaths(s.traffic, c, node);
  // Before the ledger starts: each path answers once (kube-proxy's rules and MetalLB's announcement are
  // in place), or has had 10 s to; a path expected to drop never answers, and that is for the verdicts.
  await Promise.all(
    paths.map((p) =>
      waitOutcome(c.cluster, p.path.source, { ...p.path, timeoutMs: 1_000 }, "ok", 10_000).catch(
        () => undefined,
      ),
    ),
  );

  const traffic = await c.traffic(paths.map((p) => p.path));
  await traffic.flowing();
  await new Promise((r) => setTimeout(r, 1_000));
  // A step that throws leaves its traffic running: the test's fixture stops it and undoes the steps.
  const steps = new Map<string, { start: number; end: number }>();
  for (const step of s.steps) {
    const start = Date.now();
    await takeStep(step, c, node);
    steps.set(step.id, { start, end: Date.now() });
  }
  // Let the last step's effects show in the ledger.
  await new Promise((r) => setTimeout(r, 3_000));
  const { entries } = await traffic.stop();
  const verdicts = s.expect.flatMap((e) => judge(e, entries, steps, paths));
  return { verdicts, entries, steps };
}

function resolveNode(ref: string, nodes: string[]): string {
  if (/^\d+$/.test(ref)) {
    const name = nodes[Number(ref) - 1];
    if (!name) throw new TphError(`node ${ref}: the cluster has ${nodes.length} nodes`);
    return name;
  }
  if (!nodes.includes(ref)) throw new TphError(`no node ${ref} (nodes: ${nodes.join(", ")})`);
  return ref;
}

/**
 * Creates the scenario's objects in its namespace. A manifest may say `{{node1}}`, `{{node2}}`... for
 * the name of that node of the cluster (to pin a pod, say), since node names differ per cluster.
 */
async function applyObjects(s: Scenario, c: ScenarioContext, node: (ref: string) => string): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(c.k8s.kubeconfig);
  for (const raw of s.objects) {
    const obj = JSON.parse(
      JSON.stringify(raw).replace(/\{\{node(\d+)\}\}/g, (_, i: string) => node(i)),
    ) as KubernetesObject;
    if (obj.kind === "Namespace")
      throw new TphError(
        `${s.file}: a scenario's objects go in its own namespace; drop the Namespace object`,
      );
    obj.metadata = { ...obj.metadata, namespace: c.namespace };
    await api.create(obj);
  }
}

/** Every workload rolled out and every LoadBalancer Service given an address. */
async function waitObjects(s: Scenario, c: ScenarioContext): Promise<void> {
  for (const o of s.objects as { kind?: string; metadata?: { name?: string } }[]) {
    const name = o.metadata?.name as string;
    if (o.kind === "Deployment" || o.kind === "DaemonSet")
      await waitRolledOut(c.k8s, { kind: o.kind, namespace: c.namespace, name }, 120_000);
    if (o.kind === "Service" && (o as V1Service).spec?.type === "LoadBalancer")
      await waitFor(
        async () => {
          const svc = await c.k8s.core.readNamespacedService({ namespace: c.namespace, name });
          const ip = svc.status?.loadBalancer?.ingress?.[0]?.ip;
          return ip ? { done: true, value: ip } : { done: false, state: "pending" };
        },
        { description: `an address for service ${name}`, timeoutMs: 30_000, intervalMs: 200 },
      );
  }
}

interface ResolvedPath {
  path: TrafficPath;
  /** The address a source-preserving path must show for it. */
  own: string;
}

async function trafficPaths(
  specs: TrafficSpec[],
  c: ScenarioContext,
  node: (ref: string) => string,
): Promise<ResolvedPath[]> {
  const ips = new Map((await c.cluster.nodes()).map((n) => [n.name, n.internalIP] as const));
  // Probe clients for the pod and host-network sources, one per (kind, node).
  const clients = new Map<string, { name: string; node: string; host: boolean }>();
  for (const t of specs) {
    const m = /^(pod|host)@(.+)$/.exec(t.from);
    if (!m) continue;
    const n = node(m[2] as string);
    clients.set(`${m[1]}@${n}`, { name: `scn-${m[1]}-${n}`.slice(0, 63), node: n, host: m[1] === "host" });
  }
  if (clients.size > 0) {
    await ensureProbeConfigMap(c.k8s, c.namespace);
    for (const cl of clients.values())
      await c.k8s.core.createNamespacedPod({
        namespace: c.namespace,
        body: probeClientPod(cl.name, cl.node, { hostNetwork: cl.host }),
      });
    await waitFor(
      async () => {
        const pods = await c.k8s.core.listNamespacedPod({
          namespace: c.namespace,
          labelSelector: `app=${PROBE_CLIENT_LABEL}`,
        });
        const ready = pods.items.filter((p) =>
          p.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True"),
        );
        return ready.length >= clients.size
          ? { done: true, value: undefined }
          : { done: false, state: `${ready.length}/${clients.size} probe clients ready` };
      },
      { description: "the scenario's probe clients", timeoutMs: 60_000 },
    );
  }
  const out: ResolvedPath[] = [];
  for (const t of specs) {
    let source: ProbeSource = { kind: "external" };
    let own = c.cluster.network.clientIP;
    const m = /^(pod|host)@(.+)$/.exec(t.from);
    if (m) {
      const cl = clients.get(`${m[1]}@${node(m[2] as string)}`);
      if (!cl) throw new TphError(`traffic ${t.name}: no client for ${t.from}`);
      source = { kind: "pod", namespace: c.namespace, name: cl.name };
      const pod = await c.k8s.core.readNamespacedPod({ namespace: c.namespace, name: cl.name });
      own = pod.status?.podIP ?? "";
    }
    out.push({
      path: {
        name: t.name,
        source,
        target: await target(t, c, node, ips),
        path: t.path ?? "/hostname",
        rate: t.rate ?? DEFAULT_RATE,
        ...(t.mode && { mode: t.mode }),
        ...(t.localPort !== undefined && { localPort: t.localPort }),
        ...(t.timeoutMs !== undefined && { timeoutMs: t.timeoutMs }),
      },
      own,
    });
  }
  return out;
}

async function target(
  t: TrafficSpec,
  c: ScenarioContext,
  node: (ref: string) => string,
  ips: Map<string, string>,
): Promise<string> {
  const m = /^(loadbalancer|clusterip|nodeport):([a-z0-9.-]+)(?:@(.+))?$/.exec(t.to);
  if (!m) throw new TphError(`traffic ${t.name}: cannot read "to: ${t.to}"`);
  const [, kind, name, at] = m as unknown as [string, string, string, string | undefined];
  const svc = await c.k8s.core.readNamespacedService({ namespace: c.namespace, name });
  const ports = svc.spec?.ports ?? [];
  const port = (t.port ? ports.find((p) => p.port === t.port) : ports[0]) ?? ports[0];
  if (!port) throw new TphError(`traffic ${t.name}: service ${name} has no ports`);
  if (kind === "clusterip") return `${svc.spec?.clusterIP}:${port.port}`;
  if (kind === "loadbalancer") {
    const ip = svc.status?.loadBalancer?.ingress?.[0]?.ip;
    if (!ip) throw new TphError(`traffic ${t.name}: service ${name} has no LoadBalancer address`);
    return `${ip}:${port.port}`;
  }
  if (!at) throw new TphError(`traffic ${t.name}: nodeport needs a node (nodeport:${name}@NODE)`);
  if (!port.nodePort) throw new TphError(`traffic ${t.name}: service ${name} has no node port`);
  return `${ips.get(node(at))}:${port.nodePort}`;
}

function workload(ref: string, namespace: string): Workload {
  const [kind, name] = ref.split("/") as [string, string];
  return { kind: kind === "daemonset" ? "DaemonSet" : "Deployment", namespace, name };
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

async function takeStep(step: Step, c: ScenarioContext, node: (ref: string) => string): Promise<void> {
  const ns = c.namespace;
  const ctx = c.disrupt;
  switch (step.kind) {
    case "rolloutRestart":
      return rolloutRestart(ctx, workload(step.workload, ns));
    case "rollout":
      return rollout(ctx, workload(step.workload, ns), step.template, `step ${step.id}`);
    case "scale":
      return scale(ctx, { kind: "Deployment", namespace: ns, name: step.deployment }, step.replicas);
    case "deletePod": {
      const pods = await c.k8s.core.listNamespacedPod({ namespace: ns, labelSelector: step.selector });
      const pod = pods.items.find((p) => !p.metadata?.deletionTimestamp);
      if (!pod) throw new TphError(`step ${step.id}: no pod matches ${step.selector}`);
      return deletePod(ctx, ns, pod.metadata?.name as string);
    }
    case "cordon":
      return cordon(ctx, node(step.node));
    case "uncordon":
      return uncordon(ctx, node(step.node));
    case "drain":
      await drain(ctx, node(step.node), {
        ...(step.timeoutSeconds !== undefined && { timeoutMs: step.timeoutSeconds * 1000 }),
      });
      return;
    case "taint":
      return taint(ctx, node(step.node), {
        key: step.key,
        effect: step.effect,
        ...(step.value !== undefined && { value: step.value }),
      });
    case "untaint":
      return taint(ctx, node(step.node), { key: step.key, effect: step.effect }, { remove: true });
    case "patch": {
      const [kind, name] = step.object.split("/") as [string, string];
      const request = { name, namespace: ns, body: step.patch };
      await ctx.timeline.step("patch", step.object, async () => {
        if (kind === "service") await c.k8s.core.patchNamespacedService(request, mergePatch);
        else if (kind === "deployment") await c.k8s.apps.patchNamespacedDeployment(request, mergePatch);
        else await c.k8s.apps.patchNamespacedDaemonSet(request, mergePatch);
      });
      return;
    }
    case "stopNode":
      return stopNode(ctx, node(step.node));
    case "startNode":
      return startNode(ctx, node(step.node));
    case "rollNodes":
      return rollNodes(ctx, step.nodes.map(node));
    case "rollKubeProxy": {
      if (!c.cluster.kubeProxyRelease)
        throw new TphError(
          `step ${step.id}: provider ${c.cluster.provider} cannot replace kube-proxy by release`,
        );
      const all = (await c.cluster.nodes()).map((n) => n.name);
      return rollKubeProxy(
        ctx,
        step.nodes ? step.nodes.map(node) : all,
        (await c.cluster.kubeProxyRelease(step.version)).ref,
        step.version,
      );
    }
    case "waitEndpoints":
      await ctx.timeline.step("wait-endpoints", `service/${step.service} ${step.count}`, () =>
        waitFor(
          async () => {
            const { DiscoveryV1Api } = await import("@kubernetes/client-node");
            const d = c.k8s.kubeconfig.makeApiClient(DiscoveryV1Api);
            const slices = await d.listNamespacedEndpointSlice({
              namespace: ns,
              labelSelector: `kubernetes.io/service-name=${step.service}`,
            });
            const ready = slices.items
              .flatMap((x) => x.endpoints ?? [])
              .filter((e) => e.conditions?.ready).length;
            return ready === step.count ? { done: true, value: undefined } : { done: false, state: ready };
          },
          { description: `${step.count} ready endpoints for ${step.service}`, timeoutMs: 120_000 },
        ),
      );
      return;
    case "sleep":
      await new Promise((r) => setTimeout(r, step.seconds * 1000));
      return;
  }
}

/** One expectation's verdicts: per path for source-IP verdicts (each path has its own source), else one. */
function judge(
  e: Expectation,
  all: LedgerEntry[],
  steps: Map<string, { start: number; end: number }>,
  paths: ResolvedPath[],
): Verdict[] {
  const chosen = paths.filter((p) => !e.paths || e.paths.includes(p.path.name));
  let entries = all.filter((x) => chosen.some((p) => p.path.name === x.path));
  let since = entries[0]?.start ?? Date.now();
  const w = e.window;
  if (w && typeof w === "object") {
    const id = "before" in w ? w.before : "during" in w ? w.during : w.after;
    const step = steps.get(id);
    if (!step) throw new TphError(`expectation ${e.verdict}: step ${id} did not run`);
    const split = windows(entries, step);
    entries = "before" in w ? split.before : "during" in w ? split.during : split.after;
    since = step.end;
  }
  const named = (v: Verdict, suffix: string): Verdict => ({ ...v, name: `${v.name}${suffix}` });
  const scope = `${e.paths ? ` on ${e.paths.join(", ")}` : ""}${w && typeof w === "object" ? ` ${Object.keys(w)[0]} step ${Object.values(w)[0]}` : ""}`;
  switch (e.verdict) {
    case "SourceIpPreserved":
    case "SourceIpSnat":
      return chosen.map((p) => {
        const mine = entries.filter((x) => x.path === p.path.name);
        const v =
          e.verdict === "SourceIpPreserved" ? sourceIpPreserved(mine, p.own) : sourceIpSnat(mine, p.own);
        return named(
          v,
          ` (${p.path.name}${w && typeof w === "object" ? `, ${Object.keys(w)[0]} ${Object.values(w)[0]}` : ""})`,
        );
      });
    case "NoDrops":
      return [named(noDrops(entries), scope ? ` (${scope.trim()})` : "")];
    case "Dropped":
      return [named(blackholed(entries, "timeout"), scope ? ` (${scope.trim()})` : "")];
    case "Refused":
      return [named(blackholed(entries, "refused"), scope ? ` (${scope.trim()})` : "")];
    case "Blackholed":
      return [named(blackholed(entries, "nowhere"), scope ? ` (${scope.trim()})` : "")];
    case "DropsDetected":
      return [named(dropsDetected(entries), scope ? ` (${scope.trim()})` : "")];
    case "RecoveredWithin":
      return [
        named(
          recoveredWithin(entries, since, e.withinMs ?? 0, { staleConntrack: "separate" }),
          scope ? ` (${scope.trim()})` : "",
        ),
      ];
  }
}
