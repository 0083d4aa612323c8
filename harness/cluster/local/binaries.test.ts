import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config.ts";
import { TphError, UsageError } from "../../core/errors.ts";
import { createMemoryLogger } from "../../core/logger.ts";
import { previousKubeProxyVersion } from "../../core/releases.ts";
import { checkKubeProxyRelease, checkKubernetesRelease, ensureBinaries, pinnedVersions } from "./binaries.ts";

describe("pinnedVersions", () => {
  it("reads each upstream release from its go.mod", async () => {
    const versions = await pinnedVersions(loadConfig({}, {}).repoRoot);
    expect(versions.kubernetes).toMatch(/^v1\.\d+\.\d+$/);
    expect(versions.etcd).toMatch(/^v3\.[56]\.\d+$/);
    expect(versions.metallb).toMatch(/^v0\.\d+\.\d+$/);
  });
});

describe("ensureBinaries", () => {
  it("without Go and without a cache, fails with a clear error and a way forward", async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), "tph-cache-"));
    const config = loadConfig({ cacheDir }, {});
    const saved = { PATH: process.env.PATH, TPH_GO: process.env.TPH_GO };
    process.env.PATH = "/nonexistent";
    delete process.env.TPH_GO;
    try {
      const err = await ensureBinaries(config, createMemoryLogger()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TphError);
      expect((err as TphError).message).toMatch(/Go is not installed/);
      expect((err as TphError).hint).toMatch(/install Go 1\.\d+/);
    } finally {
      process.env.PATH = saved.PATH;
      if (saved.TPH_GO !== undefined) process.env.TPH_GO = saved.TPH_GO;
    }
  });
});

describe("checkKubernetesRelease / checkKubeProxyRelease", () => {
  // A stand-in for `go list`: the module proxy knows v1.36.3, v1.35.0 and v1.35.4 (and the pins).
  async function fakeGo(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "tph-go-"));
    const go = join(dir, "go");
    await writeFile(
      go,
      `#!/bin/sh
case "$*" in
  "list -m -versions k8s.io/kubernetes") echo "k8s.io/kubernetes v1.35.0 v1.35.4 v1.36.3 v1.37.2"; exit 0;;
  *k8s.io/kubernetes@v1.36.3|*k8s.io/kubernetes@v1.35.4|*k8s.io/kubernetes@v1.35.0) echo "{}"; exit 0;;
  *) echo "go: k8s.io/kubernetes@$4: invalid version: unknown revision" >&2; exit 1;;
esac
`,
      { mode: 0o755 },
    );
    return go;
  }

  async function refusal(p: Promise<void>): Promise<UsageError> {
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }

  it("refuses a Kubernetes release that does not exist, naming the nearest, and one too old to run", async () => {
    const saved = process.env.TPH_GO;
    process.env.TPH_GO = await fakeGo();
    try {
      const config = loadConfig({}, {});
      await expect(checkKubernetesRelease(config, "v1.36.3")).resolves.toBeUndefined();
      const missing = await refusal(checkKubernetesRelease(config, "v1.36.99"));
      expect(missing.message).toMatch(/^Kubernetes v1.36.99 does not exist: the Go module proxy has no/);
      expect(missing.hint).toBe("nearest releases it has: v1.36.3, v1.37.2, v1.35.4, v1.35.0");
      const old = await refusal(checkKubernetesRelease(config, "v1.30.14"));
      expect(old.message).toMatch(/older than the local provider runs \(v1.31\)/);
    } finally {
      if (saved === undefined) delete process.env.TPH_GO;
      else process.env.TPH_GO = saved;
    }
  });

  it("holds kube-proxy to the cluster's release: not newer than its apiserver, which --kubernetes-version moves", async () => {
    const saved = process.env.TPH_GO;
    process.env.TPH_GO = await fakeGo();
    try {
      const logger = createMemoryLogger();
      const pinned = loadConfig({}, {});
      await expect(checkKubeProxyRelease(pinned, "v1.36.3", ["iptables"], logger)).resolves.toBeUndefined();
      const v999 = await refusal(checkKubeProxyRelease(pinned, "v1.9.9", ["iptables"], logger));
      expect(v999.message).toMatch(/^kube-proxy v1.9.9 does not exist/);
      const older = loadConfig({ cluster: { kubernetesVersion: "v1.35.4" } }, {});
      const skew = await refusal(checkKubeProxyRelease(older, "v1.36.3", ["iptables"], logger));
      expect(skew.message).toBe("kube-proxy v1.36.3 is newer than the cluster's kube-apiserver v1.35.4");
      await expect(checkKubeProxyRelease(older, "v1.35.0", ["nftables"], logger)).resolves.toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.TPH_GO;
      else process.env.TPH_GO = saved;
    }
  });
});

describe("previousKubeProxyVersion", () => {
  it("is the pinned previous release for the pinned cluster, else the cluster's previous minor's .0", async () => {
    const { repoRoot } = loadConfig({}, {});
    const pinned = await previousKubeProxyVersion(repoRoot);
    const pins = await pinnedVersions(repoRoot);
    expect(await previousKubeProxyVersion(repoRoot, pins.kubernetes)).toBe(pinned);
    expect(await previousKubeProxyVersion(repoRoot, pinned)).toBe(`v1.${Number(pinned.split(".")[1]) - 1}.0`);
  });
});
