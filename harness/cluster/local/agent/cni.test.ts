import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type Attachment,
  CniError,
  type CniRuntime,
  cachedAttachments,
  cniAdd,
  cniCheck,
  cniDel,
  firstAddress,
  type NetworkConfigList,
} from "./cni.ts";
import { POD_NETWORK, type PodNetwork, releaseOrphans } from "./sandbox.ts";

// A fake plugin, installed under each type's name: it logs its environment and stdin, then prints its
// stdin's prevResult with its own name appended (or, for the first plugin, a fresh result), or fails
// with a CNI error object when a file named fail-<type> exists.
const FAKE = `#!/bin/sh
type=$(basename "$0")
dir=$(dirname "$0")
input=$(cat)
printf '%s\\n' "{\\"type\\":\\"$type\\",\\"command\\":\\"$CNI_COMMAND\\",\\"netns\\":\\"$CNI_NETNS\\",\\"ifname\\":\\"$CNI_IFNAME\\",\\"args\\":\\"$CNI_ARGS\\",\\"path\\":\\"$CNI_PATH\\",\\"stdin\\":$input}" >> "$dir/log"
if [ -e "$dir/fail-$type" ]; then
  echo '{"cniVersion":"1.0.0","code":11,"msg":"no addresses left","details":"range full"}'
  exit 1
fi
[ "$CNI_COMMAND" = ADD ] || exit 0
echo "{\\"cniVersion\\":\\"1.0.0\\",\\"ips\\":[{\\"address\\":\\"10.244.1.7/24\\",\\"gateway\\":\\"10.244.1.1\\"}],\\"by\\":\\"$type\\"}"
`;

let dir: string;
let runtime: CniRuntime;
const network: NetworkConfigList = {
  cniVersion: "1.0.0",
  name: "tph-pods",
  plugins: [
    { type: "ptp", ipam: { type: "host-local" } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};
const attachment: Attachment = {
  containerId: "uid-1",
  netns: "/run/netns/pod-1",
  ifName: "eth0",
  args: { IgnoreUnknown: "1", K8S_POD_NAMESPACE: "ns", K8S_POD_NAME: "web" },
  capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }], bandwidth: {} },
};

interface Call {
  type: string;
  command: string;
  netns: string;
  ifname: string;
  args: string;
  path: string;
  stdin: Record<string, unknown>;
}
async function calls(): Promise<Call[]> {
  const text = await readFile(join(dir, "bin", "log"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Call);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tph-cni-"));
  await (await import("node:fs/promises")).mkdir(join(dir, "bin"));
  for (const type of ["ptp", "portmap"]) {
    await writeFile(join(dir, "bin", type), FAKE);
    await chmod(join(dir, "bin", type), 0o755);
  }
  runtime = { binDir: join(dir, "bin"), cacheDir: join(dir, "results") };
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe("CNI runtime", () => {
  it("ADD runs the list in order, chaining prevResult, with the SPEC's environment", async () => {
    const result = await cniAdd(runtime, network, attachment);
    expect(result.by).toBe("portmap");
    expect(firstAddress(result)).toBe("10.244.1.7");
    const [ptp, portmap] = await calls();
    expect(ptp).toMatchObject({
      type: "ptp",
      command: "ADD",
      netns: "/run/netns/pod-1",
      ifname: "eth0",
      args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web",
      path: runtime.binDir,
    });
    // The list's name and version go into every plugin's configuration; the first gets no prevResult.
    expect(ptp?.stdin).toEqual({
      type: "ptp",
      ipam: { type: "host-local" },
      cniVersion: "1.0.0",
      name: "tph-pods",
    });
    expect(portmap?.stdin.prevResult).toMatchObject({ by: "ptp" });
    // Only the capability the plugin declares reaches it as runtimeConfig.
    expect(portmap?.stdin.runtimeConfig).toEqual({ portMappings: attachment.capabilityArgs?.portMappings });
  });

  it("DEL runs in reverse with the cached ADD result and configuration, then forgets them", async () => {
    await cniAdd(runtime, network, attachment);
    expect(await cachedAttachments(runtime, "tph-pods")).toEqual([attachment]);
    // DEL is given another list of the same name: the one ADD used still applies (SPEC).
    const changed: NetworkConfigList = { ...network, plugins: [{ type: "ptp", changed: true }] };
    await cniDel(runtime, changed, { ...attachment, netns: "" });
    const del = (await calls()).filter((c) => c.command === "DEL");
    expect(del.map((c) => c.type)).toEqual(["portmap", "ptp"]);
    expect(del.every((c) => (c.stdin.prevResult as { by?: string }).by === "portmap")).toBe(true);
    expect(del[1]?.stdin.changed).toBeUndefined();
    expect(del[0]?.netns).toBe("");
    expect(await cachedAttachments(runtime, "tph-pods")).toEqual([]);
  });

  it("CHECK runs in order with the cached result; without an ADD it fails", async () => {
    await expect(cniCheck(runtime, "tph-pods", attachment)).rejects.toThrow(/no ADD result cached/);
    await cniAdd(runtime, network, attachment);
    await cniCheck(runtime, "tph-pods", attachment);
    const check = (await calls()).filter((c) => c.command === "CHECK");
    expect(check.map((c) => c.type)).toEqual(["ptp", "portmap"]);
    expect(check[0]?.stdin.prevResult).toMatchObject({ by: "portmap" });
  });

  it("a failed ADD reports the plugin's error object and DELs what it attached", async () => {
    await writeFile(join(dir, "bin", "fail-portmap"), "");
    const err = await cniAdd(runtime, network, attachment).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(11);
    expect((err as Error).message).toContain(
      "CNI ADD of portmap for uid-1 (eth0) failed: no addresses left (range full)",
    );
    // Every plugin of the list got its DEL (portmap's failed too, and did not stop ptp's), nothing is cached.
    const del = (await calls()).filter((c) => c.command === "DEL");
    expect(del.map((c) => c.type)).toEqual(["portmap", "ptp"]);
    expect(await cachedAttachments(runtime, "tph-pods")).toEqual([]);
  });

  it("a plugin that is not installed fails with the path it looked for", async () => {
    const missing: NetworkConfigList = { ...network, plugins: [{ type: "calico" }] };
    await expect(cniAdd(runtime, missing, attachment)).rejects.toThrow(/CNI ADD of calico .*not found/s);
  });
});

describe("a restarted agent", () => {
  it("DELs the attachments whose pod namespace is gone, and keeps the others", async () => {
    for (const type of ["loopback"]) {
      await writeFile(join(dir, "bin", type), FAKE);
      await chmod(join(dir, "bin", type), 0o755);
    }
    const net: PodNetwork = { runtime, network: { ...network, name: POD_NETWORK } };
    const gone = { ...attachment, containerId: "gone", netns: join(dir, "no-such-netns") };
    const live = { ...attachment, containerId: "live", netns: dir }; // a path that exists stands for a live namespace
    await cniAdd(runtime, net.network, gone);
    await cniAdd(runtime, net.network, live);
    expect(await releaseOrphans(net)).toEqual(["gone"]);
    const del = (await calls()).filter((c) => c.command === "DEL");
    // Both plugins of the list, without a namespace to enter (SPEC: DEL must then release what it can).
    expect(del.map((c) => `${c.type} ${c.netns || "-"}`)).toEqual(["portmap -", "ptp -", "loopback -"]);
    expect((await cachedAttachments(runtime, POD_NETWORK)).map((a) => a.containerId)).toEqual(["live"]);
  });
});
