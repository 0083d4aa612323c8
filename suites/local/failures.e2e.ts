import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hostRoutes } from "../../harness/cluster/local/netns.ts";
import { waitFor } from "../../harness/core/wait.ts";
import { tph } from "../support/cli.ts";
import { cliEnv, E2E_STATE_DIR, TPH_BIN } from "../support/env.ts";
import { leftovers, snapshotHost } from "../support/host-snapshot.ts";

/** Bad input and hostile conditions: each gets a clear error, a non-zero exit, and leaves nothing behind. */
describe("tph up refuses clearly and creates nothing", () => {
  it("when not root", async () => {
    const r = await tph(["up", "--name", "noroot"], {
      prefix: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
      env: { HOME: "/tmp" },
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/error: the local provider needs root/);
    expect(r.stderr).toMatch(/hint: run it as root/);
    expect(await leftovers("noroot", E2E_STATE_DIR)).toEqual([]);
  });

  it("when the cluster network collides with a host route", async () => {
    // Not a cluster's own link: the other worker's clusters come and go meanwhile.
    const route = (await hostRoutes()).find(
      (r) => r.dst !== "default" && r.dst.includes("/") && !r.type && !r.dev?.startsWith("tph-"),
    );
    if (!route) return expect.fail("the host has no connected route to collide with");
    const before = await snapshotHost();
    const r = await tph(["up", "--name", "collide", "--node-subnet", route.dst]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`collides with the host route "${route.dst}`);
    expect(r.stderr).toMatch(/hint: choose a free range with --node-subnet/);
    expect(await leftovers("collide", E2E_STATE_DIR)).toEqual([]);
    expect(await snapshotHost()).toEqual(before);
  });

  it("on a malformed subnet or an unknown provider", async () => {
    const bad = await tph(["up", "--name", "badnet", "--node-subnet", "10.0.0.300/24"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/is not a valid IPv4 CIDR/);
    const ipvs = await tph(["up", "--name", "ipvs", "--proxy-mode", "ipvs"]);
    expect(ipvs.exitCode).toBe(2);
    expect(ipvs.stderr).toMatch(/ipvs is not available on the local provider/);
    const provider = await tph(["up", "--provider", "minikube"]);
    expect(provider.exitCode).toBe(2);
    expect(provider.stderr).toMatch(/unknown provider "minikube"\nhint: choose one of: local, kind/);
  });

  it("on a CNI it does not know, or one the local provider cannot run", async () => {
    const unknown = await tph(["up", "--name", "cni", "--cni", "flannel"]);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/--cni: unknown CNI "flannel"\nhint: use NAME\[@VERSION\]/);
    const calico = await tph(["up", "--name", "cni", "--cni", "calico@v3.31.3"]);
    expect(calico.exitCode).toBe(2);
    expect(calico.stderr).toMatch(/--cni: the local provider runs the CNI reference plugins only/);
    expect(calico.stderr).toMatch(/hint: run Calico or Cilium on kind/);
    const kpr = await tph(["up", "--name", "cni", "--kube-proxy-replacement"]);
    expect(kpr.exitCode).toBe(2);
    expect(kpr.stderr).toMatch(/kube-proxy replacement is Cilium's: it needs --cni cilium/);
    expect(await leftovers("cni", E2E_STATE_DIR)).toEqual([]);
  });
});

describe("tph up --provider kind", () => {
  it("without a Docker daemon: fails at once with a clear message and leaves nothing behind", async () => {
    // A fake kind on PATH (kind is not installed here) and the real docker client, whose daemon is absent.
    const fake = await mkdtemp(join(tmpdir(), "tph-kindfake-"));
    await symlink(
      join(import.meta.dirname, "../../harness/cluster/kind/testdata/fake-cli.sh"),
      join(fake, "kind"),
    );
    const started = Date.now();
    const r = await tph(["up", "--provider", "kind", "--name", "nodocker"], {
      env: { PATH: `${fake}:${process.env.PATH}`, TPH_FAKE_LOG: join(fake, "calls.log") },
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/error: Docker is not running or not reachable/);
    expect(r.stderr).toMatch(/hint: start the Docker daemon/);
    expect(Date.now() - started).toBeLessThan(25_000);
    expect(existsSync(join(E2E_STATE_DIR, "nodocker"))).toBe(false);
    expect(existsSync(join(fake, "calls.log"))).toBe(false); // kind was never run
  });
});

describe("tph binaries", () => {
  it("says Go is missing (and how to fix it) when it has to build without Go", async () => {
    const cache = await mkdtemp(join(tmpdir(), "tph-nogo-"));
    const r = await tph(["binaries"], {
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", TPH_CACHE_DIR: cache },
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/error: Go is not installed/);
    expect(r.stderr).toMatch(/hint: install Go/);
  });
});

describe("tph gc", () => {
  it("removes everything a SIGKILLed `tph up` left behind", async () => {
    const name = "killed";
    // A state directory of its own: gc sweeps a whole one, and the e2e one holds the clusters of the
    // suites running beside this one.
    const state = await mkdtemp(join(tmpdir(), "tph-killed-state-"));
    const before = await snapshotHost();
    const child = spawn(TPH_BIN, ["up", "--name", name], {
      env: { ...process.env, ...cliEnv({ TPH_STATE_DIR: state }) },
      stdio: "ignore",
    });
    // Kill it mid-flight: once etcd and the apiserver run but before the cluster is ready.
    await waitFor(
      async () => {
        const record = JSON.parse(await readFile(join(state, name, "state.json"), "utf8"));
        const started = record.processes.map((p: { name: string }) => p.name);
        return started.includes("kube-apiserver")
          ? { done: true, value: record }
          : { done: false, state: started };
      },
      { description: "tph up to start the apiserver", timeoutMs: 60_000, intervalMs: 20 },
    );
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));

    const left = await leftovers(name, state);
    expect(left.some((l) => l.startsWith("netns tph-killed-"))).toBe(true);
    expect(left.some((l) => l.startsWith("process "))).toBe(true);

    const gc = await tph(["gc"], { env: { TPH_STATE_DIR: state } });
    expect(gc.exitCode, gc.stderr).toBe(0);
    expect(gc.stdout).toMatch(/removed cluster killed \(creating, owner gone\)/);
    expect(await leftovers(name, state)).toEqual([]);
    expect(await snapshotHost()).toEqual(before);
  });

  it("leaves alone a cluster that belongs to another state directory (a user's own, during npm test)", async () => {
    const name = "mine";
    const theirs = {
      TPH_STATE_DIR: await mkdtemp(join(tmpdir(), "tph-other-state-")),
      TPH_NODE_SUBNET: "10.250.20.0/24",
    };
    const up = await tph(["up", "--name", name, "--nodes", "1"], { env: theirs });
    expect(up.exitCode, up.stderr).toBe(0);
    try {
      // Another state directory's gc, with --all as the suites' global setup runs it. Not the e2e state
      // directory's own: that would take the clusters of the suites running beside this one.
      const gc = await tph(["gc", "--all"], {
        env: { TPH_STATE_DIR: await mkdtemp(join(tmpdir(), "tph-gc-state-")) },
      });
      expect(gc.exitCode, gc.stderr).toBe(0);
      expect(gc.stdout).not.toMatch(/cluster mine/);
      const status = await tph(["status", "--name", name], { env: theirs });
      expect(status.exitCode, status.stdout + status.stderr).toBe(0);
      expect(status.stdout).not.toMatch(/not running|stopped/i);
    } finally {
      // The owner's gc is the control: from its own state directory the same cluster is removed.
      const own = await tph(["gc", "--all"], { env: theirs });
      expect(own.stdout).toMatch(/removed cluster mine/);
      expect(await leftovers(name, theirs.TPH_STATE_DIR)).toEqual([]);
    }
  });
});
