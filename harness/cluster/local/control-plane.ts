import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Agent, request } from "undici";
import { stringify } from "yaml";
import type { HarnessConfig } from "../../core/config.ts";
import { TphError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { waitFor } from "../../core/wait.ts";
import type { BinarySet } from "./binaries.ts";
import type { NetworkPlan } from "./network.ts";
import { issue, type Pki, writeKubeconfig } from "./pki.ts";
import { isAlive, logTail, type ProcessRecord, startProcess } from "./process.ts";

/**
 * The control plane of a local cluster: etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler, all in the control-plane namespace. Flags follow hack/local-up-cluster.sh and kubeadm
 * (node CIDR allocation on, as kind has it), trimmed to what a test cluster needs.
 */
export interface ControlPlaneContext {
  config: HarnessConfig;
  plan: NetworkPlan;
  pki: Pki;
  binaries: BinarySet;
  dir: string;
  logger: Logger;
  signal?: AbortSignal;
  /** Called with each process as soon as it is started, so it is recorded before anything can fail. */
  onStarted(record: ProcessRecord): Promise<void>;
}

const APISERVER_PORT = 6443;
const CONTROLLER_MANAGER_PORT = 10257;
const SCHEDULER_PORT = 10259;

export function apiserverUrl(plan: NetworkPlan): string {
  return `https://${plan.controlPlaneIP}:${APISERVER_PORT}`;
}

export async function startEtcd(ctx: ControlPlaneContext): Promise<ProcessRecord> {
  const data = join(ctx.dir, "etcd");
  await mkdir(data, { recursive: true, mode: 0o700 });
  // Loopback only: nothing but the apiserver, in the same namespace, talks to etcd.
  const record = await start(ctx, "etcd", [
    ctx.binaries.paths.etcd,
    "--name=default",
    `--data-dir=${data}`,
    "--listen-client-urls=http://127.0.0.1:2379",
    "--advertise-client-urls=http://127.0.0.1:2379",
    "--listen-peer-urls=http://127.0.0.1:2380",
    "--initial-advertise-peer-urls=http://127.0.0.1:2380",
    "--initial-cluster=default=http://127.0.0.1:2380",
    "--listen-metrics-urls=http://127.0.0.1:2381",
    // An ephemeral test cluster does not need durable writes; fsync dominates etcd latency on small VMs.
    "--unsafe-no-fsync",
    "--log-level=warn",
  ]);
  return record;
}

export async function startApiserver(ctx: ControlPlaneContext): Promise<ProcessRecord> {
  const { pki, plan } = ctx;
  const kubeletClient = await issue(
    pki.dir,
    pki.ca,
    {
      id: "apiserver-kubelet-client",
      commonName: "kube-apiserver-kubelet-client",
      organization: "system:masters",
    },
    ctx.logger,
  );
  return start(ctx, "kube-apiserver", [
    ctx.binaries.paths["kube-apiserver"],
    "--etcd-servers=http://127.0.0.1:2379",
    `--bind-address=${plan.controlPlaneIP}`,
    `--advertise-address=${plan.controlPlaneIP}`,
    `--secure-port=${APISERVER_PORT}`,
    `--service-cluster-ip-range=${plan.serviceSubnet}`,
    `--client-ca-file=${pki.ca.cert}`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--kubelet-client-certificate=${kubeletClient.cert}`,
    `--kubelet-client-key=${kubeletClient.key}`,
    `--service-account-key-file=${pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    "--allow-privileged=true",
    "--profiling=false",
  ]);
}

export async function startControllerManager(ctx: ControlPlaneContext): Promise<ProcessRecord> {
  const { pki, plan, config } = ctx;
  const kubeconfig = await componentKubeconfig(ctx, "controller-manager", "system:kube-controller-manager");
  return start(ctx, "kube-controller-manager", [
    ctx.binaries.paths["kube-controller-manager"],
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${plan.controlPlaneIP}`,
    `--secure-port=${CONTROLLER_MANAGER_PORT}`,
    `--cert-dir=${join(ctx.dir, "controller-manager")}`,
    "--controllers=*,bootstrapsigner,tokencleaner",
    "--leader-elect=false",
    "--use-service-account-credentials=true",
    // Pod IPs come from each Node's spec.podCIDR, as with kubeadm and kind.
    "--allocate-node-cidrs=true",
    `--cluster-cidr=${plan.podSubnet}`,
    "--node-cidr-mask-size=24",
    `--service-cluster-ip-range=${plan.serviceSubnet}`,
    `--cluster-name=tph-${plan.clusterName}`,
    `--root-ca-file=${pki.ca.cert}`,
    `--cluster-signing-cert-file=${pki.ca.cert}`,
    `--cluster-signing-key-file=${pki.ca.key}`,
    `--service-account-private-key-file=${pki.serviceAccountKey}`,
    `--node-monitor-grace-period=${config.cluster.nodeMonitorGracePeriodSeconds}s`,
    "--node-monitor-period=2s",
    "--profiling=false",
  ]);
}

export async function startScheduler(ctx: ControlPlaneContext): Promise<ProcessRecord> {
  const kubeconfig = await componentKubeconfig(ctx, "scheduler", "system:kube-scheduler");
  const configFile = join(ctx.dir, "scheduler-config.yaml");
  await writeFile(
    configFile,
    stringify({
      apiVersion: "kubescheduler.config.k8s.io/v1",
      kind: "KubeSchedulerConfiguration",
      clientConnection: { kubeconfig },
      leaderElection: { leaderElect: false },
    }),
  );
  return start(ctx, "kube-scheduler", [
    ctx.binaries.paths["kube-scheduler"],
    `--config=${configFile}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${ctx.plan.controlPlaneIP}`,
    `--secure-port=${SCHEDULER_PORT}`,
    `--cert-dir=${join(ctx.dir, "scheduler")}`,
    "--profiling=false",
  ]);
}

/** Waits until `url` answers 200, failing fast (with the log tail) if the process behind it dies. */
export async function waitHealthy(
  ctx: ControlPlaneContext,
  record: ProcessRecord,
  url: string,
): Promise<void> {
  const agent = new Agent({
    connect: { ca: await readCa(ctx), rejectUnauthorized: url.includes(`:${APISERVER_PORT}`) },
  });
  try {
    await waitFor(
      async () => {
        if (!(await isAlive(record.pid))) {
          throw new ProcessDied(record, await logTail(record.log));
        }
        const res = await request(url, { dispatcher: agent, headersTimeout: 2_000, bodyTimeout: 2_000 });
        const body = await res.body.text();
        return res.statusCode === 200
          ? { done: true, value: undefined }
          : { done: false, state: `${res.statusCode}: ${body.slice(0, 400)}` };
      },
      {
        description: `${record.name} to answer 200 on ${url}`,
        timeoutMs: ctx.config.cluster.readyTimeoutSeconds * 1000,
        intervalMs: 200,
        ...(ctx.signal && { signal: ctx.signal }),
      },
    );
  } finally {
    await agent.close();
  }
}

export const healthUrls = {
  apiserver: (plan: NetworkPlan) => `${apiserverUrl(plan)}/readyz`,
  controllerManager: (plan: NetworkPlan) =>
    `https://${plan.controlPlaneIP}:${CONTROLLER_MANAGER_PORT}/healthz`,
  scheduler: (plan: NetworkPlan) => `https://${plan.controlPlaneIP}:${SCHEDULER_PORT}/healthz`,
};

export class ProcessDied extends TphError {
  constructor(record: ProcessRecord, tail: string) {
    // The last line is usually the fatal one ("iptables is not available on this host"): it goes on
    // the first line, which is what a verdict table shows.
    const last = tail.trim().split("\n").at(-1)?.trim() ?? "";
    super(`${record.name} exited during start-up: ${last}\nlast lines of ${record.log}:\n${tail}`, {
      hint: "the log above usually names the bad flag or the port in use; run with --retain to keep the files",
      fatal: true,
    });
    this.name = "ProcessDied";
  }
}

async function start(ctx: ControlPlaneContext, name: string, argv: string[]): Promise<ProcessRecord> {
  ctx.logger.debug(`starting ${name}`);
  const record = await startProcess({
    name,
    netns: ctx.plan.controlPlaneNs,
    argv,
    log: join(ctx.dir, "logs", `${name}.log`),
  });
  await ctx.onStarted(record);
  return record;
}

async function componentKubeconfig(
  ctx: ControlPlaneContext,
  id: string,
  commonName: string,
): Promise<string> {
  const client = await issue(ctx.pki.dir, ctx.pki.ca, { id, commonName }, ctx.logger);
  const path = join(ctx.dir, `${id}.kubeconfig`);
  await writeKubeconfig(path, {
    clusterName: ctx.plan.clusterName,
    server: apiserverUrl(ctx.plan),
    caCert: ctx.pki.ca.cert,
    client,
    user: commonName,
  });
  return path;
}

async function readCa(ctx: ControlPlaneContext): Promise<string> {
  return readFile(ctx.pki.ca.cert, "utf8");
}
