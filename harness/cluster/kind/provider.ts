import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { withCleanup } from "../../core/cleanup.ts";
import { cniText, type HarnessConfig, NAME_PREFIX, pinnedSettings } from "../../core/config.ts";
import { TphError, UsageError } from "../../core/errors.ts";
import { CommandError, type ExecResult, run, which } from "../../core/exec.ts";
import type { Logger } from "../../core/logger.ts";
import { pidAlive } from "../../core/pid.ts";
import { waitFor } from "../../core/wait.ts";
import { kubeClients } from "../../k8s/client.ts";
import { applyWithRetry, kindPoolRange } from "../../metallb/kind-pool.ts";
import { applyObjects, l2Pool, loadManifest, METALLB_NAMESPACE } from "../../metallb/manifests.ts";
import { PROBE_IMAGE, PROBE_IN_POD } from "../../traffic/clients.ts";
import type {
  ClusterNode,
  ClusterProvider,
  ComponentStatus,
  ExternalNetwork,
  NodeOperations,
  ProbeSource,
  StartedCluster,
} from "../provider.ts";
import { type CniInstall, cniInstall, cniManifest, imagesOf } from "./cni.ts";
import { kindConfigYaml } from "./config.ts";
import {
  type ExternalClient,
  type ExternalClientFactory,
  execInClient,
  PROBE_IN_CLIENT,
  testcontainersClientFactory,
} from "./external-client.ts";

/**
 * The kind provider: `kind create cluster` from a generated config, MetalLB from the pinned manifest with
 * a pool at the top of the `kind` docker network, an external client container on that network. Every
 * external call is the kind or docker CLI with argv arrays (so tests can put fakes on PATH), except the
 * client container, which testcontainers starts (and tests replace through `clientFactory`).
 */
export const LABEL = "tph.cluster";
/** Settings kind cannot make a cluster with (pinnedSettings' flags): the node image fixes them. */
const KIND_CANNOT_PIN = ["--kube-proxy-version", "per-node kubeProxyVersion", "--metallb-version"];
/** Images the suites run, loaded into the nodes so runs do not depend on per-node pulls. */
export const PRELOAD_IMAGES = ["registry.k8s.io/e2e-test-images/agnhost:2.53", PROBE_IMAGE];

interface KindState {
  name: string;
  provider: "kind";
  phase: "creating" | "ready";
  ownerPid: number;
  kindName: string;
  kubeconfig: string;
  client?: ExternalClient;
  network?: ExternalNetwork;
  proxyMode: string;
  /** The pod network, as --cni names it ("default": kindnet). */
  cni?: string;
}

export function createKindProvider(
  clientFactory: ExternalClientFactory = testcontainersClientFactory,
): ClusterProvider {
  return {
    name: "kind",
    capabilities: (config) => ({
      createClusters: true,
      nodeDisruption: true,
      nodePower: true,
      // Under Cilium's kube-proxy replacement there is no kube-proxy to restart or replace.
      kubeProxyReleases: config.cluster.kubeProxyReplacement !== true,
      l2LoadBalancer: true,
      externalClient: true,
      // Nothing routes an address from the client container to one node for spec.externalIPs.
      externalIPs: false,
    }),

    async prepareRun(config, { logger }) {
      await this.gc(config, { logger, all: true });
    },

    async preflight(config) {
      const localOnly = pinnedSettings(config.cluster)
        .map((s) => s.flag)
        .filter((f) => KIND_CANNOT_PIN.includes(f));
      if (localOnly.length > 0)
        throw new UsageError(
          `${localOnly.join(", ")}: not available on kind yet (the local provider builds any release)`,
          "use --provider local, or the node image's own kube-proxy (--kubernetes-version) on kind",
        );
      const needs: (readonly [string, string])[] = [
        [
          "docker",
          "install Docker (https://docs.docker.com/engine/install/) and make sure this user may use it",
        ],
        [
          "kind",
          "install kind: `go install sigs.k8s.io/kind@latest` (or see https://kind.sigs.k8s.io/docs/user/quick-start/)",
        ],
      ];
      // Cilium's manifest is its Helm chart, rendered by `helm template`.
      if (config.cluster.cni?.name === "cilium")
        needs.push([
          "helm",
          "install Helm 3 (https://helm.sh/docs/intro/install/): --cni cilium renders Cilium's chart",
        ]);
      for (const [cmd, hint] of needs) {
        if (!(await which(cmd)))
          throw new TphError(`\`${cmd}\` is not installed (needed by --provider kind)`, { hint });
      }
      try {
        await run(["docker", "version", "--format", "{{.Server.Version}}"], { timeoutMs: 20_000 });
      } catch (err) {
        const detail = err instanceof CommandError ? err.stderrTail || err.message : String(err);
        throw new TphError(`Docker is not running or not reachable: ${detail.split("\n")[0]}`, {
          hint: "start the Docker daemon (or Docker Desktop) and check `docker version`; or use --provider local on Linux",
        });
      }
    },

    async up(config, options) {
      const { logger } = options;
      await this.preflight(config);
      const kindName = `${NAME_PREFIX}${config.clusterName}`;
      const dir = join(config.stateDir, config.clusterName);
      // Validate the generated config before any side effect.
      const cni = cniInstall(config.cluster.cni, {
        kindName,
        kubeProxyReplacement: config.cluster.kubeProxyReplacement === true,
      });
      const kindYaml = kindConfigYaml(kindName, {
        workers: config.cluster.nodes.length,
        proxyMode: config.cluster.proxyMode,
        zones: config.cluster.nodes.map((n) => n.zone ?? "").filter(Boolean),
        disableDefaultCNI: config.kind.disableDefaultCNI || cni !== undefined,
        ...(config.cluster.kubeProxyReplacement && { kubeProxyReplacement: true }),
        ...(config.cluster.kubeProxyConfig && { kubeProxyConfig: config.cluster.kubeProxyConfig }),
        ...(config.cluster.kubernetesVersion && { kubernetesVersion: config.cluster.kubernetesVersion }),
        ...(config.kind.nodeImage && { nodeImage: config.kind.nodeImage }),
      });
      const existing = (await run(["kind", "get", "clusters"])).stdout.split("\n").map((l) => l.trim());
      if (existing.includes(kindName)) {
        throw new TphError(`a kind cluster named ${kindName} already exists`, {
          hint: `remove it with \`tph down --provider kind --name ${config.clusterName}\`, or pick another --name`,
        });
      }
      return withCleanup(
        async (stack) => {
          // With --retain nothing is undone on failure; the way to delete it is printed instead.
          const undo = (name: string, fn: () => Promise<unknown>) => {
            if (!options.retain) stack.push(name, async () => void (await fn()));
          };
          if (options.retain) {
            stack.push("keep the failed cluster", () =>
              logger.warn(
                `--retain: kept the failed cluster; remove it with: tph down --provider kind --name ${config.clusterName}`,
              ),
            );
          }
          const state: KindState = {
            name: config.clusterName,
            provider: "kind",
            phase: "creating",
            ownerPid: process.pid,
            kindName,
            kubeconfig: join(dir, "kubeconfig"),
            proxyMode: config.cluster.kubeProxyReplacement ? "none" : config.cluster.proxyMode,
            cni: cniText(config.cluster.cni),
          };
          await mkdir(dir, { recursive: true });
          undo(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
          await saveState(dir, state);
          // Kept with the run's artifacts: the exact config kind was given.
          const configPath = join(dir, "kind-config.yaml");
          await writeFile(configPath, kindYaml);

          logger.step(
            `creating kind cluster ${kindName} (${config.cluster.nodes.length} workers, kube-proxy ${state.proxyMode}, CNI ${state.cni})`,
          );
          undo(`delete kind cluster ${kindName}`, () => deleteKindCluster(kindName, logger));
          await run(
            [
              "kind",
              "create",
              "cluster",
              "--name",
              kindName,
              "--config",
              configPath,
              "--kubeconfig",
              state.kubeconfig,
              // Nodes turn Ready only once a CNI runs: without kindnet the wait is ours, after the install.
              ...(cni || config.kind.disableDefaultCNI ? [] : ["--wait", "5m"]),
            ],
            {
              logger,
            },
          );

          if (cni) await installCni(config, cni, state, dir, logger);
          logger.step(`loading images into the nodes: ${PRELOAD_IMAGES.join(", ")}`);
          await loadImages(PRELOAD_IMAGES, kindName, logger);

          const inspect = await run(["docker", "network", "inspect", "kind"]);
          logger.step("starting the external client container on the kind network");
          const client = await clientFactory.start(config.clusterName, { [LABEL]: config.clusterName });
          state.client = client;
          undo("remove the external client", () => removeContainers(config.clusterName));
          await saveState(dir, state);
          // The pool avoids every address docker handed out, the client's included.
          const refreshed = await run(["docker", "network", "inspect", "kind"]);
          const range = kindPoolRange(refreshed.stdout || inspect.stdout);
          state.network = {
            subnet: /"Subnet":\s*"(\d+\.\d+\.\d+\.\d+\/\d+)"/.exec(refreshed.stdout)?.[1] ?? "",
            loadBalancerRange: range,
            clientIP: client.ip,
          };

          logger.step(`installing MetalLB (pool ${range})`);
          await installMetallbOnKind(config, state.kubeconfig, range, logger);

          state.phase = "ready";
          await saveState(dir, state);
          logger.step(`cluster ${kindName} is ready: kubectl --kubeconfig ${state.kubeconfig} get nodes`);
          return new KindCluster(state, logger);
        },
        { logger, ...(options.signal && { signal: options.signal }) },
      );
    },

    async attach(config, logger) {
      const state = await loadState(join(config.stateDir, config.clusterName));
      return state?.phase === "ready" ? new KindCluster(state, logger) : undefined;
    },

    async gc(config, options) {
      const removed: string[] = [];
      const clusters = (await run(["kind", "get", "clusters"])).stdout
        .split("\n")
        .map((l) => l.trim())
        .filter((n) => n.startsWith(NAME_PREFIX));
      for (const kindName of clusters) {
        const name = kindName.slice(NAME_PREFIX.length);
        if (options.only !== undefined && name !== options.only) continue;
        const state = await loadState(join(config.stateDir, name));
        const live = state && (state.phase === "ready" || pidAlive(state.ownerPid));
        if (live && !options.all) {
          options.logger.info(
            `keeping kind cluster ${kindName}: it is running (tph down --provider kind --name ${name})`,
          );
          continue;
        }
        await deleteKindCluster(kindName, options.logger);
        await removeContainers(name);
        await rm(join(config.stateDir, name), { recursive: true, force: true });
        removed.push(`kind cluster ${kindName} (${state ? state.phase : "no state"})`);
      }
      // Client containers whose cluster is gone.
      const { stdout } = await run([
        "docker",
        "ps",
        "-a",
        "--filter",
        `label=${LABEL}`,
        "--format",
        `{{.Label "${LABEL}"}}`,
      ]);
      for (const name of new Set(
        stdout
          .split("\n")
          .map((l) => l.trim())
          .filter(Boolean),
      )) {
        if (!clusters.includes(`${NAME_PREFIX}${name}`)) {
          await removeContainers(name);
          removed.push(`client container of ${name}`);
        }
      }
      return removed;
    },
  };
}

export const kindProvider = createKindProvider();

async function installMetallbOnKind(
  config: HarnessConfig,
  kubeconfig: string,
  range: string,
  logger: Logger,
): Promise<void> {
  const k8s = kubeClients(kubeconfig);
  await applyObjects(k8s, await loadManifest(config.repoRoot));
  await waitFor(
    async () => {
      const d = await k8s.apps.readNamespacedDeployment({ name: "controller", namespace: METALLB_NAMESPACE });
      return (d.status?.availableReplicas ?? 0) >= 1
        ? { done: true, value: undefined }
        : { done: false, state: d.status };
    },
    { description: "the MetalLB controller to be available", timeoutMs: 180_000, intervalMs: 1_000 },
  );
  // Right after install the webhook is often not serving yet and rejects the pool: retry with back-off.
  await applyWithRetry(() => applyObjects(k8s, l2Pool(range)), {
    timeoutMs: 120_000,
    onRetry: (err) =>
      logger.debug(`MetalLB pool rejected, retrying: ${err instanceof Error ? err.message : err}`),
  });
}

/** Pulls each image unless present, and loads it into every node (`kind load` takes tags, not digests). */
async function loadImages(images: readonly string[], kindName: string, logger: Logger): Promise<void> {
  for (const image of images) {
    if (image.includes("@")) {
      logger.info(`${image}: pinned by digest, pulled by the nodes themselves`);
      continue;
    }
    const present = await run(["docker", "image", "inspect", image], { allowFailure: true });
    if (present.exitCode !== 0) await run(["docker", "pull", image], { logger });
    await run(["kind", "load", "docker-image", image, "--name", kindName], { logger });
  }
}

/**
 * Installs the CNI on a cluster created without kindnet: its manifest (kept in the cluster's folder as
 * applied), its images loaded into the nodes, then the wait kind's --wait would have done: the agent
 * DaemonSet available on every node and every node Ready.
 */
async function installCni(
  config: HarnessConfig,
  cni: CniInstall,
  state: KindState,
  dir: string,
  logger: Logger,
): Promise<void> {
  logger.step(
    `installing ${cni.name} ${cni.version}${cni.kubeProxyReplacement ? " with kube-proxy replacement" : ""}`,
  );
  const { text, objects } = await cniManifest(cni, config.cacheDir, logger);
  await writeFile(join(dir, `${cni.name}-${cni.version}.yaml`), text);
  const images = imagesOf(objects);
  logger.step(`loading ${cni.name}'s images into the nodes: ${images.join(", ")}`);
  await loadImages(images, state.kindName, logger);
  const k8s = kubeClients(state.kubeconfig);
  await applyObjects(k8s, objects);
  const { namespace, name } = cni.agentDaemonSet;
  await waitFor(
    async () => {
      const ds = await k8s.apps.readNamespacedDaemonSet({ name, namespace });
      const want = ds.status?.desiredNumberScheduled ?? 0;
      const have = ds.status?.numberAvailable ?? 0;
      if (want === 0 || have < want) return { done: false, state: `${name}: ${have}/${want} available` };
      const notReady = (await k8s.core.listNode()).items
        .filter((n) => n.status?.conditions?.find((c) => c.type === "Ready")?.status !== "True")
        .map((n) => n.metadata?.name);
      return notReady.length === 0
        ? { done: true, value: undefined }
        : { done: false, state: `not Ready: ${notReady.join(", ")}` };
    },
    {
      description: `${cni.name} to run on every node and every node to be Ready`,
      timeoutMs: 300_000,
      intervalMs: 2_000,
    },
  );
}

async function deleteKindCluster(kindName: string, logger: Logger): Promise<void> {
  await run(["kind", "delete", "cluster", "--name", kindName], { logger });
}

async function removeContainers(clusterName: string): Promise<void> {
  const { stdout } = await run(["docker", "ps", "-aq", "--filter", `label=${LABEL}=${clusterName}`]);
  const ids = stdout
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  if (ids.length > 0) await run(["docker", "rm", "-f", ...ids]);
}

async function saveState(dir: string, state: KindState): Promise<void> {
  await writeFile(join(dir, "state.json"), JSON.stringify(state, null, 2));
}

async function loadState(dir: string): Promise<KindState | undefined> {
  try {
    const s = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as KindState;
    return s.provider === "kind" ? s : undefined;
  } catch {
    return undefined;
  }
}

class KindCluster implements StartedCluster {
  readonly provider = "kind";
  readonly name: string;
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly versions: Record<string, string>;
  readonly network: ExternalNetwork;
  readonly probeCommand = ["node", PROBE_IN_CLIENT];
  readonly nodeOps: NodeOperations;
  readonly #state: KindState;
  readonly #logger: Logger;

  constructor(state: KindState, logger: Logger) {
    this.#state = state;
    this.#logger = logger;
    this.name = state.name;
    this.kubeconfigPath = state.kubeconfig;
    this.server = "";
    this.versions = { proxyMode: state.proxyMode, cni: state.cni ?? "default" };
    this.network = state.network ?? { subnet: "", loadBalancerRange: "", clientIP: "" };
    this.nodeOps = new KindNodeOperations(state, logger);
  }

  /** On kind a release is registry.k8s.io's image (pulled by the node); the cluster's own from its DaemonSet. */
  async kubeProxyRelease(version?: string): Promise<{ version: string; ref: string }> {
    if (version) return { version, ref: `registry.k8s.io/kube-proxy:${version}` };
    const { apps } = kubeClients(this.kubeconfigPath);
    const ds = await apps.readNamespacedDaemonSet({ name: "kube-proxy", namespace: "kube-system" });
    const image = ds.spec?.template.spec?.containers[0]?.image ?? "";
    return { version: image.split(":").pop() ?? image, ref: image };
  }

  /** Worker nodes only: the control plane keeps kind's exclude-from-external-load-balancers label. */
  async nodes(): Promise<ClusterNode[]> {
    const { core } = kubeClients(this.kubeconfigPath);
    return (await core.listNode()).items
      .filter((n) => n.metadata?.labels?.["node-role.kubernetes.io/control-plane"] === undefined)
      .map((n) => {
        const zone = n.metadata?.labels?.["topology.kubernetes.io/zone"];
        return {
          name: n.metadata?.name ?? "",
          role: "worker" as const,
          internalIP: n.status?.addresses?.find((a) => a.type === "InternalIP")?.address ?? "",
          ...(zone && { zone }),
        };
      });
  }

  async runExternal(
    argv: string[],
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    if (!this.#state.client) throw new TphError(`cluster ${this.name} has no external client container`);
    return execInClient(this.#state.client, argv, options);
  }

  async probeArgv(source: ProbeSource): Promise<string[]> {
    if (source.kind === "external") {
      if (!this.#state.client) throw new TphError(`cluster ${this.name} has no external client container`);
      return ["docker", "exec", "-i", this.#state.client.id, ...this.probeCommand];
    }
    // Probe clients run Node's image with probe.ts mounted (harness/traffic/clients.ts).
    return [
      "kubectl",
      `--kubeconfig=${this.kubeconfigPath}`,
      "exec",
      "-i",
      `--namespace=${source.namespace}`,
      source.name,
      "--container=probe",
      "--",
      "node",
      PROBE_IN_POD,
    ];
  }

  async status(): Promise<ComponentStatus[]> {
    const { stdout } = await run([
      "docker",
      "ps",
      "-a",
      "--filter",
      `label=io.x-k8s.kind.cluster=${this.#state.kindName}`,
      "--format",
      "{{.Names}} {{.State}}",
    ]);
    return stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [name = "", state = ""] = line.split(" ");
        return { component: name, where: "docker", running: state === "running", detail: state };
      });
  }

  async exportLogs(dir: string): Promise<string[]> {
    await run(["kind", "export", "logs", dir, "--name", this.#state.kindName], { logger: this.#logger });
    return [dir];
  }

  async delete(): Promise<void> {
    this.#logger.step(`deleting kind cluster ${this.#state.kindName}`);
    await deleteKindCluster(this.#state.kindName, this.#logger);
    await removeContainers(this.name);
    await rm(join(this.kubeconfigPath, ".."), { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.delete();
  }
}

/** Node operations on kind: node containers stop and start; kube-proxy is its DaemonSet's pod. */
class KindNodeOperations implements NodeOperations {
  readonly #state: KindState;
  readonly #logger: Logger;

  constructor(state: KindState, logger: Logger) {
    this.#state = state;
    this.#logger = logger;
  }

  async stop(node: string): Promise<void> {
    this.#logger.step(`stopping node container ${node}`);
    await run(["docker", "stop", node], { logger: this.#logger });
  }

  async stopKubelet(node: string): Promise<void> {
    this.#logger.step(`stopping the kubelet of ${node}`);
    await run(["docker", "exec", node, "systemctl", "stop", "kubelet"], { logger: this.#logger });
  }

  async startKubelet(node: string): Promise<void> {
    this.#logger.step(`starting the kubelet of ${node}`);
    await run(["docker", "exec", node, "systemctl", "start", "kubelet"], { logger: this.#logger });
  }

  async start(node: string): Promise<void> {
    this.#logger.step(`starting node container ${node}`);
    await run(["docker", "start", node], { logger: this.#logger });
    const { core } = kubeClients(this.#state.kubeconfig);
    await waitFor(
      async () => {
        const n = await core.readNode({ name: node });
        const ready = n.status?.conditions?.find((c) => c.type === "Ready")?.status;
        return ready === "True" ? { done: true, value: undefined } : { done: false, state: ready };
      },
      { description: `node ${node} Ready again`, timeoutMs: 180_000, intervalMs: 1_000 },
    );
  }

  async restartKubeProxy(node: string): Promise<void> {
    const { core } = kubeClients(this.#state.kubeconfig);
    const pods = await core.listNamespacedPod({
      namespace: "kube-system",
      labelSelector: "k8s-app=kube-proxy",
      fieldSelector: `spec.nodeName=${node}`,
    });
    for (const p of pods.items)
      await core.deleteNamespacedPod({ name: p.metadata?.name ?? "", namespace: "kube-system" });
  }

  /** An image no registry has: the node's kube-proxy pod never starts. */
  readonly brokenKubeProxy = "registry.k8s.io/kube-proxy:v0.0.0-does-not-exist";

  /** On kind the "binary" is an image: the DaemonSet switches to OnDelete, so only this node's pod changes. */
  async kubeProxyRef(node: string): Promise<string> {
    const { core } = kubeClients(this.#state.kubeconfig);
    const pods = await core.listNamespacedPod({
      namespace: "kube-system",
      labelSelector: "k8s-app=kube-proxy",
      fieldSelector: `spec.nodeName=${node}`,
    });
    const image = pods.items.find((p) => !p.metadata?.deletionTimestamp)?.spec?.containers[0]?.image;
    if (!image) throw new TphError(`no kube-proxy pod on ${node}`);
    return image;
  }

  async replaceKubeProxy(node: string, image: string): Promise<void> {
    const { apps } = kubeClients(this.#state.kubeconfig);
    const ds = await apps.readNamespacedDaemonSet({ name: "kube-proxy", namespace: "kube-system" });
    if (ds.spec) ds.spec.updateStrategy = { type: "OnDelete" };
    const container = ds.spec?.template.spec?.containers[0];
    if (container) container.image = image;
    await apps.replaceNamespacedDaemonSet({ name: "kube-proxy", namespace: "kube-system", body: ds });
    await this.restartKubeProxy(node);
    // Done when the node's new kube-proxy pod runs the image and is ready, as on the local provider.
    const { core } = kubeClients(this.#state.kubeconfig);
    await waitFor(
      async () => {
        const pods = await core.listNamespacedPod({
          namespace: "kube-system",
          labelSelector: "k8s-app=kube-proxy",
          fieldSelector: `spec.nodeName=${node}`,
        });
        const ready = pods.items.find(
          (p) =>
            !p.metadata?.deletionTimestamp &&
            p.spec?.containers[0]?.image === image &&
            p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return ready
          ? { done: true, value: undefined }
          : { done: false, state: pods.items.map((p) => p.status?.phase) };
      },
      { description: `kube-proxy ${image} to be ready on ${node}`, timeoutMs: 120_000 },
    );
  }
}
