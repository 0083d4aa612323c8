import { formatIp, parseCidr, parseIp, size } from "../core/cidr.ts";
import { TphError } from "../core/errors.ts";
import { sleep } from "../core/wait.ts";

/**
 * MetalLB's pool on kind: a range at the top of the `kind` docker network's IPv4 subnet, clear of every
 * address docker handed out (nodes, the external client container). Input: `docker network inspect kind`
 * output (a JSON array with one network).
 */
export interface DockerNetwork {
  IPAM?: { Config?: { Subnet?: string; Gateway?: string }[] };
  Containers?: Record<string, { Name?: string; IPv4Address?: string }>;
}

export function kindPoolRange(inspectJson: string, poolSize = 16): string {
  let networks: DockerNetwork[];
  try {
    networks = JSON.parse(inspectJson) as DockerNetwork[];
  } catch (err) {
    throw new TphError(
      `cannot parse docker network inspect output: ${err instanceof Error ? err.message : err}`,
    );
  }
  const network = networks[0];
  // kind networks are dual-stack: take the IPv4 subnet, ignore the IPv6 one.
  const subnet = network?.IPAM?.Config?.map((c) => c.Subnet).find(
    (s) => s && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s),
  );
  if (!subnet)
    throw new TphError("the kind docker network has no IPv4 subnet", {
      hint: "recreate it: docker network rm kind",
    });
  const cidr = parseCidr(subnet);
  const used = new Set<number>();
  for (const c of Object.values(network?.Containers ?? {})) {
    const ip = c.IPv4Address?.split("/")[0];
    if (ip) used.add(parseIp(ip));
  }
  const gateway = network?.IPAM?.Config?.find((c) => c.Subnet === subnet)?.Gateway;
  if (gateway) used.add(parseIp(gateway));
  // Highest block of `poolSize` free addresses below the broadcast address.
  let end = cidr.network + size(cidr) - 2;
  while (end - poolSize + 1 > cidr.network + 1) {
    const start = end - poolSize + 1;
    let clash = -1;
    for (let ip = end; ip >= start; ip--) if (used.has(ip)) clash = Math.max(clash, ip);
    if (clash < 0) return `${formatIp(start)}-${formatIp(end)}`;
    end = clash - 1;
  }
  throw new TphError(`no ${poolSize} free addresses in the kind network ${subnet}`);
}

/**
 * Applies with exponential back-off while `apply` fails: right after MetalLB is installed its webhook is
 * not serving yet and rejects the IPAddressPool (a well-known flake). Gives up at `timeoutMs` with the
 * last error; `signal` cancels.
 */
export async function applyWithRetry(
  apply: () => Promise<void>,
  options: {
    timeoutMs: number;
    initialDelayMs?: number;
    maxDelayMs?: number;
    signal?: AbortSignal;
    onRetry?: (err: unknown) => void;
  },
): Promise<number> {
  const deadline = Date.now() + options.timeoutMs;
  let delay = options.initialDelayMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      await apply();
      return attempt;
    } catch (err) {
      if (Date.now() + delay > deadline)
        throw new TphError(`gave up after ${attempt} attempt(s)`, { cause: err });
      options.onRetry?.(err);

      await sleep(delay, options.signal);
      delay = Math.min(delay * 2, options.maxDelayMs ?? 5_000);
    }
  }
}
