import { formatIp, nthAddress, overlaps, parseCidr, size } from "../../core/cidr.ts";
import type { CleanupStack } from "../../core/cleanup.ts";
import { type ClusterConfig, NAME_PREFIX } from "../../core/config.ts";
import { TphError, UsageError } from "../../core/errors.ts";
import { run } from "../../core/exec.ts";
import type { Logger } from "../../core/logger.ts";
import { createNamespace, deleteHostLink, deleteNamespace, type HostRoute } from "./netns.ts";

/**
 * The cluster network of a local cluster: one bridge, living in a namespace of its own (so the host's
 * bridge netfilter settings and FORWARD policy never apply to it), with the control plane, nodes and
 * external clients attached by veth. The host gets exactly one link into it, for kubectl and the harness.
 *
 *   host ── tph-<name> ═╗
 *                       ║  br0 in tph-<name>-net
 *   tph-<name>-cp  ═════╣  (.2: etcd, apiserver, controllers)
 *   tph-<name>-n1… ═════╣  (.11…: nodes)
 *   tph-<name>-ext ═════╝  (.200: external client)
 */
export interface NetworkPlan {
  clusterName: string;
  subnet: string;
  prefix: number;
  bridgeNs: string;
  controlPlaneNs: string;
  hostLink: string;
  hostIP: string;
  controlPlaneIP: string;
  /**
   * The nodes' default gateway: an address nobody holds. Real nodes have a default route, and kube-proxy's
   * REJECT for a Service without endpoints sits in the FORWARD path, which a packet only reaches once
   * routing found a route. Traffic no rule claims goes towards it and is lost, as it would be upstream.
   */
  gatewayIP: string;
  clientNs: string;
  clientIP: string;
  /** MetalLB's pool: the top 16 addresses of the subnet, short of broadcast. */
  loadBalancerRange: string;
  podSubnet: string;
  serviceSubnet: string;
  /** The first service IP: the `kubernetes` Service, which must be in the apiserver's certificate. */
  kubernetesServiceIP: string;
}

const FIRST_NODE_INDEX = 11;
const CLIENT_INDEX = 200;

export function planNetwork(clusterName: string, cluster: ClusterConfig): NetworkPlan {
  const subnet = parseCidr(cluster.nodeSubnet);
  const pods = parseCidr(cluster.podSubnet);
  const services = parseCidr(cluster.serviceSubnet);
  if (subnet.prefix > 24) {
    throw new UsageError(
      `node subnet ${subnet.text} is too small`,
      "use a /24 or larger: nodes, clients and a MetalLB pool share it",
    );
  }
  for (const [a, b] of [
    [subnet, pods],
    [subnet, services],
    [pods, services],
  ] as const) {
    if (overlaps(a, b))
      throw new UsageError(
        `subnets ${a.text} and ${b.text} overlap`,
        "give the node, pod and service subnets disjoint ranges",
      );
  }
  const top = subnet.network + size(subnet) - 2; // the last usable address (before broadcast)
  const base = `${NAME_PREFIX}${clusterName}`;
  return {
    clusterName,
    subnet: subnet.text,
    prefix: subnet.prefix,
    bridgeNs: `${base}-net`,
    controlPlaneNs: `${base}-cp`,
    hostLink: base,
    hostIP: nthAddress(subnet, 1),
    controlPlaneIP: nthAddress(subnet, 2),
    gatewayIP: nthAddress(subnet, 3),
    clientNs: `${base}-ext`,
    clientIP: nthAddress(subnet, CLIENT_INDEX),
    loadBalancerRange: `${formatIp(top - 15)}-${formatIp(top)}`,
    podSubnet: pods.text,
    serviceSubnet: services.text,
    kubernetesServiceIP: nthAddress(services, 1),
  };
}

/** The address of node number `index` (1-based). */
export function nodeIP(plan: NetworkPlan, index: number): string {
  return nthAddress(parseCidr(plan.subnet), FIRST_NODE_INDEX + index - 1);
}

/**
 * Refuses to start when the cluster network would shadow or be shadowed by a route the host already has
 * (including the uplink). Pod and service ranges never reach the host, so only the node subnet matters.
 */
export function checkHostCollisions(plan: NetworkPlan, routes: HostRoute[]): void {
  const ours = parseCidr(plan.subnet);
  for (const route of routes) {
    if (route.dst === "default" || route.type === "broadcast" || route.type === "local") continue;
    if (route.dev === plan.hostLink) continue; // our own link from an earlier run: gc's business, not a collision
    const dst = route.dst.includes("/") ? route.dst : `${route.dst}/32`;
    let theirs: ReturnType<typeof parseCidr>;
    try {
      theirs = parseCidr(dst);
    } catch {
      continue; // e.g. multicast or unusual entries we cannot collide with meaningfully
    }
    if (overlaps(ours, theirs)) {
      throw new TphError(
        `the cluster network ${plan.subnet} collides with the host route "${route.dst}${route.dev ? ` dev ${route.dev}` : ""}"`,
        {
          hint: "choose a free range with --node-subnet (or TPH_NODE_SUBNET), e.g. --node-subnet 10.251.0.0/24",
          exitCode: 2,
        },
      );
    }
  }
}

/** Creates the bridge namespace, the host link and the control plane namespace; pushes their removal. */
/**
 * Creates the bridge, the host link and the control-plane namespace. `owner` (the cluster's state
 * directory) is written as the host link's alias, so `tph gc` run with another state directory (the e2e
 * suites', say) can tell this cluster is someone else's and leave it alone.
 */
/** The host link's alias: "tph-state:<state dir>" (see createNetwork). */
export const OWNER_ALIAS_PREFIX = "tph-state:";

export async function createNetwork(
  plan: NetworkPlan,
  stack: CleanupStack,
  logger: Logger,
  owner: string,
): Promise<void> {
  const opts = { logger };
  await createNamespace(plan.bridgeNs, logger);
  stack.push(`delete namespace ${plan.bridgeNs}`, () => deleteNamespace(plan.bridgeNs, logger));
  await run(["ip", "-n", plan.bridgeNs, "link", "add", "br0", "type", "bridge"], opts);
  await run(["ip", "-n", plan.bridgeNs, "link", "set", "br0", "up"], opts);

  // The one link into the project's network: the host end carries .1 and so gains a connected route.
  await run(
    ["ip", "link", "add", plan.hostLink, "type", "veth", "peer", "name", "host", "netns", plan.bridgeNs],
    opts,
  );
  stack.push(`delete host link ${plan.hostLink}`, () => deleteHostLink(plan.hostLink, logger));
  await run(["ip", "-n", plan.bridgeNs, "link", "set", "host", "master", "br0", "up"], opts);
  await run(["ip", "addr", "add", `${plan.hostIP}/${plan.prefix}`, "dev", plan.hostLink], opts);
  await run(["ip", "link", "set", plan.hostLink, "alias", `${OWNER_ALIAS_PREFIX}${owner}`], opts);
  await run(["ip", "link", "set", plan.hostLink, "up"], opts);

  await attachNamespace(plan, plan.controlPlaneNs, "cp", plan.controlPlaneIP, stack, logger);
}

/** Creates namespace `ns` with eth0 = `ip` on the cluster bridge (port `port` on the bridge side). */
export async function attachNamespace(
  plan: NetworkPlan,
  ns: string,
  port: string,
  ip: string,
  stack: CleanupStack,
  logger: Logger,
  options: { defaultRoute?: boolean } = {},
): Promise<void> {
  const opts = { logger };
  await createNamespace(ns, logger);
  stack.push(`delete namespace ${ns}`, () => deleteNamespace(ns, logger));
  await run(
    ["ip", "-n", plan.bridgeNs, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns],
    opts,
  );
  await run(["ip", "-n", plan.bridgeNs, "link", "set", port, "master", "br0", "up"], opts);
  await run(["ip", "-n", ns, "addr", "add", `${ip}/${plan.prefix}`, "dev", "eth0"], opts);
  await run(["ip", "-n", ns, "link", "set", "eth0", "up"], opts);
  if (options.defaultRoute)
    await run(["ip", "-n", ns, "route", "add", "default", "via", plan.gatewayIP, "dev", "eth0"], opts);
}
