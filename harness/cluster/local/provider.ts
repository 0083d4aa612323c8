import { cp, mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { formatIp, parseIp } from "../../core/cidr.ts";
import { withCleanup } from "../../core/cleanup.ts";
import { type HarnessConfig, NAME_PREFIX } from "../../core/config.ts";
import { TphError } from "../../core/errors.ts";
import { type ExecResult, run } from "../../core/exec.ts";
import { createLogger, type Logger } from "../../core/logger.ts";
import { pidAlive } from "../../core/pid.ts";
import { kubeClients } from "../../k8s/client.ts";
import { PROBE_PATH } from "../../traffic/run-probe.ts";
import type {
  ClusterNode,
  ClusterProvider,
  ComponentStatus,
  ExternalNetwork,
  GcOptions,
  NodeOperations,
  ProbeSource,
  StartedCluster,
} from "../provider.ts";
import { ensureBinaries, ensureKubeProxy, ensureMetallb } from "./binaries.ts";
import { applyBootstrapObjects } from "./bootstrap.ts";
import {
  apiserverUrl,
  type ControlPlaneContext,
  healthUrls,
  startApiserver,
  startControllerManager,
  startEtcd,
  startScheduler,
  waitHealthy,
} from "./control-plane.ts";
import { installMetallb, startSpeaker } from "./metallb.ts";
import { hostLinkAlias, listHostLinks, listNamespaces } from "./netns.ts";
import { attachNamespace, createNetwork, OWNER_ALIAS_PREFIX, planNetwork } from "./network.ts";
import {
  bringLinkUp,
  type LocalNode,
  type NodeContext,
  type NodeProcessContext,
  planNodes,
  podNamespace,
  prepareNode,
  startAgent,
  startKubeProxy,
  stopNode,
  waitKubeProxyHealthy,
  waitNodeReady,
  waitRoutes,
} from "./nodes.ts";
import { createPki, issue, writeKubeconfig } from "./pki.ts";
import { preflightLocal } from "./preflight.ts";
import { isOurs, type ProcessRecord, stopProcess } from "./process.ts";
import { icmpRateLimitedCount } from "./snmp.ts";
import { clusterDir, type LocalClusterState, listStates, loadState, saveState } from "./state.ts";
import { teardownCluster } from "./teardown.ts";

export const localProvider: ClusterProvider = {
  name: "local",
  capabilities: () => ({
    createClusters: true,
    nodeDisruption: true,
    nodePower: true,
    kubeProxyReleases: true,
    l2LoadBalancer: true,
    externalClient: true,
    externalIPs: true,
  }),

  async prepareRun(config, { logger }) {
    await ensureBinaries(config, logger);
    // A kube-proxy release the run asks for is built here, with progress, not inside a suite's
    // bring-up (whose hook timeout a cold build could exceed).
    const versions = [
      config.cluster.kubeProxyVersion,
      ...config.cluster.nodes.map((n) => n.kubeProxyVersion),
    ];
    for (const v of new Set(versions.filter((x): x is string => x !== undefined)))
      await ensureKubeProxy(config, v, logger);
    if (config.cluster.metallbVersion) await ensureMetallb(config, config.cluster.metallbVersion, logger);
    const removed = await this.gc(config, { logger, all: true });
    for (const r of removed) logger.warn(`removed a leftover of an earlier run: ${r}`);
  },

  async preflight(config, options = {}) {
    await preflightLocal(config, {
      logger: options.logger ?? createLogger("normal"),
      proxyModes: options.proxyModes ?? [config.cluster.proxyMode],
      ...(options.install !== undefined && { install: options.install }),
    });
  },

  async up(config, options) {
    const { logger } = options;
    const dir = clusterDir(config.stateDir, config.clusterName);
    await this.preflight(config, {
      logger,
      ...(options.install !== undefined && { install: options.install }),
    });
    await refuseExisting(config);
    const plan = planNetwork(config.clusterName, config.cluster);
    let binaries = await ensureBinaries(config, logger, options.signal ? { signal: options.signal } : {});
    if (config.cluster.metallbVersion) {
      // Another MetalLB release: its own controller, speaker and manifest (CRDs, RBAC).
      const mlb = await ensureMetallb(config, config.cluster.metallbVersion, logger);
      binaries = {
        paths: { ...binaries.paths, "metallb-controller": mlb.controller, speaker: mlb.speaker },
        versions: { ...binaries.versions, metallb: config.cluster.metallbVersion },
        ...(mlb.manifest && { metallbManifest: mlb.manifest }),
      };
    }
    // Each node's kube-proxy: the cluster's own release unless the config names another (per node, for
    // version skew), built on demand.
    const kubeProxies: string[] = [];
    for (const [i, spec] of config.cluster.nodes.entries()) {
      const version = spec.kubeProxyVersion ?? config.cluster.kubeProxyVersion;
      kubeProxies[i] = version
        ? (await ensureKubeProxy(config, version, logger, options.signal ? { signal: options.signal } : {}))
            .path
        : binaries.paths["kube-proxy"];
    }

    return withCleanup(
      async (stack, signal) => {
        if (options.retain) {
          stack.push("keep the failed cluster", () =>
            logger.warn(
              `--retain: kept the failed cluster; remove it with: tph down --name ${config.clusterName}`,
            ),
          );
        } else {
          stack.push(`tear down cluster ${config.clusterName}`, async () => {
            await teardownCluster(config.stateDir, config.clusterName, logger);
          });
        }
        const state: LocalClusterState = {
          name: config.clusterName,
          provider: "local",
          phase: "creating",
          ownerPid: process.pid,
          createdAt: new Date().toISOString(),
          dir,
          network: plan,
          kubeconfig: join(dir, "kubeconfig"),
          server: apiserverUrl(plan),
          versions: binaries.versions,
          processes: [],
          nodes: [],
          proxyMode: config.cluster.proxyMode,
          stoppedNodes: [],
        };
        await mkdir(join(dir, "logs"), { recursive: true });
        await saveState(state);

        logger.step(`creating network ${plan.subnet} (host link ${plan.hostLink} = ${plan.hostIP})`);
        await createNetwork(plan, stack, logger, config.stateDir);
        signal.throwIfAborted();

        logger.step("generating certificates and kubeconfigs");
        const pki = await createPki(
          join(dir, "pki"),
          config.clusterName,
          {
            ips: [plan.controlPlaneIP, plan.kubernetesServiceIP, "127.0.0.1"],
            dns: [
              "kubernetes",
              "kubernetes.default",
              "kubernetes.default.svc",
              "kubernetes.default.svc.cluster.local",
              "localhost",
            ],
          },
          logger,
        );
        const admin = await issue(
          pki.dir,
          pki.ca,
          { id: "admin", commonName: "kubernetes-admin", organization: "system:masters" },
          logger,
        );
        await writeKubeconfig(state.kubeconfig, {
          clusterName: config.clusterName,
          server: state.server,
          caCert: pki.ca.cert,
          client: admin,
          user: "kubernetes-admin",
        });

        const ctx: ControlPlaneContext = {
          config,
          plan,
          pki,
          binaries,
          dir,
          logger,
          signal,
          onStarted: async (record) => {
            state.processes.push(record);
            await saveState(state);
          },
        };
        logger.step(
          `starting etcd ${binaries.versions.etcd} and kube-apiserver ${binaries.versions.kubernetes}`,
        );
        await startEtcd(ctx);
        const apiserver = await startApiserver(ctx);
        await waitHealthy(ctx, apiserver, healthUrls.apiserver(plan));

        logger.step("starting kube-controller-manager and kube-scheduler");
        const [kcm, scheduler] = [await startControllerManager(ctx), await startScheduler(ctx)];
        await Promise.all([
          waitHealthy(ctx, kcm, healthUrls.controllerManager(plan)),
          waitHealthy(ctx, scheduler, healthUrls.scheduler(plan)),
        ]);

        await applyBootstrapObjects(state.kubeconfig);
        state.nodes = planNodes(config, plan, dir);
        const nodeCtx: NodeContext = {
          config,
          plan,
          pki,
          binaries,
          server: state.server,
          logger,
          signal,
          onStarted: ctx.onStarted,
        };
        await attachNamespace(plan, plan.clientNs, "ext", plan.clientIP, stack, logger);
        logger.step(
          `starting ${state.nodes.length} node(s): node agent, then kube-proxy (${config.cluster.proxyMode} mode)`,
        );
        const agents: ProcessRecord[] = [];
        for (const node of state.nodes) {
          await prepareNode(nodeCtx, node, stack);
          agents.push(await startAgent(nodeCtx, node));
        }
        await saveState(state);
        // kube-proxy waits for its Node object, so the agents register first.
        await Promise.all(
          state.nodes.map((node, i) =>
            waitNodeReady(nodeCtx, node, agents[i] as ProcessRecord, state.kubeconfig),
          ),
        );
        await waitRoutes(nodeCtx, state.nodes, state.kubeconfig);
        const proxies: ProcessRecord[] = [];
        for (const [i, node] of state.nodes.entries())
          proxies.push(await startKubeProxy(nodeCtx, node, kubeProxies[i] as string));
        await Promise.all(
          state.nodes.map((node, i) => waitKubeProxyHealthy(nodeCtx, node, proxies[i] as ProcessRecord)),
        );

        logger.step(`starting MetalLB ${binaries.versions.metallb} (L2, pool ${plan.loadBalancerRange})`);
        await installMetallb({
          ...nodeCtx,
          dir,
          nodes: state.nodes,
          kubeconfig: state.kubeconfig,
          controlPlaneNs: plan.controlPlaneNs,
        });

        state.phase = "ready";
        await saveState(state);
        logger.step(
          `cluster ${config.clusterName} is ready: kubectl --kubeconfig ${state.kubeconfig} get nodes`,
        );
        return new LocalCluster(config, state, logger);
      },
      { logger, ...(options.signal && { signal: options.signal }) },
    );
  },

  async attach(config, logger) {
    const state = await loadState(config.stateDir, config.clusterName);
    if (state?.phase !== "ready") return undefined;
    return new LocalCluster(config, state, logger);
  },

  async gc(config, options: GcOptions) {
    const { logger } = options;
    const removed: string[] = [];
    const names = new Set<string>(await listStates(config.stateDir));
    // Leftovers with no state file at all: namespaces and host links carry the cluster name.
    for (const ns of await listNamespaces()) {
      const m = new RegExp(`^${NAME_PREFIX}([a-z][a-z0-9]{0,7})-`).exec(ns);
      if (m?.[1]) names.add(m[1]);
    }
    for (const link of await listHostLinks(NAME_PREFIX)) names.add(link.slice(NAME_PREFIX.length));
    for (const name of names) {
      if (options.only !== undefined && name !== options.only) continue;
      const owner = await ownerElsewhere(config, name);
      if (owner) {
        logger.debug(`leaving cluster ${name} alone: it belongs to state directory ${owner}`);
        continue;
      }
      const verdict = await leftoverVerdict(config, name);
      if (verdict === "live" && !options.all) {
        logger.info(`keeping cluster ${name}: it is running (tph down --name ${name} removes it)`);
        continue;
      }
      const what = await teardownCluster(config.stateDir, name, logger);
      removed.push(`cluster ${name} (${verdict}): ${what.join(", ") || "state files"}`);
    }
    return removed;
  },
};

/**
 * The state directory of another tph that owns cluster `name`, if its host link says so and that
 * directory still holds the cluster's state: then it is not this state directory's garbage (e2e runs
 * must never tear down a user's own cluster of the same machine).
 */
async function ownerElsewhere(config: HarnessConfig, name: string): Promise<string | undefined> {
  if (await loadState(config.stateDir, name)) return undefined;
  const alias = await hostLinkAlias(`${NAME_PREFIX}${name}`);
  if (!alias.startsWith(OWNER_ALIAS_PREFIX)) return undefined;
  const owner = alias.slice(OWNER_ALIAS_PREFIX.length);
  if (owner === config.stateDir) return undefined;
  return (await loadState(owner, name)) ? owner : undefined;
}

/** live: bring-up finished and the apiserver still runs; otherwise why it is garbage. */
async function leftoverVerdict(
  config: HarnessConfig,
  name: string,
): Promise<"live" | "creating, owner gone" | "dead" | "no state"> {
  const state = await loadState(config.stateDir, name);
  if (!state) return "no state";
  if (state.phase === "creating") return pidAlive(state.ownerPid) ? "live" : "creating, owner gone";
  const apiserver = state.processes.find((p) => p.name === "kube-apiserver");
  return apiserver && (await isOurs(apiserver.pid, `${state.dir}/`)) ? "live" : "dead";
}

async function refuseExisting(config: HarnessConfig): Promise<void> {
  const name = config.clusterName;
  const state = await loadState(config.stateDir, name);
  const namespaces = (await listNamespaces()).filter((ns) => ns.startsWith(`${NAME_PREFIX}${name}-`));
  if (state || namespaces.length > 0) {
    throw new TphError(
      `a local cluster named "${name}" already exists${state ? ` (${state.phase})` : " (leftover namespaces)"}`,
      {
        hint: `remove it with \`tph down --name ${name}\` (or \`tph gc\` for leftovers), or pick another --name`,
      },
    );
  }
}

class LocalCluster implements StartedCluster {
  readonly provider = "local";
  readonly name: string;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly versions: Record<string, string>;
  readonly network: ExternalNetwork;
  readonly nodeOps: NodeOperations;
  readonly probeCommand = [process.execPath, PROBE_PATH];
  readonly #config: HarnessConfig;
  readonly #state: LocalClusterState;
  readonly #logger: Logger;

  constructor(config: HarnessConfig, state: LocalClusterState, logger: Logger) {
    this.#config = config;
    this.#state = state;
    this.#logger = logger;
    this.name = state.name;
    this.kubeconfigPath = state.kubeconfig;
    this.server = state.server;
    this.versions = { ...state.versions, proxyMode: state.proxyMode };
    this.network = {
      subnet: state.network.subnet,
      loadBalancerRange: state.network.loadBalancerRange,
      clientIP: state.network.clientIP,
      externalIPs: externalIPsBelow(state.network.loadBalancerRange),
    };
    this.nodeOps = new LocalNodeOperations(config, state, logger);
  }

  /** Built (or found cached) the first time a suite asks: about 2 minutes cold for a release not yet built. */
  async kubeProxyRelease(version?: string): Promise<{ version: string; ref: string }> {
    const v = version ?? this.#config.cluster.kubeProxyVersion ?? (this.versions.kubernetes as string);
    const built = await ensureKubeProxy(this.#config, v, createLogger("normal"));
    return { version: v, ref: built.path };
  }

  async nodes(): Promise<ClusterNode[]> {
    return this.#state.nodes.map((n) => ({
      name: n.name,
      role: "worker",
      internalIP: n.ip,
      ...(n.zone && { zone: n.zone }),
    }));
  }

  async runExternal(
    argv: string[],
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    return run(argv, { netns: this.#state.network.clientNs, allowFailure: true, ...options });
  }

  async routeExternalIP(ip: string, node: string): Promise<void> {
    if (!this.network.externalIPs?.includes(ip))
      throw new TphError(
        `${ip} is not one of the cluster's external IPs (${this.network.externalIPs?.join(", ")})`,
      );
    const target = this.#state.nodes.find((n) => n.name === node);
    if (!target) throw new TphError(`no node named ${node} in cluster ${this.name}`);
    await run(["ip", "route", "replace", `${ip}/32`, "via", target.ip], {
      netns: this.#state.network.clientNs,
    });
  }

  async icmpRateLimited(node: string): Promise<number> {
    const target = this.#state.nodes.find((n) => n.name === node);
    if (!target) throw new TphError(`no node named ${node} in cluster ${this.name}`);
    // /proc/net follows the reader's network namespace.
    const { stdout } = await run(["cat", "/proc/net/snmp"], { netns: target.ns });
    return icmpRateLimitedCount(stdout);
  }

  async flushNeighbors(): Promise<void> {
    for (const ns of [this.#state.network.clientNs, ...this.#state.nodes.map((n) => n.ns)])
      await run(["ip", "neigh", "flush", "dev", "eth0"], { netns: ns });
  }

  async l2Receiver(ip: string): Promise<string | undefined> {
    const neigh = await run(["ip", "-j", "neigh", "show", ip, "dev", "eth0"], {
      netns: this.#state.network.clientNs,
    });
    const entry = (JSON.parse(neigh.stdout || "[]") as { lladdr?: string; state?: string[] }[])[0];
    if (!entry?.lladdr || entry.state?.some((s) => s === "FAILED" || s === "INCOMPLETE")) return undefined;
    for (const node of this.#state.nodes) {
      const link = await run(["ip", "-j", "link", "show", "eth0"], { netns: node.ns, allowFailure: true });
      const mac = (JSON.parse(link.stdout || "[]") as { address?: string }[])[0]?.address;
      if (mac === entry.lladdr) return node.name;
    }
    return undefined;
  }

  async probeArgv(source: ProbeSource): Promise<string[]> {
    const probe = [process.execPath, PROBE_PATH];
    if (source.kind === "external") return ["ip", "netns", "exec", this.#state.network.clientNs, ...probe];
    const { core } = kubeClients(this.kubeconfigPath);
    const p = await core.readNamespacedPod({ namespace: source.namespace, name: source.name });
    const node = this.#state.nodes.find((n) => n.name === p.spec?.nodeName);
    if (!node || !p.metadata?.uid)
      throw new TphError(`pod ${source.namespace}/${source.name} is not running on a node of ${this.name}`);
    // The pod's network namespace; its filesystem is the host's, so this Node and probe.ts run as they are.
    const netns = p.spec?.hostNetwork ? node.ns : podNamespace(node, p.metadata.uid);
    return ["ip", "netns", "exec", netns, ...probe];
  }

  async status(): Promise<ComponentStatus[]> {
    const marker = `${this.#state.dir}/`;
    // The latest record per component: a restarted kube-proxy appends a new one.
    const latest = new Map(this.#state.processes.map((p) => [p.name, p]));
    return Promise.all(
      [...latest.values()].map(async (p) => {
        const node = p.name.split("/")[1];
        const stopped = node !== undefined && this.#state.stoppedNodes.includes(node);
        const version = p.name.startsWith("kube-proxy/") ? await binaryVersion(p.argv[0]) : undefined;
        return {
          component: p.name,
          where: p.netns,
          running: stopped || (await isOurs(p.pid, marker)),
          detail: `${version ? `${version}, ` : ""}${stopped ? "node stopped by tph" : `pid ${p.pid}, log ${p.log}`}`,
        };
      }),
    );
  }

  async exportLogs(dir: string): Promise<string[]> {
    await mkdir(dir, { recursive: true });
    await cp(join(this.#state.dir, "logs"), dir, { recursive: true });
    for (const node of this.#state.nodes) {
      await cp(node.dir, join(dir, node.name), {
        recursive: true,
        filter: (src) => !src.endsWith(".kubeconfig") && !src.endsWith(".key"),
      });
    }
    return (await readdir(dir)).map((f) => join(dir, f));
  }

  async delete(): Promise<void> {
    this.#logger.step(`deleting cluster ${this.name}`);
    await teardownCluster(this.#config.stateDir, this.name, this.#logger);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.delete();
  }
}

/** Node operations on a local cluster; each updates state.json so other `tph` invocations agree. */
class LocalNodeOperations implements NodeOperations {
  readonly #config: HarnessConfig;
  readonly #state: LocalClusterState;
  readonly #logger: Logger;

  constructor(config: HarnessConfig, state: LocalClusterState, logger: Logger) {
    this.#config = config;
    this.#state = state;
    this.#logger = logger;
  }

  async stop(name: string): Promise<void> {
    const node = this.#node(name);
    this.#logger.step(`stopping node ${name}`);
    await stopNode(node, this.#state.network);
    if (!this.#state.stoppedNodes.includes(name)) this.#state.stoppedNodes.push(name);
    await saveState(this.#state);
  }

  async start(name: string): Promise<void> {
    const node = this.#node(name);
    this.#logger.step(`starting node ${name}`);
    await bringLinkUp(node, this.#state.network);
    const ctx = await this.#context();
    const agent = await startAgent(ctx, node);
    await waitNodeReady(ctx, node, agent, this.#state.kubeconfig);
    await startSpeaker(ctx, this.#lastBinary(`speaker/${name}`), node, join(this.#state.dir, "metallb"));
    await waitKubeProxyHealthy(
      ctx,
      node,
      await startKubeProxy(ctx, node, this.#lastBinary(`kube-proxy/${name}`)),
    );
    this.#state.stoppedNodes = this.#state.stoppedNodes.filter((n) => n !== name);
    await saveState(this.#state);
  }

  /** The agent is stopped (SIGSTOP), not killed: a new one would not know the pods the old one runs. */
  async stopKubelet(name: string): Promise<void> {
    this.#logger.step(`stopping the agent (kubelet) of ${name}`);
    process.kill(this.#agent(name).pid, "SIGSTOP");
  }

  async startKubelet(name: string): Promise<void> {
    this.#logger.step(`continuing the agent (kubelet) of ${name}`);
    process.kill(this.#agent(name).pid, "SIGCONT");
  }

  #agent(name: string): ProcessRecord {
    this.#node(name);
    const agent = this.#state.processes.filter((p) => p.name === `agent/${name}`).at(-1);
    if (!agent || !pidAlive(agent.pid))
      throw new TphError(`the agent of node ${name} is not running`, {
        hint: "a stopped node has no agent: start the node first",
      });
    return agent;
  }

  async restartKubeProxy(name: string): Promise<void> {
    await this.replaceKubeProxy(name, this.#lastBinary(`kube-proxy/${name}`));
  }

  async replaceKubeProxy(name: string, binary: string): Promise<void> {
    const node = this.#node(name);
    this.#logger.step(`restarting kube-proxy on ${name} (${binary})`);
    const current = this.#state.processes.filter((p) => p.name === `kube-proxy/${name}`).at(-1);
    if (current) await stopProcess(current.pid, `${this.#state.dir}/`, 5_000);
    const ctx = await this.#context();
    await waitKubeProxyHealthy(ctx, node, await startKubeProxy(ctx, node, binary));
  }

  /** A program that exits at once, as a kube-proxy that cannot start does. */
  readonly brokenKubeProxy = "/bin/false";

  async kubeProxyRef(name: string): Promise<string> {
    this.#node(name);
    return this.#lastBinary(`kube-proxy/${name}`);
  }

  /** The binary a component last ran with (so a kube-proxy version swap sticks across restarts). */
  #lastBinary(component: string): string {
    const last = this.#state.processes.filter((p) => p.name === component).at(-1)?.argv[0];
    if (!last) throw new TphError(`${component} never ran`);
    return last;
  }

  #node(name: string): LocalNode {
    const node = this.#state.nodes.find((n) => n.name === name);
    if (!node) {
      throw new TphError(`no node named ${name} in cluster ${this.#state.name}`, {
        hint: `nodes: ${this.#state.nodes.map((n) => n.name).join(", ")}`,
      });
    }
    return node;
  }

  async #context(): Promise<NodeProcessContext> {
    return {
      config: this.#config,
      logger: this.#logger,
      onStarted: async (record) => {
        this.#state.processes.push(record);
        await saveState(this.#state);
      },
    };
  }
}

/** What a Kubernetes binary says it is (`kube-proxy --version` prints "Kubernetes v1.37.2"). */
async function binaryVersion(binary: string | undefined): Promise<string | undefined> {
  if (!binary) return undefined;
  const r = await run([binary, "--version"], { allowFailure: true, timeoutMs: 10_000 }).catch(
    () => undefined,
  );
  return r?.exitCode === 0 ? r.stdout.trim().replace(/^Kubernetes /, "kube-proxy ") : undefined;
}

/** The 8 addresses just below MetalLB's range: free on the cluster network, for spec.externalIPs. */
function externalIPsBelow(loadBalancerRange: string): string[] {
  const first = parseIp(loadBalancerRange.split("-")[0] as string);
  return Array.from({ length: 8 }, (_, i) => formatIp(first - 8 + i));
}
