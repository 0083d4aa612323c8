import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { KubernetesObject, V1PodTemplateSpec } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { CniSpec } from "../../core/config.ts";
import { TphError } from "../../core/errors.ts";
import { run } from "../../core/exec.ts";
import type { Logger } from "../../core/logger.ts";

/**
 * The CNIs kind installs in place of kindnet (--cni calico|cilium[@VERSION]): each one is a manifest at a
 * pinned release, applied like MetalLB's, with its images loaded into the nodes first. Calico's is the
 * release's own manifests/calico.yaml (fetched once, then cached); Cilium's is its Helm chart rendered
 * with `helm template` at that release, with kube-proxy replacement on or off.
 */
export const CNI_PINS = {
  // docs.tigera.io: the release's manifest is raw.githubusercontent.com/projectcalico/calico/<v>/manifests/calico.yaml
  calico: "v3.32.2",
  // helm.cilium.io chart versions drop the v.
  cilium: "v1.20.2",
} as const;

export const CALICO_MANIFEST_URL = (version: string) =>
  `https://raw.githubusercontent.com/projectcalico/calico/${version}/manifests/calico.yaml`;
export const CILIUM_CHART_REPO = "https://helm.cilium.io";

export interface CniInstall {
  name: "calico" | "cilium";
  version: string;
  kubeProxyReplacement: boolean;
  /** Where its manifest comes from: a URL (cached under the cache dir) or `helm template` (run each time). */
  source: { kind: "url"; url: string } | { kind: "helm"; argv: string[] };
  /** The DaemonSet whose pods run on every node once the network is up. */
  agentDaemonSet: { namespace: string; name: string };
}

/** What installing `cni` on the kind cluster `kindName` takes; undefined for kind's own kindnet. */
export function cniInstall(
  cni: CniSpec | undefined,
  o: { kindName: string; kubeProxyReplacement?: boolean },
): CniInstall | undefined {
  if (!cni || cni.name === "default") return undefined;
  if (cni.name === "calico")
    return {
      name: "calico",
      version: cni.version ?? CNI_PINS.calico,
      kubeProxyReplacement: false,
      source: { kind: "url", url: CALICO_MANIFEST_URL(cni.version ?? CNI_PINS.calico) },
      agentDaemonSet: { namespace: "kube-system", name: "calico-node" },
    };
  const version = cni.version ?? CNI_PINS.cilium;
  const kpr = o.kubeProxyReplacement === true;
  const set = (k: string, v: string) => ["--set", `${k}=${v}`];
  return {
    name: "cilium",
    version,
    kubeProxyReplacement: kpr,
    source: {
      kind: "helm",
      argv: [
        "helm",
        "template",
        "cilium",
        "cilium",
        "--repo",
        CILIUM_CHART_REPO,
        "--version",
        version.replace(/^v/, ""),
        "--namespace",
        "kube-system",
        // Tags, not digests: `kind load docker-image` loads by tag (Cilium's kind guide does the same).
        ...set("image.useDigest", "false"),
        ...set("operator.image.useDigest", "false"),
        ...set("envoy.image.useDigest", "false"),
        ...set("image.pullPolicy", "IfNotPresent"),
        ...set("operator.replicas", "1"),
        ...set("ipam.mode", "kubernetes"),
        ...set("kubeProxyReplacement", String(kpr)),
        // Without kube-proxy, Cilium reaches the apiserver directly: the control-plane container's name
        // resolves on the kind network.
        ...(kpr
          ? [...set("k8sServiceHost", `${o.kindName}-control-plane`), ...set("k8sServicePort", "6443")]
          : []),
      ],
    },
    agentDaemonSet: { namespace: "kube-system", name: "cilium" },
  };
}

/**
 * The objects to apply. A URL's manifest is fetched once and kept in `cacheDir/cni/` (named by URL hash,
 * written whole or not at all); a chart is rendered by helm each time (helm caches the chart itself).
 */
export async function cniManifest(
  install: CniInstall,
  cacheDir: string,
  logger: Logger,
  fetchText: (url: string) => Promise<string> = fetchOk,
): Promise<{ text: string; objects: KubernetesObject[] }> {
  let text: string;
  if (install.source.kind === "url") {
    const url = install.source.url;
    const dir = join(cacheDir, "cni");
    const file = join(
      dir,
      `${install.name}-${install.version}-${createHash("sha256").update(url).digest("hex").slice(0, 8)}.yaml`,
    );
    try {
      text = await readFile(file, "utf8");
      logger.debug(`${install.name} ${install.version}: manifest cached in ${file}`);
    } catch {
      logger.info(`fetching ${url}`);
      text = await fetchText(url);
      await mkdir(dir, { recursive: true });
      await writeFile(`${file}.partial-${process.pid}`, text);
      await rename(`${file}.partial-${process.pid}`, file);
    }
  } else {
    text = (await run(install.source.argv, { logger, timeoutMs: 300_000 })).stdout;
  }
  const objects = parseAllDocuments(text)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null && typeof o === "object" && "kind" in o);
  if (!objects.some((o) => o.kind === "DaemonSet" && o.metadata?.name === install.agentDaemonSet.name))
    throw new TphError(
      `the ${install.name} ${install.version} manifest has no DaemonSet ${install.agentDaemonSet.name}: not the manifest expected`,
      { hint: "check the release exists (--cni NAME@VERSION) and the source is reachable" },
    );
  return { text, objects };
}

/** Every container image the manifest's workloads run, in order, each once. */
export function imagesOf(objects: KubernetesObject[]): string[] {
  const images = new Set<string>();
  for (const o of objects) {
    const template = (o as { spec?: { template?: V1PodTemplateSpec } }).spec?.template;
    for (const c of [...(template?.spec?.initContainers ?? []), ...(template?.spec?.containers ?? [])])
      if (c.image) images.add(c.image);
  }
  return [...images];
}

async function fetchOk(url: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (err) {
    throw new TphError(`cannot fetch ${url}: ${err instanceof Error ? err.message : err}`, {
      hint: "the CNI's manifest comes from its release; check the network, or put the file in the cache dir by hand",
    });
  }
  if (!res.ok)
    throw new TphError(`fetching ${url}: HTTP ${res.status}`, {
      hint: "a 404 means no such release: check --cni NAME@VERSION",
    });
  return res.text();
}
