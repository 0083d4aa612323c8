import { ensureBinaries } from "../../harness/cluster/local/binaries.ts";
import { localProvider } from "../../harness/cluster/local/provider.ts";
import { getProvider } from "../../harness/cluster/providers.ts";
import { createLogger } from "../../harness/core/logger.ts";
import { e2eConfig } from "./env.ts";

/**
 * Runs once before the e2e project: refuses clearly without root, builds (or reuses) the upstream
 * binaries with progress output, and clears leftovers of an earlier e2e run that was killed.
 */
export default async function setup(): Promise<void> {
  const config = e2eConfig();
  if (config.provider === "kind") {
    await getProvider("kind").preflight(config);
    await getProvider("kind").gc(config, { logger: createLogger("normal"), all: true });
    return;
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      "the e2e suites boot real local clusters and need root: run `sudo npm run test:e2e` (unit tests: npm run test:unit)",
    );
  }
  const logger = createLogger("normal");
  await ensureBinaries(config, logger);
  const removed = await localProvider.gc(config, { logger, all: true });
  for (const r of removed) logger.warn(`removed a leftover of an earlier e2e run: ${r}`);
}
