import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, it } from "vitest";
import {
  autoAllocations,
  autoHintsWithin,
  type HintExpectation,
  hintsWritten,
  locate,
  nodeInPath,
  renderZoneMatrix,
  type Scope,
  servedBySet,
  servedWithin,
  type Topology,
  zoneMatrix,
} from "../harness/assert/placement.ts";
import {
  blackholed,
  caught,
  dropsDetected,
  type LedgerEntry,
  loadShares,
  loadSkewWithin,
  noDrops,
  ranThroughout,
  type Verdict,
} from "../harness/assert/verdicts.ts";
import type { ClusterNode } from "../harness/cluster/provider.ts";
import { sleep, waitFor } from "../harness/core/wait.ts";
import { deletePod, labelNode, rolloutRestart } from "../harness/disrupt/actions.ts";
import {
  hintedEndpoints,
  readTopology,
  serviceEvents,
  ZONE_LABEL,
  zoneCpu,
} from "../harness/k8s/topology.ts";
import { deployProbeClients } from "../harness/traffic/clients.ts";
import type { TrafficPath } from "../harness/traffic/stream.ts";
import { backendDeployment } from "../manifests/backends.ts";
import { netexecPod, type ServiceVariant, service } from "../manifests/workloads.ts";
import { ROLE_ZONES, ZONED_NODES, ZONED_ROLES, type ZonedRole } from "../manifests/zones.ts";
import { PROXY_MODES, useCluster } from "./support/cluster.ts";
import { e2eConfig } from "./support/env.ts";
import { useLedger } from "./support/ledger.ts";
import { waitEndpoints, waitPodsReady } from "./support/workloads.ts";

/**
 * spec.trafficDistribution (and what it cannot do) on a cluster of three zones with two nodes each plus
 * a node without a zone label: a1 a2 | b1 b2 | c1 c2 | n0. A probe client runs on every node. Each case
 * places backends on named nodes, states the hints the EndpointSlice controller must write and, per
 * client node, the set of backends kube-proxy must pick from (pkg/proxy/topology.go: a Ready endpoint
 * without a hint turns the level off for every node; a zone without endpoints gets all of them). Each
 * expectation is a ServedBy(set) over 30 requests, so every backend of the set must answer (a chance of
 * missing one of three is 3·(2/3)^30 ≈ 2e-5); in-zone expectations are ServedWithin(zone) too. The
 * unset Service is the negative control: the same verdicts must catch its cross-zone traffic. The zone
 * matrix (client zone × serving zone) of every request goes to the artifacts.
 */
const ROLES = ZONED_ROLES;
type Role = ZonedRole;
const ZONES = ROLE_ZONES;
const REQUESTS = 30;
/** Requests expected to be dropped each wait out a timeout: a few show it. */
const DROPPED_REQUESTS = 3;
const LOAD_REQUESTS = 150;
const TIMEOUT_MS = 1_000;

/** Per client node: the backends (by the node they run on) it must reach, or "dropped". */
type Expect = Partial<Record<Role, Role[] | "dropped">>;

interface Case {
  title: string;
  /** The Service's name and its backends' app label. */
  name: string;
  backends: Role[];
  variant: ServiceVariant;
  hints: HintExpectation;
  expect: Expect;
  /** Clients whose set is in their own zone (or node): also ServedWithin. */
  within?: { scope: Scope; clients: Role[] };
  /** Negative control: these clients' ServedWithin(scope) must fail (the verdict sees cross-zone traffic). */
  control?: { scope: Scope; clients: Role[] };
  /** PreferSameNode needs kube-proxy v1.34+ (PreferSameTrafficDistribution beta). */
  minKubeProxyMinor?: number;
}

const ALL_CLIENTS = (set: Role[]): Expect => Object.fromEntries(ROLES.map((r) => [r, set]));
const CASES: Case[] = [
  {
    title: "PreferSameZone: clients stay in their zone; zones without endpoints reach all",
    name: "same-zone",
    backends: ["a1", "b1"],
    variant: { type: "ClusterIP", trafficDistribution: "PreferSameZone" },
    hints: "zone",
    expect: {
      a1: ["a1"],
      a2: ["a1"],
      b1: ["b1"],
      b2: ["b1"],
      c1: ["a1", "b1"],
      c2: ["a1", "b1"],
      n0: ["a1", "b1"],
    },
    within: { scope: "zone", clients: ["a1", "a2", "b1", "b2"] },
  },
  {
    title: "PreferClose (the deprecated alias) behaves as PreferSameZone",
    name: "close",
    backends: ["a1", "b1"],
    variant: { type: "ClusterIP", trafficDistribution: "PreferClose" },
    hints: "zone",
    expect: {
      a1: ["a1"],
      a2: ["a1"],
      b1: ["b1"],
      b2: ["b1"],
      c1: ["a1", "b1"],
      c2: ["a1", "b1"],
      n0: ["a1", "b1"],
    },
    within: { scope: "zone", clients: ["a1", "a2", "b1", "b2"] },
  },
  {
    title: "PreferSameNode: the node, then the zone, then all",
    name: "same-node",
    backends: ["a1", "a2", "b2"],
    variant: { type: "ClusterIP", trafficDistribution: "PreferSameNode" },
    hints: "node+zone",
    expect: {
      a1: ["a1"],
      a2: ["a2"],
      b1: ["b2"],
      b2: ["b2"],
      c1: ["a1", "a2", "b2"],
      c2: ["a1", "a2", "b2"],
      n0: ["a1", "a2", "b2"],
    },
    within: { scope: "node", clients: ["a1", "a2", "b2"] },
    minKubeProxyMinor: 34,
  },
  {
    title: "unset: no hints, every client reaches every backend",
    name: "unset",
    backends: ["a1", "b1"],
    variant: { type: "ClusterIP" },
    hints: "none",
    expect: ALL_CLIENTS(["a1", "b1"]),
    control: { scope: "zone", clients: ["a1", "a2", "b1", "b2"] },
  },
  {
    title: "an endpoint on a zoneless node turns zone routing off for every client (a finding, caught)",
    name: "zoneless",
    backends: ["a1", "b1", "n0"],
    variant: { type: "ClusterIP", trafficDistribution: "PreferSameZone" },
    hints: "zone",
    expect: ALL_CLIENTS(["a1", "b1", "n0"]),
    control: { scope: "zone", clients: ["a1", "a2", "b1", "b2"] },
  },
  {
    title:
      "internalTrafficPolicy Local wins over PreferSameZone: clients without a local endpoint are dropped",
    name: "itp-local",
    backends: ["a1", "b1"],
    variant: { type: "ClusterIP", internalTrafficPolicy: "Local", trafficDistribution: "PreferSameZone" },
    hints: "zone",
    expect: {
      a1: ["a1"],
      a2: "dropped",
      b1: ["b1"],
      b2: "dropped",
      c1: "dropped",
      c2: "dropped",
      n0: "dropped",
    },
    within: { scope: "node", clients: ["a1", "b1"] },
  },
];

describe.each(PROXY_MODES)("trafficDistribution (kube-proxy %s)", (mode) => {
  const f = useCluster({
    needs: ["externalClient", "nodeDisruption"],
    clusterName: `td${mode[0]}`,
    cluster: { proxyMode: mode, nodes: ZONED_NODES },
  });
  const ledger = useLedger();
  const kubeProxyVersion = e2eConfig().cluster.kubeProxyVersion;
  const nodeOf = new Map<Role, ClusterNode>();
  const roleOf = new Map<string, Role>();
  let clients = new Map<string, string>(); // node name -> probe client pod
  const located: LedgerEntry[] = []; // every located request, for the zone matrix

  beforeAll(async () => {
    if (f.skipped) return;
    // Roles by zone label, in node order: the two nodes of zone-a are a1 and a2, the zoneless one n0.
    const nodes = await f.cluster.nodes();
    for (const r of ROLES) {
      const taken = new Set(nodeOf.values());
      const n = nodes.find((x) => x.zone === ZONES[r] && !taken.has(x));
      if (!n)
        throw new Error(
          `no node left for ${r} (zone ${ZONES[r] ?? "none"}) among ${nodes.map((x) => `${x.name}:${x.zone ?? "-"}`)}`,
        );
      nodeOf.set(r, n);
      roleOf.set(n.name, r);
    }
    clients = await deployProbeClients(
      f.k8s,
      f.ns,
      nodes.map((n) => n.name),
    );
  });

  afterAll(async () => {
    if (located.length === 0) return;
    const grid = renderZoneMatrix(
      zoneMatrix(located),
      `zone matrix, kube-proxy ${mode} (requests by client zone and serving zone)`,
    );
    console.log(grid);
    const dir = process.env.TPH_ARTIFACTS;
    if (dir) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `zone-matrix-${mode}.txt`), `${grid}\n`);
      await writeFile(
        join(dir, `zone-matrix-${mode}.json`),
        JSON.stringify({ mode, ...zoneMatrix(located) }, null, 1),
      );
    }
  });

  const node = (r: Role) => nodeOf.get(r) as ClusterNode;
  const podName = (name: string, r: Role) => `${name}-${r}`;
  const minor = () =>
    Number(/^v?1\.(\d+)/.exec(kubeProxyVersion ?? f.cluster.versions.kubernetes ?? "")?.[1] ?? 99);

  /** Backend pods on the nodes of `roles`, labelled app=`name`, ready and in the Service's slices. */
  async function deployCase(
    name: string,
    roles: Role[],
    variant: ServiceVariant,
    options: { patchPod?: (p: V1Pod) => void; annotations?: Record<string, string> } = {},
  ) {
    for (const [i, r] of roles.entries()) {
      // A second pod on the same node is <name>-<role>-2.
      const n = roles.slice(0, i).filter((x) => x === r).length;
      const pod = netexecPod(n === 0 ? podName(name, r) : `${podName(name, r)}-${n + 1}`, {
        node: node(r).name,
        labels: { app: name },
      });
      options.patchPod?.(pod);
      await f.k8s.core.createNamespacedPod({ namespace: f.ns, body: pod });
    }
    const body = service(name, name, variant);
    if (options.annotations && body.metadata) body.metadata.annotations = options.annotations;
    const svc = await f.k8s.core.createNamespacedService({ namespace: f.ns, body });
    await waitPodsReady(f.k8s, f.ns, name, roles.length);
    await waitEndpoints(f.k8s, f.ns, name, roles.length);
    return svc;
  }

  /** Waits until the EndpointSlice controller wrote the hints `want` asks for; returns that verdict. */
  async function settledHints(name: string, want: HintExpectation): Promise<Verdict> {
    let last: Verdict | undefined;
    try {
      await waitFor(
        async () => {
          last = hintsWritten(await hintedEndpoints(f.k8s, f.ns, name), want);
          return last.passed ? { done: true, value: undefined } : { done: false, state: last.summary };
        },
        { description: `the hints of ${name} to be ${want}`, timeoutMs: 15_000, intervalMs: 250 },
      );
    } catch {
      // Judged below with what was last seen.
    }
    // kube-proxy follows the slices within a sync or two (minSyncPeriod 1 s).
    await sleep(3_000);
    return last ?? hintsWritten([], want);
  }

  async function topology(): Promise<Topology> {
    return readTopology(f.k8s, f.ns);
  }

  /** Requests from `client`'s probe pod to `target`, located; kept for the zone matrix. */
  async function fromClient(
    client: Role,
    target: string,
    what: string,
    topo: Topology,
    dropped = false,
    count = REQUESTS,
  ) {
    const pod = clients.get(node(client).name) as string;
    const entries = await ledger.probe(
      f.cluster,
      `pod@${node(client).name}->${what}`,
      { kind: "pod", namespace: f.ns, name: pod },
      { target, path: "/hostname", count: dropped ? DROPPED_REQUESTS : count, timeoutMs: TIMEOUT_MS },
    );
    located.push(...locate(entries, topo, nodeInPath));
    return entries;
  }

  /** Requests from the external client to `target` on `receiver`'s address, located at the receiver. */
  async function fromExternal(receiver: Role, target: string, name: string, topo: Topology, dropped = false) {
    const entries = await ledger.probe(
      f.cluster,
      `external->nodeport@${node(receiver).name}(${name})`,
      { kind: "external" },
      { target, path: "/hostname", count: dropped ? DROPPED_REQUESTS : REQUESTS, timeoutMs: TIMEOUT_MS },
    );
    // The zone that counts is the receiving node's: that is where kube-proxy picks the endpoint.
    located.push(...locate(entries, topo, node(receiver).name));
    return entries;
  }

  /** The verdicts of one client: its set (or a drop), and ServedWithin where the case says. */
  function judge(c: Case, client: Role, entries: LedgerEntry[]): Verdict[] {
    const want = c.expect[client];
    if (want === undefined) return [];
    if (want === "dropped") return [blackholed(entries, "timeout")];
    const out = [
      servedBySet(
        entries,
        want.map((r) => podName(c.name, r)),
      ),
    ];
    if (c.within?.clients.includes(client)) out.push(servedWithin(entries, c.within.scope));
    if (c.control?.clients.includes(client)) out.push(caught(servedWithin(entries, c.control.scope)));
    return out;
  }

  it.for(CASES)("$title", async (c, ctx) => {
    if (c.minKubeProxyMinor && minor() < c.minKubeProxyMinor)
      return ctx.skip(
        `needs kube-proxy v1.${c.minKubeProxyMinor} or later (node hints); this is ${kubeProxyVersion}`,
      );
    const svc = await deployCase(c.name, c.backends, c.variant);
    const hints = await settledHints(c.name, c.hints);
    const topo = await topology();
    const target = `${svc.spec?.clusterIP}:80`;
    const verdicts: Verdict[] = [hints];
    for (const client of ROLES) {
      const dropped = c.expect[client] === "dropped";
      verdicts.push(
        ...judge(c, client, await fromClient(client, target, `clusterip(${c.name})`, topo, dropped)),
      );
    }
    ledger.expectAll(verdicts);
  });

  it("removing trafficDistribution from a running Service: the hints go, then traffic goes everywhere", async () => {
    const name = "removed";
    const svc = await deployCase(name, ["a1", "b1"], {
      type: "ClusterIP",
      trafficDistribution: "PreferSameZone",
    });
    const target = `${svc.spec?.clusterIP}:80`;
    const before = await settledHints(name, "zone");
    const topo = await topology();
    const inZone = await fromClient("a2", target, `clusterip(${name})`, topo);
    await f.k8s.core.patchNamespacedService(
      { name, namespace: f.ns, body: { spec: { trafficDistribution: null } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const after = await settledHints(name, "none");
    const verdicts = [before, servedBySet(inZone, [podName(name, "a1")]), after];
    for (const client of ["a1", "a2", "c1"] as const)
      verdicts.push(
        servedBySet(await fromClient(client, target, `clusterip(${name})`, topo), [
          podName(name, "a1"),
          podName(name, "b1"),
        ]),
      );
    ledger.expectAll(verdicts);
  });

  it("NodePort, externalTrafficPolicy Cluster: filtered by the receiving node's zone", async () => {
    const name = "np-cluster";
    const svc = await deployCase(name, ["a1", "b1"], {
      type: "NodePort",
      externalTrafficPolicy: "Cluster",
      trafficDistribution: "PreferSameZone",
    });
    const verdicts = [await settledHints(name, "zone")];
    const topo = await topology();
    const port = svc.spec?.ports?.[0]?.nodePort;
    const want: [Role, Role[]][] = [
      ["a2", ["a1"]],
      ["b2", ["b1"]],
      ["c1", ["a1", "b1"]],
      ["n0", ["a1", "b1"]],
    ];
    for (const [receiver, set] of want) {
      const entries = await fromExternal(receiver, `${node(receiver).internalIP}:${port}`, name, topo);
      verdicts.push(
        servedBySet(
          entries,
          set.map((r) => podName(name, r)),
        ),
      );
    }
    ledger.expectAll(verdicts);
  });

  it("NodePort, externalTrafficPolicy Local: local endpoints only; a pod calling its own node's NodePort gets the zone-filtered cluster chain", async () => {
    const name = "np-local";
    const svc = await deployCase(name, ["a1", "b1"], {
      type: "NodePort",
      externalTrafficPolicy: "Local",
      trafficDistribution: "PreferSameZone",
    });
    const verdicts = [await settledHints(name, "zone")];
    const topo = await topology();
    const port = svc.spec?.ports?.[0]?.nodePort;
    const at = (r: Role) => `${node(r).internalIP}:${port}`;
    verdicts.push(servedBySet(await fromExternal("a1", at("a1"), name, topo), [podName(name, "a1")]));
    verdicts.push(blackholed(await fromExternal("a2", at("a2"), name, topo, true), "timeout"));
    // Pod traffic to an eTP Local NodePort is short-circuited to the cluster chain, which topology
    // filters by the sending node's zone (b2: b1's endpoint; c1, a zone without endpoints: both).
    verdicts.push(
      servedBySet(await fromClient("b2", at("b2"), `nodeport@self(${name})`, topo), [podName(name, "b1")]),
    );
    verdicts.push(
      servedBySet(await fromClient("c1", at("c1"), `nodeport@self(${name})`, topo), [
        podName(name, "a1"),
        podName(name, "b1"),
      ]),
    );
    ledger.expectAll(verdicts);
  });

  describe("a zone losing its last endpoint under traffic", () => {
    /** Streams from the zone-a clients while a1's backend is deleted; returns what they saw and when. */
    async function loseZoneA(name: string, graceful: boolean) {
      const svc = await deployCase(
        name,
        ["a1", "b1"],
        { type: "ClusterIP", trafficDistribution: "PreferSameZone" },
        {
          patchPod: (pod) => {
            if (!graceful || !pod.spec) return;
            // Keeps serving while kube-proxy moves traffic away: the safe shutdown.
            pod.spec.terminationGracePeriodSeconds = 15;
            const [c] = pod.spec.containers;
            if (c) c.lifecycle = { preStop: { sleep: { seconds: 5 } } };
          },
        },
      );
      const hints = await settledHints(name, "zone");
      const topo = await topology();
      const paths: TrafficPath[] = (["a1", "a2"] as const).map((r) => ({
        name: `pod@${node(r).name}->clusterip(${name})`,
        source: { kind: "pod", namespace: f.ns, name: clients.get(node(r).name) as string },
        target: `${svc.spec?.clusterIP}:80`,
        path: "/hostname",
        rate: 25,
        timeoutMs: TIMEOUT_MS,
      }));
      const traffic = await ledger.traffic(f.cluster, paths);
      await traffic.flowing();
      await sleep(2_000);
      // kube-proxy syncs at most once per minSyncPeriod (1 s here): a Service made just before the
      // deletion has every kube-proxy sync now, so the endpoint's removal waits out the rest of that
      // second, as it does on a busy cluster. On an idle one the removal raced the backend's exit, and
      // an abrupt exit could lose or win by chance: the negative control once saw no drop (410 of 410).
      await f.k8s.core.createNamespacedService({
        namespace: f.ns,
        body: service(`${name}-sync`, "nothing", { type: "ClusterIP" }),
      });
      await sleep(300);
      const deleted = Date.now();
      await deletePod(ledger.disrupt(f.cluster, f.k8s), f.ns, podName(name, "a1"));
      await waitEndpoints(f.k8s, f.ns, name, 1);
      // Two kube-proxy syncs after the slice lost the endpoint, then a settled stretch to judge.
      const fallenBack = Date.now() + 3_000;
      await sleep(6_000);
      const { entries, exits } = await traffic.stop();
      located.push(...locate(entries, topo, nodeInPath));
      return { hints, entries, exits, deleted, fallenBack };
    }

    it("with a graceful shutdown: zero drops, the zone's clients fall back to the other zone", async () => {
      const name = "loss";
      const { hints, entries, exits, deleted, fallenBack } = await loseZoneA(name, true);
      ledger.expectAll([
        hints,
        ranThroughout(exits),
        noDrops(entries),
        servedWithin(
          entries.filter((e) => e.end < deleted),
          "zone",
        ),
        servedBySet(
          entries.filter((e) => e.start > fallenBack),
          [podName(name, "b1")],
        ),
      ]);
    });

    it("negative control: a backend that exits on SIGTERM drops the zone's requests, and they are caught", async () => {
      const { entries, exits } = await loseZoneA("loss-abrupt", false);
      ledger.expectAll([ranThroughout(exits), dropsDetected(entries)]);
    });
  });

  it("PreferSameZone with uneven endpoints per zone overloads a zone's lone endpoint (LoadSkew)", async () => {
    // Zone a has one backend, zone b three, zone c none: a's two clients all land on one pod, and the
    // clients of c and n0 spread over all four. Per pod: a 2.75/7 = 39%, each b 1.42/7 = 20%; unset,
    // every pod 25%. 150 requests per client: a share's standard error is about 1.5%.
    const name = "load";
    const roles: Role[] = ["a1", "b1", "b1", "b2"];
    const svc = await deployCase(name, roles, { type: "ClusterIP", trafficDistribution: "PreferSameZone" });
    const hints = await settledHints(name, "zone");
    const topo = await topology();
    const pods = [podName(name, "a1"), podName(name, "b1"), `${podName(name, "b1")}-2`, podName(name, "b2")];
    const sets: Record<Role, string[]> = {
      a1: pods.slice(0, 1),
      a2: pods.slice(0, 1),
      b1: pods.slice(1),
      b2: pods.slice(1),
      c1: pods,
      c2: pods,
      n0: pods,
    };
    const entries: LedgerEntry[] = [];
    for (const client of ROLES)
      entries.push(
        ...(await fromClient(
          client,
          `${svc.spec?.clusterIP}:80`,
          `clusterip(${name})`,
          topo,
          false,
          LOAD_REQUESTS,
        )),
      );
    const expected: Record<string, number> = {};
    for (const set of Object.values(sets))
      for (const pod of set) expected[pod] = (expected[pod] ?? 0) + 1 / set.length / ROLES.length;
    const even = Object.fromEntries(pods.map((p) => [p, 1 / pods.length]));
    const shares = [...loadShares(entries)].map(([p, s]) => `${p} ${(s * 100).toFixed(1)}%`).join(", ");
    console.info(`load shares under PreferSameZone (${mode}): ${shares}`);
    ledger.expectAll([
      hints,
      loadSkewWithin(entries, expected, 0.06),
      caught(loadSkewWithin(entries, even, 0.06)),
    ]);
  });

  it("a rollout of a safe backend under PreferSameZone: zero drops, and every request stays in zone", async () => {
    // One safe Deployment per zone (2 replicas, surge first), so each zone keeps a ready endpoint.
    const name = "roll";
    const topo: Topology = { zones: new Map(), pods: new Map() };
    const learn = async () => {
      const t = await topology();
      for (const [k, v] of t.zones) topo.zones.set(k, v);
      for (const [k, v] of t.pods) topo.pods.set(k, v);
    };
    for (const zone of ["zone-a", "zone-b"]) {
      const d = backendDeployment(`${name}-${zone}`, 2, { safe: true });
      const template = d.spec?.template;
      if (template?.metadata?.labels) template.metadata.labels.svc = name;
      if (template?.spec) template.spec.nodeSelector = { [ZONE_LABEL]: zone };
      await f.k8s.apps.createNamespacedDeployment({ namespace: f.ns, body: d });
    }
    const body = service(name, name, { type: "ClusterIP", trafficDistribution: "PreferSameZone" });
    if (body.spec) body.spec.selector = { svc: name };
    const svc = await f.k8s.core.createNamespacedService({ namespace: f.ns, body });
    await waitEndpoints(f.k8s, f.ns, name, 4, 60_000);
    const hints = await settledHints(name, "zone");
    await learn();
    const paths: TrafficPath[] = (["a1", "b2"] as const).map((r) => ({
      name: `pod@${node(r).name}->clusterip(${name})`,
      source: { kind: "pod", namespace: f.ns, name: clients.get(node(r).name) as string },
      target: `${svc.spec?.clusterIP}:80`,
      path: "/hostname",
      rate: 25,
      timeoutMs: TIMEOUT_MS,
    }));
    const traffic = await ledger.traffic(f.cluster, paths);
    await traffic.flowing();
    await sleep(1_000);
    const ctx = ledger.disrupt(f.cluster, f.k8s);
    for (const zone of ["zone-a", "zone-b"]) {
      await rolloutRestart(ctx, { kind: "Deployment", namespace: f.ns, name: `${name}-${zone}` });
      // The new pods, while they are there to be read (the old ones were learnt before).
      await learn();
    }
    await sleep(3_000);
    const { entries, exits } = await traffic.stop();
    located.push(...locate(entries, topo, nodeInPath));
    ledger.expectAll([hints, ranThroughout(exits), noDrops(entries), servedWithin(entries, "zone")]);
  });

  describe("topology-mode: Auto", () => {
    const AUTO = { "service.kubernetes.io/topology-mode": "Auto" };
    const DISABLED = "TopologyAwareHintsDisabled";

    /** Waits for the controller's Warning event on `name` whose message has `text`; returns a verdict. */
    async function disabledEvent(name: string, text: string): Promise<Verdict> {
      const verdictName = `Event(${DISABLED})`;
      try {
        const message = await waitFor(
          async () => {
            const found = (await serviceEvents(f.k8s, f.ns, name, DISABLED)).find((m) => m.includes(text));
            return found ? { done: true, value: found } : { done: false, state: "no such event yet" };
          },
          {
            description: `a ${DISABLED} event on ${name} saying "${text}"`,
            timeoutMs: 15_000,
            intervalMs: 250,
          },
        );
        return { name: verdictName, passed: true, summary: `${verdictName}: ${message}`, evidence: [] };
      } catch {
        const seen = await serviceEvents(f.k8s, f.ns, name, DISABLED);
        return {
          name: verdictName,
          passed: false,
          summary: `${verdictName}: no event on ${name} saying "${text}" (saw: ${seen.join(" | ") || "none"})`,
          evidence: [],
        };
      }
    }

    /** Waits until the hints are within what upstream's arithmetic allows for this cluster's CPU by zone. */
    async function settledAutoHints(name: string, endpoints: number): Promise<Verdict> {
      const allocation = autoAllocations(await zoneCpu(f.k8s), endpoints);
      if ("disabled" in allocation)
        return {
          name: "Hints(Auto)",
          passed: false,
          summary: `Hints(Auto): the cluster allows none: ${allocation.disabled}`,
          evidence: [],
        };
      let last: Verdict | undefined;
      await waitFor(
        async () => {
          last = autoHintsWithin(await hintedEndpoints(f.k8s, f.ns, name), allocation.zones);
          return last.passed ? { done: true, value: undefined } : { done: false, state: last.summary };
        },
        { description: `Auto hints on ${name}`, timeoutMs: 15_000, intervalMs: 250 },
      ).catch(() => undefined);
      await sleep(3_000);
      return last as Verdict;
    }

    it("a Ready node without a zone label turns Auto off for every annotated Service, and says why", async () => {
      const name = "auto-off";
      const svc = await deployCase(
        name,
        ["a1", "b1", "c1", "c2"],
        { type: "ClusterIP" },
        { annotations: AUTO },
      );
      const expected = autoAllocations(await zoneCpu(f.k8s), 4);
      const topo = await topology();
      ledger.expectAll([
        {
          name: "ClusterAsDescribed",
          passed: "disabled" in expected,
          summary: `ClusterAsDescribed: upstream's arithmetic says ${"disabled" in expected ? expected.disabled : "hinted"}`,
          evidence: [],
        },
        await settledHints(name, "none"),
        await disabledEvent(name, "Insufficient Node information"),
        servedBySet(
          await fromClient("a1", `${svc.spec?.clusterIP}:80`, `clusterip(${name})`, topo),
          ["a1", "b1", "c1", "c2"].map((r) => podName(name, r as Role)),
        ),
      ]);
    });

    it("every node zoned: hints by CPU share, none for too few endpoints, 3/3/1 evened out; a node losing its zone takes every Service's hints (kubernetes#123401)", async () => {
      const ctx = ledger.disrupt(f.cluster, f.k8s);
      await labelNode(ctx, node("n0").name, ZONE_LABEL, "zone-c");
      // The controller's topology cache takes the node update before the Services below sync (it
      // re-syncs on node changes only the Services that already had hints).
      await sleep(2_000);
      const even = await deployCase(
        "auto-even",
        ["a1", "b1", "c1", "c2"],
        { type: "ClusterIP" },
        { annotations: AUTO },
      );
      const few = await deployCase("auto-few", ["a1", "b1"], { type: "ClusterIP" }, { annotations: AUTO });
      await deployCase(
        "auto-donate",
        ["a1", "a1", "a2", "b1", "b1", "b2", "c1"],
        { type: "ClusterIP" },
        { annotations: AUTO },
      );
      const verdicts: Verdict[] = [
        await settledAutoHints("auto-even", 4),
        await settledAutoHints("auto-donate", 7),
        await settledHints("auto-few", "none"),
        await disabledEvent("auto-few", "Insufficient number of endpoints"),
      ];
      const topo = await topology();
      const target = `${even.spec?.clusterIP}:80`;
      const a2 = await fromClient("a2", target, "clusterip(auto-even)", topo);
      verdicts.push(servedBySet(a2, [podName("auto-even", "a1")]), servedWithin(a2, "zone"));
      verdicts.push(
        servedBySet(await fromClient("n0", target, "clusterip(auto-even)", topo), [
          podName("auto-even", "c1"),
          podName("auto-even", "c2"),
        ]),
      );
      // auto-few has no hints: every backend from everywhere.
      verdicts.push(
        servedBySet(await fromClient("a2", `${few.spec?.clusterIP}:80`, "clusterip(auto-few)", topo), [
          podName("auto-few", "a1"),
          podName("auto-few", "b1"),
        ]),
      );
      await labelNode(ctx, node("n0").name, ZONE_LABEL, null);
      verdicts.push(await settledHints("auto-even", "none"), await settledHints("auto-donate", "none"));
      verdicts.push(await disabledEvent("auto-even", "Insufficient Node information"));
      ledger.expectAll(verdicts);
    });
  });
});
