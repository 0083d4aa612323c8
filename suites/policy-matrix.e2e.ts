import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, it } from "vitest";
import { type CellAddresses, cellVerdict, seenOutcome } from "../harness/assert/matrix.ts";
import type { ProbeSource } from "../harness/cluster/provider.ts";
import { nthAddress, parseCidr } from "../harness/core/cidr.ts";
import { waitFor } from "../harness/core/wait.ts";
import {
  cordon,
  type DisruptContext,
  excludeFromLoadBalancers,
  stopKubelet,
  taint,
} from "../harness/disrupt/actions.ts";
import { Timeline } from "../harness/disrupt/timeline.ts";
import { UndoStack } from "../harness/disrupt/undo.ts";
import { announcingNodes } from "../harness/metallb/announcer.ts";
import { type CellResult, renderMatrix } from "../harness/report/matrix.ts";
import {
  ensureProbeConfigMap,
  PROBE_CLIENT_LABEL,
  probeClientPod,
  withProbeContainer,
} from "../harness/traffic/clients.ts";
import { runProbe, waitServing } from "../harness/traffic/run-probe.ts";
import {
  cellName,
  type Entry,
  type MatrixCell,
  type MatrixState,
  matrixCells,
  NODE_STATES,
  type NodeState,
  POLICY_PAIRS,
  type PolicyPair,
  type Protocol,
  pairName,
  type Source,
  UDP_CELLS,
} from "../manifests/policy-matrix.ts";
import { netexecDeployment, service } from "../manifests/workloads.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { e2eConfig } from "./support/env.ts";
import { useLedger } from "./support/ledger.ts";
import { settledAnnouncer, waitEndpoints, waitLoadBalancerIP, waitPodsReady } from "./support/workloads.ts";

/**
 * Every source to every entry point, under every pair of traffic policies (manifests/policy-matrix.ts
 * holds the expected outcome of each cell and why). One backend pod on node E, none on node N; four
 * Services select it, one per policy pair, each a LoadBalancer with an externalIP routed via N. Each cell
 * sends a few requests and is one named test, so a report names the cell that broke; the grid of
 * expected against seen goes to the artifacts. Then the backend is scaled to zero: every client must be
 * refused at once, not blackholed. Dropped cells are the negative controls: the blackholes the
 * policies make by design must be caught as blackholes.
 */
const REQUESTS = 2;
const TIMEOUT_MS = 1_000;

describe.each(PROXY_MODES)("policy matrix (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["externalIPs", "l2LoadBalancer", "externalClient"],
    clusterName: `mtx${mode[0]}`,
    cluster: { proxyMode: mode },
  });
  const ledger = useLedger();
  // Known before the cluster is (the cells are listed first): the run's kube-proxy, else its Kubernetes
  // release, else the pinned one (the newest, hence "v9.99.0" below).
  const kubeProxyVersion = e2eConfig().cluster.kubeProxyVersion ?? e2eConfig().cluster.kubernetesVersion;
  const results: CellResult[] = [];

  let E = "";
  let N = "";
  const addresses = new Map<string, readonly string[]>(); // node name -> its IP and pod gateway
  const own = new Map<Source, string>();
  const sources = new Map<Source, ProbeSource>();
  const targets = new Map<string, Record<Entry, string>>(); // per pair
  const udpTargets = new Map<string, Record<Entry, string>>(); // per pair, the UDP port
  const announcer = new Map<string, string>(); // per pair: who announces the LB IP
  let version = "";

  beforeAll(async () => {
    if (f.skipped) return;
    const ns = f.ns;
    [E, N] = (await f.cluster.nodes()).map((n) => n.name) as [string, string];
    version = kubeProxyVersion ?? (f.cluster.versions.kubernetes as string);
    for (const node of (await f.k8s.core.listNode()).items) {
      const ip = node.status?.addresses?.find((a) => a.type === "InternalIP")?.address as string;
      const gateway = nthAddress(parseCidr(node.spec?.podCIDR as string), 1);
      addresses.set(node.metadata?.name as string, [ip, gateway]);
    }
    const externalIPs = f.cluster.network.externalIPs ?? [];
    if (externalIPs.length < POLICY_PAIRS.length || !f.cluster.routeExternalIP)
      throw new Error(`the provider cannot route spec.externalIPs (needs ${POLICY_PAIRS.length} addresses)`);

    // The backend, with a probe container so it can call its own Service (hairpin).
    await ensureProbeConfigMap(f.k8s, ns);
    // UDP on 8081 too, for the UDP cells (J18).
    const backend = netexecDeployment("mx", 1, { node: E, args: ["--udp-port=8081"] });
    const template = backend.spec?.template;
    if (template) Object.assign(template, withProbeContainer(template));
    await f.k8s.apps.createNamespacedDeployment({ namespace: ns, body: backend });
    // The sources: a pod and a host-network pod on each node.
    const clients: [Source, string, string, boolean][] = [
      ["pod@E", "mx-pod-e", E, false],
      ["pod@N", "mx-pod-n", N, false],
      ["host@E", "mx-host-e", E, true],
      ["host@N", "mx-host-n", N, true],
    ];
    for (const [, name, node, hostNetwork] of clients)
      await f.k8s.core.createNamespacedPod({
        namespace: ns,
        body: probeClientPod(name, node, { hostNetwork }),
      });
    for (const [pair, i] of POLICY_PAIRS.map((p, j) => [p, j] as const)) {
      const svc = service(serviceName(pair), "mx", {
        type: "LoadBalancer",
        externalTrafficPolicy: pair.externalTrafficPolicy,
        internalTrafficPolicy: pair.internalTrafficPolicy,
        udp: true,
      });
      svc.spec = { ...svc.spec, externalIPs: [externalIPs[i] as string] };
      await f.k8s.core.createNamespacedService({ namespace: ns, body: svc });
      await f.cluster.routeExternalIP(externalIPs[i] as string, N);
    }
    const [ep] = await waitPodsReady(f.k8s, ns, "mx", 1);
    sources.set("external", { kind: "external" });
    own.set("external", f.cluster.network.clientIP);
    sources.set("hairpin", { kind: "pod", namespace: ns, name: ep?.metadata?.name as string });
    own.set("hairpin", ep?.status?.podIP as string);
    const ready = await waitFor(
      async () => {
        const pods = (
          await f.k8s.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${PROBE_CLIENT_LABEL}` })
        ).items.filter((p) => p.status?.podIP);
        return pods.length === clients.length
          ? { done: true, value: pods }
          : { done: false, state: pods.length };
      },
      { description: "the probe clients to run", timeoutMs: 60_000 },
    );
    for (const [source, name] of clients) {
      const pod = ready.find((p) => p.metadata?.name === name);
      sources.set(source, { kind: "pod", namespace: ns, name });
      own.set(source, pod?.status?.podIP as string);
    }
    // Every Service answers, and who announces each LoadBalancer IP has settled.
    const [eIP, nIP] = [addresses.get(E)?.[0], addresses.get(N)?.[0]];
    for (const [pair, i] of POLICY_PAIRS.map((p, j) => [p, j] as const)) {
      const name = serviceName(pair);
      await waitEndpoints(f.k8s, ns, name, 1);
      const svc = await f.k8s.core.readNamespacedService({ namespace: ns, name });
      const port = svc.spec?.ports?.find((p) => p.protocol !== "UDP")?.nodePort;
      const udpPort = svc.spec?.ports?.find((p) => p.protocol === "UDP")?.nodePort;
      const lb = await waitLoadBalancerIP(f.k8s, ns, name);
      // Every entry point's address for the Service port `servicePort`, whose NodePort is `nodePort`.
      const entries = (servicePort: number, nodePort?: number): Record<Entry, string> => ({
        clusterip: `${svc.spec?.clusterIP}:${servicePort}`,
        "nodeport@E": `${eIP}:${nodePort}`,
        "nodeport@N": `${nIP}:${nodePort}`,
        loadbalancer: `${lb}:${servicePort}`,
        externalip: `${externalIPs[i]}:${servicePort}`,
      });
      targets.set(name, entries(80, port));
      udpTargets.set(name, entries(81, udpPort));
      await waitServing(f.cluster, { kind: "external" }, { target: `${eIP}:${port}` });
      announcer.set(name, await settledAnnouncer(f.cluster, f.k8s, ns, name, `${lb}:80`));
    }
  });

  afterAll(async () => {
    if (results.length === 0) return;
    const grid = renderMatrix(
      results,
      `policy matrix, kube-proxy ${version} in ${mode} mode (E=${E}, N=${N})`,
    );
    console.log(grid);
    const dir = process.env.TPH_ARTIFACTS;
    if (dir) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `policy-matrix-${mode}.txt`), `${grid}\n`);
      await writeFile(
        join(dir, `policy-matrix-${mode}.json`),
        JSON.stringify({ mode, version, E, N, results }, null, 1),
      );
    }
  });

  /** Who announces each pair's LoadBalancer IP once MetalLB and the client's ARP entry agree, side by side. */
  async function settleAnnouncers(pairs: readonly PolicyPair[]): Promise<void> {
    const names = pairs.map(serviceName);
    const settled = await Promise.all(
      names.map((name) =>
        settledAnnouncer(f.cluster, f.k8s, f.ns, name, targets.get(name)?.loadbalancer as string),
      ),
    );
    names.forEach((name, i) => {
      announcer.set(name, settled[i] as string);
    });
  }

  /** Sends the cell's requests, judges them, records the result for the grid. */
  async function runCell(cell: MatrixCell): Promise<void> {
    const name = serviceName(cell.pair);
    const source = sources.get(cell.source) as ProbeSource;
    const target = targets.get(name)?.[cell.entry] as string;
    const limited = async () =>
      f.cluster.icmpRateLimited
        ? (await f.cluster.icmpRateLimited(E)) + (await f.cluster.icmpRateLimited(N))
        : 0;
    const before = cell.expected === "refused" ? await limited() : 0;
    const udp = cell.protocol === "udp";
    const entries = await ledger.probe(
      f.cluster,
      `${cell.source}->${cell.entry}(${name})${udp ? "/udp" : ""}`,
      source,
      udp
        ? {
            target: udpTargets.get(name)?.[cell.entry] as string,
            mode: "udp",
            path: "/clientip",
            count: REQUESTS,
            timeoutMs: TIMEOUT_MS,
            localPort: udpPort(cell),
          }
        : { target, path: "/clientip", count: REQUESTS, timeoutMs: TIMEOUT_MS },
    );
    const suppressed = cell.expected === "refused" ? (await limited()) - before : 0;
    const addrs: CellAddresses = {
      // A host-network source's own address is its node's IP.
      own: own.get(cell.source) as string,
      E: addresses.get(E) as readonly string[],
      N: addresses.get(N) as readonly string[],
      announcer: addresses.get(announcer.get(name) as string) as readonly string[],
    };
    const verdict = cellVerdict(entries, cell.expected, addrs, suppressed);
    results.push({
      source: cell.source,
      entry: cell.entry,
      pair: cell.pair,
      state: cell.state,
      ...(cell.protocol && { protocol: cell.protocol }),
      expected: cell.expected,
      seen: seenOutcome(entries, addrs),
      passed: verdict.passed,
      ...(cell.differs && { differs: cell.differs }),
    });
    ledger.expect(verdict);
  }

  const title = (c: MatrixCell) => `${cellName(c)}: ${c.expected}${c.differs ? " (modes differ)" : ""}`;
  /** Each UDP cell's source port, the same in every phase, so a flow's conntrack entry carries over. */
  const udpPort = (c: Pick<MatrixCell, "source" | "entry" | "pair">) =>
    47_000 +
    POLICY_PAIRS.findIndex(
      (p) =>
        p.externalTrafficPolicy === c.pair.externalTrafficPolicy &&
        p.internalTrafficPolicy === c.pair.internalTrafficPolicy,
    ) *
      10 +
    UDP_CELLS.findIndex(([source, entry]) => source === c.source && entry === c.entry);
  const cellsOf = (state: MatrixState, pair: PolicyPair, protocol: Protocol = "tcp") =>
    matrixCells(mode, state, kubeProxyVersion ?? "v9.99.0", protocol).filter(
      (c) =>
        c.pair.externalTrafficPolicy === pair.externalTrafficPolicy &&
        c.pair.internalTrafficPolicy === pair.internalTrafficPolicy,
    );

  describe("one serving endpoint on E", () => {
    describe.each(POLICY_PAIRS.map((p) => [pairName(p), p] as const))("%s", (_, pair) => {
      it.each(
        [...cellsOf("serving", pair), ...cellsOf("serving", pair, "udp")].map((c) => [title(c), c] as const),
      )("%s", async (_t, cell) => {
        await runCell(cell);
      });
    });
  });

  // What E's state changes, seen from outside: each state is applied alone (by a context of the describe,
  // so it holds for all its cells) and undone after them, before the next.
  describe.each(NODE_STATES.map((st) => [st] as const))("%s", (state: NodeState) => {
    let lacking: string | undefined;
    let ctx: DisruptContext | undefined;
    beforeAll(async () => {
      if (f.skipped) return;
      lacking = f.lacking(notReady ? ["nodePower"] : ["nodeDisruption"]);
      if (lacking) return;
      ctx = { cluster: f.cluster, k8s: f.k8s, timeline: new Timeline(), undo: new UndoStack() };
      if (state === "E cordoned") await cordon(ctx, E);
      else if (state === "E tainted ToBeDeletedByClusterAutoscaler")
        await taint(ctx, E, { key: "ToBeDeletedByClusterAutoscaler", value: "1", effect: "NoSchedule" });
      else if (state === "E excluded from load balancers") await excludeFromLoadBalancers(ctx, E, true);
      else {
        await stopKubelet(ctx, E);
        // The node lifecycle controller's grace period, then the endpoint is published not ready [J19].
        const grace = e2eConfig().cluster.nodeMonitorGracePeriodSeconds * 1_000;
        for (const pair of POLICY_PAIRS)
          await waitEndpoints(f.k8s, f.ns, serviceName(pair), 0, grace + 30_000);
      }
      // MetalLB re-elects on node changes; then the client must ask again who has each address.
      await Promise.all(
        POLICY_PAIRS.map((pair) => {
          const name = serviceName(pair);
          const expected = !announced(pair) ? [] : excluded ? [N] : [announcer.get(name)];
          // (E NotReady: nobody, as without endpoints [J15].)
          return waitFor(
            async () => {
              const claims = await announcingNodes(f.k8s, f.ns, name);
              return claims.join() === expected.join()
                ? { done: true, value: undefined }
                : { done: false, state: claims };
            },
            {
              description: `MetalLB's announcement of ${name} with ${state} (${expected.join() || "nobody"})`,
              timeoutMs: 30_000,
              intervalMs: 250,
            },
          );
        }),
      );
      await f.cluster.flushNeighbors?.();
      await settleAnnouncers(POLICY_PAIRS.filter(announced));
      // kube-proxy's rules follow the EndpointSlices within a sync (minSyncPeriod 1 s).
      if (notReady) await new Promise((r) => setTimeout(r, 2_000));
    });
    afterAll(async () => {
      if (!ctx) return;
      const { errors } = await ctx.undo.run();
      if (errors.length > 0) throw new AggregateError(errors, `could not undo ${state} on ${E}`);
      // Back Ready, the agent writes the pod's Ready back and the endpoint serves again.
      for (const pair of POLICY_PAIRS) await waitEndpoints(f.k8s, f.ns, serviceName(pair), 1);
      // Back to the serving phase's announcers before the next state.
      await settleAnnouncers(POLICY_PAIRS);
    });
    const excluded = state === "E excluded from load balancers";
    const notReady = state === "E NotReady (kubelet stopped)";
    /** Whether someone announces the pair's LoadBalancer IP in this state. */
    const announced = (pair: PolicyPair) =>
      !notReady && !(excluded && pair.externalTrafficPolicy === "Local");
    describe.each(POLICY_PAIRS.map((p) => [pairName(p), p] as const))("%s", (_, pair) => {
      it.for(cellsOf(state, pair).map((c) => [title(c), c] as const))("%s", async ([, cell], testCtx) => {
        if (lacking) testCtx.skip(lacking);
        await runCell(cell);
      });
    });
  });

  describe("no endpoints anywhere (scaled to zero)", () => {
    beforeAll(async () => {
      if (f.skipped) return;
      // Every UDP flow the serving phase had is live again just before the endpoint goes: its conntrack
      // entry is what the UDP cells below meet [J18]. Three datagrams over 2.4 s, all flows at once: a
      // flow answered and still active after 2 s is a stream, whose entry lives 120 s after its last
      // datagram (30 s otherwise); the UDP cells run first, well within that.
      const flows = POLICY_PAIRS.flatMap((p) => cellsOf("serving", p, "udp"));
      const refreshed = await Promise.all(
        flows.map((cell) =>
          runProbe(f.cluster, sources.get(cell.source) as ProbeSource, {
            target: udpTargets.get(serviceName(cell.pair))?.[cell.entry] as string,
            mode: "udp",
            path: "/clientip",
            count: 3,
            intervalMs: 1_200,
            timeoutMs: TIMEOUT_MS,
            localPort: udpPort(cell),
          }),
        ),
      );
      for (const [i, cell] of flows.entries()) {
        const e = refreshed[i]?.at(-1);
        const served =
          cell.expected !== "dropped" && cell.expected !== "refused" && cell.expected !== "nowhere";
        if (served && e?.outcome !== "ok")
          throw new Error(
            `the UDP flow ${cellName(cell)} of ${pairName(cell.pair)} was not served before the scale-down: ${e?.outcome}`,
          );
      }
      await f.k8s.apps.patchNamespacedDeployment(
        { name: "mx", namespace: f.ns, body: { spec: { replicas: 0 } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      // Gone, not just terminating: a serving terminating endpoint would still be used (fallback).
      await waitFor(
        async () => {
          const left = (await f.k8s.core.listNamespacedPod({ namespace: f.ns, labelSelector: "app=mx" }))
            .items;
          return left.length === 0 ? { done: true, value: undefined } : { done: false, state: left.length };
        },
        { description: "the backend pod to be gone", timeoutMs: 60_000 },
      );
      for (const pair of POLICY_PAIRS) {
        await waitEndpoints(f.k8s, f.ns, serviceName(pair), 0);
        // MetalLB withdraws the address; a client that cached the old MAC would still reach that node.
        await waitFor(
          async () => {
            const claims = await announcingNodes(f.k8s, f.ns, serviceName(pair));
            return claims.length === 0 ? { done: true, value: undefined } : { done: false, state: claims };
          },
          {
            description: `MetalLB to stop announcing ${serviceName(pair)}`,
            timeoutMs: 30_000,
            intervalMs: 250,
          },
        );
      }
      await f.cluster.flushNeighbors?.();
      // kube-proxy's rules follow the EndpointSlices within a sync (minSyncPeriod 1 s).
      await new Promise((r) => setTimeout(r, 2_000));
    });
    // The UDP flows first, all pairs: their entries must still be alive when they are tried.
    describe("UDP flows kept from the serving phase", () => {
      describe.each(POLICY_PAIRS.map((p) => [pairName(p), p] as const))("%s", (_, pair) => {
        it.each(cellsOf("none", pair, "udp").map((c) => [title(c), c] as const))("%s", async (_t, cell) => {
          await runCell(cell);
        });
      });
    });
    describe.each(POLICY_PAIRS.map((p) => [pairName(p), p] as const))("%s", (_, pair) => {
      it.each(cellsOf("none", pair).map((c) => [title(c), c] as const))("%s", async (_t, cell) => {
        await runCell(cell);
      });
    });
  });
});

function serviceName(pair: PolicyPair): string {
  return `mx-${pair.externalTrafficPolicy[0]?.toLowerCase()}${pair.internalTrafficPolicy[0]?.toLowerCase()}`;
}
