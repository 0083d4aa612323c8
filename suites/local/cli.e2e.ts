import { afterAll, describe, expect, it } from "vitest";
import { pinnedVersions } from "../../harness/cluster/local/binaries.ts";
import { run } from "../../harness/core/exec.ts";
import { tph } from "../support/cli.ts";
import { E2E_STATE_DIR, e2eConfig } from "../support/env.ts";
import { leftovers, snapshotHost } from "../support/host-snapshot.ts";

/** The CLI round trip a user makes: up, kubeconfig, kubectl, status, down. */
const name = "clie2e";

afterAll(async () => {
  await tph(["down", "--name", name]);
});

describe("tph up / kubeconfig / status / down", () => {
  it("brings a cluster up that plain kubectl can use, then removes every trace", async () => {
    const before = await snapshotHost();
    const up = await tph(["up", "--name", name]);
    expect(up.stderr).toMatch(/starting etcd/);
    expect(up.exitCode, up.stderr).toBe(0);

    const kc = await tph(["kubeconfig", "--name", name]);
    expect(kc.exitCode, kc.stderr).toBe(0);
    const kubeconfig = kc.stdout.trim();
    expect(kubeconfig).toBe(`${E2E_STATE_DIR}/${name}/kubeconfig`);

    const { stdout } = await run(["kubectl", "--kubeconfig", kubeconfig, "version", "-o", "json"]);
    const { kubernetes } = await pinnedVersions(e2eConfig().repoRoot);
    expect(JSON.parse(stdout).serverVersion.gitVersion).toBe(kubernetes);

    const status = await tph(["status", "--name", name]);
    expect(status.exitCode, status.stdout).toBe(0);
    expect(status.stdout).toMatch(/running\s+kube-apiserver/);

    const down = await tph(["down", "--name", name]);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await leftovers(name, E2E_STATE_DIR)).toEqual([]);
    expect(await snapshotHost()).toEqual(before);

    const gone = await tph(["kubeconfig", "--name", name]);
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toMatch(/no running cluster named clie2e/);
  });
});
