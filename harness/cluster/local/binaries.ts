import { createHash } from "node:crypto";
import { access, mkdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { HarnessConfig } from "../../core/config.ts";
import { TphError } from "../../core/errors.ts";
import { CommandError, run, which } from "../../core/exec.ts";
import type { Logger } from "../../core/logger.ts";

/**
 * The upstream binaries of the local provider, built from the Go module proxy. Each Go module under
 * upstream/ pins one upstream release (its go.mod is the single source of the version); a module's
 * binaries are built together and cached in a directory named by version and a hash of go.mod + go.sum,
 * so a changed pin rebuilds and an unchanged one is reused.
 */
export type BinaryName =
  | "etcd"
  | "kube-apiserver"
  | "kube-controller-manager"
  | "kube-scheduler"
  | "kube-proxy"
  | "kube-proxy-previous"
  | "agnhost"
  | "metallb-controller"
  | "speaker";

interface UpstreamModule {
  /** Folder under upstream/. */
  dir: string;
  /** The module whose `require` line carries the pinned version. */
  pinned: string;
  /** Main package -> the binary name it is installed as. */
  packages: Record<string, BinaryName>;
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
    versionFlags: kubernetesVersionFlags,
  },
  {
    // The kube-proxy of the previous minor release: what the kube-proxy version roll suite rolls between.
    dir: "kube-proxy-previous",
    pinned: "k8s.io/kubernetes",
    packages: { "k8s.io/kubernetes/cmd/kube-proxy": "kube-proxy-previous" },
    versionFlags: kubernetesVersionFlags,
  },
  {
    dir: "metallb",
    pinned: "go.universe.tf/metallb",
    packages: {
      "go.universe.tf/metallb/controller": "metallb-controller",
      "go.universe.tf/metallb/speaker": "speaker",
    },
    versionFlags: (version) => [`-X go.universe.tf/metallb/internal/version.version=${version}`],
  },
];

export interface BinarySet {
  paths: Record<BinaryName, string>;
  /** Pinned upstream versions, e.g. { kubernetes: "v1.37.2", etcd: "v3.6.16", metallb: "v0.16.1" }. */
  versions: Record<string, string>;
}

/** Reads the pinned versions from upstream/<module>/go.mod. */
export async function pinnedVersions(repoRoot: string): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  for (const m of MODULES) versions[m.dir] = (await readPin(repoRoot, m)).version;
  return versions;
}

/** Returns the cached binaries, building whatever is missing. */
export async function ensureBinaries(
  config: HarnessConfig,
  logger: Logger,
  options: { signal?: AbortSignal; rebuild?: boolean } = {},
): Promise<BinarySet> {
  const paths = {} as Record<BinaryName, string>;
  const versions: Record<string, string> = {};
  let go: string | undefined;
  for (const m of MODULES) {
    const pin = await readPin(config.repoRoot, m);
    versions[m.dir] = pin.version;
    const dir = join(config.cacheDir, "bin", `${m.dir}-${pin.version}-${pin.hash}`);
    const names = Object.values(m.packages);
    if (options.rebuild || !(await allExist(dir, names))) {
      go ??= await findGo(config.repoRoot);
      await buildModule(go, config, m, pin.version, dir, logger, options.signal);
    } else {
      logger.debug(`${m.dir} ${pin.version}: cached in ${dir}`);
    }
    for (const name of names) paths[name] = join(dir, name);
  }
  return { paths, versions };
}

async function buildModule(
  go: string,
  config: HarnessConfig,
  m: UpstreamModule,
  version: string,
  dir: string,
  logger: Logger,
  signal?: AbortSignal,
): Promise<void> {
  const names = Object.values(m.packages);
  logger.step(`building ${m.dir} ${version} (${names.join(", ")}); a cold build takes minutes`);
  const started = Date.now();
  const tmp = `${dir}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  // Prints elapsed time while the compiler runs, so a long build is visibly alive.
  const ticker = setInterval(() => logger.info(`… still building ${m.dir} (${elapsed(started)})`), 30_000);
  try {
    for (const [pkg, name] of Object.entries(m.packages)) {
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
          cwd: join(config.repoRoot, "upstream", m.dir),
          env: { CGO_ENABLED: "0" },
          ...(signal && { signal }),
          logger,
        },
      );
      logger.info(`built ${name} (${elapsed(started)})`);
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

async function requiredGo(repoRoot: string): Promise<string> {
  const mod = await readFile(join(repoRoot, "upstream/kubernetes/go.mod"), "utf8");
  return /^go (\S+)/m.exec(mod)?.[1] ?? "1.26";
}

async function readPin(repoRoot: string, m: UpstreamModule): Promise<{ version: string; hash: string }> {
  const dir = join(repoRoot, "upstream", m.dir);
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
