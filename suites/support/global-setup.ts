import { getProvider } from "../../harness/cluster/providers.ts";
import { sharedClusterOverrides } from "../../harness/cluster/shared.ts";
import { createLogger, type Logger } from "../../harness/core/logger.ts";
import { acquireRunLock, E2E_LOCK_PATH, releaseRunLock } from "../../harness/core/run-lock.ts";
import { e2eConfig, PROXY_MODES } from "./env.ts";

/**
 * Runs once before the e2e project: refuses at once if another e2e run is going, checks the host in
 * seconds (installing missing Debian packages as root unless TPH_NO_INSTALL=1), then has the provider
 * ready the run (the local one builds or reuses the upstream binaries, with progress) and clear
 * leftovers of an earlier e2e run that was killed.
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
    await getProvider(config.provider).prepareRun(config, { logger });
  } catch (err) {
    await release();
    throw err;
  }
  return async () => {
    try {
      await deleteSharedClusters(logger);
    } finally {
      await release();
    }
  };
}

/** The run's shared clusters (suites/support/cluster.ts brings them up on first use): deleted at its end. */
async function deleteSharedClusters(logger: Logger): Promise<void> {
  for (const mode of PROXY_MODES) {
    const config = e2eConfig(sharedClusterOverrides(mode));
    const provider = getProvider(config.provider);
    if (!provider.capabilities(config).createClusters) return;
    const cluster = await provider.attach(config, createLogger("quiet"));
    if (!cluster) continue;
    if (process.env.TPH_RETAIN === "1") {
      logger.warn(
        `retained the shared cluster ${cluster.name}: delete it with TPH_STATE_DIR=${config.stateDir} tph down --name ${cluster.name}`,
      );
      continue;
    }
    await cluster.delete();
  }
}
