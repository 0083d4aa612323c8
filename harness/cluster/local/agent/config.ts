/**
 * What the provider hands a node agent, as a JSON file named on its command line. Everything the
 * agent needs is here, so an agent restarted by hand (or by `tph`) behaves exactly the same.
 */
export interface AgentConfig {
  clusterName: string;
  nodeName: string;
  nodeIP: string;
  /** The node's network namespace (the agent itself runs inside it). */
  nodeNs: string;
  /** The control plane's namespace: the agent adds the route to its pod CIDR there. */
  controlPlaneNs: string;
  /** Prefix of the pod network namespaces it creates: `<prefix><pod uid, 8 chars>`. */
  podNsPrefix: string;
  kubeconfig: string;
  /** Identity for reading every Node (pod CIDR routes): a node's own identity may read only itself. */
  cniKubeconfig: string;
  /**
   * The pod network's CNI plugins (`binDir`, each named by its type) and this node's CNI files (`dir`:
   * net.d/ with the conflist, results/ with each ADD's result, networks/ with host-local's addresses).
   */
  cni: { binDir: string; dir: string };
  /** Where pod logs go: `<podsDir>/<namespace>_<name>_<uid>/<container>.log`. */
  podsDir: string;
  labels: Record<string, string>;
  /** Image name pattern -> local binary. A pod whose image matches none fails with a clear status. */
  images: ImageMapping[];
  kubeletVersion: string;
  leaseDurationSeconds: number;
  /** How often the Lease is renewed and the Node status re-posted. */
  heartbeatSeconds: number;
}

export interface ImageMapping {
  /** Matches when the image's repository path (no tag or digest) ends with this, e.g. "agnhost". */
  repositorySuffix: string;
  /** The program run in place of the image's entrypoint. */
  binary: string;
  /** Arguments placed before the container's args when the container gives no `command`. */
  entrypointArgs?: string[];
  /**
   * Files the image's pods find in volumes, as paths on this machine: an argument equal to a key is
   * replaced by its value (volumes are not mounted here; the probe clients' /tph/probe.ts is this
   * checkout's probe.ts).
   */
  files?: Record<string, string>;
}
