import { join } from "node:path";
import { run } from "../../core/exec.ts";
import { PROBE_IMAGE } from "../../traffic/clients.ts";

/**
 * The external client on kind: a container on the `kind` docker network, outside every node, that runs
 * the probe program. Its address on that network is the source IP a preserving path must show.
 */
export interface ExternalClient {
  id: string;
  ip: string;
}

export interface ExternalClientFactory {
  start(clusterName: string, labels: Record<string, string>): Promise<ExternalClient>;
}

/** Node's official image runs the probe (TypeScript with erasable types only) as it is. */
export const CLIENT_IMAGE = PROBE_IMAGE;
export const PROBE_IN_CLIENT = "/tph/probe.ts";

/** The real factory: testcontainers. */
export const testcontainersClientFactory: ExternalClientFactory = {
  async start(clusterName, labels) {
    // The cluster outlives `tph up`; testcontainers' reaper would remove the client when this process
    // exits. Our own labels and `tph gc`/`tph down` clean it up instead.
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
    const { GenericContainer } = await import("testcontainers");
    const container = await new GenericContainer(CLIENT_IMAGE)
      .withName(`tph-${clusterName}-client`)
      .withNetworkMode("kind")
      .withLabels(labels)
      .withCopyFilesToContainer([
        { source: join(import.meta.dirname, "../../traffic/probe.ts"), target: PROBE_IN_CLIENT },
      ])
      .withCommand(["sleep", "infinity"])
      .start();
    return { id: container.getId(), ip: container.getIpAddress("kind") };
  },
};

/** Runs argv in the client container (docker exec: no shell in between). */
export function execInClient(
  client: ExternalClient,
  argv: string[],
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
) {
  return run(["docker", "exec", client.id, ...argv], { allowFailure: true, ...options });
}
