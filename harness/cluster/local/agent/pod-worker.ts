import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import type {
  CoreV1Api,
  V1Container,
  V1ContainerStatus,
  V1Pod,
  V1PodCondition,
  V1Probe,
} from "@kubernetes/client-node";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { run } from "../../../core/exec.ts";
import type { Logger } from "../../../core/logger.ts";
import { sleep } from "../../../core/wait.ts";
import { apiErrorMessage } from "../../../k8s/client.ts";
import { DRAIN_KEEPS_ANNOTATION } from "../../provider.ts";
import type { AgentConfig } from "./config.ts";
import { resolveProgram } from "./images.ts";
import { probeTiming, runProbe } from "./probes.ts";
import { createSandbox, deleteSandbox, type PodNetwork, type Sandbox } from "./sandbox.ts";

/** Pods with this annotation are recorded as running but not executed (MetalLB's own pods, see docs). */
export const PLACEHOLDER_ANNOTATION = DRAIN_KEEPS_ANNOTATION;

/** The kubelet never gives a container less than this after SIGTERM (minimumGracePeriodInSeconds). */
const MIN_GRACE_MS = 2_000;
const RESTART_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 20_000, 40_000];

export interface PodWorkerContext {
  config: AgentConfig;
  core: CoreV1Api;
  network: PodNetwork;
  logger: Logger;
}

type ContainerState =
  | { kind: "waiting"; reason: string; message?: string }
  | { kind: "running"; startedAt: Date }
  | {
      kind: "terminated";
      exitCode: number;
      reason: string;
      signal?: string;
      startedAt?: Date;
      finishedAt: Date;
    };

interface Container {
  spec: V1Container;
  argv?: string[];
  child?: ChildProcess;
  exited?: Promise<void>;
  state: ContainerState;
  lastState?: ContainerState;
  restartCount: number;
  ready: boolean;
  started: boolean;
  /** Bumped on every (re)start, so probe loops of an earlier incarnation stop. */
  generation: number;
}

/**
 * One pod on one node, from first sight to deletion: the kubelet's pod worker, reduced to what traffic
 * tests depend on. Status is the product: EndpointSlices are computed from it (Ready → serving,
 * deletionTimestamp → terminating, status.podIPs → addresses), so every field is written as a kubelet
 * would write it, and the termination sequence follows the kubelet's order and timing.
 */
export class PodWorker {
  #pod: V1Pod;
  readonly #ctx: PodWorkerContext;
  readonly #containers: Container[];
  #sandbox: Sandbox | undefined;
  #terminating = false;
  #stopped = false;
  #startTime = new Date();
  #phase: "Pending" | "Running" | "Succeeded" | "Failed" = "Pending";
  #statusWrite: Promise<void> = Promise.resolve();
  #statusDirty = false;

  constructor(pod: V1Pod, ctx: PodWorkerContext) {
    this.#pod = pod;
    this.#ctx = ctx;
    const previous = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s]));
    this.#containers = (pod.spec?.containers ?? []).map((spec) => {
      const before = previous.get(spec.name);
      // A pod that ran before this agent started (node restart) counts that run as a restart.
      const restartCount =
        (before?.restartCount ?? 0) + (before?.state?.running || before?.state?.terminated ? 1 : 0);
      return {
        spec,
        state: { kind: "waiting", reason: "ContainerCreating" },
        restartCount,
        ready: false,
        started: false,
        generation: 0,
      };
    });
  }

  get uid(): string {
    return this.#pod.metadata?.uid ?? "";
  }

  get name(): string {
    return `${this.#pod.metadata?.namespace}/${this.#pod.metadata?.name}`;
  }

  /** Called with every newer version of the pod seen by the watch. */
  update(pod: V1Pod): void {
    this.#pod = pod;
    if (pod.metadata?.deletionTimestamp && !this.#terminating) {
      void this.#terminate();
      return;
    }
    // Someone else wrote Ready (the node lifecycle controller marks pods not ready while the node is
    // away): write ours back, as the kubelet's status manager reconciles its cached status.
    const written = pod.status?.conditions?.find((c) => c.type === "Ready")?.status;
    const ours = this.#status().conditions.find((c) => c.type === "Ready")?.status;
    if (this.#phase === "Running" && !this.#terminating && written !== undefined && written !== ours)
      void this.#writeStatus();
  }

  async start(): Promise<void> {
    const { config, logger } = this.#ctx;
    if (this.#pod.metadata?.deletionTimestamp) return this.#terminate();
    if (this.#pod.metadata?.annotations?.[PLACEHOLDER_ANNOTATION] === "true") return this.#startPlaceholder();
    const programs = this.#containers.map((c) => ({ c, program: resolveProgram(c.spec, config.images) }));
    const unresolved = programs.filter((p) => !p.program.ok);
    if (unresolved.length > 0) {
      for (const { c, program } of unresolved) {
        if (!program.ok) {
          c.state = { kind: "waiting", reason: program.reason, message: program.message };
          logger.warn(`pod ${this.name}: container ${c.spec.name}: ${program.message}`);
        }
      }
      return this.#writeStatus();
    }
    for (const { c, program } of programs) if (program.ok) c.argv = program.argv;

    const hostNetwork = this.#pod.spec?.hostNetwork === true;
    try {
      this.#sandbox = hostNetwork
        ? { ns: config.nodeNs, ip: config.nodeIP }
        : await createSandbox(this.#ctx.network, `${config.podNsPrefix}${this.uid.slice(0, 8)}`, this.#pod);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.error(`pod ${this.name}: sandbox: ${message}`);
      for (const c of this.#containers)
        c.state = { kind: "waiting", reason: "CreatePodSandboxError", message };
      return this.#writeStatus();
    }
    this.#startTime = new Date();
    this.#phase = "Running";
    for (const c of this.#containers) await this.#startContainer(c);
    await this.#writeStatus();
  }

  /** The pod is gone from the API (deleted with grace 0 by us or by someone else): stop everything now. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const c of this.#containers) {
      c.generation++;
      c.child?.kill("SIGKILL");
    }
    await Promise.all(this.#containers.map((c) => c.exited));
    await this.#releaseSandbox();
  }

  // ---- containers ----

  async #startContainer(c: Container): Promise<void> {
    const sandbox = this.#sandbox;
    if (!sandbox || !c.argv || this.#stopped) return;
    const dir = join(
      this.#ctx.config.podsDir,
      `${this.#pod.metadata?.namespace}_${this.#pod.metadata?.name}_${this.uid}`,
    );
    await mkdir(dir, { recursive: true });
    const log = await open(join(dir, `${c.spec.name}.log`), "a");
    const podName = this.#pod.metadata?.name ?? "pod";
    // A UTS namespace of its own so the program sees the pod name as its hostname (agnhost /hostname).
    // The script is constant; the pod name and argv travel as positional parameters, never as text.
    const argv = [
      "ip",
      "netns",
      "exec",
      sandbox.ns,
      "unshare",
      "--uts",
      "--",
      "sh",
      "-c",
      'printf %s "$0" > /proc/sys/kernel/hostname && exec "$@"',
      podName,
      ...c.argv,
    ];
    const child = spawn(argv[0] as string, argv.slice(1), {
      detached: true,
      stdio: ["ignore", log.fd, log.fd],
      env: this.#containerEnv(c.spec, sandbox.ip),
      ...(c.spec.workingDir && { cwd: c.spec.workingDir }),
    });
    await log.close();
    const startedAt = new Date();
    c.child = child;
    c.generation++;
    const generation = c.generation;
    c.state = { kind: "running", startedAt };
    c.started = !c.spec.startupProbe;
    c.ready = !c.spec.readinessProbe && c.started;
    c.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        void this.#onExit(c, generation, startedAt, code, signal).finally(resolve);
      });
      child.once("error", (err) => {
        this.#ctx.logger.error(`pod ${this.name}: container ${c.spec.name}: ${err.message}`);
      });
    });
    this.#ctx.logger.info(`pod ${this.name}: started ${c.spec.name} (pid ${child.pid}) at ${sandbox.ip}`);
    this.#startProbes(c, generation);
  }

  async #onExit(
    c: Container,
    generation: number,
    startedAt: Date,
    code: number | null,
    signal: NodeJS.Signals | null,
  ) {
    const exitCode = code ?? 128 + (signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : 1);
    c.state = {
      kind: "terminated",
      exitCode,
      reason:
        exitCode === 0 ? "Completed" : signal === "SIGKILL" && !this.#terminating ? "OOMKilled" : "Error",
      ...(signal && { signal }),
      startedAt,
      finishedAt: new Date(),
    };
    if (c.state.reason === "OOMKilled") c.state.reason = "Error"; // no OOM killer here; a SIGKILL is ours
    c.ready = false;
    c.child = undefined;
    if (generation !== c.generation || this.#terminating || this.#stopped) return;
    this.#ctx.logger.info(`pod ${this.name}: container ${c.spec.name} exited ${exitCode}`);
    const policy = this.#pod.spec?.restartPolicy ?? "Always";
    if (policy === "Always" || (policy === "OnFailure" && exitCode !== 0)) {
      const delay = RESTART_BACKOFF_MS[Math.min(c.restartCount, RESTART_BACKOFF_MS.length - 1)] ?? 40_000;
      c.lastState = c.state;
      c.state = {
        kind: "waiting",
        reason: "CrashLoopBackOff",
        message: `back-off ${delay / 1000}s restarting failed container`,
      };
      await this.#writeStatus();
      await sleep(delay);
      if (this.#terminating || this.#stopped || generation !== c.generation) return;
      c.restartCount++;
      await this.#startContainer(c);
    } else if (this.#containers.every((x) => x.state.kind === "terminated")) {
      this.#phase = this.#containers.every((x) => x.state.kind === "terminated" && x.state.exitCode === 0)
        ? "Succeeded"
        : "Failed";
    }
    await this.#writeStatus();
  }

  /** SIGTERM, then SIGKILL once `deadline` passes (but never sooner than 2 s after SIGTERM). */
  async #killContainer(c: Container, deadline: number): Promise<void> {
    const child = c.child;
    if (!child) return;
    const grace = Math.max(deadline - Date.now(), MIN_GRACE_MS);
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), grace);
    await c.exited;
    clearTimeout(timer);
  }

  #containerEnv(spec: V1Container, podIP: string): NodeJS.ProcessEnv {
    const pod = this.#pod;
    const fields: Record<string, string | undefined> = {
      "metadata.name": pod.metadata?.name,
      "metadata.namespace": pod.metadata?.namespace,
      "metadata.uid": pod.metadata?.uid,
      "spec.nodeName": pod.spec?.nodeName,
      "spec.serviceAccountName": pod.spec?.serviceAccountName,
      "status.podIP": podIP,
      "status.hostIP": this.#ctx.config.nodeIP,
    };
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOSTNAME: pod.metadata?.name };
    for (const e of spec.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef) env[e.name] = fields[e.valueFrom.fieldRef.fieldPath] ?? "";
    }
    return env;
  }

  // ---- probes ----

  #startProbes(c: Container, generation: number): void {
    const alive = () => generation === c.generation && !this.#stopped && c.state.kind === "running";
    const startup = c.spec.startupProbe;
    const afterStartup = () => {
      if (c.spec.readinessProbe) void this.#probeLoop(c, c.spec.readinessProbe, "readiness", alive);
      // Liveness and startup stop when the pod terminates; readiness keeps running (kubelet behaviour).
      if (c.spec.livenessProbe)
        void this.#probeLoop(c, c.spec.livenessProbe, "liveness", () => alive() && !this.#terminating);
    };
    if (startup) {
      void this.#probeLoop(c, startup, "startup", () => alive() && !this.#terminating && !c.started).then(
        () => {
          if (c.started && alive()) afterStartup();
        },
      );
    } else {
      afterStartup();
    }
  }

  async #probeLoop(
    c: Container,
    probe: V1Probe,
    kind: "readiness" | "liveness" | "startup",
    alive: () => boolean,
  ) {
    const timing = probeTiming(probe);
    let successes = 0;
    let failures = 0;
    await sleep(timing.initialDelayMs);
    while (alive()) {
      const result = await runProbe(probe, {
        podIP: this.#sandbox?.ip ?? "",
        ports: c.spec.ports ?? [],
        exec: (argv, timeoutMs) => this.#execInPod(argv, timeoutMs),
      });
      if (!alive()) return;
      if (result.ok) {
        successes++;
        failures = 0;
      } else {
        failures++;
        successes = 0;
        this.#ctx.logger.debug(`pod ${this.name}: ${kind} probe of ${c.spec.name} failed: ${result.message}`);
      }
      if (kind === "readiness") {
        const ready = c.ready ? failures < timing.failureThreshold : successes >= timing.successThreshold;
        if (ready !== c.ready) {
          c.ready = ready;
          await this.#writeStatus();
        }
      } else if (kind === "startup" && successes >= 1) {
        c.started = true;
        c.ready = !c.spec.readinessProbe;
        await this.#writeStatus();
        return;
      } else if (failures >= timing.failureThreshold) {
        this.#ctx.logger.info(
          `pod ${this.name}: ${kind} probe failed ${failures}x, restarting ${c.spec.name}`,
        );
        const grace = (this.#pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
        await this.#killContainer(c, Date.now() + grace); // #onExit restarts it per restartPolicy
        return;
      }
      await sleep(timing.periodMs);
    }
  }

  async #execInPod(argv: string[], timeoutMs: number): Promise<number> {
    const ns = this.#sandbox?.ns;
    if (!ns) return 1;
    const r = await run(argv, { netns: ns, allowFailure: true, timeoutMs });
    return r.exitCode;
  }

  // ---- termination ----

  /** The kubelet's order: terminating status, preStop (consumes grace), SIGTERM, SIGKILL, final status, delete. */
  async #terminate(): Promise<void> {
    if (this.#terminating) return;
    this.#terminating = true;
    const pod = this.#pod;
    const graceSeconds =
      pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    const deadline = Date.now() + graceSeconds * 1000;
    this.#ctx.logger.info(`pod ${this.name}: terminating with ${graceSeconds}s grace`);
    await Promise.all(
      this.#containers.map(async (c) => {
        if (!c.child) return;
        await this.#preStop(c, deadline);
        await this.#killContainer(c, deadline);
      }),
    );
    for (const c of this.#containers) {
      c.ready = false;
      if (c.state.kind !== "terminated")
        c.state = { kind: "terminated", exitCode: 0, reason: "Completed", finishedAt: new Date() };
    }
    const failed = this.#containers.some((c) => c.state.kind === "terminated" && c.state.exitCode !== 0);
    this.#phase = this.#phase === "Pending" && !this.#sandbox ? "Failed" : failed ? "Failed" : "Succeeded";
    await this.#writeStatus();
    await this.#stopAndRelease();
    try {
      await this.#ctx.core.deleteNamespacedPod({
        name: pod.metadata?.name ?? "",
        namespace: pod.metadata?.namespace ?? "",
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: this.uid } },
      });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code !== 404 && code !== 409)
        this.#ctx.logger.warn(`pod ${this.name}: final delete failed: ${apiErrorMessage(err)}`);
    }
  }

  async #preStop(c: Container, deadline: number): Promise<void> {
    const hook = c.spec.lifecycle?.preStop;
    if (!hook) return;
    const budget = Math.max(deadline - Date.now(), 0);
    const started = Date.now();
    try {
      if (hook.sleep) {
        await sleep(Math.min(hook.sleep.seconds * 1000, budget));
      } else if (hook.exec?.command) {
        await this.#execInPod(hook.exec.command, budget);
      } else if (hook.httpGet) {
        await runProbe(
          { httpGet: hook.httpGet, timeoutSeconds: Math.max(1, Math.floor(budget / 1000)) },
          {
            podIP: this.#sandbox?.ip ?? "",
            ports: c.spec.ports ?? [],
            exec: async () => 1,
          },
        );
      }
    } catch (err) {
      this.#ctx.logger.warn(`pod ${this.name}: preStop of ${c.spec.name} failed: ${String(err)}`);
    }
    this.#ctx.logger.debug(`pod ${this.name}: preStop of ${c.spec.name} took ${Date.now() - started} ms`);
  }

  async #stopAndRelease(): Promise<void> {
    this.#stopped = true;
    await this.#releaseSandbox();
  }

  async #releaseSandbox(): Promise<void> {
    const sandbox = this.#sandbox;
    this.#sandbox = undefined;
    if (!sandbox || this.#pod.spec?.hostNetwork) return;
    await deleteSandbox(this.#ctx.network, sandbox).catch((err) =>
      this.#ctx.logger.warn(`pod ${this.name}: sandbox cleanup: ${String(err)}`),
    );
  }

  // ---- placeholders ----

  async #startPlaceholder(): Promise<void> {
    this.#sandbox = { ns: this.#ctx.config.nodeNs, ip: this.#ctx.config.nodeIP };
    this.#phase = "Running";
    for (const c of this.#containers) {
      c.state = { kind: "running", startedAt: new Date() };
      c.ready = true;
      c.started = true;
    }
    await this.#writeStatus();
  }

  // ---- status ----

  /** Writes the pod's status; calls made while a write is in flight coalesce into one more write. */
  #writeStatus(): Promise<void> {
    if (this.#statusDirty) return this.#statusWrite;
    this.#statusDirty = true;
    this.#statusWrite = this.#statusWrite.then(async () => {
      this.#statusDirty = false;
      const pod = this.#pod;
      try {
        await this.#ctx.core.patchNamespacedPodStatus(
          {
            name: pod.metadata?.name ?? "",
            namespace: pod.metadata?.namespace ?? "",
            body: { status: this.#status() },
          },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code !== 404)
          this.#ctx.logger.warn(`pod ${this.name}: status update failed: ${apiErrorMessage(err)}`);
      }
    });
    return this.#statusWrite;
  }

  #status() {
    const now = new Date();
    const ip = this.#sandbox?.ip;
    const allReady = this.#containers.every((c) => c.ready);
    const sandboxReady = this.#sandbox !== undefined;
    const previous = new Map((this.#pod.status?.conditions ?? []).map((c) => [c.type, c]));
    const condition = (type: string, ok: boolean, reason?: string): V1PodCondition => {
      const status = ok ? "True" : "False";
      const before = previous.get(type);
      return {
        type,
        status,
        lastProbeTime: null as unknown as undefined,
        lastTransitionTime:
          before?.status === status && before.lastTransitionTime ? before.lastTransitionTime : now,
        ...(!ok && reason && { reason }),
      };
    };
    const notReadyReason =
      this.#terminating || this.#phase === "Succeeded" || this.#phase === "Failed"
        ? "PodCompleted"
        : "ContainersNotReady";
    const conditions: V1PodCondition[] = [
      condition("PodReadyToStartContainers", sandboxReady),
      condition("Initialized", true),
      condition("ContainersReady", allReady, notReadyReason),
      condition("Ready", allReady, notReadyReason),
      ...(previous.get("PodScheduled") ? [previous.get("PodScheduled") as V1PodCondition] : []),
    ];
    return {
      phase: this.#phase,
      hostIP: this.#ctx.config.nodeIP,
      hostIPs: [{ ip: this.#ctx.config.nodeIP }],
      ...(ip && { podIP: ip, podIPs: [{ ip }] }),
      startTime: this.#pod.status?.startTime ?? this.#startTime,
      conditions,
      containerStatuses: this.#containers.map((c) => containerStatus(c)),
    };
  }
}

function containerStatus(c: Container): V1ContainerStatus {
  const render = (s: ContainerState) =>
    s.kind === "running"
      ? { running: { startedAt: s.startedAt } }
      : s.kind === "waiting"
        ? { waiting: { reason: s.reason, ...(s.message && { message: s.message }) } }
        : {
            terminated: {
              exitCode: s.exitCode,
              reason: s.reason,
              ...(s.signal && { signal: signalNumber(s.signal) }),
              ...(s.startedAt && { startedAt: s.startedAt }),
              finishedAt: s.finishedAt,
            },
          };
  return {
    name: c.spec.name,
    image: c.spec.image ?? "",
    imageID: "",
    containerID: c.child?.pid ? `tph://${c.child.pid}` : undefined,
    ready: c.ready,
    started: c.started && c.state.kind === "running",
    restartCount: c.restartCount,
    state: render(c.state),
    ...(c.lastState && { lastState: render(c.lastState) }),
  } as V1ContainerStatus;
}

function signalNumber(signal: string): number {
  return signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : signal === "SIGINT" ? 2 : 0;
}
