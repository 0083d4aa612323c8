import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { type HarnessConfig, type ProxyMode, pinnedSettings } from "../../core/config.ts";
import { TphError, UsageError } from "../../core/errors.ts";
import { run, which } from "../../core/exec.ts";
import type { Logger } from "../../core/logger.ts";
import {
  checkKubeProxyRelease,
  checkKubernetesRelease,
  checkMetallbRelease,
  modulesToBuild,
  requiredGo,
} from "./binaries.ts";
import { hostRoutes } from "./netns.ts";
import { checkHostCollisions, planNetwork } from "./network.ts";

/**
 * Everything the local provider needs from the host, checked in seconds before anything is built or
 * started: root, the commands its components run (per proxy mode), the kernel's nftables support, Go and
 * disk space when binaries must be built, and the address ranges. Missing Debian packages are installed
 * when allowed (root and apt-get present); anything else that is missing stops the run at once, every
 * miss named with the command that fixes it.
 */
export interface PreflightOptions {
  logger: Logger;
  /** The kube-proxy modes the run will use (a suite run may use both). */
  proxyModes: ProxyMode[];
  /** Install missing Debian packages with apt-get (default true; `--no-install` turns it off). */
  install?: boolean;
}

/** A command the local provider runs, the Debian package that has it, and why it is needed. */
interface CommandNeed {
  command: string;
  pkg: string;
  why: string;
  /** Needed only in these proxy modes. */
  modes?: ProxyMode[];
}

export const COMMAND_NEEDS: readonly CommandNeed[] = [
  { command: "ip", pkg: "iproute2", why: "network namespaces, veth links and the bridge" },
  { command: "openssl", pkg: "openssl", why: "the cluster's certificates" },
  { command: "nsenter", pkg: "util-linux", why: "running components inside node namespaces" },
  { command: "unshare", pkg: "util-linux", why: "pod sandboxes" },
  { command: "ps", pkg: "procps", why: "finding leftover processes" },
  { command: "iptables", pkg: "iptables", why: "kube-proxy in iptables mode", modes: ["iptables"] },
  { command: "iptables-save", pkg: "iptables", why: "kube-proxy in iptables mode", modes: ["iptables"] },
  {
    command: "iptables-restore",
    pkg: "iptables",
    why: "kube-proxy in iptables mode",
    modes: ["iptables"],
  },
  { command: "nft", pkg: "nftables", why: "kube-proxy in nftables mode", modes: ["nftables"] },
  { command: "conntrack", pkg: "conntrack", why: "inspecting and clearing conntrack entries" },
];

/** Free space a cold build needs: the Go build and module caches plus the binaries (about 3.5 GiB seen). */
const BUILD_DISK_BYTES = 5 * 1024 ** 3;

/** Settings the local provider cannot make a cluster with (pinnedSettings' flags). */
const LOCAL_CANNOT_PIN = ["--cni", "--kube-proxy-replacement"];

export interface Miss {
  what: string;
  fix: string;
}

/** The commands missing for `modes`, grouped by the Debian package that provides them. */
export async function missingCommands(modes: ProxyMode[]): Promise<CommandNeed[]> {
  const needed = COMMAND_NEEDS.filter((n) => !n.modes || n.modes.some((m) => modes.includes(m)));
  const missing: CommandNeed[] = [];
  for (const n of needed) if (!(await which(n.command))) missing.push(n);
  return missing;
}

export async function preflightLocal(config: HarnessConfig, options: PreflightOptions): Promise<void> {
  const { logger } = options;
  if (process.platform !== "linux") {
    throw new TphError("the local provider runs on Linux only (network namespaces)", {
      hint: "use --provider kind, which needs Docker",
    });
  }
  if (options.proxyModes.includes("ipvs")) {
    throw new UsageError(
      "kube-proxy mode ipvs is not available on the local provider",
      "the local provider's kernel has no IPVS; use iptables or nftables (kind supports ipvs where the host kernel has it)",
    );
  }
  // Pods here are attached by the CNI reference plugins; Calico and Cilium need kind for now (what the
  // local provider would take for them: docs/cni.md).
  const cni = pinnedSettings(config.cluster).filter((p) => LOCAL_CANNOT_PIN.includes(p.flag));
  if (cni.length > 0) {
    throw new UsageError(
      `${cni.map((p) => p.flag).join(", ")}: the local provider runs the CNI reference plugins only (--cni default)`,
      "run Calico or Cilium on kind (--provider kind --cni calico|cilium); docs/cni.md says what the local provider lacks for them",
    );
  }
  if (process.getuid?.() !== 0) {
    throw new TphError(
      "the local provider needs root: it creates network namespaces, veth links and a bridge",
      { hint: "run it as root, e.g. `sudo bin/tph run`, or use --provider kind" },
    );
  }
  // Bad input is refused as such (exit 2) before anything is installed or built: a malformed or
  // colliding address range, a release that does not exist or cannot run.
  checkHostCollisions(planNetwork(config.clusterName, config.cluster), await hostRoutes());
  if (config.cluster.kubernetesVersion)
    await checkKubernetesRelease(config, config.cluster.kubernetesVersion);
  const versions = [config.cluster.kubeProxyVersion, ...config.cluster.nodes.map((n) => n.kubeProxyVersion)];
  for (const version of new Set(versions.filter((v): v is string => v !== undefined)))
    await checkKubeProxyRelease(config, version, options.proxyModes, logger);
  if (config.cluster.metallbVersion) await checkMetallbRelease(config, config.cluster.metallbVersion);
  let missing = await missingCommands(options.proxyModes);
  if (missing.length > 0 && options.install !== false && (await which("apt-get"))) {
    const pkgs = [...new Set(missing.map((m) => m.pkg))];
    logger.step(
      `installing Debian packages ${pkgs.join(" ")} (missing: ${missing.map((m) => m.command).join(", ")}); --no-install turns this off`,
    );
    const env = { DEBIAN_FRONTEND: "noninteractive" };
    await run(["apt-get", "update", "-qq"], { env, logger, timeoutMs: 300_000 });
    await run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...pkgs], {
      env,
      logger,
      timeoutMs: 600_000,
    });
    missing = await missingCommands(options.proxyModes);
  }
  const misses: Miss[] = missing.map((m) => ({
    what: `\`${m.command}\` (${m.why})`,
    fix: `apt-get install ${m.pkg}`,
  }));
  if (options.proxyModes.includes("nftables") && missing.every((m) => m.command !== "nft")) {
    // Read-only: lists the host's tables, which fails when the kernel has no nf_tables.
    const r = await run(["nft", "list", "tables"], { allowFailure: true, timeoutMs: 10_000 });
    if (r.exitCode !== 0)
      misses.push({
        what: `the kernel's nftables support (\`nft list tables\` failed: ${r.stderr.trim().split("\n")[0]})`,
        fix: "a kernel with nf_tables (modprobe nf_tables), or --proxy-mode iptables",
      });
  }
  const toBuild = await modulesToBuild(config);
  if (toBuild.length > 0) misses.push(...(await buildMisses(config, toBuild)));
  if (misses.length > 0) {
    throw new TphError(
      `the local provider cannot run on this host yet; missing:\n${misses.map((m) => `  - ${m.what}: ${m.fix}`).join("\n")}`,
      {
        hint:
          missing.length > 0 && options.install === false
            ? "install the packages named (or drop --no-install: tph installs Debian packages as root), then run again"
            : "fix each item above, then run again (`tph doctor --provider local` checks without running)",
      },
    );
  }
}

/** A cold build needs Go (new enough) and disk space; both are checked before it starts, not after. */
async function buildMisses(config: HarnessConfig, modules: string[]): Promise<Miss[]> {
  const misses: Miss[] = [];
  const want = await requiredGo(config.repoRoot);
  const go = process.env.TPH_GO ?? (await which("go"));
  const why = `to build ${modules.join(", ")} (not cached in ${config.cacheDir})`;
  if (!go) {
    misses.push({
      what: `Go ${want} or newer ${why}`,
      fix: `install Go ${want}+ (.ci/run shows how), or set TPH_GO`,
    });
  } else {
    const r = await run([go, "env", "GOVERSION"], { allowFailure: true, timeoutMs: 20_000 });
    const have = r.stdout.trim().replace(/^go/, "");
    if (r.exitCode !== 0 || compareVersions(have, want) < 0)
      misses.push({
        what: `Go ${want} or newer ${why}; ${go} is ${have || "not working"}`,
        fix: `install Go ${want}+, or set TPH_GO to a newer go binary`,
      });
  }
  const free = await freeBytes(config.cacheDir);
  if (free !== undefined && free < BUILD_DISK_BYTES)
    misses.push({
      what: `${(BUILD_DISK_BYTES / 1024 ** 3).toFixed(0)} GiB free for the build under ${config.cacheDir} (${(free / 1024 ** 3).toFixed(1)} GiB free)`,
      fix: "free disk space, or point TPH_CACHE_DIR at a larger filesystem",
    });
  return misses;
}

/** Free bytes on the filesystem that holds `path` (or its nearest existing parent). */
async function freeBytes(path: string): Promise<number | undefined> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = await statfs(p);
      return s.bavail * s.bsize;
    } catch {
      if (p === dirname(p)) return undefined;
    }
  }
}

/** Compares dotted versions ("1.26.8" vs "1.26"): negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
