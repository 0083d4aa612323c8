import { mkdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, VersionApi } from "@kubernetes/client-node";
import { type HarnessConfig, pinnedSettings } from "../../core/config.ts";
import { TphError, UsageError } from "../../core/errors.ts";
import { type ExecResult, run } from "../../core/exec.ts";
import { pidAlive } from "../../core/pid.ts";
import { apiErrorMessage, type KubeClients, kubeClients } from "../../k8s/client.ts";
import { ZONE_LABEL } from "../../k8s/topology.ts";
import { METALLB_NAMESPACE } from "../../metallb/manifests.ts";
import { PROBE_PATH } from "../../traffic/run-probe.ts";
import {
  type Capabilities,
  type ClusterNode,
  type ClusterProvider,
  type ComponentStatus,
  type ExternalNetwork,
  HOLDER_ANNOTATION,
  MANAGED_LABEL,
  type ProbeSource,
  type StartedCluster,
} from "../provider.ts";

/**
 * A cluster tph did not create, reached through a kubeconfig: a staging cluster before an upgrade, or a
 * cluster from `tph up`. tph never creates, deletes or reconfigures it. What a run makes lives in
 * namespaces of its own, labelled MANAGED_LABEL and annotated (HOLDER_ANNOTATION) with the machine and
 * process that made them; the run deletes them, and `tph gc --provider kubeconfig` deletes those of a run that died.
 * Needs no root, no Docker, no Go and no kubectl: traffic from pods goes through the apiserver's pod
 * proxy (probe clients' control servers), and the external client is this machine, which must reach
 * the nodes' and LoadBalancer addresses.
 */

export const kubeconfigProvider: ClusterProvider = {
  name: "kubeconfig",

  capabilities: (config) => ({
    createClusters: false,
    // Shared state on someone else's cluster: only when told.
    nodeDisruption: config.target.allowDisruption,
    nodePower: false,
    kubeProxyReleases: false,
    // Known once attached (MetalLB installed?); `detected` narrows it.
    l2LoadBalancer: true,
    externalClient: true,
    externalIPs: false,
  }),

  async preflight(config) {
    // A cluster tph did not create is tested as it is: asking for other releases is a mistake.
    const asked = pinnedSettings(config.cluster).map((s) => s.flag);
    if (asked.length > 0)
      throw new UsageError(
        `${asked.join(", ")}: the kubeconfig provider tests the cluster as it is and changes none of its releases or configuration`,
        "drop them, or run them on a cluster tph creates (--provider local or kind)",
      );
    const kc = loadKubeconfig(config);
    const k8s = clientsOf(kc);
    try {
      await k8s.version.getCode();
    } catch (err) {
      throw new TphError(`cannot reach the cluster of ${config.target.kubeconfig}: ${apiErrorMessage(err)}`, {
        hint: "check the kubeconfig and its context (--kubeconfig, --context), and that this machine reaches the apiserver",
      });
    }
  },

  async prepareRun(config, { logger }) {
    for (const r of await this.gc(config, { logger }))
      logger.warn(`removed a leftover of an earlier run: ${r}`);
  },

  async up(config) {
    throw new TphError("the kubeconfig provider attaches to an existing cluster; it never creates one", {
      hint: `run the suites with tph run --provider kubeconfig --kubeconfig ${config.target.kubeconfig}`,
    });
  },

  async attach(config, logger) {
    const kc = loadKubeconfig(config);
    const k8s = clientsOf(kc);
    // A kubeconfig whose current context is the chosen one: suites and helpers load files, not contexts.
    const dir = join(config.stateDir, "kubeconfig", config.clusterName);
    await mkdir(dir, { recursive: true });
    const path = join(dir, "kubeconfig");
    await writeFile(path, kc.exportConfig(), { mode: 0o600 });
    const version = (await k8s.version.getCode()).gitVersion;
    const nodes = await workerNodes(k8s);
    if (nodes.length === 0) throw new TphError("the cluster has no schedulable worker nodes");
    const clientIP = config.target.clientIP ?? (await sourceAddressTowards(nodes[0]?.internalIP as string));
    const range = await metallbRange(k8s);
    const proxyMode = await kubeProxyMode(k8s);
    logger.debug(
      `attached to ${kc.getCurrentCluster()?.server}: ${nodes.length} nodes, client ${clientIP}, MetalLB ${range ?? "absent"}`,
    );
    return new KubeconfigCluster(
      config,
      path,
      kc.getCurrentCluster()?.server ?? "",
      version,
      clientIP,
      range,
      proxyMode,
    );
  },

  /** Deletes the namespaces of runs that died: made on this machine by a process that is gone (all with --all). */
  async gc(config, options) {
    const k8s = clientsOf(loadKubeconfig(config));
    const removed: string[] = [];
    const list = await k8s.core.listNamespace({ labelSelector: `${MANAGED_LABEL}=true` });
    for (const ns of list.items) {
      const name = ns.metadata?.name as string;
      if (ns.metadata?.deletionTimestamp) continue;
      const [host, pid] = (ns.metadata?.annotations?.[HOLDER_ANNOTATION] ?? "").split("/");
      const dead = host === hostname() && !pidAlive(Number(pid));
      if (!options.all && !dead) continue;
      await k8s.core.deleteNamespace({ name });
      removed.push(`namespace ${name} (made by ${host}/${pid})`);
    }
    return removed;
  },
};

function loadKubeconfig(config: HarnessConfig): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(config.target.kubeconfig);
  } catch (err) {
    throw new TphError(
      `cannot read the kubeconfig ${config.target.kubeconfig}: ${err instanceof Error ? err.message : err}`,
      {
        hint: "give one with --kubeconfig FILE (or TPH_KUBECONFIG)",
      },
    );
  }
  if (config.target.context) {
    if (!kc.getContexts().some((c) => c.name === config.target.context))
      throw new TphError(`the kubeconfig has no context ${config.target.context}`, {
        hint: `contexts: ${kc
          .getContexts()
          .map((c) => c.name)
          .join(", ")}`,
      });
    kc.setCurrentContext(config.target.context);
  }
  return kc;
}

function clientsOf(kc: KubeConfig): KubeClients {
  return {
    kubeconfig: kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    version: kc.makeApiClient(VersionApi),
  };
}

/** Nodes suites may place workloads on: not control plane, not unschedulable. */
async function workerNodes(k8s: KubeClients): Promise<ClusterNode[]> {
  return (await k8s.core.listNode()).items
    .filter((n) => {
      const labels = n.metadata?.labels ?? {};
      return (
        !("node-role.kubernetes.io/control-plane" in labels) && !("node-role.kubernetes.io/master" in labels)
      );
    })
    .map((n) => {
      const zone = n.metadata?.labels?.[ZONE_LABEL];
      return {
        name: n.metadata?.name as string,
        role: "worker" as const,
        internalIP: n.status?.addresses?.find((a) => a.type === "InternalIP")?.address ?? "",
        ...(zone && { zone }),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
}

/** The address this machine sends from towards `ip` (`ip route get`): what a preserving path must show. */
async function sourceAddressTowards(ip: string): Promise<string> {
  const r = await run(["ip", "-4", "route", "get", ip], { allowFailure: true });
  const src = /\bsrc (\S+)/.exec(r.stdout)?.[1];
  if (r.exitCode !== 0 || !src)
    throw new TphError(
      `cannot tell this machine's address towards the node ${ip}: ${r.stderr.trim() || r.stdout.trim()}`,
      {
        hint: "give it with --client-ip",
      },
    );
  return src;
}

/** MetalLB's address pools as one range text ("a-b" or CIDRs, comma-separated), or undefined without MetalLB. */
async function metallbRange(k8s: KubeClients): Promise<string | undefined> {
  try {
    const api = k8s.kubeconfig.makeApiClient(CustomObjectsApi);
    const pools = (await api.listNamespacedCustomObject({
      group: "metallb.io",
      version: "v1beta1",
      namespace: METALLB_NAMESPACE,
      plural: "ipaddresspools",
    })) as { items: { spec?: { addresses?: string[] } }[] };
    const addresses = pools.items.flatMap((p) => p.spec?.addresses ?? []);
    return addresses.length > 0 ? addresses.join(",") : undefined;
  } catch {
    return undefined;
  }
}

/**
 * kube-proxy's mode as kubeadm-made clusters publish it (ConfigMap kube-system/kube-proxy, config.conf;
 * an empty mode is iptables on Linux). Undefined where there is no such ConfigMap.
 */
async function kubeProxyMode(k8s: KubeClients): Promise<string | undefined> {
  try {
    const cm = await k8s.core.readNamespacedConfigMap({ namespace: "kube-system", name: "kube-proxy" });
    const conf = cm.data?.["config.conf"];
    return conf === undefined ? undefined : modeOfKubeProxyConf(conf);
  } catch {
    return undefined;
  }
}

/** The mode in a KubeProxyConfiguration's YAML; unset or empty is iptables (kube-proxy's default on Linux). */
export function modeOfKubeProxyConf(conf: string): string {
  return /^mode:\s*["']?([a-z]*)["']?\s*$/m.exec(conf)?.[1] || "iptables";
}

class KubeconfigCluster implements StartedCluster {
  readonly provider = "kubeconfig";
  readonly name: string;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly versions: Record<string, string>;
  readonly network: ExternalNetwork;
  readonly probeCommand = [process.execPath, PROBE_PATH];
  readonly podTraffic = "api" as const;
  readonly detected: Partial<Capabilities>;

  constructor(
    config: HarnessConfig,
    kubeconfigPath: string,
    server: string,
    version: string,
    clientIP: string,
    range: string | undefined,
    proxyMode: string | undefined,
  ) {
    this.name = config.clusterName;
    this.kubeconfigPath = kubeconfigPath;
    this.server = server;
    this.versions = { kubernetes: version, ...(proxyMode && { proxyMode }) };
    this.network = { subnet: "", loadBalancerRange: range ?? "", clientIP };
    this.detected = { l2LoadBalancer: range !== undefined };
  }

  async nodes(): Promise<ClusterNode[]> {
    return workerNodes(kubeClients(this.kubeconfigPath));
  }

  async probeArgv(source: ProbeSource): Promise<string[]> {
    if (source.kind === "external") return [...this.probeCommand];
    throw new TphError(
      `provider kubeconfig sends from pods through the API only (pods/proxy), not by exec (pod ${source.namespace}/${source.name})`,
    );
  }

  async runExternal(
    argv: string[],
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    return run(argv, { allowFailure: true, ...options });
  }

  async status(): Promise<ComponentStatus[]> {
    return (await kubeClients(this.kubeconfigPath).core.listNode()).items.map((n) => {
      const ready = n.status?.conditions?.find((c) => c.type === "Ready");
      return {
        component: `node/${n.metadata?.name}`,
        where: n.status?.addresses?.find((a) => a.type === "InternalIP")?.address ?? "",
        running: ready?.status === "True",
        ...(ready?.message && { detail: ready.message }),
      };
    });
  }

  /** What the API shows: the nodes and the events of the run's namespaces (no component logs here). */
  async exportLogs(dir: string): Promise<string[]> {
    const k8s = kubeClients(this.kubeconfigPath);
    await mkdir(dir, { recursive: true });
    const nodes = join(dir, "nodes.json");
    await writeFile(nodes, JSON.stringify((await k8s.core.listNode()).items, null, 1));
    const events = join(dir, "events.json");
    const mine = await k8s.core.listNamespace({ labelSelector: `${MANAGED_LABEL}=true` });
    const all = [];
    for (const ns of mine.items)
      all.push(...(await k8s.core.listNamespacedEvent({ namespace: ns.metadata?.name as string })).items);
    await writeFile(events, JSON.stringify(all, null, 1));
    return [nodes, events];
  }

  /** Never deletes the cluster: the run's namespaces are removed by whoever made them, or by gc. */
  async delete(): Promise<void> {}

  async [Symbol.asyncDispose](): Promise<void> {}
}
