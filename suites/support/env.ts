import { join } from "node:path";
import {
  type ConfigOverrides,
  type HarnessConfig,
  loadConfig,
  type ProxyMode,
  parseProxyMode,
} from "../../harness/core/config.ts";

/**
 * State of e2e clusters lives apart from a user's own clusters, so gc in the suites never touches those;
 * and per user: an unprivileged run (the kubeconfig provider's) cannot write root's.
 */
const uid = process.getuid?.() ?? 0;
export const E2E_STATE_DIR =
  process.env.TPH_E2E_STATE_DIR ?? (uid === 0 ? "/tmp/tph-e2e/state" : `/tmp/tph-e2e-${uid}/state`);

// Ctrl-C reaches the whole process group. Under `tph run` the worker carries on and the main process
// cancels the run, so the running file's afterAll hooks still delete its cluster.
if (process.env.TPH_RUN_CANCELS === "1" && process.env.VITEST_POOL_ID) process.on("SIGINT", () => {});

/**
 * The vitest worker this file runs in, 1 or 2: the local provider's suites run two files side by side
 * (vitest.config.ts), each worker on clusters of its own.
 */
export const E2E_WORKER = Number(process.env.VITEST_POOL_ID ?? "1");

/**
 * The node subnet of the suites' own clusters: one per worker, since every cluster adds a host route for
 * its subnet (10.250.7.0/24, 10.250.8.0/24; the shared clusters have 10.250.10-11, tests that make a
 * cluster of a second state directory 10.250.20-21). A nested `tph run` passes its own.
 */
export const E2E_NODE_SUBNET = process.env.TPH_E2E_NODE_SUBNET ?? `10.250.${6 + E2E_WORKER}.0/24`;

export function e2eConfig(overrides: ConfigOverrides = {}): HarnessConfig {
  // TPH_PROVIDER=kind runs the same suites on kind (the users' workflow does).
  return loadConfig({
    stateDir: E2E_STATE_DIR,
    logLevel: process.env.TPH_LOG === "verbose" ? "verbose" : "quiet",
    ...overrides,
    cluster: { nodeSubnet: E2E_NODE_SUBNET, ...overrides.cluster },
  });
}

/** Environment for running the `tph` CLI as a child process against the e2e state dir. */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { TPH_STATE_DIR: E2E_STATE_DIR, TPH_NODE_SUBNET: E2E_NODE_SUBNET, ...extra };
}

export const TPH_BIN = join(import.meta.dirname, "../../bin/tph");

/**
 * The dataplanes suites about Service behaviour run under: both of the local provider's by default, or
 * the one TPH_PROXY_MODE names (`tph run --proxy-mode`, the kind workflow's matrix, a reused cluster's).
 */
export const PROXY_MODES: readonly ProxyMode[] = process.env.TPH_PROXY_MODE
  ? [parseProxyMode(process.env.TPH_PROXY_MODE)]
  : // The second worker takes the modes the other way round: two files side by side then mostly want
    // different shared clusters, and one suite at a time holds a shared cluster (suites/support/cluster.ts).
    E2E_WORKER % 2 === 0
    ? ["nftables", "iptables"]
    : ["iptables", "nftables"];
