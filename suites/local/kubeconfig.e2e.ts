import { chmod, copyFile, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MANAGED_LABEL } from "../../harness/cluster/provider.ts";
import { run } from "../../harness/core/exec.ts";
import { tph } from "../support/cli.ts";
import { nodeStates, useCluster } from "../support/cluster.ts";

/**
 * `tph run --provider kubeconfig` against a cluster it did not create (one this suite brings up), as a
 * user would on their staging cluster: unprivileged, with no kubectl, Go or Docker on PATH. The suites
 * its capabilities allow pass; the rest are skipped with their reasons; disruption runs only when
 * allowed; afterwards the cluster has nothing of the run.
 */
const UNPRIVILEGED = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

describe("the kubeconfig provider", () => {
  const f = useCluster({ clusterName: "kcfg", cluster: { nodes: [{}, {}, {}] } });
  let dir = "";
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A home for the unprivileged user: the kubeconfig, a state directory, a PATH with no kubectl. */
  async function userHome(): Promise<Record<string, string>> {
    dir = await mkdtemp(join(tmpdir(), "tph-kcfg-"));
    await chmod(dir, 0o777);
    const bin = join(dir, "bin");
    await mkdir(bin);
    // What bin/tph and the provider use: bash and coreutils for the launcher, ip for the route.
    for (const tool of ["bash", "readlink", "dirname", "env", "ip"]) {
      const { stdout } = await run(["sh", "-c", `command -v ${tool}`]);
      await symlink(stdout.trim(), join(bin, tool));
    }
    await copyFile(f.cluster.kubeconfigPath, join(dir, "kubeconfig"));
    await chmod(join(dir, "kubeconfig"), 0o644);
    return { HOME: dir, PATH: bin, TPH_STATE_DIR: join(dir, "state") };
  }

  it("runs what its capabilities allow, unprivileged and without kubectl, and leaves nothing", async () => {
    const before = await nodeStates(f.k8s);
    const env = await userHome();
    const args = [
      "run",
      "--provider",
      "kubeconfig",
      "--kubeconfig",
      join(dir, "kubeconfig"),
      "--proxy-mode",
      "iptables",
    ];
    const first = await tph(
      [...args, "--suite", "reachability,cordon-drain,node-stop", "--artifacts", join(dir, "a1")],
      {
        prefix: UNPRIVILEGED,
        env,
      },
    );
    const out = first.stdout + first.stderr;
    expect(first.exitCode, out.slice(-3000)).toBe(0);
    expect(out).toMatch(/^pass\s+reachability /m);
    expect(out).toMatch(/^skip\s+cordon-drain .*\n\s+↳ needs nodeDisruption/m);
    expect(out).toMatch(/^skip\s+node-stop .*\n\s+↳ needs nodePower/m);

    const second = await tph(
      [...args, "--allow-disruption", "--suite", "cordon-drain", "--artifacts", join(dir, "a2")],
      {
        prefix: UNPRIVILEGED,
        env,
      },
    );
    const out2 = second.stdout + second.stderr;
    expect(second.exitCode, out2.slice(-3000)).toBe(0);
    expect(out2).toMatch(/^pass\s+cordon-drain /m);
    expect(out2).not.toMatch(/^(skip|FAIL|ERROR)\s/m);

    // Nothing of the runs is left: no namespaces of theirs, every node as it was.
    const left = await f.k8s.core.listNamespace({ labelSelector: `${MANAGED_LABEL}=true` });
    expect(left.items.filter((n) => !n.metadata?.deletionTimestamp).map((n) => n.metadata?.name)).toEqual([]);
    expect(await nodeStates(f.k8s)).toEqual(before);
  });
});
