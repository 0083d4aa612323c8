import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureBinaries } from "../../harness/cluster/local/binaries.ts";
import { createLogger } from "../../harness/core/logger.ts";
import { tph } from "../support/cli.ts";
import { e2eConfig } from "../support/env.ts";
import { leftovers, snapshotHost } from "../support/host-snapshot.ts";

/**
 * `tph run` never says green on nothing: a suite whose cluster cannot come up (here kube-proxy exits at
 * once, as it did on a host without iptables) makes the run exit non-zero, with an error row naming the
 * cause in the table and in JUnit, and nothing left behind. The nested run gets a cache whose kube-proxy
 * is broken (the other binaries are the real ones, linked) and a state directory of its own.
 */
const work = await mkdtemp(join(tmpdir(), "tph-verdict-"));
afterAll(() => rm(work, { recursive: true, force: true }));

describe("tph run's verdict", () => {
  it("a suite whose cluster cannot come up is an error row and a non-zero exit, not a skip", async () => {
    const config = e2eConfig();
    const real = await ensureBinaries(config, createLogger("quiet"));
    const cache = join(work, "cache");
    // The same cache layout (bin/<module>-<version>-<hash>/<binary>), every binary a link to the real
    // one except kube-proxy, which fails as kube-proxy does without iptables.
    for (const [name, path] of Object.entries(real.paths)) {
      const dir = join(cache, "bin", path.split("/").at(-2) as string);
      await mkdir(dir, { recursive: true });
      if (name === "kube-proxy") {
        await writeFile(
          join(dir, name),
          '#!/bin/sh\necho "F1202 server.go:123] iptables is not available on this host" >&2\nexit 1\n',
          { mode: 0o755 },
        );
      } else await symlink(path, join(dir, name));
    }
    const state = join(work, "state");
    const artifacts = join(work, "artifacts");
    const before = await snapshotHost();
    const r = await tph(
      [
        "run",
        "--suite",
        "reachability",
        "--proxy-mode",
        "iptables",
        "--artifacts",
        artifacts,
        "--no-install",
      ],
      // A cluster of its own, on a subnet of its own: this run's shared clusters and workers hold theirs.
      {
        env: {
          TPH_CACHE_DIR: cache,
          TPH_E2E_STATE_DIR: state,
          TPH_E2E_NODE_SUBNET: "10.250.21.0/24",
          TPH_SHARE_CLUSTERS: "0",
        },
      },
    );
    expect(r.exitCode, r.stdout).toBe(1);
    // The row, then its cause on the next line.
    expect(r.stdout).toMatch(/^ERROR\s+reachability\s.*\n\s+↳ setup failed.*iptables is not available/m);
    expect(r.stdout).toMatch(/^0 passed, 0 failed, 1 error/m);
    // Not counted as skips (vitest's own summary above the table does count them as skipped).
    expect(r.stdout).not.toMatch(/^\d+ passed, \d+ failed.*skipped/m);
    const junit = await readFile(join(artifacts, "junit.xml"), "utf8");
    expect(junit).toMatch(/<error message="[^"]*iptables is not available/);
    expect(await leftovers("reach", state)).toEqual([]);
    expect(await snapshotHost()).toEqual(before);
    expect(await readdir(state).catch(() => [])).toEqual([]);
  });
});
