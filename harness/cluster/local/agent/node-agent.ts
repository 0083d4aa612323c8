import { writeFile } from "node:fs/promises";
import {
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Node,
  type V1Pod,
  Watch,
} from "@kubernetes/client-node";
import { run } from "../../../core/exec.ts";
import type { Logger } from "../../../core/logger.ts";
import { sleep, waitFor } from "../../../core/wait.ts";
import { apiErrorMessage } from "../../../k8s/client.ts";
import type { AgentConfig } from "./config.ts";
import { PodWorker } from "./pod-worker.ts";
import { type PodNetwork, podNetwork, releaseOrphans } from "./sandbox.ts";

/**
 * The kubelet stand-in of one node. It registers the Node (with its InternalIP, before kube-proxy
 * starts, since kube-proxy waits for it), keeps the Lease and the Ready condition fresh, keeps routes
 * to the other nodes' pod CIDRs, and runs a PodWorker for each Pod bound to the node.
 */
export class NodeAgent {
  readonly #config: AgentConfig;
  readonly #logger: Logger;
  readonly #kubeconfig: KubeConfig;
  readonly #core: CoreV1Api;
  readonly #coordination: CoordinationV1Api;
  readonly #cni: CoreV1Api;
  readonly #workers = new Map<string, PodWorker>();
  readonly #stop = new AbortController();
  #network: PodNetwork | undefined;
  #routes = new Map<string, string>();

  constructor(config: AgentConfig, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
    this.#kubeconfig = new KubeConfig();
    this.#kubeconfig.loadFromFile(config.kubeconfig);
    this.#core = this.#kubeconfig.makeApiClient(CoreV1Api);
    this.#coordination = this.#kubeconfig.makeApiClient(CoordinationV1Api);
    const cni = new KubeConfig();
    cni.loadFromFile(config.cniKubeconfig);
    this.#cni = cni.makeApiClient(CoreV1Api);
  }

  async run(): Promise<void> {
    const signal = this.#stop.signal;
    await this.#register();
    const podCIDR = await waitFor(
      async () => {
        const node = await this.#core.readNode({ name: this.#config.nodeName });
        return node.spec?.podCIDR
          ? { done: true, value: node.spec.podCIDR }
          : { done: false, state: "no podCIDR yet" };
      },
      {
        description: `a podCIDR for node ${this.#config.nodeName}`,
        timeoutMs: 60_000,
        intervalMs: 200,
        signal,
      },
    );
    const network = await podNetwork(this.#config.cni.binDir, this.#config.cni.dir, podCIDR);
    const released = await releaseOrphans(network);
    if (released.length > 0)
      this.#logger.info(
        `released the addresses of ${released.length} pods whose namespaces are gone (CNI DEL)`,
      );
    this.#network = network;
    // The node routes between its pods, the bridge and other nodes (this namespace only).
    await writeFile("/proc/sys/net/ipv4/ip_forward", "1");
    // The control plane answers pods (webhooks, the kubernetes Service) through a route to each pod CIDR.
    await run([
      "ip",
      "-n",
      this.#config.controlPlaneNs,
      "route",
      "replace",
      podCIDR,
      "via",
      this.#config.nodeIP,
    ]);
    this.#logger.info(`node ${this.#config.nodeName} registered (${this.#config.nodeIP}, pods ${podCIDR})`);
    void this.#heartbeat();
    void this.#syncRoutes();
    await this.#watchPods();
  }

  async shutdown(): Promise<void> {
    this.#stop.abort();
  }

  // ---- node ----

  async #register(): Promise<void> {
    const { nodeName, labels } = this.#config;
    const body: V1Node = {
      metadata: {
        name: nodeName,
        labels: {
          "kubernetes.io/hostname": nodeName,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
          ...labels,
        },
      },
      status: this.#nodeStatus(),
    };
    try {
      await this.#core.createNode({ body });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      // Re-registration after a restart: the kubelet re-asserts its status rather than recreating the Node.
      await this.#patchNodeStatus();
    }
  }

  #nodeStatus(): V1Node["status"] {
    const now = new Date();
    const c = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    return {
      conditions: [
        c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        c("Ready", "True", "KubeletReady", "tph node agent is posting ready status"),
      ],
      addresses: [
        { type: "InternalIP", address: this.#config.nodeIP },
        { type: "Hostname", address: this.#config.nodeName },
      ],
      capacity: { cpu: "8", memory: "16Gi", pods: "110", "ephemeral-storage": "100Gi" },
      allocatable: { cpu: "8", memory: "16Gi", pods: "110", "ephemeral-storage": "100Gi" },
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        architecture: "amd64",
        bootID: "",
        containerRuntimeVersion: "tph://local",
        kernelVersion: "",
        kubeProxyVersion: "",
        kubeletVersion: this.#config.kubeletVersion,
        machineID: "",
        operatingSystem: "linux",
        osImage: "traffic-policy-harness local node",
        systemUUID: "",
      },
    };
  }

  async #patchNodeStatus(): Promise<void> {
    await this.#core.patchNodeStatus(
      { name: this.#config.nodeName, body: { status: { conditions: this.#nodeStatus()?.conditions } } },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
  }

  /** Renews the Lease (what the node lifecycle controller watches) and re-posts Ready. */
  async #heartbeat(): Promise<void> {
    const { nodeName, leaseDurationSeconds, heartbeatSeconds } = this.#config;
    const namespace = "kube-node-lease";
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        const node = await this.#core.readNode({ name: nodeName });
        const spec = {
          holderIdentity: nodeName,
          leaseDurationSeconds,
          // Lease times are MicroTime: RFC 3339 with exactly six fractional digits.
          renewTime: new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z") as unknown as undefined,
        };
        try {
          const lease = await this.#coordination.readNamespacedLease({ name: nodeName, namespace });
          lease.spec = { ...lease.spec, ...spec };
          await this.#coordination.replaceNamespacedLease({ name: nodeName, namespace, body: lease });
        } catch (err) {
          if ((err as { code?: number }).code !== 404) throw err;
          await this.#coordination.createNamespacedLease({
            namespace,
            body: {
              metadata: {
                name: nodeName,
                ownerReferences: [
                  { apiVersion: "v1", kind: "Node", name: nodeName, uid: node.metadata?.uid ?? "" },
                ],
              },
              spec,
            },
          });
        }
        await this.#patchNodeStatus();
      } catch (err) {
        this.#logger.warn(`heartbeat failed: ${apiErrorMessage(err)}`);
      }
      await sleep(heartbeatSeconds * 1000, signal).catch(() => undefined);
    }
  }

  /** Routes to every other node's pod CIDR via that node's IP (what a simple routed CNI does). */
  async #syncRoutes(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        const nodes = await this.#cni.listNode();
        for (const node of nodes.items) {
          const name = node.metadata?.name;
          const cidr = node.spec?.podCIDR;
          const ip = node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
          if (!name || !cidr || !ip || name === this.#config.nodeName || this.#routes.get(cidr) === ip)
            continue;
          await run(["ip", "route", "replace", cidr, "via", ip]);
          this.#routes.set(cidr, ip);
        }
      } catch (err) {
        this.#logger.warn(`route sync failed: ${apiErrorMessage(err)}`);
      }
      await sleep(1_000, signal).catch(() => undefined);
    }
  }

  // ---- pods ----

  /** List, then watch from the list's resourceVersion; on any watch end, list again (relist = resync). */
  async #watchPods(): Promise<void> {
    const fieldSelector = `spec.nodeName=${this.#config.nodeName}`;
    const signal = this.#stop.signal;
    const watch = new Watch(this.#kubeconfig);
    while (!signal.aborted) {
      try {
        const list = await this.#core.listPodForAllNamespaces({ fieldSelector });
        const seen = new Set<string>();
        for (const pod of list.items) {
          seen.add(pod.metadata?.uid ?? "");
          this.#onPod(pod);
        }
        for (const [uid, worker] of this.#workers) if (!seen.has(uid)) this.#onPodGone(uid, worker);
        await new Promise<void>((resolve) => {
          void watch
            .watch(
              "/api/v1/pods",
              { fieldSelector, resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
              (type: string, pod: V1Pod) => {
                if (type === "DELETED") {
                  const uid = pod.metadata?.uid ?? "";
                  const worker = this.#workers.get(uid);
                  if (worker) this.#onPodGone(uid, worker);
                } else if (type === "ADDED" || type === "MODIFIED") {
                  this.#onPod(pod);
                }
              },
              () => resolve(),
            )
            .then((controller) => signal.addEventListener("abort", () => controller.abort(), { once: true }))
            .catch(() => resolve());
        });
      } catch (err) {
        this.#logger.warn(`pod watch: ${apiErrorMessage(err)}`);
        await sleep(1_000, signal).catch(() => undefined);
      }
    }
  }

  #onPod(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (!uid || !this.#network) return;
    const existing = this.#workers.get(uid);
    if (existing) {
      existing.update(pod);
      return;
    }
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    const worker = new PodWorker(pod, {
      config: this.#config,
      core: this.#core,
      network: this.#network,
      logger: this.#logger,
    });
    this.#workers.set(uid, worker);
    worker
      .start()
      .catch((err) => this.#logger.error(`pod ${worker.name}: ${err instanceof Error ? err.stack : err}`));
  }

  #onPodGone(uid: string, worker: PodWorker): void {
    this.#workers.delete(uid);
    worker.stop().catch((err) => this.#logger.error(`pod ${worker.name}: stop: ${String(err)}`));
  }
}
