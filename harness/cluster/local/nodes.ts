import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { request } from "undici";
import { stringify } from "yaml";
import type { CleanupStack } from "../../core/cleanup.ts";
import { type HarnessConfig, mergePatch, type NodeSpec } from "../../core/config.ts";
import { run, which } from "../../core/exec.ts";
import type { Logger } from "../../core/logger.ts";
import { waitFor } from "../../core/wait.ts";
import { kubeClients } from "../../k8s/client.ts";
import { PROBE_IN_POD } from "../../traffic/clients.ts";
import { PROBE_PATH } from "../../traffic/run-probe.ts";
import type { AgentConfig } from "./agent/config.ts";
import type { BinarySet } from "./binaries.ts";
import { CNI_USER } from "./bootstrap.ts";
import { ProcessDied } from "./control-plane.ts";
import { namespacePids } from "./netns.ts";
import { attachNamespace, type NetworkPlan, nodeIP } from "./network.ts";
import { type CertPair, issue, type Pki, writeKubeconfig } from "./pki.ts";
import { isAlive, logTail, type ProcessRecord, startProcess } from "./process.ts";

/**
 * Worker nodes of a local cluster. Each node is a network namespace on the cluster bridge running two
 * processes: the node agent (registers the Node, runs its pods) and a real kube-proxy (programs the
 * namespace's own iptables or nftables ruleset, serves health on :10256).
 */
export interface LocalNode {
  name: string;
  index: number;
  ip: string;
  ns: string;
  zone?: string;
  labels: Record<string, string>;
  dir: string;
  agentConfig: string;
  kubeProxyConfig: string;
}

export const KUBE_PROXY_HEALTH_PORT = 10256;
const AGENT_MAIN = join(import.meta.dirname, "agent/main.ts");

export function planNodes(config: HarnessConfig, plan: NetworkPlan, dir: string): LocalNode[] {
  return config.cluster.nodes.map((spec: NodeSpec, i) => {
    const index = i + 1;
    // kind's naming, so suites and users see the same node names on both providers.
    const name = `${config.clusterName}-worker${index === 1 ? "" : index}`;
    const nodeDir = join(dir, "nodes", name);
    return {
      name,
      index,
      ip: nodeIP(plan, index),
      ns: `${plan.bridgeNs.replace(/-net$/, "")}-n${index}`,
      ...(spec.zone && { zone: spec.zone }),
      labels: { ...(spec.zone && { "topology.kubernetes.io/zone": spec.zone }), ...spec.labels },
      dir: nodeDir,
      agentConfig: join(nodeDir, "agent.json"),
      kubeProxyConfig: join(nodeDir, "kube-proxy.yaml"),
    };
  });
}

/** What starting and waiting on a node's processes needs. */
export interface NodeProcessContext {
  config: HarnessConfig;
  logger: Logger;
  signal?: AbortSignal;
  onStarted(record: ProcessRecord): Promise<void>;
}

/** What creating a node needs, on top of that. */
/** The network namespace of a pod on `node` (created by the node agent; see agent/sandbox.ts). */
export function podNamespace(node: LocalNode, podUid: string): string {
  return `${node.ns}-p${podUid.slice(0, 8)}`;
}

export interface NodeContext extends NodeProcessContext {
  plan: NetworkPlan;
  pki: Pki;
  binaries: BinarySet;
  server: string;
}

/** Creates the node's namespace and identities, and writes its agent and kube-proxy configs. */
export async function prepareNode(ctx: NodeContext, node: LocalNode, stack: CleanupStack): Promise<void> {
  await mkdir(join(node.dir, "pods"), { recursive: true });
  await attachNamespace(ctx.plan, node.ns, `n${node.index}`, node.ip, stack, ctx.logger, {
    defaultRoute: true,
  });
  const kubeconfig = (id: string) => join(node.dir, `${id}.kubeconfig`);
  const nodeIdentity = await issue(
    ctx.pki.dir,
    ctx.pki.ca,
    { id: `node-${node.name}`, commonName: `system:node:${node.name}`, organization: "system:nodes" },
    ctx.logger,
  );
  await writeKubeconfig(kubeconfig("agent"), {
    clusterName: ctx.plan.clusterName,
    server: ctx.server,
    caCert: ctx.pki.ca.cert,
    client: nodeIdentity,
    user: `system:node:${node.name}`,
  });
  for (const [id, user] of [
    ["kube-proxy", "system:kube-proxy"],
    ["cni", CNI_USER],
  ] as const) {
    await writeKubeconfig(kubeconfig(id), {
      clusterName: ctx.plan.clusterName,
      server: ctx.server,
      caCert: ctx.pki.ca.cert,
      client: await sharedIdentity(ctx, id, user),
      user,
    });
  }

  const agent: AgentConfig = {
    clusterName: ctx.plan.clusterName,
    nodeName: node.name,
    nodeIP: node.ip,
    nodeNs: node.ns,
    controlPlaneNs: ctx.plan.controlPlaneNs,
    podNsPrefix: podNamespace(node, ""),
    kubeconfig: kubeconfig("agent"),
    cniKubeconfig: kubeconfig("cni"),
    cni: { binDir: dirname(ctx.binaries.paths.ptp), dir: join(node.dir, "cni") },
    podsDir: join(node.dir, "pods"),
    labels: node.labels,
    // agnhost → the built binary; node (the probe clients' image) → this Node, which runs this
    // checkout's probe.ts where the pod would find the one mounted from the ConfigMap.
    images: [
      { repositorySuffix: "agnhost", binary: ctx.binaries.paths.agnhost },
      { repositorySuffix: "node", binary: process.execPath, files: { [PROBE_IN_POD]: PROBE_PATH } },
    ],
    kubeletVersion: ctx.binaries.versions.kubernetes ?? "",
    leaseDurationSeconds: 40,
    heartbeatSeconds: 10,
  };
  await writeFile(node.agentConfig, JSON.stringify(agent, null, 2));
  await writeKubeProxyConfig(ctx, node, kubeconfig("kube-proxy"));
}

/** One certificate per cluster for identities every node shares (kube-proxy, the CNI part of the agent). */
async function sharedIdentity(ctx: NodeContext, id: string, commonName: string): Promise<CertPair> {
  const pair = { cert: join(ctx.pki.dir, `${id}.crt`), key: join(ctx.pki.dir, `${id}.key`) };
  if (existsSync(pair.cert)) return pair;
  return issue(ctx.pki.dir, ctx.pki.ca, { id, commonName }, ctx.logger);
}

export async function writeKubeProxyConfig(
  ctx: Pick<NodeContext, "config" | "plan">,
  node: LocalNode,
  kubeconfig: string,
) {
  const mode = ctx.config.cluster.proxyMode;
  // The user's patch (--kube-proxy-config) goes over the harness's settings.
  const patch = ctx.config.cluster.kubeProxyConfig ?? {};
  await writeFile(
    node.kubeProxyConfig,
    stringify(
      mergePatch(
        {
          apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
          kind: "KubeProxyConfiguration",
          clientConnection: { kubeconfig },
          // Must equal the Node's name: locality of endpoints (Local policies) is decided by it.
          hostnameOverride: node.name,
          bindAddress: "0.0.0.0",
          healthzBindAddress: `0.0.0.0:${KUBE_PROXY_HEALTH_PORT}`,
          metricsBindAddress: "127.0.0.1:10249",
          mode,
          clusterCIDR: ctx.plan.podSubnet,
          detectLocalMode: "ClusterCIDR",
          iptables: { minSyncPeriod: "1s", syncPeriod: "30s" },
          nftables: { minSyncPeriod: "1s", syncPeriod: "30s" },
          // maxPerCore 0: nf_conntrack_max is global and a namespace must not set it (kind does the same).
          conntrack: {
            maxPerCore: 0,
            tcpEstablishedTimeout: "0s",
            tcpCloseWaitTimeout: "0s",
            ...(mode === "nftables" && { tcpBeLiberal: true }),
          },
        },
        patch,
      ),
    ),
  );
}

export async function startAgent(ctx: NodeProcessContext, node: LocalNode): Promise<ProcessRecord> {
  const record = await startProcess({
    name: `agent/${node.name}`,
    netns: node.ns,
    argv: [process.execPath, AGENT_MAIN, node.agentConfig],
    log: join(node.dir, "agent.log"),
    env: { TPH_LOG: ctx.config.logLevel },
    hostMounts: true,
  });
  await ctx.onStarted(record);
  return record;
}

export async function startKubeProxy(
  ctx: NodeProcessContext,
  node: LocalNode,
  binary: string,
): Promise<ProcessRecord> {
  const record = await startProcess({
    name: `kube-proxy/${node.name}`,
    netns: node.ns,
    argv: [binary, `--config=${node.kubeProxyConfig}`, "--v=2"],
    log: join(node.dir, "kube-proxy.log"),
  });
  await ctx.onStarted(record);
  return record;
}

/** Waits for the Node to be Ready with a podCIDR (the agent's work), failing fast if the agent dies. */
export async function waitNodeReady(
  ctx: NodeProcessContext,
  node: LocalNode,
  agent: ProcessRecord,
  kubeconfig: string,
) {
  const { core } = kubeClients(kubeconfig);
  await waitFor(
    async () => {
      if (!(await isAlive(agent.pid))) throw new ProcessDied(agent, await logTail(agent.log));
      const n = await core.readNode({ name: node.name });
      const ready = n.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
      return ready && n.spec?.podCIDR
        ? { done: true, value: undefined }
        : { done: false, state: { ready, podCIDR: n.spec?.podCIDR } };
    },
    {
      description: `node ${node.name} to register and be Ready`,
      timeoutMs: ctx.config.cluster.readyTimeoutSeconds * 1000,
      intervalMs: 200,
      ...(ctx.signal && { signal: ctx.signal }),
    },
  );
}

/** Waits for kube-proxy's /livez on the node (its first sync done), failing fast if it dies. */
export async function waitKubeProxyHealthy(
  ctx: NodeProcessContext,
  node: LocalNode,
  proxy: ProcessRecord,
): Promise<void> {
  const url = `http://${node.ip}:${KUBE_PROXY_HEALTH_PORT}/livez`;
  await waitFor(
    async () => {
      if (!(await isAlive(proxy.pid))) throw new ProcessDied(proxy, await logTail(proxy.log));
      const res = await request(url, { headersTimeout: 1_000, bodyTimeout: 1_000 });
      const body = await res.body.text();
      return res.statusCode === 200
        ? { done: true, value: undefined }
        : { done: false, state: `${res.statusCode} ${body}` };
    },
    {
      description: `kube-proxy on ${node.name} to answer ${url}`,
      timeoutMs: ctx.config.cluster.readyTimeoutSeconds * 1000,
      intervalMs: 200,
      ...(ctx.signal && { signal: ctx.signal }),
    },
  );
}

/** Waits until every node routes to every other node's pod CIDR (the agents' routing has converged). */
export async function waitRoutes(
  ctx: NodeProcessContext,
  nodes: LocalNode[],
  kubeconfig: string,
): Promise<void> {
  const { core } = kubeClients(kubeconfig);
  await waitFor(
    async () => {
      const cidrs = new Map((await core.listNode()).items.map((n) => [n.metadata?.name, n.spec?.podCIDR]));
      const missing: string[] = [];
      for (const node of nodes) {
        const { stdout } = await run(["ip", "-n", node.ns, "-4", "route", "show"]);
        for (const other of nodes) {
          const cidr = cidrs.get(other.name);
          if (other !== node && (!cidr || !stdout.includes(`${cidr} via ${other.ip}`)))
            missing.push(`${node.name}→${other.name}`);
        }
      }
      return missing.length === 0
        ? { done: true, value: undefined }
        : { done: false, state: `missing routes ${missing.join(", ")}` };
    },
    {
      description: "pod routes between all nodes",
      timeoutMs: 30_000,
      intervalMs: 200,
      ...(ctx.signal && { signal: ctx.signal }),
    },
  );
}

/**
 * Stops a node as a power cut would: its agent, kube-proxy and every pod process die, and its link
 * goes down, so heartbeats stop and the real node lifecycle controller reacts.
 */
export async function stopNode(node: LocalNode, plan: NetworkPlan): Promise<void> {
  // Everything in the node's namespace dies at once (agent, kube-proxy, speaker, hostNetwork pods), as
  // at a power cut; found by namespace, so no process is missed whatever its command line.
  const pids = await namespacePids(node.ns);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  await waitFor(
    async () => {
      const alive = (await Promise.all(pids.map(isAlive))).filter(Boolean).length;
      return alive === 0
        ? { done: true, value: undefined }
        : { done: false, state: `${alive} processes still alive` };
    },
    { description: `the processes of node ${node.name} to exit`, timeoutMs: 10_000, intervalMs: 50 },
  );
  // Pod processes live in pod namespaces named after the node.
  const { stdout } = await run(["ip", "netns", "list"]);
  for (const line of stdout.split("\n")) {
    const ns = line.split(" ")[0] ?? "";
    if (!ns.startsWith(`${node.ns}-p`)) continue;
    const { stdout: pids } = await run(["ip", "netns", "pids", ns], { allowFailure: true });
    for (const pid of pids.split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {}
    }
    await run(["ip", "netns", "del", ns], { allowFailure: true });
  }
  await run(["ip", "-n", plan.bridgeNs, "link", "set", `n${node.index}`, "down"]);
  await forgetKernelState(node);
}

/**
 * What a power cut takes besides the processes: the kernel's connection tracking and netfilter rules
 * (kube-proxy writes its rules again when it starts). The node's namespace outlives the "cut", so both
 * are cleared by hand. Kept, they were not a power cut's: a SYN that came in between the link going up
 * and kube-proxy's first sync followed the old rules to the dead pod's address, and its unanswered
 * conntrack entry then caught a later request from the same source port (a lone timeout 36 s after the
 * node came back, in node-stop-traffic).
 */
async function forgetKernelState(node: LocalNode): Promise<void> {
  const inNode = (argv: string[]) => run(["ip", "netns", "exec", node.ns, ...argv]);
  if (await which("nft")) await inNode(["nft", "flush", "ruleset"]);
  // Tables of legacy iptables are not nf_tables: flushed table by table (their base chains stay).
  if ((await which("iptables")) && (await run(["iptables", "-V"])).stdout.includes("legacy"))
    for (const cmd of ["iptables", "ip6tables"])
      for (const table of ["filter", "nat", "mangle", "raw"])
        for (const op of ["-F", "-X"])
          await run(["ip", "netns", "exec", node.ns, cmd, "-t", table, op], { allowFailure: true });
  await inNode(["conntrack", "-F"]);
  await inNode(["conntrack", "-F", "-f", "ipv6"]);
}

export async function bringLinkUp(node: LocalNode, plan: NetworkPlan): Promise<void> {
  await run(["ip", "-n", plan.bridgeNs, "link", "set", `n${node.index}`, "up"]);
}
