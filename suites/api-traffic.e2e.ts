import { afterEach, describe, expect, it } from "vitest";
import { caught, noDrops, ranThroughout, sourceIpPreserved } from "../harness/assert/verdicts.ts";
import { ensureProbeConfigMap, probeClientPod } from "../harness/traffic/clients.ts";
import { outcomeOf, runProbe, waitOutcome } from "../harness/traffic/run-probe.ts";
import { netexecPod, service } from "../manifests/workloads.ts";
import { useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * Traffic from pods through the Kubernetes API alone: each probe client runs the probe's control server,
 * reached through the apiserver's pod proxy (no exec, no node access: what works on any cluster). The
 * same requests as through exec give the same answers and the same ledger; a run stops cleanly; a source
 * that dies mid-run is told apart from a lost control stream.
 */
describe("pod traffic through the API (pods/proxy)", () => {
  const f = useCluster({ clusterName: "apitr" });
  const ledger = useLedger();
  const before = process.env.TPH_POD_TRAFFIC;
  afterEach(() => {
    if (before === undefined) delete process.env.TPH_POD_TRAFFIC;
    else process.env.TPH_POD_TRAFFIC = before;
  });

  /** A backend on node 1, a probe client on each node; returns the ClusterIP target and the clients' IPs. */
  async function setUp(suffix: string) {
    const [a, b] = await f.cluster.nodes();
    if (!a || !b) throw new Error("needs two nodes");
    await ensureProbeConfigMap(f.k8s, f.ns);
    await f.k8s.core.createNamespacedPod({
      namespace: f.ns,
      body: netexecPod(`web-${suffix}`, { node: a.name }),
    });
    const svc = await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service(`web-${suffix}`, `web-${suffix}`, { type: "ClusterIP" }),
    });
    const names = [`c1-${suffix}`, `c2-${suffix}`];
    for (const [i, n] of names.entries()) {
      const pod = probeClientPod(n, (i === 0 ? a : b).name);
      if (pod.metadata) pod.metadata.labels = { app: `clients-${suffix}` };
      await f.k8s.core.createNamespacedPod({ namespace: f.ns, body: pod });
    }
    const clients = await waitPodsReady(f.k8s, f.ns, `clients-${suffix}`, 2);
    await waitEndpoints(f.k8s, f.ns, `web-${suffix}`, 1);
    const ip = (n: string) => clients.find((p) => p.metadata?.name === n)?.status?.podIP as string;
    return { target: `${svc.spec?.clusterIP}:80`, names, ip };
  }

  it("a run from a pod gives the same answers through the API as through exec", async () => {
    const { target, names, ip } = await setUp("same");
    const source = { kind: "pod" as const, namespace: f.ns, name: names[0] as string };
    process.env.TPH_POD_TRAFFIC = "api";
    const t0 = Date.now();
    const viaApi = await runProbe(f.cluster, source, {
      target,
      path: "/clientip",
      count: 20,
      timeoutMs: 1_000,
    });
    const t1 = Date.now();
    process.env.TPH_POD_TRAFFIC = "exec";
    const viaExec = await runProbe(f.cluster, source, {
      target,
      path: "/clientip",
      count: 20,
      timeoutMs: 1_000,
    });
    const api = viaApi.map((e) => ({ ...e, path: "api" }));
    const exec = viaExec.map((e) => ({ ...e, path: "exec" }));
    ledger.expectAll([noDrops(api), sourceIpPreserved(api, ip(names[0] as string)), noDrops(exec)]);
    expect(api.map((e) => e.seq)).toEqual([...Array(20).keys()]);
    // On the harness's clock: inside the call that made them.
    expect(api.every((e) => e.start >= t0 - 50 && e.end <= t1 + 50)).toBe(true);

    // Negative control: failed requests come back as such through the API, as through exec (a Service
    // with no endpoints is refused). A transport that lost them would turn any blackhole into a pass.
    const none = await f.k8s.core.createNamespacedService({
      namespace: f.ns,
      body: service("none-same", "nobody", { type: "ClusterIP" }),
    });
    // Two requests a side: with the one that found the REJECT, five ICMP errors, within the kernel's
    // burst of six per destination (icmp_ratelimit); more would be rate limited into timeouts.
    const refusedTarget = { target: `${none.spec?.clusterIP}:80`, count: 2, timeoutMs: 1_000 };
    process.env.TPH_POD_TRAFFIC = "api";
    await waitOutcome(f.cluster, source, refusedTarget, "refused");
    const failedViaApi = await runProbe(f.cluster, source, refusedTarget);
    process.env.TPH_POD_TRAFFIC = "exec";
    const failedViaExec = await runProbe(f.cluster, source, refusedTarget);
    expect(failedViaApi.map(outcomeOf)).toEqual(Array(2).fill("refused:ECONNREFUSED"));
    expect(failedViaApi.map(outcomeOf)).toEqual(failedViaExec.map(outcomeOf));
    expect(noDrops(failedViaApi.map((e) => ({ ...e, path: "api" }))).passed).toBe(false);
  });

  it("streams until stopped, and tells a source that died from a lost stream", async () => {
    const { target, names } = await setUp("stream");
    process.env.TPH_POD_TRAFFIC = "api";
    const traffic = await ledger.traffic(
      f.cluster,
      names.map((n) => ({
        name: `pod@${n}->clusterip`,
        source: { kind: "pod" as const, namespace: f.ns, name: n },
        target,
        path: "/hostname",
        rate: 20,
      })),
    );
    await traffic.flowing();
    await new Promise((r) => setTimeout(r, 1_000));
    await f.k8s.core.deleteNamespacedPod({
      namespace: f.ns,
      name: names[1] as string,
      gracePeriodSeconds: 0,
    });
    await new Promise((r) => setTimeout(r, 3_000));
    const { entries, exits } = await traffic.stop();
    const [kept, died] = names.map((n) => exits.find((e) => e.path === `pod@${n}->clusterip`));
    expect(kept).toMatchObject({ exitCode: 0, early: false });
    expect(died).toMatchObject({ exitCode: 1, early: true });
    expect(died?.stderr).toContain("the source died");
    const fromKept = entries.filter((e) => e.path === `pod@${names[0]}->clusterip`);
    // The survivor ran throughout at its rate; the dead source's gap is caught.
    expect(fromKept.length).toBeGreaterThan(60);
    ledger.expectAll([noDrops(fromKept), caught(ranThroughout(exits))]);
  });
});
