import { existsSync } from "node:fs";
import { mkdtemp, readFile, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { loadConfig, parseCni } from "../../core/config.ts";
import { TphError } from "../../core/errors.ts";
import { createMemoryLogger } from "../../core/logger.ts";
import { loadManifest } from "../../metallb/manifests.ts";
import { type CniInstall, cniInstall, cniManifest, imagesOf } from "./cni.ts";
import { kindConfig, V1ALPHA4_FIELDS } from "./config.ts";
import { createKindProvider, PRELOAD_IMAGES } from "./provider.ts";
import { type FakeKind, pathOf, startFakeApiServer } from "./testdata/fake-apiserver.ts";

/**
 * kind cannot run on our machines (no Docker engine), so these tests put fake `kind` and `docker`
 * programs on PATH (testdata/fake-cli.sh) and check the exact commands the provider runs, its config,
 * its cleanup on failure and its gc. The real thing runs in the users' GitHub workflow.
 */
let fakeDir: string;
let log: string;
let stateDir: string;
const saved = { ...process.env };

beforeEach(async () => {
  fakeDir = await mkdtemp(join(tmpdir(), "tph-fake-"));
  stateDir = await mkdtemp(join(tmpdir(), "tph-kind-state-"));
  log = join(fakeDir, "calls.log");
  for (const prog of ["kind", "docker"])
    await symlink(join(import.meta.dirname, "testdata/fake-cli.sh"), join(fakeDir, prog));
  process.env.PATH = `${fakeDir}:/usr/bin:/bin`;
  process.env.TPH_FAKE_LOG = log;
});

afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

async function calls(): Promise<string[][]> {
  if (!existsSync(log)) return [];
  return (await readFile(log, "utf8"))
    .trim()
    .split("\n")
    .map((l) => l.split("\t"));
}

const neverClient = { start: async () => expect.fail("the client must not start in this test") };
const config = () =>
  loadConfig(
    { provider: "kind", clusterName: "x", stateDir, cluster: { nodes: [{ zone: "a" }, { zone: "b" }] } },
    {},
  );

describe("kind provider preflight", () => {
  it("without docker: a clear error and nothing run", async () => {
    process.env.PATH = "/usr/bin:/bin";
    const err = await createKindProvider(neverClient)
      .up(config(), { logger: createMemoryLogger() })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TphError);
    expect((err as TphError).message).toBe("`docker` is not installed (needed by --provider kind)");
    expect(existsSync(join(stateDir, "x"))).toBe(false);
  });

  it("with the Docker daemon down: says so, with what to do", async () => {
    process.env.FAKE_DOCKER_DOWN = "1";
    const err = (await createKindProvider(neverClient)
      .preflight(config())
      .catch((e: unknown) => e)) as TphError;
    expect(err.message).toMatch(
      /^Docker is not running or not reachable: Cannot connect to the Docker daemon/,
    );
    expect(err.hint).toMatch(/start the Docker daemon/);
  });
});

describe("kind provider up", () => {
  it("runs kind with the generated config, and deletes the cluster when creation fails", async () => {
    process.env.FAKE_KIND_CREATE_FAIL = "node(s) already exist for a cluster with the name";
    const logger = createMemoryLogger();
    const err = await createKindProvider(neverClient)
      .up(config(), { logger })
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/command exited 1: kind create cluster --name tph-x /);
    expect((err as Error).message).toMatch(/failed to create cluster: node\(s\) already exist/);
    const dir = join(stateDir, "x");
    expect(await calls()).toEqual([
      ["docker", "version", "--format", "{{.Server.Version}}"],
      ["kind", "get", "clusters"],
      [
        "kind",
        "create",
        "cluster",
        "--name",
        "tph-x",
        "--config",
        `${dir}/kind-config.yaml`,
        "--kubeconfig",
        `${dir}/kubeconfig`,
        "--wait",
        "5m",
      ],
      ["kind", "delete", "cluster", "--name", "tph-x"],
    ]);
    // Nothing left: the state directory (with the config it wrote) is gone too.
    expect(existsSync(dir)).toBe(false);
  });

  it("refuses a cluster name kind already has, before creating anything", async () => {
    process.env.FAKE_KIND_CLUSTERS = "tph-x\nkind\n";
    const err = (await createKindProvider(neverClient)
      .up(config(), { logger: createMemoryLogger() })
      .catch((e: unknown) => e)) as TphError;
    expect(err.message).toBe("a kind cluster named tph-x already exists");
    expect((await calls()).map((c) => c.slice(0, 3).join(" "))).toEqual([
      "docker version --format",
      "kind get clusters",
    ]);
  });

  it("validates its options before any side effect", async () => {
    expect(() =>
      loadConfig(
        { provider: "kind", clusterName: "x", stateDir, cluster: { kubernetesVersion: "1.35" } },
        {},
      ),
    ).toThrow(/"1.35" is not a Kubernetes release/);
    const bad = loadConfig(
      {
        provider: "kind",
        clusterName: "x",
        stateDir,
        cluster: { nodes: Array.from({ length: 11 }, () => ({})) },
      },
      {},
    );
    await expect(createKindProvider(neverClient).up(bad, { logger: createMemoryLogger() })).rejects.toThrow(
      /kind clusters here take 1 to 10 workers/,
    );
    expect((await calls()).map((c) => c.slice(0, 2).join(" "))).toEqual(["docker version"]);
  });
});

/** The kinds a kind bring-up applies (MetalLB's manifest and pool, `extra`) and the cluster's methods read. */
async function fakeKinds(
  extra: { apiVersion?: string; kind?: string; metadata?: { namespace?: string } }[] = [],
) {
  const manifest = await loadManifest(config().repoRoot);
  const kinds = new Map<string, FakeKind>();
  for (const o of [...manifest, ...extra])
    kinds.set(`${o.apiVersion} ${o.kind}`, {
      apiVersion: o.apiVersion ?? "",
      kind: o.kind ?? "",
      namespaced: o.metadata?.namespace !== undefined,
    });
  for (const k of [
    { apiVersion: "metallb.io/v1beta1", kind: "IPAddressPool", namespaced: true },
    { apiVersion: "metallb.io/v1beta1", kind: "L2Advertisement", namespaced: true },
    { apiVersion: "v1", kind: "Node", namespaced: false },
    { apiVersion: "apps/v1", kind: "DaemonSet", namespaced: true },
  ])
    kinds.set(`${k.apiVersion} ${k.kind}`, k);
  return { manifest, kinds };
}

describe("kind provider up, to the end", () => {
  it("creates, loads images, starts the client, installs MetalLB with a pool; then the cluster's methods work and delete leaves nothing", async () => {
    // Discovery for every kind bring-up applies, plus what the cluster's methods read.
    const { manifest, kinds } = await fakeKinds();
    const node = (name: string, labels: Record<string, string>, ip: string) => ({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, labels: { "kubernetes.io/hostname": name, ...labels } },
      status: {
        addresses: [{ type: "InternalIP", address: ip }],
        conditions: [{ type: "Ready", status: "True" }],
      },
    });
    const api = await startFakeApiServer(
      [...kinds.values()],
      [
        node("tph-x-control-plane", { "node-role.kubernetes.io/control-plane": "" }, "172.18.0.3"),
        node("tph-x-worker", { "topology.kubernetes.io/zone": "a" }, "172.18.0.2"),
        node("tph-x-worker2", { "topology.kubernetes.io/zone": "b" }, "172.18.0.4"),
        {
          apiVersion: "apps/v1",
          kind: "DaemonSet",
          metadata: { name: "kube-proxy", namespace: "kube-system" },
          spec: {
            template: {
              spec: { containers: [{ name: "kube-proxy", image: "registry.k8s.io/kube-proxy:v1.37.2" }] },
            },
          },
        },
      ],
    );
    try {
      process.env.FAKE_KIND_API = api.url;
      const started: string[] = [];
      const client = {
        start: async (name: string) => {
          started.push(name);
          return { id: "c0ffee", ip: "172.18.0.9" };
        },
      };
      const logger = createMemoryLogger();
      const cluster = await createKindProvider(client).up(config(), { logger });
      const dir = join(stateDir, "x");

      // What it ran, in order: kind's own steps and image loading, nothing else.
      const made = (await calls()).map((c) => c.join(" "));
      expect(made).toEqual([
        "docker version --format {{.Server.Version}}",
        "kind get clusters",
        `kind create cluster --name tph-x --config ${dir}/kind-config.yaml --kubeconfig ${dir}/kubeconfig --wait 5m`,
        ...PRELOAD_IMAGES.flatMap((image) => [
          `docker image inspect ${image}`,
          `kind load docker-image ${image} --name tph-x`,
        ]),
        "docker network inspect kind",
        "docker network inspect kind",
      ]);
      expect(started).toEqual(["x"]);

      // MetalLB: every object of the pinned manifest applied, then a pool on the kind network and its L2Advertisement.
      for (const o of manifest) {
        const k = kinds.get(`${o.apiVersion} ${o.kind}`) as FakeKind;
        expect(api.requests).toContain(`PATCH ${pathOf(k, o.metadata?.name ?? "", o.metadata?.namespace)}`);
      }
      const pool = api.objects.get(
        "/apis/metallb.io/v1beta1/namespaces/metallb-system/ipaddresspools/tph-pool",
      );
      const range = (pool?.spec as { addresses?: string[] } | undefined)?.addresses?.[0] ?? "";
      expect(range).toMatch(/^172\.18\.\d+\.\d+-172\.18\.\d+\.\d+$/);
      // Never an address docker handed out (nodes, gateway, the client container).
      for (const used of ["172.18.0.1", "172.18.0.2", "172.18.0.3", "172.18.0.9"])
        expect(range.split("-")).not.toContain(used);
      expect(
        api.objects.get("/apis/metallb.io/v1beta1/namespaces/metallb-system/l2advertisements/tph-pool")?.spec,
      ).toEqual({
        ipAddressPools: ["tph-pool"],
      });
      const state = JSON.parse(await readFile(join(dir, "state.json"), "utf8"));
      expect(state).toMatchObject({
        phase: "ready",
        kindName: "tph-x",
        client: { id: "c0ffee", ip: "172.18.0.9" },
      });
      expect(cluster.network).toEqual({
        subnet: "172.18.0.0/16",
        loadBalancerRange: range,
        clientIP: "172.18.0.9",
      });

      // The cluster's methods, through the API kind's kubeconfig points at.
      expect(await cluster.nodes()).toEqual([
        { name: "tph-x-worker", role: "worker", internalIP: "172.18.0.2", zone: "a" },
        { name: "tph-x-worker2", role: "worker", internalIP: "172.18.0.4", zone: "b" },
      ]);
      expect(await cluster.kubeProxyRelease?.()).toEqual({
        version: "v1.37.2",
        ref: "registry.k8s.io/kube-proxy:v1.37.2",
      });
      await cluster.nodeOps?.stop("tph-x-worker");
      await cluster.nodeOps?.start("tph-x-worker");
      expect((await calls()).slice(-2).map((c) => c.join(" "))).toEqual([
        "docker stop tph-x-worker",
        "docker start tph-x-worker",
      ]);
      expect(api.requests).toContain("GET /api/v1/nodes/tph-x-worker");
      await cluster.nodeOps?.stopKubelet("tph-x-worker2");
      await cluster.nodeOps?.startKubelet("tph-x-worker2");
      expect((await calls()).slice(-2).map((c) => c.join(" "))).toEqual([
        "docker exec tph-x-worker2 systemctl stop kubelet",
        "docker exec tph-x-worker2 systemctl start kubelet",
      ]);

      await cluster.delete();
      expect((await calls()).slice(-2).map((c) => c.join(" "))).toEqual([
        "kind delete cluster --name tph-x",
        "docker ps -aq --filter label=tph.cluster=x",
      ]);
      expect(existsSync(dir)).toBe(false);
    } finally {
      await api.close();
    }
  });
});

describe("kind provider gc", () => {
  it("deletes tph clusters without a live owner and orphaned client containers, nothing else", async () => {
    process.env.FAKE_KIND_CLUSTERS = "tph-dead\nmy-own-cluster\n";
    process.env.FAKE_DOCKER_PS = "dead\n";
    const removed = await createKindProvider(neverClient).gc(config(), { logger: createMemoryLogger() });
    expect(removed).toEqual(["kind cluster tph-dead (no state)"]);
    const made = (await calls()).map((c) => c.join(" "));
    expect(made).toContain("kind delete cluster --name tph-dead");
    expect(made.filter((c) => c.includes("my-own-cluster"))).toEqual([]);
    expect(made).toContain("docker ps -aq --filter label=tph.cluster=dead");
  });
});

describe("kindConfig", () => {
  it("emits only v1alpha4 fields, zones as node labels, one control plane", () => {
    const c = kindConfig("tph-x", {
      workers: 3,
      proxyMode: "nftables",
      zones: ["a", "b"],
      kubernetesVersion: "v1.35.1",
    });
    expect(Object.keys(c).every((k) => (V1ALPHA4_FIELDS.cluster as readonly string[]).includes(k))).toBe(
      true,
    );
    const nodes = c.nodes as Record<string, unknown>[];
    for (const n of nodes)
      expect(Object.keys(n).every((k) => (V1ALPHA4_FIELDS.node as readonly string[]).includes(k))).toBe(true);
    expect(nodes.map((n) => n.role)).toEqual(["control-plane", "worker", "worker", "worker"]);
    expect(
      nodes.map((n) => (n.labels as Record<string, string> | undefined)?.["topology.kubernetes.io/zone"]),
    ).toEqual([undefined, "a", "b", undefined]);
    expect(nodes.every((n) => n.image === "kindest/node:v1.35.1")).toBe(true);
    expect(c.networking).toEqual({ kubeProxyMode: "nftables" });
  });

  it("sets strictARP for ipvs (MetalLB L2 needs it) and can drop the default CNI", () => {
    const c = kindConfig("tph-x", { workers: 1, proxyMode: "ipvs", disableDefaultCNI: true });
    expect(c.networking).toEqual({ kubeProxyMode: "ipvs", disableDefaultCNI: true });
    const patch = parse((c.kubeadmConfigPatches as string[])[0] ?? "");
    expect(patch).toMatchObject({ kind: "KubeProxyConfiguration", ipvs: { strictARP: true } });
  });

  it("passes the user's kube-proxy configuration patch to kubeadm, over strictARP", () => {
    const c = kindConfig("tph-x", {
      workers: 1,
      proxyMode: "ipvs",
      kubeProxyConfig: { detectLocalMode: "NodeCIDR", ipvs: { scheduler: "wrr" } },
    });
    const patch = parse((c.kubeadmConfigPatches as string[])[0] ?? "");
    expect(patch).toEqual({
      kind: "KubeProxyConfiguration",
      apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
      ipvs: { strictARP: true, scheduler: "wrr" },
      detectLocalMode: "NodeCIDR",
    });
    expect(kindConfig("tph-x", { workers: 1, proxyMode: "iptables" }).kubeadmConfigPatches).toBeUndefined();
  });

  it("refuses bad input with a usage error", () => {
    expect(() => kindConfig("tph-x", { workers: 0, proxyMode: "iptables" })).toThrow(/1 to 10 workers/);
    expect(() => kindConfig("tph-x", { workers: 1, proxyMode: "iptables", zones: ["bad zone"] })).toThrow(
      /not a valid label value/,
    );
    expect(() =>
      kindConfig("tph-x", {
        workers: 1,
        proxyMode: "iptables",
        kubernetesVersion: "v1.35.1",
        nodeImage: "x",
      }),
    ).toThrow(/not both/);
  });
});

describe("kind provider --retain", () => {
  it("keeps a failed cluster and says how to delete it", async () => {
    process.env.FAKE_KIND_CREATE_FAIL = "boom";
    const logger = createMemoryLogger();
    await expect(createKindProvider(neverClient).up(config(), { logger, retain: true })).rejects.toThrow(
      /kind create cluster/,
    );
    expect((await calls()).map((c) => c.slice(0, 2).join(" "))).not.toContain("kind delete");
    expect(existsSync(join(stateDir, "x", "kind-config.yaml"))).toBe(true);
    expect(logger.lines.join("\n")).toMatch(
      /--retain: kept the failed cluster; remove it with: tph down --provider kind --name x/,
    );
  });
});

describe("kind traffic sources", () => {
  it("runs the probe in the client container and, for pods, with kubectl exec into a probe client", async () => {
    const { mkdir, writeFile } = await import("node:fs/promises");
    await mkdir(join(stateDir, "x"), { recursive: true });
    const state = {
      name: "x",
      provider: "kind",
      phase: "ready",
      ownerPid: process.pid,
      kindName: "tph-x",
      kubeconfig: join(stateDir, "x", "kubeconfig"),
      client: { id: "c0ffee", ip: "172.18.0.9" },
      proxyMode: "iptables",
    };
    await writeFile(join(stateDir, "x", "state.json"), JSON.stringify(state));
    const cluster = await createKindProvider(neverClient).attach(config(), createMemoryLogger());
    if (!cluster) return expect.fail("attach found no cluster");
    expect(await cluster.probeArgv({ kind: "external" })).toEqual([
      "docker",
      "exec",
      "-i",
      "c0ffee",
      "node",
      "/tph/probe.ts",
    ]);
    expect(await cluster.probeArgv({ kind: "pod", namespace: "ns1", name: "tph-probe-abc" })).toEqual([
      "kubectl",
      `--kubeconfig=${state.kubeconfig}`,
      "exec",
      "-i",
      "--namespace=ns1",
      "tph-probe-abc",
      "--container=probe",
      "--",
      "node",
      "/tph/probe.ts",
    ]);
  });
});

describe("kind provider with --cni", () => {
  const withCni = (cni: string, kpr = false) =>
    loadConfig(
      {
        provider: "kind",
        clusterName: "x",
        stateDir,
        cacheDir: join(stateDir, "cache"),
        cluster: { nodes: [{}, {}], cni: parseCni(cni, "--cni"), ...(kpr && { kubeProxyReplacement: true }) },
      },
      {},
    );

  it("cilium with kube-proxy replacement: no kube-proxy, the chart rendered at the pinned release, its images loaded, applied before MetalLB and waited for", async () => {
    await symlink(join(import.meta.dirname, "testdata/fake-cli.sh"), join(fakeDir, "helm"));
    const rendered = parseAllDocuments(
      await readFile(join(import.meta.dirname, "testdata/cilium-template.yaml"), "utf8"),
    ).map((d) => d.toJS());
    const { kinds } = await fakeKinds(rendered);
    const api = await startFakeApiServer(
      [...kinds.values()],
      [
        {
          apiVersion: "v1",
          kind: "Node",
          metadata: { name: "tph-x-worker" },
          status: { conditions: [{ type: "Ready", status: "True" }] },
        },
      ],
    );
    try {
      process.env.FAKE_KIND_API = api.url;
      const config = withCni("cilium", true);
      const provider = createKindProvider({ start: async () => ({ id: "c0ffee", ip: "172.18.0.9" }) });
      // No kube-proxy to restart or replace: the suites that need one skip.
      expect(provider.capabilities(config).kubeProxyReleases).toBe(false);
      const cluster = await provider.up(config, { logger: createMemoryLogger() });
      const dir = join(stateDir, "x");

      const kindYaml = parse(await readFile(join(dir, "kind-config.yaml"), "utf8"));
      expect(kindYaml.networking).toEqual({ kubeProxyMode: "none", disableDefaultCNI: true });
      expect(kindYaml.kubeadmConfigPatches).toBeUndefined();

      const made = (await calls()).map((c) => c.join(" "));
      const at = (prefix: string) => made.findIndex((c) => c.startsWith(prefix));
      // kind's --wait would wait for nodes that are Ready only once the CNI runs: the provider waits itself.
      expect(made[at("kind create cluster")]).not.toContain("--wait");
      expect(made[at("helm template")]).toBe(
        [
          "helm template cilium cilium --repo https://helm.cilium.io --version 1.20.2 --namespace kube-system",
          "--set image.useDigest=false --set operator.image.useDigest=false --set envoy.image.useDigest=false",
          "--set image.pullPolicy=IfNotPresent --set operator.replicas=1 --set ipam.mode=kubernetes",
          "--set kubeProxyReplacement=true --set k8sServiceHost=tph-x-control-plane --set k8sServicePort=6443",
        ].join(" "),
      );
      // Its images by tag, each once; the digest-pinned one is left to the nodes.
      const loaded = made.filter((c) => c.startsWith("kind load docker-image")).map((c) => c.split(" ")[3]);
      expect(loaded).toEqual([
        "quay.io/cilium/cilium:v1.20.2",
        "quay.io/cilium/operator-generic:v1.20.2",
        ...PRELOAD_IMAGES,
      ]);
      // Applied as rendered (kept beside the kind config), and waited for, before MetalLB.
      expect(await readFile(join(dir, "cilium-v1.20.2.yaml"), "utf8")).toContain("name: cilium-operator");
      const ds = api.requests.indexOf("PATCH /apis/apps/v1/namespaces/kube-system/daemonsets/cilium");
      const waited = api.requests.indexOf("GET /apis/apps/v1/namespaces/kube-system/daemonsets/cilium");
      const metallb = api.requests.findIndex((r) => r.includes("metallb-system"));
      expect(ds).toBeGreaterThan(-1);
      expect(waited).toBeGreaterThan(ds);
      expect(metallb).toBeGreaterThan(waited);
      expect(api.requests).toContain("GET /api/v1/nodes");
      expect(cluster.versions).toMatchObject({ proxyMode: "none", cni: "cilium" });
      await cluster.delete();
    } finally {
      await api.close();
    }
  });

  it("without helm, cilium stops in the preflight naming it; calico needs none", async () => {
    const err = (await createKindProvider(neverClient)
      .preflight(withCni("cilium@v1.19.0"))
      .catch((e: unknown) => e)) as TphError;
    expect(err.message).toBe("`helm` is not installed (needed by --provider kind)");
    expect(err.hint).toMatch(/renders Cilium's chart/);
    await createKindProvider(neverClient).preflight(withCni("calico"));
  });

  it("calico: the release's manifest, fetched once and then read from the cache; a wrong one is refused", async () => {
    const install = cniInstall(parseCni("calico@v3.31.3", "--cni"), { kindName: "tph-x" });
    expect(install?.source).toEqual({
      kind: "url",
      url: "https://raw.githubusercontent.com/projectcalico/calico/v3.31.3/manifests/calico.yaml",
    });
    const fetched: string[] = [];
    const manifest = [
      "apiVersion: apps/v1",
      "kind: DaemonSet",
      "metadata: { name: calico-node, namespace: kube-system }",
      "spec:",
      "  template:",
      "    spec:",
      "      initContainers: [{ name: install-cni, image: docker.io/calico/cni:v3.31.3 }]",
      "      containers: [{ name: calico-node, image: docker.io/calico/node:v3.31.3 }]",
      "---",
      "apiVersion: apps/v1",
      "kind: Deployment",
      "metadata: { name: calico-kube-controllers, namespace: kube-system }",
      "spec: { template: { spec: { containers: [{ name: c, image: docker.io/calico/kube-controllers:v3.31.3 }] } } }",
    ].join("\n");
    const fetchText = async (url: string) => {
      fetched.push(url);
      return manifest;
    };
    const cache = join(stateDir, "cache");
    const logger = createMemoryLogger();
    const first = await cniManifest(install as CniInstall, cache, logger, fetchText);
    const second = await cniManifest(install as CniInstall, cache, logger, fetchText);
    expect(fetched).toHaveLength(1);
    expect(second.text).toBe(first.text);
    expect(imagesOf(first.objects)).toEqual([
      "docker.io/calico/cni:v3.31.3",
      "docker.io/calico/node:v3.31.3",
      "docker.io/calico/kube-controllers:v3.31.3",
    ]);
    // A page that is not the manifest (a proxy's error page, another file) is refused, not applied.
    const other = cniInstall(parseCni("calico@v3.31.4", "--cni"), { kindName: "tph-x" }) as CniInstall;
    await expect(
      cniManifest(other, cache, logger, async () => "kind: ConfigMap\napiVersion: v1\n"),
    ).rejects.toThrow(/the calico v3.31.4 manifest has no DaemonSet calico-node/);
  });

  it("kube-proxy replacement is Cilium's, and the default CNI takes no version", () => {
    expect(() => withCni("calico", true)).toThrow(
      /kube-proxy replacement is Cilium's: it needs --cni cilium/,
    );
    expect(() => parseCni("default@v1.0.0", "--cni")).toThrow(/the default CNI takes no version/);
    expect(() => parseCni("flannel", "--cni")).toThrow(/unknown CNI "flannel"/);
    expect(() => parseCni("cilium@1.20", "--cni")).toThrow(/not of the form vX.Y.Z/);
    expect(() =>
      kindConfig("tph-x", { workers: 1, proxyMode: "iptables", kubeProxyReplacement: true }),
    ).toThrow(/needs a CNI that replaces it/);
  });
});
