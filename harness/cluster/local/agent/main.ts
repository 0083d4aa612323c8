import { readFile } from "node:fs/promises";
import { createLogger } from "../../../core/logger.ts";
import type { AgentConfig } from "./config.ts";
import { NodeAgent } from "./node-agent.ts";

/**
 * Entry point of the node agent: `node agent/main.ts <agent.json>`, run by the local provider inside
 * the node's network namespace. Logs go to stdout (the provider points it at a file).
 */
const path = process.argv[2];
if (!path) {
  process.stderr.write("usage: main.ts <agent config json>\n");
  process.exit(2);
}
const config = JSON.parse(await readFile(path, "utf8")) as AgentConfig;
const logger = createLogger(process.env.TPH_LOG === "verbose" ? "verbose" : "normal", (l) =>
  process.stdout.write(`${config.nodeName} ${l}\n`),
);
const agent = new NodeAgent(config, logger);
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => {
    void agent.shutdown();
    process.exit(0);
  });
}
agent.run().catch((err: unknown) => {
  logger.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
