import { getProvider } from "../../harness/cluster/providers.ts";
import { createLogger } from "../../harness/core/logger.ts";
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
  return release;
}
