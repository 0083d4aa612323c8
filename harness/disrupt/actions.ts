import { PatchStrategy, setHeaderOptions, type V1Pod, type V1Taint } from "@kubernetes/client-node";
import { DRAIN_KEEPS_ANNOTATION, type StartedCluster } from "../cluster/provider.ts";
import { TphError } from "../core/errors.ts";
import { sleep, waitFor } from "../core/wait.ts";
import { apiErrorMessage, apiStatus, type KubeClients } from "../k8s/client.ts";
import type { Timeline } from "./timeline.ts";
import type { UndoStack } from "./undo.ts";

/**
 * Disruption actions: what platform changes do to a cluster, done through the same API calls kubectl
 * and the kubelet make. Each is recorded on the test's timeline (start, end, error) and resolves when
 * the action is complete as an operator would see it (drain: pods gone; rollout: all replicas updated
 * and available), not when traffic has settled: that is for the ledger to judge. Each action that changes
 * shared state registers its undo on `undo`, which the test's fixture runs when the test ends.
 */
export interface DisruptContext {
  cluster: StartedCluster;
  k8s: KubeClients;
  timeline: Timeline;
  undo: UndoStack;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** The taint cluster-autoscaler puts on a node it is about to delete; kube-proxy's /healthz reacts to it. */
export const TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler";

export function cordon(ctx: DisruptContext, node: string): Promise<void> {
  return ctx.timeline.step("cordon", node, async () => {
    await registerUncordon(ctx, node);
    await setUnschedulable(ctx.k8s, node, true);
  });
}

export function uncordon(ctx: DisruptContext, node: string): Promise<void> {
  return ctx.timeline.step("uncordon", node, async () => {
    await setUnschedulable(ctx.k8s, node, false);
    ctx.undo.done(`unschedulable:${node}`);
    await waitUnschedulableTaintGone(ctx.k8s, node);
  });
}

/**
 * The node lifecycle controller mirrors spec.unschedulable as the node.kubernetes.io/unschedulable taint,
 * a moment after the patch: the node is uncordoned as an operator sees it only when the taint is off too
 * (a test that ends between the two would leave the taint for the next one).
 */
async function waitUnschedulableTaintGone(k8s: KubeClients, node: string): Promise<void> {
  await waitFor(
    async () => {
      const n = await k8s.core.readNode({ name: node });
      const tainted = (n.spec?.taints ?? []).some((t) => t.key === UNSCHEDULABLE_TAINT);
      return tainted || n.spec?.unschedulable
        ? { done: false, state: { unschedulable: n.spec?.unschedulable === true, tainted } }
        : { done: true, value: undefined };
    },
    {
      description: `the ${UNSCHEDULABLE_TAINT} taint to leave node ${node}`,
      timeoutMs: 30_000,
      intervalMs: 200,
    },
  );
}

const UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable";

/** Cordon and drain are undone by an uncordon, unless the node was cordoned before the test. */
async function registerUncordon(ctx: DisruptContext, node: string): Promise<void> {
  const key = `unschedulable:${node}`;
  if (ctx.undo.get(key)) return;
  const n = await ctx.k8s.core.readNode({ name: node });
  if (n.spec?.unschedulable) return;
  ctx.undo.register(key, { what: `uncordon ${node}`, fn: () => uncordon(ctx, node) });
}

async function setUnschedulable(k8s: KubeClients, node: string, unschedulable: boolean): Promise<void> {
  await k8s.core.patchNode(
    { name: node, body: { spec: { unschedulable: unschedulable || null } } },
    mergePatch,
  );
}

export interface DrainResult {
  evicted: string[];
  /** Evictions the API refused with 429 because a PodDisruptionBudget allowed no disruption (retried). */
  blockedByBudget: number;
}

/**
 * kubectl drain: cordon, then evict every pod on the node except DaemonSet and mirror pods through the
 * eviction API, which honours PodDisruptionBudgets (429 = not now; retried every second until
 * `timeoutMs`), then wait until the evicted pods are gone.
 */
export function drain(
  ctx: DisruptContext,
  node: string,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<DrainResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  return ctx.timeline.step("drain", node, async () => {
    await registerUncordon(ctx, node);
    await setUnschedulable(ctx.k8s, node, true);
    const deadline = Date.now() + timeoutMs;
    const pods = (
      await ctx.k8s.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })
    ).items.filter((p) => !isDaemonSetPod(p) && !p.metadata?.annotations?.["kubernetes.io/config.mirror"]);
    const result: DrainResult = { evicted: [], blockedByBudget: 0 };
    await Promise.all(
      pods.map(async (p) => {
        const name = p.metadata?.name as string;
        const namespace = p.metadata?.namespace as string;
        for (;;) {
          try {
            await ctx.k8s.core.createNamespacedPodEviction({
              name,
              namespace,
              body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name, namespace } },
            });
            result.evicted.push(`${namespace}/${name}`);
            return;
          } catch (err) {
            const status = apiStatus(err);
            if (status === 404) return; // already gone
            // A pod of a namespace being deleted (another suite's, on a shared cluster) cannot be
            // evicted; as kubectl drain does, one already being deleted is waited for like the evicted.
            if (status === 403 && apiErrorMessage(err).includes("because it is being terminated")) {
              const now = await ctx.k8s.core.readNamespacedPod({ name, namespace }).catch(() => undefined);
              if (!now) return;
              if (now.metadata?.deletionTimestamp) {
                result.evicted.push(`${namespace}/${name}`);
                return;
              }
              if (Date.now() > deadline)
                throw new TphError(`evicting ${namespace}/${name}: ${apiErrorMessage(err)}`);
              await sleep(1_000, options.signal);
              continue;
            }
            if (status !== 429) throw new TphError(`evicting ${namespace}/${name}: ${apiErrorMessage(err)}`);
            result.blockedByBudget++;
            if (Date.now() > deadline)
              throw new TphError(
                `drain of ${node} timed out after ${timeoutMs} ms: a PodDisruptionBudget keeps refusing to evict ${namespace}/${name} (${apiErrorMessage(err)})`,
                { hint: "the budget allows no disruption: add replicas or relax the budget" },
              );
            await sleep(1_000, options.signal);
          }
        }
      }),
    );
    await waitFor(
      async () => {
        const left = (
          await ctx.k8s.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })
        ).items.filter((p) => result.evicted.includes(`${p.metadata?.namespace}/${p.metadata?.name}`));
        return left.length === 0
          ? { done: true, value: undefined }
          : { done: false, state: left.map((p) => p.metadata?.name) };
      },
      {
        description: `evicted pods to leave ${node}`,
        timeoutMs: Math.max(deadline - Date.now(), 30_000),
        ...(options.signal && { signal: options.signal }),
      },
    );
    return result;
  });
}

/**
 * Pods a drain leaves in place, as kubectl drain does: DaemonSet pods, and a provider's stand-ins for
 * them (the local provider's MetalLB speaker placeholders): evicting one would hide its speaker from
 * memberlist and stop that node from ever announcing again.
 */
function isDaemonSetPod(p: V1Pod): boolean {
  return (
    (p.metadata?.ownerReferences ?? []).some((o) => o.kind === "DaemonSet") ||
    p.metadata?.annotations?.[DRAIN_KEEPS_ANNOTATION] !== undefined
  );
}

export type Workload = { kind: "Deployment" | "DaemonSet"; namespace: string; name: string };

/** kubectl rollout restart, then kubectl rollout status: resolves once every replica is new and available. */
export function rolloutRestart(ctx: DisruptContext, w: Workload, timeoutMs = 180_000): Promise<void> {
  return ctx.timeline.step("rollout-restart", `${w.kind.toLowerCase()}/${w.name}`, () =>
    patchTemplateAndWait(
      ctx.k8s,
      w,
      { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } } },
      timeoutMs,
    ),
  );
}

/**
 * A rollout with a change to the pod template (a new image, env, or placement), merge-patched into
 * spec.template, then kubectl rollout status.
 */
export function rollout(
  ctx: DisruptContext,
  w: Workload,
  template: Record<string, unknown>,
  what: string,
  timeoutMs = 180_000,
): Promise<void> {
  return ctx.timeline.step("rollout", `${w.kind.toLowerCase()}/${w.name} (${what})`, () =>
    patchTemplateAndWait(ctx.k8s, w, template, timeoutMs),
  );
}

async function patchTemplateAndWait(
  k8s: KubeClients,
  w: Workload,
  template: Record<string, unknown>,
  timeoutMs: number,
): Promise<void> {
  const request = { name: w.name, namespace: w.namespace, body: { spec: { template } } };
  if (w.kind === "Deployment") await k8s.apps.patchNamespacedDeployment(request, mergePatch);
  else await k8s.apps.patchNamespacedDaemonSet(request, mergePatch);
  await waitRolledOut(k8s, w, timeoutMs);
}

/** kubectl scale deployment, waiting until the new count is available. */
export function scale(
  ctx: DisruptContext,
  w: Workload & { kind: "Deployment" },
  replicas: number,
): Promise<void> {
  return ctx.timeline.step("scale", `deployment/${w.name} to ${replicas}`, async () => {
    const key = `scale:${w.namespace}/${w.name}`;
    const original =
      (ctx.undo.get(key)?.original as number | undefined) ??
      (await ctx.k8s.apps.readNamespacedDeployment({ name: w.name, namespace: w.namespace })).spec
        ?.replicas ??
      1;
    if (replicas === original) ctx.undo.done(key);
    else
      ctx.undo.register(key, {
        what: `scale deployment/${w.name} back to ${original}`,
        original,
        phase: "workload",
        fn: () => ignoreGone(scale(ctx, w, original)),
      });
    await ctx.k8s.apps.patchNamespacedDeployment(
      { name: w.name, namespace: w.namespace, body: { spec: { replicas } } },
      mergePatch,
    );
    await waitRolledOut(ctx.k8s, w, 120_000);
  });
}

/** The conditions kubectl rollout status waits for. */
export async function waitRolledOut(k8s: KubeClients, w: Workload, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      if (w.kind === "Deployment") {
        const d = await k8s.apps.readNamespacedDeployment({ name: w.name, namespace: w.namespace });
        const want = d.spec?.replicas ?? 1;
        const s = d.status ?? {};
        const done =
          (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
          s.updatedReplicas === want &&
          (s.replicas ?? 0) === want &&
          (s.availableReplicas ?? 0) === want;
        return done
          ? { done: true, value: undefined }
          : {
              done: false,
              state: `updated ${s.updatedReplicas}/${want}, total ${s.replicas}, available ${s.availableReplicas}`,
            };
      }
      const ds = await k8s.apps.readNamespacedDaemonSet({ name: w.name, namespace: w.namespace });
      const s = ds.status;
      const want = s?.desiredNumberScheduled ?? 0;
      const done =
        (s?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 0) &&
        s?.updatedNumberScheduled === want &&
        s?.numberAvailable === want &&
        (s?.numberUnavailable ?? 0) === 0;
      return done
        ? { done: true, value: undefined }
        : {
            done: false,
            state: `updated ${s?.updatedNumberScheduled}/${want}, available ${s?.numberAvailable}`,
          };
    },
    { description: `${w.kind.toLowerCase()}/${w.name} to finish rolling out`, timeoutMs, intervalMs: 250 },
  );
}

export function deletePod(ctx: DisruptContext, namespace: string, name: string, gracePeriodSeconds?: number) {
  return ctx.timeline.step("delete-pod", `${namespace}/${name}`, async () => {
    await ctx.k8s.core.deleteNamespacedPod({
      name,
      namespace,
      ...(gracePeriodSeconds !== undefined && { gracePeriodSeconds }),
    });
  });
}

/** Adds (or with `remove`, removes) a taint; merge patch of the whole list, as kubectl taint does. */
export function taint(
  ctx: DisruptContext,
  node: string,
  t: V1Taint,
  options: { remove?: boolean } = {},
): Promise<void> {
  return ctx.timeline.step(options.remove ? "untaint" : "taint", `${node} ${t.key}:${t.effect}`, async () => {
    const n = await ctx.k8s.core.readNode({ name: node });
    const had = (n.spec?.taints ?? []).some((x) => x.key === t.key && x.effect === t.effect);
    const others = (n.spec?.taints ?? []).filter((x) => !(x.key === t.key && x.effect === t.effect));
    const taints = options.remove ? others : [...others, t];
    const key = `taint:${node}:${t.key}:${t.effect}`;
    if (options.remove) ctx.undo.done(key);
    else if (!had)
      ctx.undo.register(key, {
        what: `untaint ${node} ${t.key}:${t.effect}`,
        fn: () => taint(ctx, node, t, { remove: true }),
      });
    await ctx.k8s.core.patchNode({ name: node, body: { spec: { taints } } }, mergePatch);
  });
}

/** Flips a Service's traffic policies in place, as an operator would with kubectl patch. */
export function setTrafficPolicy(
  ctx: DisruptContext,
  namespace: string,
  service: string,
  policy: { externalTrafficPolicy?: "Local" | "Cluster"; internalTrafficPolicy?: "Local" | "Cluster" },
): Promise<void> {
  const what = Object.entries(policy)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return ctx.timeline.step("set-traffic-policy", `service/${service} ${what}`, async () => {
    const key = `policy:${namespace}/${service}`;
    if (!ctx.undo.get(key)) {
      const spec = (await ctx.k8s.core.readNamespacedService({ name: service, namespace })).spec;
      const original = {
        ...(policy.externalTrafficPolicy && { externalTrafficPolicy: spec?.externalTrafficPolicy }),
        ...(policy.internalTrafficPolicy && { internalTrafficPolicy: spec?.internalTrafficPolicy }),
      } as typeof policy;
      ctx.undo.register(key, {
        what: `restore service/${service} ${JSON.stringify(original)}`,
        original,
        phase: "workload",
        fn: () => ignoreGone(setTrafficPolicy(ctx, namespace, service, original)),
      });
    } else {
      const original = ctx.undo.get(key)?.original as typeof policy;
      if (Object.entries(original).every(([k, v]) => policy[k as keyof typeof policy] === v))
        ctx.undo.done(key);
    }
    await ctx.k8s.core.patchNamespacedService(
      { name: service, namespace, body: { spec: policy } },
      mergePatch,
    );
  });
}

function nodeOps(ctx: DisruptContext) {
  if (!ctx.cluster.nodeOps) throw new TphError(`provider ${ctx.cluster.provider} cannot stop or start nodes`);
  return ctx.cluster.nodeOps;
}

export function stopNode(ctx: DisruptContext, node: string): Promise<void> {
  return ctx.timeline.step("stop-node", node, async () => {
    ctx.undo.register(`power:${node}`, { what: `start ${node}`, fn: () => startNode(ctx, node) });
    await nodeOps(ctx).stop(node);
  });
}

/** Starts a stopped node and waits until the API server sees it Ready again. */
export function startNode(ctx: DisruptContext, node: string, timeoutMs = 90_000): Promise<void> {
  return ctx.timeline.step("start-node", node, async () => {
    await nodeOps(ctx).start(node);
    ctx.undo.done(`power:${node}`);
    await waitNodeReady(ctx.k8s, node, timeoutMs);
  });
}

/** Stops only the node's kubelet (its pods and kube-proxy run on): the node goes NotReady. Undone by startKubelet. */
export function stopKubelet(ctx: DisruptContext, node: string): Promise<void> {
  return ctx.timeline.step("stop-kubelet", node, async () => {
    ctx.undo.register(`kubelet:${node}`, {
      what: `start the kubelet of ${node}`,
      fn: () => startKubelet(ctx, node),
    });
    await nodeOps(ctx).stopKubelet(node);
  });
}

/** Starts a stopped kubelet and waits until the node is Ready again, without the controller's taints. */
export function startKubelet(ctx: DisruptContext, node: string, timeoutMs = 90_000): Promise<void> {
  return ctx.timeline.step("start-kubelet", node, async () => {
    await nodeOps(ctx).startKubelet(node);
    ctx.undo.done(`kubelet:${node}`);
    await waitNodeReady(ctx.k8s, node, timeoutMs);
  });
}

/**
 * Waits until the Node is Ready and the node lifecycle controller has taken off the taints it put on
 * while the node was away (unreachable, not-ready): only then is the node back as an operator sees it.
 */
export async function waitNodeReady(k8s: KubeClients, node: string, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => {
      const n = await k8s.core.readNode({ name: node });
      const ready = n.status?.conditions?.find((c) => c.type === "Ready");
      const away = (n.spec?.taints ?? []).filter((t) => CONTROLLER_TAINTS.includes(t.key)).map((t) => t.key);
      return ready?.status === "True" && away.length === 0
        ? { done: true, value: undefined }
        : { done: false, state: { ready: ready?.status, taints: away } };
    },
    {
      description: `node ${node} to be Ready and untainted by the node controller`,
      timeoutMs,
      intervalMs: 250,
    },
  );
}

const CONTROLLER_TAINTS = ["node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"];

export function restartKubeProxy(ctx: DisruptContext, node: string): Promise<void> {
  return ctx.timeline.step("restart-kube-proxy", node, () => nodeOps(ctx).restartKubeProxy(node));
}

/**
 * Rolls kube-proxy to `binary` (an image on kind) one node at a time, each healthy before the next, as
 * an upgrade does. Undone by putting back what each node ran before the test's first replacement.
 */
export async function rollKubeProxy(ctx: DisruptContext, nodes: string[], binary: string, label: string) {
  for (const node of nodes)
    await ctx.timeline.step("replace-kube-proxy", `${node} → ${label}`, async () => {
      const key = `kube-proxy:${node}`;
      const original =
        (ctx.undo.get(key)?.original as string | undefined) ?? (await nodeOps(ctx).kubeProxyRef(node));
      if (binary === original) ctx.undo.done(key);
      else
        ctx.undo.register(key, {
          what: `put back kube-proxy ${original} on ${node}`,
          original,
          fn: () => rollKubeProxy(ctx, [node], original, "the original"),
        });
      await nodeOps(ctx).replaceKubeProxy(node, binary);
    });
}

/**
 * Labels a node node.kubernetes.io/exclude-from-external-load-balancers (or removes the label): load
 * balancers, MetalLB's speakers included, stop sending traffic to it. A careful node roll does this
 * before the node goes down, so the announcement moves while both nodes still forward.
 */
export function excludeFromLoadBalancers(ctx: DisruptContext, node: string, exclude: boolean): Promise<void> {
  return ctx.timeline.step(exclude ? "exclude-from-lb" : "include-in-lb", node, async () => {
    const key = `exclude-from-lb:${node}`;
    if (!exclude) ctx.undo.done(key);
    else
      ctx.undo.register(key, {
        what: `include ${node} in load balancers`,
        fn: () => excludeFromLoadBalancers(ctx, node, false),
      });
    await ctx.k8s.core.patchNode(
      { name: node, body: { metadata: { labels: { [EXCLUDE_FROM_LB_LABEL]: exclude ? "true" : null } } } },
      mergePatch,
    );
  });
}

export const EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers";

/**
 * Sets a node label (`value` null removes it), as `kubectl label node` does; undone by putting back what
 * the node had before the test's first change of that label.
 */
export function labelNode(
  ctx: DisruptContext,
  node: string,
  key: string,
  value: string | null,
): Promise<void> {
  return ctx.timeline.step("label", `${node} ${key}=${value ?? "(removed)"}`, async () => {
    const undoKey = `label:${node}:${key}`;
    const registered = ctx.undo.get(undoKey);
    if (registered) {
      // Put back by the test itself: nothing left to undo.
      if (registered.original === value) ctx.undo.done(undoKey);
    } else {
      const before = (await ctx.k8s.core.readNode({ name: node })).metadata?.labels?.[key] ?? null;
      if (before !== value)
        ctx.undo.register(undoKey, {
          what: `label ${node} ${key}=${before ?? "(removed)"}`,
          original: before,
          fn: () => setLabel(ctx.k8s, node, key, before),
        });
    }
    await setLabel(ctx.k8s, node, key, value);
  });
}

async function setLabel(k8s: KubeClients, node: string, key: string, value: string | null): Promise<void> {
  await k8s.core.patchNode({ name: node, body: { metadata: { labels: { [key]: value } } } }, mergePatch);
}

export interface NodeRollOptions {
  drainTimeoutMs?: number;
  /** Runs after the cordon, before the drain (e.g. move load balancer announcements away). */
  afterCordon?: (node: string) => Promise<void>;
  /** Runs after the drain, before the stop (e.g. wait for replacements to be ready elsewhere). */
  afterDrain?: (node: string) => Promise<void>;
  /** How long a node stays down between stop and start, as a reboot takes. Default 0. */
  downMs?: number;
  /** Runs after the node is back and uncordoned (e.g. wait for its pods to return). */
  afterReturn?: (node: string) => Promise<void>;
}

/** A node roll: for each node in turn, cordon, drain, stop, start, uncordon. */
export async function rollNodes(
  ctx: DisruptContext,
  nodes: string[],
  options: NodeRollOptions = {},
): Promise<void> {
  for (const node of nodes) {
    await cordon(ctx, node);
    await options.afterCordon?.(node);
    await drain(ctx, node, {
      ...(options.drainTimeoutMs !== undefined && { timeoutMs: options.drainTimeoutMs }),
    });
    await options.afterDrain?.(node);
    await stopNode(ctx, node);
    if (options.downMs) await sleep(options.downMs);
    await startNode(ctx, node);
    await uncordon(ctx, node);
    await options.afterReturn?.(node);
  }
}

/** An undo whose object the test already deleted (its namespace went) has nothing left to undo. */
async function ignoreGone(p: Promise<void>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (apiStatus(err) !== 404) throw err;
  }
}
