import { type Cidr, nthAddress, parseCidr, parseIp, size } from "../../../core/cidr.ts";
import { run } from "../../../core/exec.ts";
import { deleteNamespace } from "../netns.ts";

/**
 * A pod's network: its own namespace with eth0 = <pod IP>/32, reached from the node through a routed
 * veth (no bridge, so no hairpin or br_netfilter concerns). The node side of every veth carries the
 * pod CIDR's gateway address (.1/32) and a /32 route to the pod, as the CNI ptp plugin does.
 *
 * The agent runs inside the node's namespace, so plain `ip` commands act on the node.
 */
export interface Sandbox {
  ns: string;
  ip: string;
  hostVeth: string;
}

export async function createSandbox(
  ns: string,
  hostVeth: string,
  ip: string,
  gateway: string,
): Promise<Sandbox> {
  await run(["ip", "netns", "add", ns]);
  try {
    await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    await run(["ip", "link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await run(["ip", "addr", "add", `${gateway}/32`, "dev", hostVeth]);
    await run(["ip", "link", "set", hostVeth, "up"]);
    await run(["ip", "route", "replace", `${ip}/32`, "dev", hostVeth, "scope", "link"]);
    await run(["ip", "-n", ns, "addr", "add", `${ip}/32`, "dev", "eth0"]);
    await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    await run(["ip", "-n", ns, "route", "add", gateway, "dev", "eth0", "scope", "link"]);
    await run(["ip", "-n", ns, "route", "add", "default", "via", gateway, "dev", "eth0"]);
  } catch (err) {
    await deleteSandbox({ ns, ip, hostVeth });
    throw err;
  }
  return { ns, ip, hostVeth };
}

/** Kills whatever still runs in the pod's namespace and deletes it (the veth pair goes with it). */
export async function deleteSandbox(sandbox: Sandbox): Promise<void> {
  await deleteNamespace(sandbox.ns);
  await run(["ip", "link", "del", sandbox.hostVeth], { allowFailure: true });
}

/** Hands out pod IPs from the node's podCIDR: .1 is the gateway, .2 and up go to pods. */
export class PodIpam {
  readonly gateway: string;
  readonly #cidr: Cidr;
  readonly #used = new Set<number>();

  constructor(podCIDR: string) {
    this.#cidr = parseCidr(podCIDR);
    this.gateway = nthAddress(this.#cidr, 1);
  }

  allocate(): string {
    for (let i = 2; i < size(this.#cidr) - 1; i++) {
      if (!this.#used.has(i)) {
        this.#used.add(i);
        return nthAddress(this.#cidr, i);
      }
    }
    throw new Error(`pod CIDR ${this.#cidr.text} is exhausted`);
  }

  release(ip: string): void {
    this.#used.delete(parseIp(ip) - this.#cidr.network);
  }
}
