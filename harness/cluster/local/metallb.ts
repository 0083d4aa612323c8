import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { waitFor } from "../../core/wait.ts";
import { apiErrorMessage, apiStatus, kubeClients } from "../../k8s/client.ts";
import { applyWithRetry } from "../../metallb/kind-pool.ts";
import {
  applyObjects,
  CONTROLLER_LABELS,
  forHostProcesses,
  l2Pool,
  loadManifest,
  METALLB_NAMESPACE,
  SPEAKER_LABELS,
} from "../../metallb/manifests.ts";
import { PLACEHOLDER_ANNOTATION } from "./agent/pod-worker.ts";
import { ProcessDied } from "./control-plane.ts";
import type { LocalNode, NodeContext } from "./nodes.ts";
import { issue, writeKubeconfig } from "./pki.ts";
import { isAlive, logTail, type ProcessRecord, startProcess } from "./process.ts";

/**
 * MetalLB (L2 mode) on a local cluster: the pinned release's controller and one speaker per node, as
 * real processes. The controller runs in the control-plane namespace with its webhook off; each speaker
 * runs in its node's namespace, answering ARP for LoadBalancer IPs on the cluster bridge.
 *
 * MetalLB reads its own Pod at start-up (owner of ServiceL2Status objects) and memberlist finds its peers
 * by listing speaker Pods: so each process gets a placeholder Pod, which the node agent marks Running and
 * Ready with podIP = the node's IP, and never executes.
 */
export interface MetallbContext extends NodeContext {
  dir: string;
  nodes: LocalNode[];
  kubeconfig: string;
  controlPlaneNs: string;
}

export async function installMetallb(ctx: MetallbContext): Promise<ProcessRecord[]> {
  const k8s = kubeClients(ctx.kubeconfig);
  const dir = join(ctx.dir, "metallb");
  await mkdir(join(dir, "memberlist"), { recursive: true, mode: 0o700 });
  await applyObjects(
    k8s,
    forHostProcesses(await loadManifest(ctx.config.repoRoot, ctx.binaries.metallbManifest)),
  );

  // The processes authenticate as the manifest's service accounts, so its RBAC applies to them unchanged.
  const kubeconfigFor = async (sa: string) => {
    const user = `system:serviceaccount:${METALLB_NAMESPACE}:${sa}`;
    const client = await issue(
      ctx.pki.dir,
      ctx.pki.ca,
      { id: `metallb-${sa}`, commonName: user },
      ctx.logger,
    );
    const path = join(dir, `${sa}.kubeconfig`);
    await writeKubeconfig(path, {
      clusterName: ctx.plan.clusterName,
      server: ctx.server,
      caCert: ctx.pki.ca.cert,
      client,
      user,
    });
    return path;
  };
  const controllerKubeconfig = await kubeconfigFor("controller");
  await kubeconfigFor("speaker"); // speaker.kubeconfig, read by startSpeaker
  const secretDir = join(dir, "memberlist");
  await writeFile(join(secretDir, "secretkey"), randomBytes(32).toString("hex"), { mode: 0o600 });

  const [first] = ctx.nodes;
  if (!first) throw new Error("MetalLB needs at least one node");
  const placeholders = [
    placeholder("controller", first.name, CONTROLLER_LABELS),
    ...ctx.nodes.map((n) => placeholder(`speaker-${n.name}`, n.name, SPEAKER_LABELS)),
  ];
  for (const pod of placeholders) {
    await k8s.core.createNamespacedPod({ namespace: METALLB_NAMESPACE, body: pod }).catch((err) => {
      if (apiStatus(err) !== 409) throw err;
    });
  }
  await waitFor(
    async () => {
      const pods = await k8s.core.listNamespacedPod({ namespace: METALLB_NAMESPACE });
      const ready = pods.items.filter(
        (p) => p.status?.podIP && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      );
      return ready.length === placeholders.length
        ? { done: true, value: undefined }
        : { done: false, state: `${ready.length}/${placeholders.length} ready` };
    },
    {
      description: "MetalLB's placeholder pods to be marked ready by the node agents",
      timeoutMs: 30_000,
      intervalMs: 200,
    },
  );

  const env = (pod: string, kubeconfig: string) => ({
    KUBECONFIG: kubeconfig,
    METALLB_NAMESPACE,
    METALLB_POD_NAME: pod,
  });
  const records: ProcessRecord[] = [];
  const controller = await startProcess({
    name: "metallb-controller",
    netns: ctx.controlPlaneNs,
    argv: [
      ctx.binaries.paths["metallb-controller"],
      "--webhook-mode=disabled",
      "--log-level=info",
      `--cert-dir=${join(dir, "certs")}`,
    ],
    log: join(ctx.dir, "logs", "metallb-controller.log"),
    env: env("controller", controllerKubeconfig),
  });
  await ctx.onStarted(controller);
  records.push(controller);
  for (const node of ctx.nodes) {
    const speaker = await startSpeaker(ctx, ctx.binaries.paths.speaker, node, dir);
    records.push(speaker);
  }

  // With the webhook off there is no "webhook not serving yet" race, but the CRDs may still be
  // establishing: the same retry as on kind.
  await applyWithRetry(() => applyObjects(k8s, l2Pool(ctx.plan.loadBalancerRange)), {
    timeoutMs: 30_000,
    initialDelayMs: 200,
    onRetry: (err) => ctx.logger.debug(`MetalLB pool not accepted yet: ${apiErrorMessage(err)}`),
  });
  for (const r of records) {
    if (!(await isAlive(r.pid))) throw new ProcessDied(r, await logTail(r.log));
  }
  return records;
}

/** Starts the speaker of `node`; also used by node start after a stop. */
export async function startSpeaker(
  ctx: Pick<NodeContext, "onStarted">,
  binary: string,
  node: LocalNode,
  metallbDir: string,
): Promise<ProcessRecord> {
  const record = await startProcess({
    name: `speaker/${node.name}`,
    netns: node.ns,
    argv: [
      binary,
      "--port=7472",
      "--log-level=info",
      `--ml-secret-key-path=${join(metallbDir, "memberlist")}`,
    ],
    log: join(node.dir, "speaker.log"),
    env: {
      KUBECONFIG: join(metallbDir, "speaker.kubeconfig"),
      METALLB_NAMESPACE,
      METALLB_NODE_NAME: node.name,
      METALLB_POD_NAME: `speaker-${node.name}`,
      METALLB_HOST: node.ip,
      METALLB_ML_BIND_ADDR: node.ip,
      METALLB_ML_LABELS: Object.entries(SPEAKER_LABELS)
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
    },
  });
  await ctx.onStarted(record);
  return record;
}

function placeholder(name: string, node: string, labels: Record<string, string>): V1Pod {
  return {
    metadata: {
      name,
      namespace: METALLB_NAMESPACE,
      labels,
      annotations: { [PLACEHOLDER_ANNOTATION]: "true" },
    },
    spec: {
      nodeName: node,
      hostNetwork: true,
      tolerations: [{ operator: "Exists" }],
      containers: [
        {
          name: name.split("-")[0] ?? name,
          image: `quay.io/metallb/${name.startsWith("speaker") ? "speaker" : "controller"}:pinned`,
        },
      ],
    },
  };
}
