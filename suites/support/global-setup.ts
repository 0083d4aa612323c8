import { ensureBinaries, ensureKubeProxy, ensureMetallb } from "../../harness/cluster/local/binaries.ts";
import { localProvider } from "../../harness/cluster/local/provider.ts";
import { getProvider } from "../../harness/cluster/providers.ts";
import { createLogger } from "../../harness/core/logger.ts";
import { acquireRunLock, E2E_LOCK_PATH, releaseRunLock } from "../../harness/core/run-lock.ts";
import { e2eConfig, PROXY_MODES } from "./env.ts";

/**
 * Runs once before the e2e project: refuses at once if another e2e run is going, checks the host in
 * seconds (installing missing Debian packages as root unless TPH_NO_INSTALL=1), builds (or reuses) the
 * core upstream binaries with progress output, and clears leftovers of an earlier e2e run that was killed.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const config = e2eConfig();
  const logger = createLogger("normal");
  await acquireRunLock(E2E_LOCK_PATH);
  const release = () => releaseRunLock(E2E_LOCK_PATH);
  try {
    await getProvider(config.provider).preflight(config, {
      logger,
      proxyModes: [...PROXY_MODES],
      install: process.env.TPH_NO_INSTALL !== "1",
    });
    if (config.provider === "kind") {
      await getProvider("kind").gc(config, { logger, all: true });
      return release;
    }
    await ensureBinaries(config, logger);
    // A kube-proxy release the run asks for is built here, with progress, not inside a suite's
    // bring-up (whose hook timeout a cold build could exceed).
    const versions = [
      config.cluster.kubeProxyVersion,
      ...config.cluster.nodes.map((n) => n.kubeProxyVersion),
    ];
    for (const v of new Set(versions.filter((x): x is string => x !== undefined)))
      await ensureKubeProxy(config, v, logger);
    if (config.cluster.metallbVersion) await ensureMetallb(config, config.cluster.metallbVersion, logger);
    const removed = await localProvider.gc(config, { logger, all: true });
    for (const r of removed) logger.warn(`removed a leftover of an earlier e2e run: ${r}`);
  } catch (err) {
    await release();
    throw err;
  }
  return release;
}
