import { access, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { run } from "../../../core/exec.ts";
import { deleteNamespace } from "../netns.ts";
import {
  type Attachment,
  type CniRuntime,
  cachedAttachments,
  cniAdd,
  cniCheck,
  cniDel,
  firstAddress,
  type NetworkConfigList,
} from "./cni.ts";

/**
 * A pod's network: its own namespace, attached by CNI plugins as a container runtime does. The default
 * network is the one kind's kindnetd writes: the reference ptp plugin (a routed veth, eth0 = an address
 * of the node's podCIDR from host-local, the node side carrying the gateway address and a /32 route to
 * the pod; no bridge, so no hairpin or br_netfilter concerns) chained to portmap (hostPort), plus the
 * loopback plugin for lo.
 *
 * The agent runs inside the node's namespace, so the plugins act on the node.
 */
export interface Sandbox {
  ns: string;
  ip: string;
  /** The attachment DEL needs (absent for a hostNetwork pod, which has none). */
  attachment?: Attachment;
}

export const POD_NETWORK = "tph-pods";
const LOOPBACK: NetworkConfigList = {
  cniVersion: "1.0.0",
  name: "cni-loopback",
  plugins: [{ type: "loopback" }],
};

/** Where one node's CNI files live: its conflist, the cached results, host-local's allocations. */
export interface PodNetwork {
  runtime: CniRuntime;
  network: NetworkConfigList;
}

/**
 * Writes the node's network configuration list for its podCIDR (as kindnetd does once the node has
 * one) and returns it with the runtime that runs it.
 */
export async function podNetwork(binDir: string, dir: string, podCIDR: string): Promise<PodNetwork> {
  const network: NetworkConfigList = {
    cniVersion: "1.0.0",
    name: POD_NETWORK,
    plugins: [
      {
        type: "ptp",
        ipMasq: false,
        mtu: 1500,
        ipam: {
          type: "host-local",
          // Per node: host-local's default (/var/lib/cni/networks) would be shared by every node here.
          dataDir: join(dir, "networks"),
          ranges: [[{ subnet: podCIDR }]],
          routes: [{ dst: "0.0.0.0/0" }],
        },
      },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  };
  await mkdir(join(dir, "net.d"), { recursive: true });
  // The file a person looks for on a node; the agent keeps the list it wrote in memory.
  await writeFile(join(dir, "net.d", "10-tph.conflist"), JSON.stringify(network, null, 2));
  return { runtime: { binDir, cacheDir: join(dir, "results") }, network };
}

export async function createSandbox(net: PodNetwork, ns: string, pod: V1Pod): Promise<Sandbox> {
  const uid = pod.metadata?.uid ?? ns;
  const attachment: Attachment = {
    containerId: uid,
    netns: `/run/netns/${ns}`,
    ifName: "eth0",
    args: {
      IgnoreUnknown: "1",
      K8S_POD_NAMESPACE: pod.metadata?.namespace ?? "",
      K8S_POD_NAME: pod.metadata?.name ?? "",
      K8S_POD_INFRA_CONTAINER_ID: uid,
      K8S_POD_UID: uid,
    },
    capabilityArgs: { portMappings: portMappings(pod) },
  };
  await run(["ip", "netns", "add", ns]);
  try {
    await cniAdd(net.runtime, LOOPBACK, { ...attachment, ifName: "lo" });
    const result = await cniAdd(net.runtime, net.network, attachment);
    // CHECK right away: a plugin that reports success for an attachment it did not make is caught here.
    await cniCheck(net.runtime, net.network.name, attachment);
    return { ns, ip: firstAddress(result), attachment };
  } catch (err) {
    await deleteSandbox(net, { ns, ip: "", attachment });
    throw err;
  }
}

/** DEL through the plugins (releasing the pod's address), then kills what still runs there and deletes it. */
export async function deleteSandbox(net: PodNetwork, sandbox: Sandbox): Promise<void> {
  let first: unknown;
  if (sandbox.attachment) {
    for (const [network, ifName] of [
      [net.network, "eth0"],
      [LOOPBACK, "lo"],
    ] as const) {
      await cniDel(net.runtime, network, { ...sandbox.attachment, ifName }).catch((err) => {
        first ??= err;
      });
    }
  }
  await deleteNamespace(sandbox.ns);
  if (first !== undefined) throw first;
}

/**
 * After a restart (a node stopped as by a power cut loses every pod namespace without a DEL): the
 * attachments whose namespace is gone get their DEL now, as a runtime's sandbox garbage collection
 * does, so host-local hands their addresses out again.
 */
export async function releaseOrphans(net: PodNetwork): Promise<string[]> {
  const released: string[] = [];
  for (const a of await cachedAttachments(net.runtime, net.network.name)) {
    if (await exists(a.netns)) continue;
    await cniDel(net.runtime, net.network, { ...a, netns: "" });
    await cniDel(net.runtime, LOOPBACK, { ...a, ifName: "lo", netns: "" }).catch(() => undefined);
    released.push(a.containerId);
  }
  return released;
}

/** The pod's hostPorts, as the portmap plugin's runtimeConfig takes them (CNI CONVENTIONS.md). */
function portMappings(pod: V1Pod): { hostPort: number; containerPort: number; protocol: string }[] {
  return (pod.spec?.containers ?? []).flatMap((c) =>
    (c.ports ?? [])
      .filter((p) => p.hostPort !== undefined && p.hostPort > 0)
      .map((p) => ({
        hostPort: p.hostPort as number,
        containerPort: p.containerPort,
        protocol: (p.protocol ?? "TCP").toLowerCase(),
      })),
  );
}

async function exists(path: string): Promise<boolean> {
  if (!path) return false;
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
