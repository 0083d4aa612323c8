import { createHash } from "node:crypto";
import { access, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { HarnessConfig } from "../../core/config.ts";
import { TphError, UsageError } from "../../core/errors.ts";
import { CommandError, run, which } from "../../core/exec.ts";
import type { Logger } from "../../core/logger.ts";
import { pidAlive } from "../../core/pid.ts";
import { minorOf } from "../../core/releases.ts";
import { takeTurn } from "../../core/turn-lock.ts";

/**
 * The upstream binaries of the local provider, built from the Go module proxy. Each Go module under
 * upstream/ pins one upstream release (its go.mod is the single source of the version); a module's
 * binaries are built together and cached in a directory named by version and a hash of go.mod + go.sum,
 * so a changed pin rebuilds and an unchanged one is reused. Every cluster needs the core modules; the
 * others (the previous release's kube-proxy) are built only when a suite asks for them.
 */
export type BinaryName =
  | "etcd"
  | "kube-apiserver"
  | "kube-controller-manager"
  | "kube-scheduler"
  | "kube-proxy"
  | "agnhost"
  | "metallb-controller"
  | "speaker"
  | "loopback"
  | "ptp"
  | "host-local"
  | "portmap";

/** Built on demand only: a cluster runs without them. */
export type ExtraBinaryName = "kube-proxy-previous";

interface UpstreamModule {
  /** Folder under upstream/ (or the name of a pin generated into the cache, see `root`). */
  dir: string;
  /** The module's folder when it is not under upstream/ (a release pinned on demand, in the cache). */
  root?: string;
  /** The module whose `require` line carries the pinned version. */
  pinned: string;
  /** Main package -> the binary name it is installed as. */
  packages: Record<string, BinaryName | ExtraBinaryName>;
  /** Every cluster needs it (built before any bring-up); otherwise built when first asked for. */
  core: boolean;
  /** Extra -X flags, given the version. */
  versionFlags(version: string): string[];
}

/** Without these, /version reports v0.0.0-master and compatibility versioning misbehaves. */
function kubernetesVersionFlags(version: string): string[] {
  const [major, minor] = version.replace(/^v/, "").split(".");
  const pkg = "k8s.io/component-base/version";
  return [
    `-X ${pkg}.gitVersion=${version}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
    `-X ${pkg}.buildDate=1970-01-01T00:00:00Z`,
  ];
}

const MODULES: readonly UpstreamModule[] = [
  {
    dir: "etcd",
    pinned: "go.etcd.io/etcd/server/v3",
    packages: { "go.etcd.io/etcd/server/v3": "etcd" },
    core: true,
    versionFlags: () => [],
  },
  {
    dir: "kubernetes",
    pinned: "k8s.io/kubernetes",
    packages: {
      "k8s.io/kubernetes/cmd/kube-apiserver": "kube-apiserver",
      "k8s.io/kubernetes/cmd/kube-controller-manager": "kube-controller-manager",
      "k8s.io/kubernetes/cmd/kube-scheduler": "kube-scheduler",
      "k8s.io/kubernetes/cmd/kube-proxy": "kube-proxy",
      "k8s.io/kubernetes/test/images/agnhost": "agnhost",
    },
    core: true,
    versionFlags: kubernetesVersionFlags,
  },
  {
    // The kube-proxy of the previous minor release: what the kube-proxy version roll suite rolls between.
    dir: "kube-proxy-previous",
    pinned: "k8s.io/kubernetes",
    packages: { "k8s.io/kubernetes/cmd/kube-proxy": "kube-proxy-previous" },
    core: false,
    versionFlags: kubernetesVersionFlags,
  },
  {
    dir: "metallb",
    pinned: "go.universe.tf/metallb",
    packages: {
      "go.universe.tf/metallb/controller": "metallb-controller",
      "go.universe.tf/metallb/speaker": "speaker",
    },
    core: true,
    versionFlags: (version) => [`-X go.universe.tf/metallb/internal/version.version=${version}`],
  },
  {
    // The CNI reference plugins the node agent attaches pods with, installed under their types' names
    // (the folder is CNI_PATH).
    dir: "cni-plugins",
    pinned: "github.com/containernetworking/plugins",
    packages: {
      "github.com/containernetworking/plugins/plugins/main/loopback": "loopback",
      "github.com/containernetworking/plugins/plugins/main/ptp": "ptp",
      "github.com/containernetworking/plugins/plugins/ipam/host-local": "host-local",
      "github.com/containernetworking/plugins/plugins/meta/portmap": "portmap",
    },
    core: true,
    versionFlags: (version) => [
      `-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=${version}`,
    ],
  },
];

export interface BinarySet {
  paths: Record<BinaryName, string>;
  /** The MetalLB manifest of another release than the pinned one (metallb/metallb-native.yaml). */
  metallbManifest?: string;
  /** Pinned upstream versions, e.g. { kubernetes: "v1.37.2", etcd: "v3.6.16", metallb: "v0.16.1" }. */
  versions: Record<string, string>;
}

/** Reads the pinned versions from upstream/<module>/go.mod. */
export async function pinnedVersions(repoRoot: string): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  for (const m of MODULES) versions[m.dir] = (await readPin(repoRoot, m)).version;
  return versions;
}

/** Returns the cached core binaries (what every cluster runs), building whatever is missing. */
export async function ensureBinaries(
  config: HarnessConfig,
  logger: Logger,
  options: { signal?: AbortSignal; rebuild?: boolean } = {},
): Promise<BinarySet> {
  const paths = {} as Record<BinaryName, string>;
  const versions: Record<string, string> = {};
  const built = await ensureModules(config, await coreModules(config, logger), logger, options);
  for (const b of built) {
    versions[b.module.dir] = b.version;
    for (const [name, path] of Object.entries(b.paths)) paths[name as BinaryName] = path;
  }
  return { paths, versions };
}

/** An on-demand binary (built the first time a suite asks for it, then cached) and its release. */
export async function ensureExtraBinary(
  config: HarnessConfig,
  name: ExtraBinaryName,
  logger: Logger,
  options: { signal?: AbortSignal; rebuild?: boolean } = {},
): Promise<{ path: string; version: string }> {
  const m = MODULES.find((x) => Object.values(x.packages).includes(name)) as UpstreamModule;
  const [built] = await ensureModules(config, [m], logger, options);
  return { path: built?.paths[name] as string, version: built?.version as string };
}

/**
 * The modules every cluster of `config` runs: the pinned ones, with Kubernetes replaced by the release
 * `config.cluster.kubernetesVersion` names when it is another one (pinned into the cache on demand, the
 * way kube-proxy releases are; `logger` given: pinned now if it is not yet).
 */
async function coreModules(config: HarnessConfig, logger?: Logger): Promise<UpstreamModule[]> {
  const core = MODULES.filter((m) => m.core);
  const version = config.cluster.kubernetesVersion;
  if (!version || version === (await pinnedVersions(config.repoRoot)).kubernetes) return core;
  const pinned = MODULES.find((m) => m.dir === "kubernetes") as UpstreamModule;
  const root = join(config.cacheDir, "pins", `kubernetes-${version}`);
  if (logger && !(await allExist(root, ["go.mod", "go.sum"])))
    await pinRelease(config, `Kubernetes ${version}`, version, root, Object.keys(pinned.packages), logger);
  return core.map((m) => (m === pinned ? { ...pinned, root } : m));
}

/**
 * The core modules whose binaries are not cached yet: what `ensureBinaries` would build (a Kubernetes
 * release not pinned yet counts as one to build, under the name it will have).
 */
export async function modulesToBuild(config: HarnessConfig): Promise<string[]> {
  const missing: string[] = [];
  for (const m of await coreModules(config)) {
    const pin = await readPin(config.repoRoot, m).catch(() => undefined);
    if (!pin || !(await allExist(moduleDir(config, m, pin), Object.values(m.packages)))) missing.push(m.dir);
  }
  return missing;
}

function moduleDir(config: HarnessConfig, m: UpstreamModule, pin: { version: string; hash: string }): string {
  return join(config.cacheDir, "bin", `${m.dir}-${pin.version}-${pin.hash}`);
}

interface BuiltModule {
  module: UpstreamModule;
  version: string;
  paths: Record<string, string>;
}

async function ensureModules(
  config: HarnessConfig,
  modules: UpstreamModule[],
  logger: Logger,
  options: { signal?: AbortSignal; rebuild?: boolean },
): Promise<BuiltModule[]> {
  await removeStalePartials(config, logger);
  const plan = [];
  for (const m of modules) {
    const pin = await readPin(config.repoRoot, m);
    const dir = moduleDir(config, m, pin);
    const names = Object.values(m.packages);
    const build = options.rebuild === true || !(await allExist(dir, names));
    plan.push({ m, pin, dir, names, build });
  }
  const toBuild = plan.filter((p) => p.build);
  let go: string | undefined;
  const out: BuiltModule[] = [];
  for (const p of plan) {
    if (p.build) {
      go ??= await findGo(config.repoRoot);
      const index = toBuild.indexOf(p);
      const left = toBuild.slice(index + 1).map((x) => x.m.dir);
      const found = async () => options.rebuild !== true && (await allExist(p.dir, p.names));
      await once(p.dir, found, () =>
        buildModule(go as string, config, p.m, p.pin.version, p.dir, logger, {
          progress: `${index + 1}/${toBuild.length}${left.length > 0 ? `; then ${left.join(", ")}` : ""}`,
          ...(options.signal && { signal: options.signal }),
        }),
      );
    } else {
      logger.debug(`${p.m.dir} ${p.pin.version}: cached in ${p.dir}`);
    }
    out.push({
      module: p.m,
      version: p.pin.version,
      paths: Object.fromEntries(p.names.map((n) => [n, join(p.dir, n)])),
    });
  }
  return out;
}

/**
 * A build writes into `<entry>.partial-<pid>` and renames it into place only when complete, so an
 * interrupted build never leaves a half-written cache entry; its partial folder is removed here, by
 * the next build, once its process is gone.
 */
async function removeStalePartials(config: HarnessConfig, logger: Logger): Promise<void> {
  const dir = join(config.cacheDir, "bin");
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const pid = Number(/\.partial-(\d+)$/.exec(name)?.[1]);
    if (!pid || pidAlive(pid)) continue;
    logger.info(`removing an interrupted build's leftovers: ${join(dir, name)}`);
    await rm(join(dir, name), { recursive: true, force: true });
  }
}

/**
 * Makes a cache entry unless `found()` says it is there, one process at a time per entry: the suites of
 * two vitest workers may ask for the same release at once, and the second then finds the first's work
 * instead of replacing a folder the first one's cluster may be running binaries from.
 */
async function once(entry: string, found: () => Promise<boolean>, make: () => Promise<void>): Promise<void> {
  const release = await takeTurn(`${entry}.turn`, {
    description: `another process's build of ${entry}`,
    timeoutMs: 3_600_000,
  });
  try {
    if (!(await found())) await make();
  } finally {
    await release();
  }
}

async function buildModule(
  go: string,
  config: HarnessConfig,
  m: UpstreamModule,
  version: string,
  dir: string,
  logger: Logger,
  options: { progress: string; signal?: AbortSignal },
): Promise<void> {
  const { signal } = options;
  const names = Object.values(m.packages);
  logger.step(
    `building ${m.dir} ${version} (${names.join(", ")}; module ${options.progress}); a cold build takes minutes`,
  );
  const started = Date.now();
  const tmp = `${dir}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  // Prints elapsed time while the compiler runs, so a long build is visibly alive.
  let current = "";
  const ticker = setInterval(
    () => logger.info(`… still building ${current} of ${m.dir} (${elapsed(started)})`),
    30_000,
  );
  try {
    const entries = Object.entries(m.packages);
    for (const [i, [pkg, name]] of entries.entries()) {
      current = `${name} (${i + 1}/${entries.length})`;
      await run(
        [
          go,
          "build",
          "-trimpath",
          "-ldflags",
          ["-s", "-w", ...m.versionFlags(version)].join(" "),
          "-o",
          join(tmp, name),
          pkg,
        ],
        {
          cwd: moduleRoot(config.repoRoot, m),
          env: { CGO_ENABLED: "0" },
          ...(signal && { signal }),
          logger,
        },
      );
      logger.info(`built ${name}, ${i + 1}/${entries.length} of ${m.dir} (${elapsed(started)})`);
    }
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof CommandError) {
      throw new TphError(`building ${m.dir} ${version} failed`, {
        cause: err,
        hint: "the command and its output are above; check that the Go module proxy is reachable (GOPROXY) and Go is new enough",
      });
    }
    throw err;
  } finally {
    clearInterval(ticker);
  }
  logger.info(`${m.dir} ${version} built in ${elapsed(started)} → ${dir}`);
}

async function findGo(repoRoot: string): Promise<string> {
  const go = process.env.TPH_GO ?? (await which("go"));
  if (!go) {
    throw new TphError(
      "Go is not installed (no `go` on PATH), and the local provider's binaries are not built yet",
      {
        hint: `install Go ${await requiredGo(repoRoot)} or newer (Debian: see .ci/run; or https://go.dev/dl), or set TPH_GO to the go binary, then run \`tph binaries\``,
      },
    );
  }
  return go;
}

export async function requiredGo(repoRoot: string): Promise<string> {
  const mod = await readFile(join(repoRoot, "upstream/kubernetes/go.mod"), "utf8");
  return /^go (\S+)/m.exec(mod)?.[1] ?? "1.26";
}

function moduleRoot(repoRoot: string, m: UpstreamModule): string {
  return m.root ?? join(repoRoot, "upstream", m.dir);
}

async function readPin(repoRoot: string, m: UpstreamModule): Promise<{ version: string; hash: string }> {
  const dir = moduleRoot(repoRoot, m);
  let mod: string;
  let sum: string;
  try {
    [mod, sum] = await Promise.all([
      readFile(join(dir, "go.mod"), "utf8"),
      readFile(join(dir, "go.sum"), "utf8"),
    ]);
  } catch (err) {
    throw new TphError(`cannot read the pin in ${dir}`, { cause: err, hint: "run tph from a full checkout" });
  }
  const escaped = m.pinned.replaceAll(".", "\\.").replaceAll("/", "\\/");
  const version = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, "m").exec(mod)?.[1];
  if (!version) throw new TphError(`${dir}/go.mod does not require ${m.pinned}`);
  const hash = createHash("sha256").update(mod).update(sum).digest("hex").slice(0, 8);
  return { version, hash };
}

async function allExist(dir: string, names: string[]): Promise<boolean> {
  try {
    await Promise.all(names.map((n) => access(join(dir, n))));
    return true;
  } catch {
    return false;
  }
}

function elapsed(since: number): string {
  const s = Math.round((Date.now() - since) / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

// ---- kube-proxy of any release, on demand ----

/**
 * The kube-proxy binary of `version`: the cluster's own or the previous pinned release when it is one of
 * those, otherwise pinned on demand into the cache (upstream/pin-kubernetes.sh, from the Go module
 * proxy; the repo is not edited) and built like the others. Check the version with `checkKubeProxyRelease`
 * first: that refuses a bad one in a second, before anything is built.
 */
export async function ensureKubeProxy(
  config: HarnessConfig,
  version: string,
  logger: Logger,
  options: { signal?: AbortSignal } = {},
): Promise<{ path: string; version: string }> {
  const pins = await pinnedVersions(config.repoRoot);
  if (version === (config.cluster.kubernetesVersion ?? pins.kubernetes)) {
    const core = await ensureBinaries(config, logger, options);
    return { path: core.paths["kube-proxy"], version };
  }
  if (version === pins["kube-proxy-previous"])
    return ensureExtraBinary(config, "kube-proxy-previous", logger, options);
  const root = join(config.cacheDir, "pins", `kube-proxy-${version}`);
  if (!(await allExist(root, ["go.mod", "go.sum"])))
    await pinRelease(
      config,
      `kube-proxy ${version}`,
      version,
      root,
      ["k8s.io/kubernetes/cmd/kube-proxy"],
      logger,
    );
  const m: UpstreamModule = {
    dir: `kube-proxy-${version}`,
    root,
    pinned: "k8s.io/kubernetes",
    packages: { "k8s.io/kubernetes/cmd/kube-proxy": "kube-proxy" as BinaryName },
    core: false,
    versionFlags: kubernetesVersionFlags,
  };
  const [built] = await ensureModules(config, [m], logger, options);
  return { path: built?.paths["kube-proxy"] as string, version };
}

/**
 * Writes a pin of Kubernetes `version` for `packages` into `root` (atomically: a partial pin is never
 * reused). `what` names it in messages.
 */
async function pinRelease(
  config: HarnessConfig,
  what: string,
  version: string,
  root: string,
  packages: string[],
  logger: Logger,
): Promise<void> {
  await once(
    root,
    () => allExist(root, ["go.mod", "go.sum"]),
    () => pinReleaseNow(config, what, version, root, packages, logger),
  );
}

async function pinReleaseNow(
  config: HarnessConfig,
  what: string,
  version: string,
  root: string,
  packages: string[],
  logger: Logger,
): Promise<void> {
  logger.step(`pinning ${what} from the Go module proxy`);
  const go = await findGo(config.repoRoot);
  const tmp = `${root}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(dirname(tmp), { recursive: true });
  try {
    await run([join(config.repoRoot, "upstream/pin-kubernetes.sh"), tmp, version, ...packages], {
      env: { PATH: `${dirname(go)}:${process.env.PATH ?? ""}` },
      logger,
      timeoutMs: 600_000,
    });
    await rm(root, { recursive: true, force: true });
    await rename(tmp, root);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw new TphError(`pinning ${what} failed`, {
      cause: err,
      hint: "the command and its output are above; check that the Go module proxy is reachable",
    });
  }
}

/**
 * Refuses, in about a second and before anything is built, a kube-proxy release that does not exist or
 * that cannot run here: newer than the cluster's kube-apiserver (the version skew policy forbids it), or
 * nftables mode before it was on by default (v1.31). A release older than the policy's three minors is
 * allowed with a warning: reproducing an old bug needs it.
 */
export async function checkKubeProxyRelease(
  config: HarnessConfig,
  version: string,
  proxyModes: readonly string[],
  logger: Logger,
): Promise<void> {
  const pins = await pinnedVersions(config.repoRoot);
  const apiserver = config.cluster.kubernetesVersion ?? (pins.kubernetes as string);
  if (version === apiserver) return;
  if (minorOf(version) > minorOf(apiserver))
    throw new UsageError(
      `kube-proxy ${version} is newer than the cluster's kube-apiserver ${apiserver}`,
      "the version skew policy allows kube-proxy only as new as the apiserver: choose an older release",
    );
  if (version !== pins.kubernetes && version !== pins["kube-proxy-previous"])
    await checkReleaseExists(config, `kube-proxy ${version}`, version);
  if (proxyModes.includes("nftables") && minorOf(version) < 31)
    throw new UsageError(
      `kube-proxy ${version} has no nftables mode on by default (it is beta and default from v1.31)`,
      "use --proxy-mode iptables, or a release from v1.31 on",
    );
  if (minorOf(apiserver) - minorOf(version) > 3)
    logger.warn(
      `kube-proxy ${version} is more than three minor releases older than kube-apiserver ${apiserver}: outside the version skew policy (allowed, to reproduce old behaviour)`,
    );
}

/**
 * The oldest Kubernetes minor the local provider runs: the suites use EndpointSlice hints for
 * trafficDistribution and kube-proxy's nftables mode, both beta and on by default from v1.31.
 */
export const OLDEST_KUBERNETES_MINOR = 31;

/**
 * Refuses, in about a second and before anything is built, a Kubernetes release (the control plane's)
 * that does not exist or that the local provider cannot run (older than v1.31, see above).
 */
export async function checkKubernetesRelease(config: HarnessConfig, version: string): Promise<void> {
  const pins = await pinnedVersions(config.repoRoot);
  if (version === pins.kubernetes) return;
  if (minorOf(version) < OLDEST_KUBERNETES_MINOR)
    throw new UsageError(
      `Kubernetes ${version} is older than the local provider runs (v1.${OLDEST_KUBERNETES_MINOR}): the suites need trafficDistribution in EndpointSlices and kube-proxy's nftables mode, on by default from v1.${OLDEST_KUBERNETES_MINOR}`,
      `choose a release from v1.${OLDEST_KUBERNETES_MINOR}.0 on (pinned here: ${pins.kubernetes}); an older kube-proxy alone runs with --kube-proxy-version`,
    );
  await checkReleaseExists(config, `Kubernetes ${version}`, version);
}

/** Asks the Go module proxy for k8s.io/kubernetes@version; refuses it, naming the nearest, if absent. */
async function checkReleaseExists(config: HarnessConfig, what: string, version: string): Promise<void> {
  const go = await findGo(config.repoRoot);
  const r = await run([go, "list", "-m", "-json", `k8s.io/kubernetes@${version}`], {
    allowFailure: true,
    timeoutMs: 30_000,
    cwd: tmpdir(),
  });
  if (r.exitCode !== 0) {
    const known = await knownReleases(go);
    throw new UsageError(
      `${what} does not exist: the Go module proxy has no k8s.io/kubernetes@${version} (${r.stderr.trim().split("\n").at(-1)})`,
      `nearest releases it has: ${nearest(known, version).join(", ") || "(none listed)"}`,
    );
  }
}

async function knownReleases(go: string): Promise<string[]> {
  const r = await run([go, "list", "-m", "-versions", "k8s.io/kubernetes"], {
    allowFailure: true,
    timeoutMs: 30_000,
    cwd: tmpdir(),
  });
  return r.stdout
    .trim()
    .split(/\s+/)
    .slice(1)
    .filter((v) => /^v1\.\d+\.\d+$/.test(v));
}

/** The releases closest to `version` (same minor first, then by distance), at most five. */
export function nearest(known: string[], version: string): string[] {
  const key = (v: string) => {
    const [maj, min, patch] = v.replace(/^v/, "").split(/[.-]/).map(Number);
    return ((maj ?? 0) * 1000 + (min ?? 0)) * 1000 + (patch ?? 0);
  };
  const k = key(version);
  return [...known].sort((a, b) => Math.abs(key(a) - k) - Math.abs(key(b) - k)).slice(0, 5);
}

// ---- MetalLB of any release, on demand ----

/**
 * MetalLB's controller and speaker of `version`, and that release's manifest (CRDs and RBAC): pinned
 * into the cache from the Go module proxy (MetalLB's module needs no replace directives) and built like
 * the others. The pinned release (upstream/metallb) is returned as it is.
 */
export async function ensureMetallb(
  config: HarnessConfig,
  version: string,
  logger: Logger,
): Promise<{ controller: string; speaker: string; manifest?: string }> {
  if (version === (await pinnedVersions(config.repoRoot)).metallb) {
    const core = await ensureBinaries(config, logger);
    return { controller: core.paths["metallb-controller"], speaker: core.paths.speaker };
  }
  const root = join(config.cacheDir, "pins", `metallb-${version}`);
  if (!(await allExist(root, ["go.mod", "go.sum"]))) {
    logger.step(`pinning MetalLB ${version} from the Go module proxy`);
    const go = await findGo(config.repoRoot);
    const tmp = `${root}.partial-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await writeFile(
      join(tmp, "go.mod"),
      `// Pins MetalLB ${version} (written by tph)\nmodule tph.local/pins/metallb-${version}\n\ngo 1.26.0\n\nrequire go.universe.tf/metallb ${version}\n\ntool (\n\tgo.universe.tf/metallb/controller\n\tgo.universe.tf/metallb/speaker\n)\n`,
    );
    try {
      await run([go, "mod", "tidy"], { cwd: tmp, logger, timeoutMs: 600_000 });
      await rm(root, { recursive: true, force: true });
      await rename(tmp, root);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw new TphError(`pinning MetalLB ${version} failed`, {
        cause: err,
        hint: "the command and its output are above",
      });
    }
  }
  const m: UpstreamModule = {
    dir: `metallb-${version}`,
    root,
    pinned: "go.universe.tf/metallb",
    packages: {
      "go.universe.tf/metallb/controller": "metallb-controller",
      "go.universe.tf/metallb/speaker": "speaker",
    },
    core: false,
    versionFlags: (v) => [`-X go.universe.tf/metallb/internal/version.version=${v}`],
  };
  const [built] = await ensureModules(config, [m], logger, {});
  const go = await findGo(config.repoRoot);
  const dl = await run([go, "mod", "download", "-json", `go.universe.tf/metallb@${version}`], { cwd: root });
  const dir = (JSON.parse(dl.stdout) as { Dir: string }).Dir;
  return {
    controller: built?.paths["metallb-controller"] as string,
    speaker: built?.paths.speaker as string,
    manifest: join(dir, "config/manifests/metallb-native.yaml"),
  };
}

/**
 * Refuses in a second a MetalLB release that does not exist, or one before v0.13 (configured by a
 * ConfigMap instead of the IPAddressPool and L2Advertisement resources the harness creates).
 */
export async function checkMetallbRelease(config: HarnessConfig, version: string): Promise<void> {
  if (version === (await pinnedVersions(config.repoRoot)).metallb) return;
  if (minorOf(version) < 13)
    throw new UsageError(
      `MetalLB ${version} is configured by a ConfigMap, not the IPAddressPool and L2Advertisement resources tph creates`,
      "choose a release from v0.13 on",
    );
  const go = await findGo(config.repoRoot);
  const r = await run([go, "list", "-m", "-json", `go.universe.tf/metallb@${version}`], {
    allowFailure: true,
    timeoutMs: 30_000,
    cwd: tmpdir(),
  });
  if (r.exitCode !== 0) {
    const known = await run([go, "list", "-m", "-versions", "go.universe.tf/metallb"], {
      allowFailure: true,
      cwd: tmpdir(),
    });
    throw new UsageError(
      `MetalLB ${version} does not exist: the Go module proxy has no go.universe.tf/metallb@${version}`,
      `releases it has: ${known.stdout.trim().split(/\s+/).slice(1).join(", ")}`,
    );
  }
}
