import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config.ts";
import { unmetNeeds } from "../provider.ts";
import { kubeconfigProvider, modeOfKubeProxyConf } from "./provider.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tph-kubeconfig-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:1" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: staging, context: { cluster: c, user: u } }]
current-context: staging
`;

describe("the kubeconfig provider", () => {
  it("never creates clusters, and disrupts nodes only when allowed", () => {
    const config = loadConfig({ provider: "kubeconfig" }, {});
    const caps = kubeconfigProvider.capabilities(config);
    expect(caps.createClusters).toBe(false);
    expect(unmetNeeds("kubeconfig", caps, ["nodeDisruption"])).toBe(
      "needs nodeDisruption (cordon, drain and taint nodes): provider kubeconfig cannot",
    );
    expect(unmetNeeds("kubeconfig", caps, ["nodePower", "kubeProxyReleases"])).toMatch(
      /needs nodePower .*, kubeProxyReleases/,
    );
    const allowed = loadConfig({ provider: "kubeconfig" }, { TPH_ALLOW_DISRUPTION: "1" });
    expect(kubeconfigProvider.capabilities(allowed).nodeDisruption).toBe(true);
  });

  it("says clearly when the kubeconfig, its context or its cluster is not there", async () => {
    const missing = loadConfig({ provider: "kubeconfig", target: { kubeconfig: join(dir, "nope") } }, {});
    await expect(kubeconfigProvider.preflight(missing)).rejects.toThrow(/cannot read the kubeconfig .*nope/);
    const file = join(dir, "kubeconfig");
    await writeFile(file, KUBECONFIG);
    const badContext = loadConfig(
      { provider: "kubeconfig", target: { kubeconfig: file, context: "prod" } },
      {},
    );
    await expect(kubeconfigProvider.preflight(badContext)).rejects.toThrow(/has no context prod/);
    const unreachable = loadConfig({ provider: "kubeconfig", target: { kubeconfig: file } }, {});
    await expect(kubeconfigProvider.preflight(unreachable)).rejects.toThrow(/cannot reach the cluster of/);
    await expect(kubeconfigProvider.up(unreachable, { logger: undefined as never })).rejects.toThrow(
      /never creates one/,
    );
  });

  it("refuses release and configuration options: it tests the cluster as it is", async () => {
    const asked = loadConfig(
      {
        provider: "kubeconfig",
        target: { kubeconfig: join(dir, "nope") },
        cluster: { kubernetesVersion: "v1.36.3", metallbVersion: "v0.15.2", cni: { name: "calico" } },
      },
      {},
    );
    await expect(kubeconfigProvider.preflight(asked)).rejects.toThrow(
      /^--kubernetes-version, --metallb-version, --cni: the kubeconfig provider tests the cluster as it is/,
    );
  });

  it("reads kube-proxy's mode as kubeadm publishes it", () => {
    expect(modeOfKubeProxyConf("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nmode: nftables\n")).toBe(
      "nftables",
    );
    expect(modeOfKubeProxyConf('mode: "ipvs"\n')).toBe("ipvs");
    expect(modeOfKubeProxyConf('mode: ""\nkind: KubeProxyConfiguration\n')).toBe("iptables");
    expect(modeOfKubeProxyConf("kind: KubeProxyConfiguration\n")).toBe("iptables");
  });
});
