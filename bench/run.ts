/**
 * Benchmarks of the local provider, printed as a table. Run as root:
 *   npm run bench                 warm figures (builds the binaries first if they are not cached)
 *   npm run bench -- --cold       also a cold build, with an empty GOCACHE
 *   npm run bench -- --runs 5     more bring-ups for the medians
 *   npm run bench -- --suites     also the wall time of every e2e suite file (runs them all: ~25 min)
 *
 * - cold build: a fresh, empty GOCACHE (the module download cache is kept: fetching modules measures the
 *   network, not us)
 * - warm up: `up` of a 3-node cluster until the apiserver answers /readyz, and until every Node is Ready
 *   and every kube-proxy healthy (what `tph up` waits for)
 * - pod start: Pod created → Ready condition True, one pod at a time, polled every 20 ms
 * - down: `delete` until nothing is left
 * - blackhole detection: an eTP Local NodePort loses its node's endpoint under continuous traffic; time
 *   from the delete to the harness receiving the first failed request
 * - memory: peak RSS (VmHWM) of each control-plane process; RSS of each node's agent and kube-proxy
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { noDrops } from "../harness/assert/verdicts.ts";
import { ensureBinaries } from "../harness/cluster/local/binaries.ts";
import { localProvider } from "../harness/cluster/local/provider.ts";
import type { StartedCluster } from "../harness/cluster/provider.ts";
import { loadConfig } from "../harness/core/config.ts";
import { run } from "../harness/core/exec.ts";
import { createLogger } from "../harness/core/logger.ts";
import { sleep, waitFor } from "../harness/core/wait.ts";
import { kubeClients } from "../harness/k8s/client.ts";
import { announcingNode } from "../harness/metallb/announcer.ts";
import { runProbe } from "../harness/traffic/run-probe.ts";
import { startTraffic } from "../harness/traffic/stream.ts";
import { ZONED_NODES } from "../manifests/zones.ts";

const { values } = parseArgs({
  options: {
    cold: { type: "boolean" },
    runs: { type: "string" },
    pods: { type: "string" },
    suites: { type: "boolean" },
  },
});
const runs = Number(values.runs ?? 3);
const podCount = Number(values.pods ?? 10);
const logger = createLogger("normal");
const config = loadConfig({
  clusterName: "bench",
  stateDir: "/tmp/tph-bench/state",
  logLevel: "quiet",
  cluster: { nodeSubnet: "10.250.9.0/24", nodes: [{}, {}, {}] },
});
const rows: [string, string][] = [];

if (values.cold) {
  const gocache = await mkdtemp(join(tmpdir(), "tph-gocache-"));
  const bincache = await mkdtemp(join(tmpdir(), "tph-bincache-"));
  process.env.GOCACHE = gocache;
  const t = Date.now();
  await ensureBinaries({ ...config, cacheDir: bincache }, logger, { rebuild: true });
  rows.push(["cold build of all binaries (empty GOCACHE)", seconds(Date.now() - t)]);
  await rm(gocache, { recursive: true, force: true });
  await rm(bincache, { recursive: true, force: true });
  delete process.env.GOCACHE;
} else {
  const t = Date.now();
  await ensureBinaries(config, logger);
  rows.push(["binaries (cached unless first run; --cold measures a cold build)", seconds(Date.now() - t)]);
}

await localProvider.gc(config, { logger: createLogger("quiet"), all: true });
const apiserverTimes: number[] = [];
const upTimes: number[] = [];
const downTimes: number[] = [];
for (let i = 0; i < runs; i++) {
  process.stderr.write(`bring-up ${i + 1}/${runs}\n`);
  const t0 = Date.now();
  let apiserverReady = 0;
  // The step after the apiserver's /readyz succeeded marks that moment.
  const marker = createLogger("normal", (line) => {
    if (!apiserverReady && line.includes("starting kube-controller-manager")) apiserverReady = Date.now();
  });
  const cluster = await localProvider.up(config, { logger: marker });
  upTimes.push(Date.now() - t0);
  apiserverTimes.push(apiserverReady - t0);
  if (i === 0) await measureWorkload(cluster);
  const t1 = Date.now();
  await cluster.delete();
  downTimes.push(Date.now() - t1);
}

await measureZonedCluster();
if (values.suites) await measureSuites();

rows.unshift(["machine", `${(await import("node:os")).cpus().length} cores, node ${process.version}`]);
rows.push([`warm up → apiserver /readyz (median of ${runs})`, seconds(median(apiserverTimes))]);
rows.push([
  `warm up, 3 nodes → Nodes Ready, kube-proxy healthy, MetalLB running (median of ${runs})`,
  seconds(median(upTimes)),
]);
rows.push([`down (median of ${runs})`, seconds(median(downTimes))]);

const width = Math.max(...rows.map(([k]) => k.length));
process.stdout.write(`\ntraffic-policy-harness bench (${new Date().toISOString()})\n`);
for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
process.stdout.write(
  `all up times: ${upTimes.map(seconds).join(", ")}; down: ${downTimes.map(seconds).join(", ")}\n`,
);

async function measureWorkload(cluster: StartedCluster): Promise<void> {
  const k8s = kubeClients(cluster.kubeconfigPath);
  const nodes = await cluster.nodes();
  const starts: number[] = [];
  for (let i = 0; i < podCount; i++) {
    const node = nodes[i % nodes.length]?.name ?? "";
    const t = Date.now();
    await k8s.core.createNamespacedPod({
      namespace: "default",
      body: agnhostPod(`bench-${i}`, node, "bench"),
    });
    await waitFor(
      async () => {
        const pod = await k8s.core.readNamespacedPod({ name: `bench-${i}`, namespace: "default" });
        const ready = pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
        return ready ? { done: true, value: undefined } : { done: false, state: pod.status?.phase };
      },
      { description: `pod bench-${i} Ready`, timeoutMs: 30_000, intervalMs: 20 },
    );
    starts.push(Date.now() - t);
  }
  rows.push([
    `pod start: created → Ready (median / max of ${podCount})`,
    `${seconds(median(starts))} / ${seconds(Math.max(...starts))}`,
  ]);

  await measureProbe(cluster);
  await measureLoadBalancer(cluster);
  await measureBlackholeDetection(cluster);

  const byComponent = await componentMemory(cluster);
  const controlPlane = [...byComponent].filter(([c]) => !c.includes("/"));
  rows.push([
    "control plane peak RSS (VmHWM), MiB",
    `${controlPlane.reduce((a, [, v]) => a + v, 0).toFixed(0)} = ${controlPlane.map(([c, v]) => `${c} ${v.toFixed(0)}`).join(", ")}`,
  ]);
  for (const node of nodes) {
    const agent = byComponent.get(`agent/${node.name}`) ?? 0;
    const proxy = byComponent.get(`kube-proxy/${node.name}`) ?? 0;
    const speaker = byComponent.get(`speaker/${node.name}`) ?? 0;
    rows.push([
      `memory of node ${node.name} (RSS, MiB; pods excluded)`,
      `${(agent + proxy + speaker).toFixed(0)} = agent ${agent.toFixed(0)} + kube-proxy ${proxy.toFixed(0)} + speaker ${speaker.toFixed(0)}`,
    ]);
  }
}

/** MiB per component: peak RSS (VmHWM) of control-plane processes, RSS of node processes ("agent/<node>"). */
async function componentMemory(cluster: StartedCluster): Promise<Map<string, number>> {
  const byComponent = new Map<string, number>();
  for (const s of await cluster.status()) {
    const pid = Number(/pid (\d+)/.exec(s.detail ?? "")?.[1]);
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const field = s.component.includes("/") ? "VmRSS" : "VmHWM";
    byComponent.set(s.component, Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024);
  }
  return byComponent;
}

/**
 * The trafficDistribution suite's cluster (manifests/zones.ts: three zones of two nodes and a zoneless
 * node): bring-up until every Node is Ready and every kube-proxy healthy, its memory, and its teardown.
 */
async function measureZonedCluster(): Promise<void> {
  const zoned = loadConfig({
    ...config,
    clusterName: "benchz",
    cluster: { ...config.cluster, nodes: ZONED_NODES },
  });
  process.stderr.write(`bring-up of the ${ZONED_NODES.length}-node zoned cluster\n`);
  const t0 = Date.now();
  const cluster = await localProvider.up(zoned, { logger: createLogger("quiet") });
  const up = Date.now() - t0;
  try {
    const nodes = await cluster.nodes();
    const zones = new Set(nodes.map((n) => n.zone ?? "none"));
    rows.push([
      `up, ${nodes.length} nodes in ${zones.size - (zones.has("none") ? 1 : 0)} zones + ${nodes.filter((n) => !n.zone).length} zoneless (trafficDistribution's cluster)`,
      seconds(up),
    ]);
    const memory = await componentMemory(cluster);
    const total = [...memory.values()].reduce((a, b) => a + b, 0);
    const perNode = nodes.map((n) =>
      ["agent", "kube-proxy", "speaker"].reduce((a, c) => a + (memory.get(`${c}/${n.name}`) ?? 0), 0),
    );
    rows.push([
      "  its memory (RSS, MiB; pods excluded)",
      `${total.toFixed(0)} in all; per node ${Math.min(...perNode).toFixed(0)}–${Math.max(...perNode).toFixed(0)}`,
    ]);
  } finally {
    const t1 = Date.now();
    await cluster.delete();
    rows.push(["  its teardown", seconds(Date.now() - t1)]);
  }
}

/** The probe's sustained rate through a NodePort, and the harness's cost per ledger entry. */
async function measureProbe(cluster: StartedCluster): Promise<void> {
  const k8s = kubeClients(cluster.kubeconfigPath);
  const svc = await k8s.core.createNamespacedService({
    namespace: "default",
    body: {
      metadata: { name: "bench" },
      spec: { type: "NodePort", selector: { app: "bench" }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  });
  const [node] = await cluster.nodes();
  const target = `${node?.internalIP}:${svc.spec?.ports?.[0]?.nodePort}`;
  await waitFor(
    async () => {
      const [e] = await runProbe(cluster, { kind: "external" }, { target, timeoutMs: 500 });
      return e?.outcome === "ok" ? { done: true, value: undefined } : { done: false, state: e?.outcome };
    },
    { description: "the bench Service", timeoutMs: 30_000, intervalMs: 100 },
  );
  for (const mode of ["http", "keepalive"] as const) {
    const count = 5000;
    const entries = await runProbe(cluster, { kind: "external" }, { target, mode, count, path: "/hostname" });
    const first = entries[0]?.start ?? 0;
    const last = entries.at(-1)?.end ?? first;
    const lat = entries.map((e) => e.end - e.start).sort((a, b) => a - b);
    const ok = entries.filter((e) => e.outcome === "ok").length;
    rows.push([
      `probe, one client, ${mode === "http" ? "new connection per request" : "keep-alive"} (${count} requests)`,
      `${((count * 1000) / Math.max(last - first, 1)).toFixed(0)} req/s, p50 ${lat[Math.floor(lat.length / 2)]} ms, p99 ${lat[Math.floor(lat.length * 0.99)]} ms, ${ok} ok`,
    ]);
    if (mode === "http") {
      // The harness's side: parse the probe's lines and judge them, per entry.
      const lines = entries.map((e) => JSON.stringify(e)).join("\n");
      const t = process.hrtime.bigint();
      for (let i = 0; i < 20; i++)
        noDrops(lines.split("\n").map((l) => ({ ...JSON.parse(l), path: "bench" })));
      const ns = Number(process.hrtime.bigint() - t) / (20 * entries.length);
      rows.push([
        "harness overhead per ledger entry (parse + NoDrops verdict)",
        `${(ns / 1000).toFixed(2)} µs`,
      ]);
    }
  }
}

/** Service created → LB address → first successful request; the eTP=Local move; failover off a stopped node. */
async function measureLoadBalancer(cluster: StartedCluster): Promise<void> {
  const k8s = kubeClients(cluster.kubeconfigPath);
  const nodes = (await cluster.nodes()).map((n) => n.name);
  const ns = "default";
  const pod = (name: string, node: string) => agnhostPod(name, node, "lb");
  const ready = async (name: string) =>
    waitFor(
      async () => {
        const p = await k8s.core.readNamespacedPod({ name, namespace: ns });
        return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")
          ? { done: true, value: undefined }
          : { done: false, state: p.status?.phase };
      },
      { description: `${name} Ready`, timeoutMs: 30_000, intervalMs: 20 },
    );
  const firstOk = async (target: string, timeoutMs = 60_000) =>
    waitFor(
      async () => {
        const [e] = await runProbe(cluster, { kind: "external" }, { target, timeoutMs: 300 });
        return e?.outcome === "ok" ? { done: true, value: e.end } : { done: false, state: e?.outcome };
      },
      { description: `a successful request to ${target}`, timeoutMs, intervalMs: 50 },
    );
  for (const [i, node] of nodes.entries())
    await k8s.core.createNamespacedPod({ namespace: ns, body: pod(`lb-${i}`, node) });
  for (const i of nodes.keys()) await ready(`lb-${i}`);

  const t0 = Date.now();
  await k8s.core.createNamespacedService({
    namespace: ns,
    body: {
      metadata: { name: "lb" },
      spec: { type: "LoadBalancer", selector: { app: "lb" }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  });
  const ip = await waitFor(
    async () => {
      const svc = await k8s.core.readNamespacedService({ name: "lb", namespace: ns });
      const a = svc.status?.loadBalancer?.ingress?.[0]?.ip;
      return a ? { done: true, value: a } : { done: false, state: "pending" };
    },
    { description: "an LB address", timeoutMs: 30_000, intervalMs: 20 },
  );
  const assigned = Date.now() - t0;
  const served = (await firstOk(`${ip}:80`)) - t0;
  rows.push([
    "LoadBalancer: Service created → address / → first successful request",
    `${seconds(assigned)} / ${seconds(served)}`,
  ]);

  // Failover: stop the announcing node, time until a request succeeds again.
  const victim = await waitFor(
    async () => {
      const n = await announcingNode(k8s, ns, "lb");
      return n ? { done: true, value: n } : { done: false, state: "nobody" };
    },
    { description: "an announcing node", timeoutMs: 30_000, intervalMs: 50 },
  );
  const stoppedAt = Date.now();
  await cluster.nodeOps?.stop(victim);
  const recovered = (await firstOk(`${ip}:80`)) - stoppedAt;
  rows.push([
    `LoadBalancer failover: announcing node stopped → first successful request`,
    seconds(recovered),
  ]);
  await cluster.nodeOps?.start(victim);

  // eTP=Local follows the only endpoint: move it and time until it is announced and serving again.
  await k8s.core.deleteNamespacedService({ name: "lb", namespace: ns });
  for (const i of nodes.keys())
    await k8s.core.deleteNamespacedPod({ name: `lb-${i}`, namespace: ns, gracePeriodSeconds: 0 });
  await k8s.core.createNamespacedService({
    namespace: ns,
    body: {
      metadata: { name: "local" },
      spec: {
        type: "LoadBalancer",
        externalTrafficPolicy: "Local",
        selector: { app: "local" },
        ports: [{ port: 80, targetPort: 8080 }],
      },
    },
  });
  const localPod = (name: string, node: string) => agnhostPod(name, node, "local");
  await k8s.core.createNamespacedPod({ namespace: ns, body: localPod("local-a", nodes[0] ?? "") });
  await ready("local-a");
  const lip = await waitFor(
    async () => {
      const a = (await k8s.core.readNamespacedService({ name: "local", namespace: ns })).status?.loadBalancer
        ?.ingress?.[0]?.ip;
      return a ? { done: true, value: a } : { done: false, state: "pending" };
    },
    { description: "an LB address", timeoutMs: 30_000, intervalMs: 20 },
  );
  await firstOk(`${lip}:80`);
  await k8s.core.deleteNamespacedPod({ name: "local-a", namespace: ns, gracePeriodSeconds: 0 });
  const moveAt = Date.now();
  await k8s.core.createNamespacedPod({ namespace: ns, body: localPod("local-b", nodes[1] ?? "") });
  const moved = (await firstOk(`${lip}:80`)) - moveAt;
  rows.push(["LoadBalancer eTP=Local: backend moved to another node → serving again", seconds(moved)]);
}

/**
 * Time to detect a blackhole after its onset: continuous traffic to the NodePort of an
 * externalTrafficPolicy Local Service on node A while A's only endpoint is deleted (grace 0) and node B
 * keeps one. From the delete call, A drops the NodePort's packets once kube-proxy has synced; detection
 * is when the harness receives the first timed-out entry (the stream's arrival, not the request's start).
 * Per request timeout, since a drop is only known once the timeout expires. (The pod's death itself
 * shows at once as refused/reset requests; that is not the blackhole and is reported apart.)
 */
async function measureBlackholeDetection(cluster: StartedCluster): Promise<void> {
  const k8s = kubeClients(cluster.kubeconfigPath);
  const nodes = await cluster.nodes();
  const [a, b] = nodes;
  if (!a || !b) return;
  const ns = "default";
  const svc = await k8s.core.createNamespacedService({
    namespace: ns,
    body: {
      metadata: { name: "bh" },
      spec: {
        type: "NodePort",
        externalTrafficPolicy: "Local",
        selector: { app: "bh" },
        ports: [{ port: 80, targetPort: 8080 }],
      },
    },
  });
  const target = `${a.internalIP}:${svc.spec?.ports?.[0]?.nodePort}`;
  for (const timeoutMs of [250, 500, 1000]) {
    const times: number[] = [];
    for (let run = 0; run < 3; run++) {
      const onA = `bh-a-${timeoutMs}-${run}`;
      await k8s.core.createNamespacedPod({ namespace: ns, body: agnhostPod(onA, a.name, "bh") });
      const onB = `bh-b-${timeoutMs}-${run}`;
      await k8s.core.createNamespacedPod({ namespace: ns, body: agnhostPod(onB, b.name, "bh") });
      await waitFor(
        async () => {
          const [e] = await runProbe(
            cluster,
            { kind: "external" },
            { target, path: "/hostname", timeoutMs: 300 },
          );
          return e?.outcome === "ok" && e.body === onA
            ? { done: true, value: undefined }
            : { done: false, state: e?.outcome };
        },
        { description: `${target} served by ${onA}`, timeoutMs: 30_000, intervalMs: 50 },
      );
      let onset = 0;
      let detected = 0;
      const traffic = await startTraffic(
        cluster,
        [{ name: "external->nodeport@A", source: { kind: "external" }, target, rate: 200, timeoutMs }],
        {
          onEntry: (e) => {
            // The blackhole is a drop (timeout), not the refusals or resets of the pod dying under
            // in-flight traffic a moment before kube-proxy notices.
            if (onset && !detected && e.outcome === "timeout" && e.start >= onset) detected = Date.now();
          },
        },
      );
      await traffic.flowing();
      await sleep(500);
      onset = Date.now();
      await k8s.core.deleteNamespacedPod({ name: onA, namespace: ns, gracePeriodSeconds: 0 });
      await waitFor(
        async () => (detected ? { done: true, value: undefined } : { done: false, state: "no failure yet" }),
        { description: "the blackhole to show in the ledger", timeoutMs: 30_000, intervalMs: 10 },
      );
      const { entries } = await traffic.stop();
      const firstFailure = entries.find((e) => e.outcome !== "ok" && e.start >= onset);
      const firstDrop = entries.find((e) => e.outcome === "timeout" && e.start >= onset);
      times.push(detected - onset);
      process.stderr.write(
        `blackhole detection (timeout ${timeoutMs} ms) run ${run + 1}: ${detected - onset} ms; first dropped request started ${(firstDrop?.start ?? 0) - onset} ms after the delete; first failure of any kind ${(firstFailure?.start ?? 0) - onset} ms (${firstFailure?.outcome})\n`,
      );
      await k8s.core.deleteNamespacedPod({ name: onB, namespace: ns, gracePeriodSeconds: 0 });
    }
    rows.push([
      `blackhole onset (eTP Local endpoint deleted) → harness sees the drop, request timeout ${timeoutMs} ms (median of 3)`,
      `${seconds(median(times))} (${times.map(seconds).join(", ")})`,
    ]);
  }
}

/** Wall time of each e2e suite file and of the whole e2e project, from vitest's JSON report. */
async function measureSuites(): Promise<void> {
  const out = join(await mkdtemp(join(tmpdir(), "tph-bench-")), "report.json");
  const t = Date.now();
  const r = await run(
    [
      join(config.repoRoot, "node_modules/.bin/vitest"),
      "run",
      "--project",
      "e2e",
      "--reporter=json",
      `--outputFile=${out}`,
    ],
    { cwd: config.repoRoot, allowFailure: true },
  );
  const total = Date.now() - t;
  const report = JSON.parse(await readFile(out, "utf8")) as {
    testResults: {
      name: string;
      status: string;
      startTime: number;
      endTime: number;
      assertionResults: { title: string; status: string; failureMessages?: string[] }[];
    }[];
  };
  // A failed suite's first lines of failure, so a bench run that fails says why.
  for (const f of report.testResults)
    for (const a of f.assertionResults.filter((x) => x.status === "failed"))
      process.stderr.write(
        `FAILED ${f.name} › ${a.title}: ${(a.failureMessages ?? []).join("\n").slice(0, 800)}\n`,
      );
  for (const f of report.testResults.sort((x, y) => x.startTime - y.startTime))
    rows.push([
      `suite ${f.name.replace(`${config.repoRoot}/`, "")} (${f.status})`,
      seconds(f.endTime - f.startTime),
    ]);
  rows.push([`all e2e suites (vitest exit ${r.exitCode})`, seconds(total)]);
}

/** An agnhost netexec pod bound straight to `node` (no scheduler in the measurement). */
function agnhostPod(name: string, node: string, app: string) {
  return {
    metadata: { name, labels: { app } },
    spec: {
      nodeName: node,
      containers: [
        {
          name: "c",
          image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
          args: ["netexec", "--http-port=8080"],
        },
      ],
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
