import { constants } from "node:fs";
import { access, appendFile, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { InlineConfig } from "vite";
import type { Vitest } from "vitest/node";
import { getProvider } from "../cluster/providers.ts";
import { onTerminationSignals } from "../core/cleanup.ts";
import { type HarnessConfig, parseProxyMode } from "../core/config.ts";
import { TphError, UsageError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { acquireRunLock, E2E_LOCK_PATH } from "../core/run-lock.ts";
import type { RunRecord } from "../report/diff.ts";
import { writeHtmlReport } from "../report/html.ts";
import { junitXml } from "../report/junit.ts";
import { ProgressReporter } from "../report/progress.ts";
import { summaryMarkdown } from "../report/summary.ts";
import {
  collectRows,
  countRows,
  exitCode,
  interruptedRow,
  type Row,
  renderRepeatSummary,
  renderReport,
  seconds,
  summarizeRepeats,
  unhandledErrorRows,
} from "../report/verdicts-table.ts";

/**
 * `tph run`: the main job. Runs the conformance suites (vitest project `e2e`) on the chosen provider and
 * proxy mode. Suites that change no node share one cluster per proxy mode (each in a namespace of its
 * own); the others bring their own cluster up and tear it down (kept with --retain); --cluster-per-suite
 * gives every suite its own; with --use-running all of them use the cluster `tph up` left running. Writes JUnit
 * XML and, per test, the JSON ledger of every request with its verdicts into the artifacts directory,
 * prints a verdict table, and returns non-zero on any failure or error, and when no test ran at all.
 */
export interface RunOptions {
  suites: string[];
  artifacts: string;
  retain: boolean;
  /** Run every suite on the running cluster config.clusterName instead of the run's own clusters. */
  useRunning?: boolean;
  /** Every suite on a cluster of its own; by default those that change no node share one per mode. */
  clusterPerSuite?: boolean;
  /** Run the suites this many times in a row and summarize each test's passes (default 1). */
  repeat?: number;
  /** Whether the preflight may install missing Debian packages (default true). */
  install?: boolean;
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

/** --repeat: a positive integer. */
export function parseRepeat(value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw badRepeat(value);
  return n;
}

function badRepeat(value: unknown): UsageError {
  return new UsageError(
    `--repeat ${value}: not a positive integer`,
    "e.g. --repeat 3 runs the suites 3 times",
  );
}

export async function runSuites(config: HarnessConfig, options: RunOptions, logger: Logger): Promise<number> {
  const repeat = options.repeat ?? 1;
  if (!Number.isSafeInteger(repeat) || repeat < 1) throw badRepeat(repeat);
  const available = await listSuites(config.repoRoot, config.provider);
  const unknown = options.suites.filter((s) => !available.includes(s));
  if (unknown.length > 0) {
    throw new UsageError(`unknown suite(s): ${unknown.join(", ")}`, `available: ${available.join(", ")}`);
  }
  let chosen = options.suites.length > 0 ? options.suites : available;
  if (options.useRunning) chosen = await useRunningCluster(config, chosen, options.suites.length > 0, logger);
  const artifacts = resolve(options.artifacts);
  // Before anything is built or started: one e2e run per machine, and a host that has what the run
  // needs (checked in seconds; missing Debian packages installed unless --no-install).
  await acquireRunLock(E2E_LOCK_PATH);
  if (options.install === false) process.env.TPH_NO_INSTALL = "1";
  if (!options.useRunning) {
    const modes = process.env.TPH_PROXY_MODE
      ? [parseProxyMode(process.env.TPH_PROXY_MODE)]
      : (["iptables", "nftables"] as const);
    await getProvider(config.provider).preflight(config, {
      logger,
      proxyModes: [...modes],
      install: options.install !== false,
    });
  }

  // The suites read their settings from the environment (vitest runs them in worker processes).
  process.env.TPH_PROVIDER = config.provider;
  if (config.provider === "kubeconfig") await targetEnvironment(config, logger);
  if (options.retain) process.env.TPH_RETAIN = "1";
  if (options.clusterPerSuite) process.env.TPH_SHARE_CLUSTERS = "0";

  if (repeat === 1) {
    logger.step(`running ${chosen.length} suite(s) on ${config.provider}: ${chosen.join(", ")}`);
    return (await runOnce(config, chosen, artifacts)).code;
  }
  const repetitions: RunResult[] = [];
  for (let i = 1; i <= repeat; i++) {
    logger.step(
      `repetition ${i}/${repeat}: running ${chosen.length} suite(s) on ${config.provider}: ${chosen.join(", ")}`,
    );
    const result = await runOnce(config, chosen, join(artifacts, `repeat-${i}`));
    process.stdout.write(`repetition ${i}/${repeat}: ${seconds(result.wallMs)}\n\n`);
    repetitions.push(result);
  }
  const summary = summarizeRepeats(repetitions.map((r) => r.rows));
  process.stdout.write(
    `\n${renderRepeatSummary(
      summary,
      repetitions.map((r) => r.wallMs),
    )}`,
  );
  return summary.ok ? 0 : 1;
}

/** What distinguishes one run from another, as `tph diff` labels its sides. */
function runSettings(config: HarnessConfig): Record<string, string> {
  return {
    provider: config.provider,
    proxyMode: process.env.TPH_PROXY_MODE ?? "iptables,nftables",
    ...(process.env.TPH_KUBERNETES_VERSION && { kubernetes: process.env.TPH_KUBERNETES_VERSION }),
    kubeProxy: process.env.TPH_KUBE_PROXY_VERSION ?? "the cluster's",
    ...(process.env.TPH_KUBE_PROXY_CONFIG && { kubeProxyConfig: process.env.TPH_KUBE_PROXY_CONFIG }),
    ...(process.env.TPH_METALLB_VERSION && { metallb: process.env.TPH_METALLB_VERSION }),
  };
}

interface RunResult {
  rows: Row[];
  code: number;
  wallMs: number;
}

/** One vitest run of the chosen suites: prints the verdict table, writes the JUnit XML into `artifacts`. */
async function runOnce(config: HarnessConfig, chosen: string[], artifacts: string): Promise<RunResult> {
  const start = Date.now();
  await mkdir(artifacts, { recursive: true });
  // Read by the suites' ledgers: each repetition's ledgers go to its own directory.
  process.env.TPH_ARTIFACTS = artifacts;
  // On a terminal the running test's request counts are shown as it goes: the suites' worker writes
  // them to this file (harness/report/live.ts), the progress reporter reads it.
  const live = process.stdout.isTTY
    ? { file: join(tmpdir(), `tph-progress-${process.pid}.json`) }
    : undefined;
  if (live) process.env.TPH_PROGRESS_FILE = live.file;
  const { startVitest } = await import("vitest/node");
  const canWrite = await writable(join(config.repoRoot, "node_modules"));
  const viteOverrides: InlineConfig = canWrite ? {} : { configLoader: "runner" };
  // Ctrl-C or SIGTERM: the run is cancelled, so the running test ends, the suites' cleanup and the
  // global teardown remove their clusters, and the verdict says "interrupted". Node's default (exit at
  // once) left the worker process running a suite, its cluster with it. A second signal exits at once.
  const interrupt: { by?: NodeJS.Signals; vitest?: Vitest } = {};
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupt.by) {
      process.stderr.write(`${sig} again: exiting now; \`tph gc\` removes what is left\n`);
      process.exit(130);
    }
    interrupt.by = sig;
    process.stderr.write(
      `${sig}: stopping the run; the suites' clusters are being removed (${sig} again to exit now)\n`,
    );
    void interrupt.vitest?.cancelCurrentRun("keyboard-input");
  };
  const removeHandlers = onTerminationSignals(onSignal);
  // Ctrl-C reaches the whole process group: the workers leave SIGINT to this process (suites/support/env.ts).
  process.env.TPH_RUN_CANCELS = "1";
  const vitest = await startVitest(
    "test",
    chosen.map((s) => `suites/${s}.e2e.ts`),
    {
      root: config.repoRoot,
      project: ["e2e"],
      run: true,
      watch: false,
      // One line per test as it starts and ends (where the run is, in CI logs too), then vitest's own
      // summary with the failures in full.
      reporters: [
        new ProgressReporter(undefined, live),
        "default",
        {
          onInit(v: Vitest) {
            interrupt.vitest = v;
            // vitest's logger exits the process on these signals, leaving the worker and its cluster.
            for (const sig of ["SIGINT", "SIGTERM"] as const)
              for (const listener of process.listeners(sig))
                if (listener !== onSignal) process.off(sig, listener);
          },
        },
      ],
      // A user who may not write the checkout (an unprivileged run against a cluster tph did not
      // create) runs without vitest's results cache...
      ...(!canWrite && { cache: false as const }),
    },
    // ...and has Vite import vitest.config.ts without bundling it to a file in node_modules first.
    viteOverrides,
  );
  let rows: Row[];
  try {
    rows = [
      ...collectRows(vitest.state.getFiles()),
      ...unhandledErrorRows(vitest.state.getUnhandledErrors()),
    ];
  } finally {
    await vitest.close();
    removeHandlers();
    if (live) await rm(live.file, { force: true });
  }
  if (interrupt.by) rows.push(interruptedRow(interrupt.by));
  const junit = join(artifacts, "junit.xml");
  await writeFile(junit, junitXml(rows));
  // For `tph diff`: the run's settings and rows, machine-readable.
  const record: RunRecord = { settings: runSettings(config), rows };
  await writeFile(join(artifacts, "verdicts.json"), `${JSON.stringify(record, null, 1)}\n`);
  process.stdout.write(`\n${renderReport(rows)}`);
  // On GitHub Actions the verdict goes on the job's summary page too.
  if (process.env.GITHUB_STEP_SUMMARY)
    await appendFile(process.env.GITHUB_STEP_SUMMARY, summaryMarkdown(rows, `tph run on ${config.provider}`));
  // The page people open (verdicts, per-test timeline charts, matrix grids), made from the files above;
  // after the table is printed, so a failure to write it cannot hide the verdict.
  const report = await writeHtmlReport(artifacts);
  process.stdout.write(`artifacts: ${junit}, ${report} and ${join(artifacts, "ledgers")}/\n`);
  return { rows, code: exitCode(countRows(rows)), wallMs: Date.now() - start };
}

/**
 * A cluster tph did not create: its kubeconfig settings go to the suites' workers, and the suites run
 * under the one proxy mode its kube-proxy has (--proxy-mode, else what the cluster publishes).
 */
async function targetEnvironment(config: HarnessConfig, logger: Logger): Promise<void> {
  process.env.TPH_KUBECONFIG = config.target.kubeconfig;
  if (config.target.context) process.env.TPH_CONTEXT = config.target.context;
  if (config.target.allowDisruption) process.env.TPH_ALLOW_DISRUPTION = "1";
  if (config.target.clientIP) process.env.TPH_CLIENT_IP = config.target.clientIP;
  if (process.env.TPH_PROXY_MODE) return;
  const cluster = await getProvider(config.provider).attach(config, logger);
  const mode = cluster?.versions.proxyMode;
  if (!mode)
    throw new UsageError(
      "cannot tell which mode the cluster's kube-proxy runs in (no kube-system/kube-proxy ConfigMap)",
      "say it: --proxy-mode iptables|nftables|ipvs",
    );
  process.env.TPH_PROXY_MODE = parseProxyMode(mode);
  logger.info(`the cluster's kube-proxy runs in ${mode} mode`);
}

async function writable(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
