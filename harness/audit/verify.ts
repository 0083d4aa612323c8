import type { StartedCluster } from "../cluster/provider.ts";
import { waitFor } from "../core/wait.ts";
import { apiStatus, type KubeClients } from "../k8s/client.ts";
import { ensureProbeConfigMap, PROBE_CLIENT_LABEL, probeClientPod } from "../traffic/clients.ts";
import { runProbe } from "../traffic/run-probe.ts";
import type { Finding } from "./rules.ts";

/** What a bounded probe showed for one flagged node of one finding. */
export interface Verification {
  service: string;
  rule: string;
  node: string;
  /** e.g. "pod@w3 -> 10.96.0.12:80". */
  path: string;
  /** Every request timed out: the blackhole is real now. */
  blackhole: boolean;
  outcomes: string[];
}

/**
 * `tph audit --verify`: for each finding that names nodes, 3 requests from each of those nodes (a probe
 * client pod for internal traffic, the external client to the node's NodePort for external traffic),
 * each bounded by 1 s. Everything it makes is in a namespace of its own, deleted at the end.
 */
export async function verifyFindings(
  cluster: StartedCluster,
  k8s: KubeClients,
  findings: Finding[],
): Promise<Verification[]> {
  const flagged = findings.filter((f) => f.nodes && f.nodes.length > 0);
  if (flagged.length === 0) return [];
  const ns = `tph-audit-${Date.now().toString(36)}`;
  await k8s.core.createNamespace({ body: { metadata: { name: ns, labels: { "tph.io/audit": "verify" } } } });
  try {
    const nodes = [...new Set(flagged.flatMap((f) => f.nodes ?? []))];
    const internal = flagged.some((f) => f.rule.startsWith("itp-"));
    if (internal) {
      await ensureProbeConfigMap(k8s, ns);
      for (const node of nodes)
        await k8s.core.createNamespacedPod({ namespace: ns, body: probeClientPod(`probe-${node}`, node) });
      await waitFor(
        async () => {
          const pods = await k8s.core.listNamespacedPod({
            namespace: ns,
            labelSelector: `app=${PROBE_CLIENT_LABEL}`,
          });
          const ready = pods.items.filter((p) =>
            p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
          );
          return ready.length === nodes.length
            ? { done: true, value: undefined }
            : { done: false, state: ready.length };
        },
        { description: "a probe client on each flagged node", timeoutMs: 60_000 },
      );
    }
    const ips = new Map(
      (await k8s.core.listNode()).items.map((n) => [
        n.metadata?.name ?? "",
        n.status?.addresses?.find((a) => a.type === "InternalIP")?.address ?? "",
      ]),
    );
    const out: Verification[] = [];
    for (const f of flagged) {
      const [namespace, name] = f.service.split("/") as [string, string];
      const svc = await k8s.core.readNamespacedService({ namespace, name });
      const port = svc.spec?.ports?.[0];
      for (const node of f.nodes ?? []) {
        const external = !f.rule.startsWith("itp-");
        if (external && !port?.nodePort) continue;
        const target = external
          ? `${ips.get(node)}:${port?.nodePort}`
          : `${svc.spec?.clusterIP}:${port?.port}`;
        const source = external
          ? ({ kind: "external" } as const)
          : ({ kind: "pod", namespace: ns, name: `probe-${node}` } as const);
        const entries = await runProbe(cluster, source, { target, count: 3, timeoutMs: 1_000, mode: "tcp" });
        out.push({
          service: f.service,
          rule: f.rule,
          node,
          path: `${external ? "external" : `pod@${node}`} -> ${target}`,
          blackhole: entries.length > 0 && entries.every((e) => e.outcome === "timeout"),
          outcomes: entries.map((e) => e.outcome),
        });
      }
    }
    return out;
  } finally {
    await k8s.core.deleteNamespace({ name: ns }).catch(() => undefined);
    await waitFor(
      async () => {
        try {
          await k8s.core.readNamespace({ name: ns });
          return { done: false, state: "terminating" };
        } catch (err) {
          if (apiStatus(err) === 404) return { done: true, value: undefined };
          throw err;
        }
      },
      { description: `namespace ${ns} to be deleted`, timeoutMs: 120_000, intervalMs: 500 },
    );
  }
}
