import { describe, expect, it } from "vitest";
import { loadConfig, nodeCount, parseClusterFile } from "./config.ts";
import { UsageError } from "./errors.ts";

describe("loadConfig", () => {
  it("uses defaults, then TPH_* variables, then explicit overrides", () => {
    const env = { HOME: "/home/u", TPH_CLUSTER: "envname", TPH_NODE_SUBNET: "10.1.2.0/24" };
    expect(loadConfig({}, env)).toMatchObject({
      clusterName: "envname",
      provider: "local",
      stateDir: "/home/u/.local/state/tph",
      cacheDir: "/home/u/.cache/tph",
      cluster: { nodeSubnet: "10.1.2.0/24", podSubnet: "10.244.0.0/16" },
    });
    expect(loadConfig({ clusterName: "flag", cluster: { nodeSubnet: "10.9.9.0/24" } }, env)).toMatchObject({
      clusterName: "flag",
      cluster: { nodeSubnet: "10.9.9.0/24" },
    });
  });

  it("rejects bad names, providers and numbers with a usage error", () => {
    expect(() => loadConfig({ clusterName: "Has-Caps" }, {})).toThrow(UsageError);
    expect(() => loadConfig({ clusterName: "muchtoolong" }, {})).toThrow(/invalid cluster name/);
    expect(() => loadConfig({}, { TPH_PROVIDER: "minikube" })).toThrow(/unknown provider "minikube"/);
    expect(() => loadConfig({}, { TPH_READY_TIMEOUT: "-3" })).toThrow(/not a positive number/);
  });
});

describe("parseClusterFile", () => {
  it("reads zones, labels and the proxy mode", () => {
    const text = "proxyMode: nftables\nnodes:\n  - zone: zone-a\n  - labels: { example.com/rack: r2 }\n";
    expect(parseClusterFile(text, "c.yaml")).toEqual({
      proxyMode: "nftables",
      nodes: [{ zone: "zone-a" }, { labels: { "example.com/rack": "r2" } }],
    });
  });

  it("rejects what it does not understand, naming the file and the key", () => {
    expect(() => parseClusterFile("nodes: [ {zone: a, color: red} ]", "c.yaml")).toThrow(
      /c.yaml: nodes\[0\] has unknown key "color"/,
    );
    expect(() => parseClusterFile("workers: 3", "c.yaml")).toThrow(/unknown key "workers"/);
    expect(() => parseClusterFile("proxyMode: userspace", "c.yaml")).toThrow(
      /unknown kube-proxy mode "userspace"/,
    );
    expect(() => parseClusterFile("nodes: [", "c.yaml")).toThrow(/not valid YAML/);
    expect(() => parseClusterFile("- a", "c.yaml")).toThrow(UsageError);
  });
});

describe("nodeCount", () => {
  it("accepts 1-20 and refuses the rest", () => {
    expect(nodeCount("3")).toHaveLength(3);
    for (const bad of ["0", "21", "two", "1.5"])
      expect(() => nodeCount(bad)).toThrow(/whole number from 1 to 20/);
  });
});

describe("kube-proxy configuration patches", () => {
  it("merge over the harness's settings: objects merge, null deletes, the rest replaces", async () => {
    const { mergePatch } = await import("./config.ts");
    expect(
      mergePatch(
        { mode: "iptables", conntrack: { maxPerCore: 0, tcpBeLiberal: true }, nodePortAddresses: ["a"] },
        { conntrack: { tcpBeLiberal: null, udpTimeout: "30s" }, nodePortAddresses: ["primary"] },
      ),
    ).toEqual({
      mode: "iptables",
      conntrack: { maxPerCore: 0, udpTimeout: "30s" },
      nodePortAddresses: ["primary"],
    });
  });

  it("refuse what the harness owns, and come from a file or the cluster file", async () => {
    const { parseKubeProxyConfig, parseClusterFile } = await import("./config.ts");
    expect(() => parseKubeProxyConfig({ hostnameOverride: "x", mode: "ipvs" }, "p.yaml")).toThrow(
      /p.yaml: hostnameOverride, mode are set by tph/,
    );
    expect(() => parseKubeProxyConfig(["a"], "p.yaml")).toThrow(/must be a mapping/);
    // A whole KubeProxyConfiguration document works too.
    expect(
      parseKubeProxyConfig(
        {
          apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
          kind: "KubeProxyConfiguration",
          detectLocalMode: "NodeCIDR",
        },
        "p.yaml",
      ),
    ).toEqual({ detectLocalMode: "NodeCIDR" });
    expect(
      parseClusterFile("kubeProxyConfig:\n  detectLocalMode: NodeCIDR\n", "c.yaml").kubeProxyConfig,
    ).toEqual({
      detectLocalMode: "NodeCIDR",
    });
  });
});
