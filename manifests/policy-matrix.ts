import type { ProxyMode } from "../harness/core/config.ts";
import { compareRelease } from "../harness/core/releases.ts";

/**
 * The policy matrix, as data: every traffic source to every entry point of a Service, under each pair
 * of traffic policies, with the outcome kube-proxy's code says it must have. One endpoint pod runs on
 * node E; node N has none. The suite `policy-matrix` iterates these tables; a cell is one named test.
 *
 * Outcomes:
 *   own       served; the backend sees the source's own address (a host-network source's is its node IP)
 *   snat:E    served; the backend sees an address of node E (its IP or its pod-CIDR gateway): masqueraded
 *             on E
 *   snat:N    served; masqueraded on N
 *   snat:ann  served; masqueraded on whichever node announces the LoadBalancer IP
 *   dropped   no answer: the client times out (the blackhole)
 *   refused   rejected at once (no endpoints anywhere)
 *   nowhere   no answer and no refusal: nobody holds the address any more (MetalLB withdrew it, or the
 *             packet left a node that does not capture it); timeout or unreachable
 *   n/a       the source has no route to the entry point (the external client to a ClusterIP)
 *
 * Sources (see the suite for how each is made): the external client (outside every node), a pod on E, a
 * pod on N, a host-network pod on E and on N, and the endpoint pod calling its own Service (hairpin).
 * Entry points: the ClusterIP, the NodePort on E's and on N's address, the LoadBalancer IP, and a
 * spec.externalIPs address that the external client routes via N.
 *
 * Sources of the expectations, kube-proxy v1.37.2 (pkg/proxy/iptables/proxier.go = IPT,
 * pkg/proxy/nftables/proxier.go = NFT, pkg/proxy/topology.go = TOP), cited per cell as [Jn]:
 *  J1  ClusterIP from a pod: DNAT, no masquerade (IPT:923-930, 1082-1092; NFT:744-766).
 *  J1h ClusterIP from a host-network source: not from the cluster CIDR, so masqueraded (IPT:1082-1092,
 *      741-756; NFT:529-536, 744-757).
 *  J2  LoadBalancer IPs and externalIPs are captured on the first node the packet meets, for pods and
 *      host-network sources their own (nat PREROUTING and OUTPUT; IPT:374-375, 944-981; NFT:432-433,
 *      1478-1533).
 *  J3  NodePorts are captured only on the node whose address they are (IPT:1276-1290 --dst-type LOCAL;
 *      NFT:768-777 fib daddr type local).
 *  J4  Hairpin: an endpoint calling itself is masqueraded (IPT:1232-1235; NFT:537-544, 1347-1358).
 *  J5  eTP=Cluster: everything entering the external chain is masqueraded (IPT:1104-1110; NFT:1645-1654).
 *  J6  iTP=Local with no local endpoint: ClusterIP traffic DROPped (IPT:899-904, 931-940;
 *      NFT:1429-1432, 1463-1475).
 *  J7  eTP=Local reaching a node with a local endpoint from outside: DNAT, no masquerade: the source is
 *      preserved (IPT:1147-1151; NFT:1700-1706).
 *  J8  eTP=Local reaching a node without a local endpoint from outside: DROP (IPT:956-1044;
 *      NFT:1434-1440, 1494-1631). The blackhole this project exists to catch.
 *  J9  eTP=Local, a pod source: short-circuited to the cluster-wide chain, not masqueraded
 *      (IPT:1115-1124; NFT:1659-1672).
 *  J10 eTP=Local, a host-network source on the capturing node: masqueraded, cluster-wide
 *      (IPT:1130-1143 --src-type LOCAL; NFT:1677-1696 fib saddr type local).
 *  J11 eTP=Local, a pod on E calling N's NodePort: N short-circuits it (J9) to the endpoint on E without
 *      masquerade; the reply stays inside E and never meets N's conntrack: the client resets it and
 *      times out.
 *  J12 eTP=Local, the endpoint calling N's NodePort: iptables masquerades it on N (its endpoint chains,
 *      with the `-s <endpoint>` hairpin rule, exist for remote endpoints too; IPT:1216-1235); nftables
 *      from v1.36 keeps the hairpin set for local endpoints only (NFT:1347-1358): the endpoint gets a
 *      packet from itself, which the kernel drops. The proxy modes differ here.
 *  J13 No endpoints anywhere: REJECT, whatever the policies (IPT:888-897; NFT:1418-1426, 619-629).
 *  J14 No endpoints, a host-network source to a LoadBalancer IP or externalIP: iptables has no OUTPUT
 *      hook for them (IPT:364-377): the packet leaves and finds nobody; nftables rejects it in its
 *      output hook (NFT:427). The nodes' neighbour entries are flushed first, as the client's are
 *      (J15): one a node cached while the address was withdrawn is refreshed by MetalLB's gratuitous
 *      ARP when the address comes back, and would lead the packet to the last announcer, which
 *      refuses it.
 *  J15 No endpoints: MetalLB stops announcing the LoadBalancer IP (speaker ShouldAnnounce needs an
 *      active endpoint); the client's neighbour entry is flushed first, so nothing answers.
 *  J16 kube-proxy ignores a node's schedulability, its taints and the exclude-from-external-load-balancers
 *      label: forwarding on E is unchanged when E is cordoned, tainted ToBeDeletedByClusterAutoscaler or
 *      labelled (the taint turns only kube-proxy's own /healthz to 503: pkg/proxy/healthcheck/
 *      proxy_health.go:179-196; the Service's health check node port keeps counting local endpoints).
 *  J17 MetalLB's L2 election (speaker/layer2_controller.go v0.16.1, ShouldAnnounce 83-123, speakersForAds
 *      253-278) drops speakers on nodes labelled exclude-from-external-load-balancers and looks at
 *      neither cordons nor taints. eTP=Local announces only from nodes with a ready endpoint: with E
 *      labelled nobody announces, the LoadBalancer IP answers nowhere (the client's neighbour entry is
 *      flushed first; a cached one would keep reaching E and hide it until it expires). eTP=Cluster
 *      moves the announcement to N, which masquerades.
 *  J18 UDP: the same rules as TCP (kube-proxy's chains match on the Service's protocol and port). A UDP
 *      flow from a fixed source port lives on in conntrack after its endpoint is gone; kube-proxy
 *      deletes the stale UDP entries of ClusterIPs, LoadBalancer IPs and externalIPs, so the next
 *      datagram meets the REJECT (refused); a NodePort's entries only while the Service still has a
 *      serving endpoint (pkg/proxy/conntrack/cleanup.go v1.37.2:89-96, 112-119, `svc.NodePort() != 0 && endpoints.Len()
 *      > 0`): with none left an eTP=Local flow keeps going to the dead pod's address, which nobody
 *      holds (nowhere), until the entry expires (120 s after its last datagram, which each retry
 *      renews). An eTP=Cluster flow from outside was masqueraded out of the pod's veth on E; the
 *      kernel deletes the entries masqueraded out of an interface when it goes down
 *      (net/netfilter/nf_nat_masquerade.c, masq_device_event), so its next datagram meets the REJECT
 *      (refused). Where the endpoint sits on another node than the entry the masquerade leaves by the
 *      node's own link, which stays, and the flow would go nowhere as under eTP=Local.
 *  J19 E NotReady: its kubelet stops (hangs or crashes) while its pods, kube-proxy and MetalLB speaker
 *      run on. After --node-monitor-grace-period the node lifecycle controller marks E Unknown and
 *      every pod on it Ready=False (pkg/controller/nodelifecycle/node_lifecycle_controller.go v1.37.2:
 *      766-777, util/node/controller_utils.go:121-160, MarkPodsNotReady); the EndpointSlice controller
 *      publishes the endpoint not ready and not serving; kube-proxy uses ready endpoints, else
 *      serving-terminating ones (pkg/proxy/topology.go:57-80): none, so every Service is as without
 *      endpoints (J13, J14) and MetalLB withdraws every address (J15), although the pod still answers.
 *      The endpoint calling its own Service is refused like any pod on E.
 *  kubernetes#131765: nftables kube-proxy before the fix (v1.33.5, v1.34.0-; fixed in v1.33.6 and
 *      v1.34.0 by kubernetes#132456) checked `no-endpoint-services` in filter-output at priority -110,
 *      before DNAT: a host-network source on N calling the LoadBalancer IP or an externalIP of an
 *      eTP=Local Service matched the drop element and timed out (NFT v1.33.5:394-422).
 */
export type Outcome = "own" | "snat:E" | "snat:N" | "snat:ann" | "dropped" | "refused" | "nowhere" | "n/a";

export const SOURCES = ["external", "pod@E", "pod@N", "host@E", "host@N", "hairpin"] as const;
export type Source = (typeof SOURCES)[number];

export const ENTRIES = ["clusterip", "nodeport@E", "nodeport@N", "loadbalancer", "externalip"] as const;
export type Entry = (typeof ENTRIES)[number];

export type Policy = "Cluster" | "Local";
export interface PolicyPair {
  externalTrafficPolicy: Policy;
  internalTrafficPolicy: Policy;
}
export const POLICY_PAIRS: readonly PolicyPair[] = [
  { externalTrafficPolicy: "Cluster", internalTrafficPolicy: "Cluster" },
  { externalTrafficPolicy: "Cluster", internalTrafficPolicy: "Local" },
  { externalTrafficPolicy: "Local", internalTrafficPolicy: "Cluster" },
  { externalTrafficPolicy: "Local", internalTrafficPolicy: "Local" },
];

export type EndpointState = "serving" | "none";

/**
 * States of node E, which holds the only endpoint (and announces every eTP=Local LoadBalancer IP): what
 * platform changes do to a node before they drain or delete it. Each is applied alone and undone after.
 */
export const NODE_STATES = [
  "E cordoned",
  "E tainted ToBeDeletedByClusterAutoscaler",
  "E excluded from load balancers",
  "E NotReady (kubelet stopped)",
] as const;
export type NodeState = (typeof NODE_STATES)[number];

/** The matrix's phases: the endpoint serving, each state of its node, then no endpoint anywhere. */
export type MatrixState = EndpointState | NodeState;

/** A phase's title in the grids. */
export function stateTitle(state: MatrixState): string {
  if (state === "serving") return "one serving endpoint on E";
  if (state === "none") return "no endpoints";
  if (state === "E NotReady (kubelet stopped)") return `${state}, its endpoint marked not ready`;
  return `${state} (its endpoint serving)`;
}

/** A cell whose outcome depends on the proxy mode (and release): kept apart, and marked in the grid. */
export interface ModeDependent {
  iptables: Outcome;
  nftables: Outcome;
  /** Why they differ, and since when. */
  why: string;
  /** nftables releases before this one behave like iptables here. */
  nftablesSince?: string;
}

export type Cell = Outcome | ModeDependent;

/** One table: rows = sources, columns = entry points in ENTRIES order. */
type Table = Record<Source, readonly [Cell, Cell, Cell, Cell, Cell]>;

const HAIRPIN_REMOTE_NODEPORT: ModeDependent = {
  iptables: "snat:N",
  nftables: "dropped",
  why: "J12: nftables masquerades hairpin traffic only for local endpoints; iptables for every endpoint",
  nftablesSince: "v1.36.0",
};

// eTP=Cluster: every external entry point is masqueraded on the node that captures it [J5]; pods and
// host-network sources capture LoadBalancer IPs and externalIPs on their own node [J2]; NodePorts only
// on the node whose address they are [J3].
const CLUSTER_CLUSTER: Table = {
  //        ClusterIP      NodePort@E  NodePort@N  LoadBalancer  externalIP (routed via N)
  external: ["n/a", /*   */ "snat:E", "snat:N", "snat:ann", "snat:N"], // J5
  "pod@E": ["own", /*    */ "snat:E", "snat:N", "snat:E", "snat:E"], // J1, J5, J2
  "pod@N": ["own", /*    */ "snat:E", "snat:N", "snat:N", "snat:N"], // J1, J5, J2
  "host@E": ["snat:E", /**/ "snat:E", "snat:N", "snat:E", "snat:E"], // J1h, J5, J2
  "host@N": ["own", /*    */ "snat:E", "own", "own", "own"], // J1h, J5: masqueraded to N's own IP
  hairpin: ["snat:E", /**/ "snat:E", "snat:N", "snat:E", "snat:E"], // J4, J5
};

// iTP=Local changes the ClusterIP column only: a node without a local endpoint drops [J6].
const CLUSTER_LOCAL: Table = {
  ...CLUSTER_CLUSTER,
  "pod@N": ["dropped", "snat:E", "snat:N", "snat:N", "snat:N"], // J6
  "host@N": ["dropped", "snat:E", "own", "own", "own"], // J6
};

// eTP=Local: from outside, preserved via E [J7], dropped via N [J8]; pods are short-circuited to every
// endpoint [J9]; host-network sources are masqueraded on their own node [J10].
const LOCAL_CLUSTER: Table = {
  //        ClusterIP      NodePort@E  NodePort@N  LoadBalancer  externalIP (routed via N)
  external: ["n/a", /*   */ "own", "dropped", "own", "dropped"], // J7, J8 (MetalLB announces from E)
  "pod@E": ["own", /*    */ "own", "dropped", "own", "own"], // J9; J11 (asymmetric reply)
  "pod@N": ["own", /*    */ "own", "own", "own", "own"], // J9 (via E: J7)
  "host@E": ["snat:E", /**/ "snat:E", "dropped", "snat:E", "snat:E"], // J10; J8 (E's IP is outside on N)
  "host@N": ["own", /*    */ "own", "own", "own", "own"], // J7, J10 (N's own IP); kubernetes#131765
  hairpin: ["snat:E", /**/ "snat:E", HAIRPIN_REMOTE_NODEPORT, "snat:E", "snat:E"], // J9+J4, J12
};

const LOCAL_LOCAL: Table = {
  ...LOCAL_CLUSTER,
  "pod@N": ["dropped", "own", "own", "own", "own"], // J6
  "host@N": ["dropped", "own", "own", "own", "own"], // J6
};

// No endpoints anywhere: REJECT whatever the policies [J13]; the LoadBalancer IP is withdrawn [J15];
// host-network sources to external addresses differ by mode [J14]. No hairpin: there is no pod.
const HOST_TO_EXTERNAL_NO_ENDPOINTS: ModeDependent = {
  iptables: "nowhere",
  nftables: "refused",
  why: "J14: iptables has no OUTPUT hook for LoadBalancer IPs and externalIPs; nftables rejects in output",
};
const NO_ENDPOINTS: Omit<Table, "hairpin"> = {
  external: ["n/a", "refused", "refused", "nowhere", "refused"],
  "pod@E": ["refused", "refused", "refused", "refused", "refused"],
  "pod@N": ["refused", "refused", "refused", "refused", "refused"],
  "host@E": ["refused", "refused", "refused", HOST_TO_EXTERNAL_NO_ENDPOINTS, HOST_TO_EXTERNAL_NO_ENDPOINTS],
  "host@N": ["refused", "refused", "refused", HOST_TO_EXTERNAL_NO_ENDPOINTS, HOST_TO_EXTERNAL_NO_ENDPOINTS],
};

/**
 * A state of E changes what the external client sees through E and nothing else (pods and host-network
 * sources are captured by their own node's kube-proxy, J2, which ignores node states, J16): only the
 * external row's entry points through E are tested, from the serving table, with MetalLB's election
 * applied [J17].
 */
function nodeStateTable(serving: Table, pair: PolicyPair, state: NodeState): Partial<Table> {
  const [, nodePortE, , lb] = serving.external;
  const excluded = state === "E excluded from load balancers";
  const lbSeen: Cell = !excluded ? lb : pair.externalTrafficPolicy === "Local" ? "nowhere" : "snat:ann";
  // The entry points that go through E: its NodePort and the LoadBalancer IP it announces. N's NodePort
  // and the externalIP (routed via N) do not meet E's state; the serving phase covers them.
  return { external: ["n/a", nodePortE, "n/a", lbSeen, "n/a"] };
}

/** E NotReady: every Service as without endpoints, the endpoint pod itself included [J19]. */
const NOT_READY: Table = { ...NO_ENDPOINTS, hairpin: NO_ENDPOINTS["pod@E"] };

function tableFor(pair: PolicyPair, state: MatrixState): Partial<Table> {
  if (state === "none") return NO_ENDPOINTS;
  if (state === "E NotReady (kubelet stopped)") return NOT_READY;
  const key = `${pair.externalTrafficPolicy}/${pair.internalTrafficPolicy}`;
  const serving = {
    "Cluster/Cluster": CLUSTER_CLUSTER,
    "Cluster/Local": CLUSTER_LOCAL,
    "Local/Cluster": LOCAL_CLUSTER,
    "Local/Local": LOCAL_LOCAL,
  }[key] as Table;
  return state === "serving" ? serving : nodeStateTable(serving, pair, state);
}

/** Releases before the kubernetes#131765 fix, in nftables mode, drop these cells (see above). */
function before131765(version: string): boolean {
  return compareRelease(version, "v1.33.6") < 0;
}

/**
 * The cells also sent over UDP, each from a fixed source port kept from the serving phase into the
 * scaled-to-zero one, so the second finds the flow's conntrack entry [J18]: from outside through E's
 * NodePort and the LoadBalancer IP, and from N (a pod and the node) to the ClusterIP.
 */
export const UDP_CELLS: readonly (readonly [Source, Entry])[] = [
  ["external", "nodeport@E"],
  ["external", "loadbalancer"],
  ["pod@N", "clusterip"],
  ["host@N", "clusterip"],
];

export type Protocol = "tcp" | "udp";

export interface MatrixCell {
  source: Source;
  entry: Entry;
  pair: PolicyPair;
  state: MatrixState;
  /** UDP from a fixed source port (UDP_CELLS); TCP when absent. */
  protocol?: "udp";
  /** What this cell must show under the given proxy mode and kube-proxy release. */
  expected: Outcome;
  /** The proxy modes (or releases) are known to differ here: why. */
  differs?: string;
}

/**
 * Every cell of the matrix for one proxy mode and kube-proxy release (n/a cells left out), in table order.
 * The release picks between the sides of a mode-dependent cell that changed in a known release. A
 * release with a known bug (kubernetes#131765) is still expected to show the correct behaviour: its bug
 * fails the cell, which is how a reproduction fails.
 */
export function matrixCells(
  mode: ProxyMode,
  state: MatrixState,
  kubeProxyVersion: string,
  protocol: Protocol = "tcp",
): MatrixCell[] {
  const cells = tcpCells(mode, state, kubeProxyVersion);
  if (protocol === "tcp") return cells;
  if (state !== "serving" && state !== "none") return [];
  return cells
    .filter((c) => UDP_CELLS.some(([source, entry]) => c.source === source && c.entry === entry))
    .map((c) => ({
      ...c,
      protocol: "udp" as const,
      // [J18] A NodePort's stale UDP entries stay when the Service has no endpoint left, unless the
      // kernel dropped them with the pod's veth (masqueraded under eTP=Cluster).
      ...(state === "none" &&
        c.entry.startsWith("nodeport@") &&
        c.pair.externalTrafficPolicy === "Local" && { expected: "nowhere" as const }),
    }));
}

function tcpCells(mode: ProxyMode, state: MatrixState, kubeProxyVersion: string): MatrixCell[] {
  const pick = (cell: ModeDependent): Outcome =>
    mode === "iptables" ||
    (cell.nftablesSince !== undefined && compareRelease(kubeProxyVersion, cell.nftablesSince) < 0)
      ? cell.iptables
      : cell.nftables;
  const cells: MatrixCell[] = [];
  for (const pair of POLICY_PAIRS) {
    const table = tableFor(pair, state);
    for (const source of SOURCES) {
      const row = table[source];
      if (!row) continue;
      ENTRIES.forEach((entry, i) => {
        const cell = row[i] as Cell;
        const expected = typeof cell === "string" ? cell : pick(cell);
        if (expected === "n/a") return;
        cells.push({
          source,
          entry,
          pair,
          state,
          expected,
          ...(typeof cell !== "string" && { differs: cell.why }),
        });
      });
    }
  }
  return cells;
}

/** Whether `cell` is one that kubernetes#131765 breaks on `kubeProxyVersion` in `mode`. */
export function brokenBy131765(cell: MatrixCell, mode: ProxyMode, kubeProxyVersion: string): boolean {
  return (
    mode === "nftables" &&
    before131765(kubeProxyVersion) &&
    cell.state === "serving" &&
    cell.source === "host@N" &&
    cell.pair.externalTrafficPolicy === "Local" &&
    (cell.entry === "loadbalancer" || cell.entry === "externalip")
  );
}

export function cellName(c: Pick<MatrixCell, "source" | "entry" | "protocol">): string {
  return `${c.source} -> ${c.entry}${c.protocol === "udp" ? " (udp)" : ""}`;
}

/** The grid a cell is shown in: its phase, its protocol when UDP, its policy pair. */
export function cellGroup(c: Pick<MatrixCell, "state" | "protocol" | "pair">): string {
  return `${stateTitle(c.state)}${c.protocol === "udp" ? ", UDP from a fixed source port" : ""}, ${pairName(c.pair)}`;
}

export function pairName(p: PolicyPair): string {
  return `eTP=${p.externalTrafficPolicy} iTP=${p.internalTrafficPolicy}`;
}
