import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../core/config.ts";
import { TphError } from "../../core/errors.ts";
import { createMemoryLogger } from "../../core/logger.ts";
import { ensureBinaries, pinnedVersions } from "./binaries.ts";

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
