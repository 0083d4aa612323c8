/**
 * Benchmarks of the local provider, printed as a table. Run as root: `npm run bench [-- --cold] [-- --runs N]`.
 *
 * - cold build: only when the binaries are not cached, or with --cold (a fresh, empty GOCACHE; the module
 *   download cache is kept, since fetching modules measures the network, not us)
 * - warm up: `up` until the apiserver answers /readyz, and until the whole control plane is healthy
 * - down: `delete` until nothing is left
 * - peak RSS: per process VmHWM (the kernel's high-water mark), summed, after the cluster has served a
 *   small workload (a namespace and a 10-replica Deployment scheduled onto 3 Nodes)
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureBinaries } from "../harness/cluster/local/binaries.ts";
import { localProvider } from "../harness/cluster/local/provider.ts";
import { loadConfig } from "../harness/core/config.ts";
import { createLogger } from "../harness/core/logger.ts";
import { waitFor } from "../harness/core/wait.ts";
import { kubeClients } from "../harness/k8s/client.ts";

const { values } = parseArgs({ options: { cold: { type: "boolean" }, runs: { type: "string" } } });
const runs = Number(values.runs ?? 3);
const logger = createLogger("normal");
const quiet = createLogger("quiet");
const config = loadConfig({
  clusterName: "bench",
  stateDir: "/tmp/tph-bench/state",
  local: { nodeSubnet: "10.250.9.0/24" },
});
const rows: [string, string][] = [];

if (values.cold) {
  const gocache = await mkdtemp(join(tmpdir(), "tph-gocache-"));
  process.env.GOCACHE = gocache;
  const t = Date.now();
  await ensureBinaries({ ...config, cacheDir: await mkdtemp(join(tmpdir(), "tph-bincache-")) }, logger, {
    rebuild: true,
  });
  rows.push(["cold build of all binaries (empty GOCACHE)", seconds(Date.now() - t)]);
  await rm(gocache, { recursive: true, force: true });
  delete process.env.GOCACHE;
} else {
  const t = Date.now();
  await ensureBinaries(config, logger);
  rows.push(["binaries (cached unless first run; --cold to measure a cold build)", seconds(Date.now() - t)]);
}

await localProvider.gc(config, { logger: quiet, all: true });
const upTimes: number[] = [];
const apiserverTimes: number[] = [];
const downTimes: number[] = [];
let peakRss = 0;
let peakDetail = "";
for (let i = 0; i < runs; i++) {
  const lines: string[] = [];
  const t0 = Date.now();
  let apiserverReady = 0;
  // The progress log marks the step after the apiserver's /readyz succeeded.
  const marker = createLogger("normal", (line) => {
    lines.push(line);
    if (!apiserverReady && line.includes("starting kube-controller-manager")) apiserverReady = Date.now();
  });
  const cluster = await localProvider.up(config, { logger: marker });
  upTimes.push(Date.now() - t0);
  apiserverTimes.push(apiserverReady - t0);

  if (i === 0) {
    const rss = await workloadPeakRss(cluster.kubeconfigPath, cluster);
    peakRss = rss.total;
    peakDetail = rss.detail;
  }
  const t1 = Date.now();
  await cluster.delete();
  downTimes.push(Date.now() - t1);
}

rows.push([`warm up → apiserver /readyz (median of ${runs})`, seconds(median(apiserverTimes))]);
rows.push([`warm up → whole control plane healthy (median of ${runs})`, seconds(median(upTimes))]);
rows.push([`down (median of ${runs})`, seconds(median(downTimes))]);
rows.push(["peak RSS of the control plane (sum of VmHWM)", `${(peakRss / 1024).toFixed(0)} MiB`]);
rows.push(["  by process", peakDetail]);

const width = Math.max(...rows.map(([k]) => k.length));
process.stdout.write(`\ntraffic-policy-harness bench (${new Date().toISOString()}, ${runs} run(s))\n`);
for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
process.stdout.write(
  `all up times: ${upTimes.map(seconds).join(", ")}; down: ${downTimes.map(seconds).join(", ")}\n`,
);

async function workloadPeakRss(
  kubeconfig: string,
  cluster: Awaited<ReturnType<typeof localProvider.up>>,
): Promise<{ total: number; detail: string }> {
  const k8s = kubeClients(kubeconfig);
  for (const name of ["bench-a", "bench-b", "bench-c"]) {
    await k8s.core.createNode({
      body: {
        metadata: { name },
        status: {
          conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: new Date() }],
          allocatable: { cpu: "4", memory: "8Gi", pods: "110" },
          capacity: { cpu: "4", memory: "8Gi", pods: "110" },
        },
      },
    });
  }
  await k8s.core.createNamespace({ body: { metadata: { name: "bench" } } });
  await k8s.apps.createNamespacedDeployment({
    namespace: "bench",
    body: {
      metadata: { name: "w" },
      spec: {
        replicas: 10,
        selector: { matchLabels: { app: "w" } },
        template: {
          metadata: { labels: { app: "w" } },
          spec: { containers: [{ name: "w", image: "agnhost" }] },
        },
      },
    },
  });
  await waitFor(
    async () => {
      const pods = await k8s.core.listNamespacedPod({ namespace: "bench" });
      const bound = pods.items.filter((p) => p.spec?.nodeName).length;
      return bound === 10 ? { done: true, value: bound } : { done: false, state: bound };
    },
    { description: "10 bound pods", timeoutMs: 60_000 },
  );
  let total = 0;
  const parts: string[] = [];
  for (const s of await cluster.status()) {
    const pid = Number(/pid (\d+)/.exec(s.detail ?? "")?.[1]);
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    total += kb;
    parts.push(`${s.component} ${(kb / 1024).toFixed(0)}`);
  }
  return { total, detail: `${parts.join(", ")} (MiB)` };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
