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

export function e2eConfig(overrides: ConfigOverrides = {}): HarnessConfig {
  // TPH_PROVIDER=kind runs the same suites on kind (the users' workflow does).
  return loadConfig({
    stateDir: E2E_STATE_DIR,
    logLevel: process.env.TPH_LOG === "verbose" ? "verbose" : "quiet",
    ...overrides,
    cluster: { nodeSubnet: "10.250.7.0/24", ...overrides.cluster },
  });
}

/** Environment for running the `tph` CLI as a child process against the e2e state dir. */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { TPH_STATE_DIR: E2E_STATE_DIR, TPH_NODE_SUBNET: "10.250.7.0/24", ...extra };
}

export const TPH_BIN = join(import.meta.dirname, "../../bin/tph");

/**
 * The dataplanes suites about Service behaviour run under: both of the local provider's by default, or
 * the one TPH_PROXY_MODE names (`tph run --proxy-mode`, the kind workflow's matrix, a reused cluster's).
 */
export const PROXY_MODES: readonly ProxyMode[] = process.env.TPH_PROXY_MODE
  ? [parseProxyMode(process.env.TPH_PROXY_MODE)]
  : ["iptables", "nftables"];
