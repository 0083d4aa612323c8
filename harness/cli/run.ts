import { mkdir, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { HarnessConfig } from "../core/config.ts";
import { TphError, UsageError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";

/**
 * `tph run`: the main job. Runs the conformance suites (vitest project `e2e`) on the chosen provider and
 * proxy mode; each suite brings its own cluster up and tears it down (kept with --retain), or with
 * --use-running all of them use the cluster `tph up` left running. Writes JUnit
 * XML and, per test, the JSON ledger of every request with its verdicts into the artifacts directory,
 * prints a verdict table, and returns non-zero on any failed verdict.
 */
export interface RunOptions {
  suites: string[];
  artifacts: string;
  retain: boolean;
  /** Run every suite on the running cluster config.clusterName instead of one cluster per suite. */
  useRunning?: boolean;
}

interface Row {
  suite: string;
  test: string;
  state: string;
  ms: number;
}

/**
 * --use-running: the suites attach to the cluster `tph up` left running (each in a namespace of its own)
 * instead of bringing up one per suite. Its proxy mode is the one the suites run under. suites/local/
 * tests the provider's own bring-up and teardown, so it cannot run on a borrowed cluster.
 */
async function useRunningCluster(
  config: HarnessConfig,
  chosen: string[],
  explicit: boolean,
  logger: Logger,
): Promise<string[]> {
  const { getProvider } = await import("../cluster/providers.ts");
  const cluster = await getProvider(config.provider).attach(config, logger);
  if (!cluster) {
    throw new TphError(`no running ${config.provider} cluster named ${config.clusterName}`, {
      hint: `start one with \`tph up --provider ${config.provider} --name ${config.clusterName}\`, or drop --use-running`,
    });
  }
  const local = chosen.filter((s) => s.startsWith("local/"));
  if (explicit && local.length > 0)
    throw new UsageError(`${local.join(", ")} test the provider itself and cannot run with --use-running`);
  const mode = cluster.versions.proxyMode;
  if (process.env.TPH_PROXY_MODE && mode && process.env.TPH_PROXY_MODE !== mode)
    throw new UsageError(
      `--proxy-mode ${process.env.TPH_PROXY_MODE}, but cluster ${cluster.name} runs kube-proxy in ${mode} mode`,
    );
  if (mode) process.env.TPH_PROXY_MODE = mode;
  process.env.TPH_REUSE_CLUSTER = config.clusterName;
  process.env.TPH_REUSE_STATE_DIR = config.stateDir;
  logger.info(
    `using the running cluster ${cluster.name} (${(await cluster.nodes()).length} nodes, kube-proxy ${mode})`,
  );
  return chosen.filter((s) => !s.startsWith("local/"));
}

export async function listSuites(repoRoot: string, provider: string): Promise<string[]> {
  const top = (await readdir(join(repoRoot, "suites"))).filter((f) => f.endsWith(".e2e.ts"));
  // suites/local/ tests the local provider itself; it runs only there.
  const local =
    provider === "local"
      ? (await readdir(join(repoRoot, "suites/local")))
          .filter((f) => f.endsWith(".e2e.ts"))
          .map((f) => `local/${f}`)
      : [];
  return [...top, ...local].map((f) => f.replace(/\.e2e\.ts$/, "")).sort();
}

export async function runSuites(config: HarnessConfig, options: RunOptions, logger: Logger): Promise<number> {
  const available = await listSuites(config.repoRoot, config.provider);
  const unknown = options.suites.filter((s) => !available.includes(s));
  if (unknown.length > 0) {
    throw new UsageError(`unknown suite(s): ${unknown.join(", ")}`, `available: ${available.join(", ")}`);
  }
  let chosen = options.suites.length > 0 ? options.suites : available;
  if (options.useRunning) chosen = await useRunningCluster(config, chosen, options.suites.length > 0, logger);
  const artifacts = resolve(options.artifacts);
  await mkdir(artifacts, { recursive: true });

  // The suites read their settings from the environment (vitest runs them in worker processes).
  process.env.TPH_PROVIDER = config.provider;

  process.env.TPH_ARTIFACTS = artifacts;
  if (options.retain) process.env.TPH_RETAIN = "1";

  logger.step(`running ${chosen.length} suite(s) on ${config.provider}: ${chosen.join(", ")}`);
  const { startVitest } = await import("vitest/node");
  const junit = join(artifacts, "junit.xml");
  const vitest = await startVitest(
    chosen.map((s) => `suites/${s}.e2e.ts`),
    {
      root: config.repoRoot,
      project: ["e2e"],
      run: true,
      watch: false,
      reporters: ["default", "junit"],
      outputFile: { junit },
    },
  );
  const rows: Row[] = [];
  for (const file of vitest.state.getFiles()) {
    const visit = (
      task: { type: string; name: string; tasks?: unknown[]; result?: { state?: string; duration?: number } },
      prefix: string,
    ) => {
      if (task.type === "test") {
        rows.push({
          suite: file.name.replace(/^suites\//, "").replace(/\.e2e\.ts$/, ""),
          test: `${prefix}${task.name}`,
          state: task.result?.state ?? "skip",
          ms: task.result?.duration ?? 0,
        });
      }
      for (const t of (task.tasks ?? []) as (typeof task)[])
        visit(t, task.type === "suite" ? `${prefix}${task.name} › ` : prefix);
    };
    for (const t of file.tasks) visit(t as never, "");
  }
  await vitest.close();

  const failed = rows.filter((r) => r.state === "fail");
  const width = Math.min(Math.max(...rows.map((r) => r.test.length), 10), 110);
  process.stdout.write(`\n${"VERDICT".padEnd(8)} ${"SUITE".padEnd(28)} ${"TEST".padEnd(width)} TIME\n`);
  for (const r of rows) {
    const verdict = r.state === "pass" ? "pass" : r.state === "fail" ? "FAIL" : r.state;
    process.stdout.write(
      `${verdict.padEnd(8)} ${r.suite.padEnd(28)} ${r.test.slice(0, width).padEnd(width)} ${(r.ms / 1000).toFixed(1)} s\n`,
    );
  }
  const passed = rows.filter((r) => r.state === "pass").length;
  const skipped = rows.length - passed - failed.length;
  process.stdout.write(
    `\n${passed} passed, ${failed.length} failed${skipped ? `, ${skipped} skipped` : ""}\n`,
  );
  process.stdout.write(`artifacts: ${junit} and ${join(artifacts, "ledgers")}/\n`);
  const fileErrors = vitest.state
    .getFiles()
    .filter((f) => f.result?.state === "fail" && (f.result.errors?.length ?? 0) > 0);
  return failed.length > 0 || fileErrors.length > 0 || rows.length === 0 ? 1 : 0;
}
