import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  type HarnessConfig,
  loadConfig,
  parseKubernetesVersion,
  parseProxyMode,
  readKubeProxyConfigFile,
} from "../core/config.ts";
import { UsageError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { comparableName, diffExitCode, diffRuns, type RunRecord, renderDiff } from "../report/diff.ts";
import { runSuites } from "./run.ts";

/**
 * `tph compare` runs the same suites under two settings, A then B, and prints what behaves differently;
 * `tph diff` does the same for two finished runs. Exactly one setting differs between the sides: the
 * proxy mode (moving from iptables to nftables), the Kubernetes or kube-proxy release (an upgrade), or
 * kube-proxy's configuration.
 */
export const DIMENSIONS = [
  "proxy-mode",
  "kubernetes-version",
  "kube-proxy-version",
  "kube-proxy-config",
] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export interface CompareOptions {
  dimension: Dimension;
  values: [string, string];
  suites: string[];
  artifacts: string;
  install: boolean;
}

/** "a,b" → [a, b], validated for the dimension. */
export function parseSides(dimension: Dimension, value: string): [string, string] {
  const sides = value.split(",").map((v) => v.trim());
  if (sides.length !== 2 || sides.some((v) => v === ""))
    throw new UsageError(
      `--${dimension} ${value}: give two values, A,B`,
      `e.g. --${dimension} ${example(dimension)}`,
    );
  return sides.map((v) => parseSide(dimension, v)) as [string, string];
}

/**
 * One side's value, checked; as the suites take it from the environment (ENV). The suites run in
 * vitest's workers, from another directory's point of view: files become absolute paths.
 */
export function parseSide(dimension: Dimension, v: string): string {
  if (dimension === "proxy-mode") return parseProxyMode(v);
  if (dimension === "kubernetes-version" || dimension === "kube-proxy-version")
    return parseKubernetesVersion(v, `--${dimension}`);
  readKubeProxyConfigFile(v);
  return resolve(v);
}

function example(d: Dimension): string {
  return {
    "proxy-mode": "iptables,nftables",
    "kubernetes-version": "v1.36.3,v1.37.2",
    "kube-proxy-version": "v1.36.3,v1.37.2",
    "kube-proxy-config": "a.yaml,b.yaml",
  }[d];
}

/** Where the suites read each setting. */
export const ENV: Record<Dimension, string> = {
  "proxy-mode": "TPH_PROXY_MODE",
  "kubernetes-version": "TPH_KUBERNETES_VERSION",
  "kube-proxy-version": "TPH_KUBE_PROXY_VERSION",
  "kube-proxy-config": "TPH_KUBE_PROXY_CONFIG",
};

export async function compare(config: HarnessConfig, o: CompareOptions, logger: Logger): Promise<number> {
  const dirs = [join(resolve(o.artifacts), "A"), join(resolve(o.artifacts), "B")] as const;
  const variable = ENV[o.dimension];
  const saved = process.env[variable];
  try {
    for (const [i, value] of o.values.entries()) {
      logger.step(`side ${i === 0 ? "A" : "B"}: ${o.dimension} ${value}`);
      process.env[variable] = value;
      // The side's own configuration (its preflight checks that kube-proxy release, say).
      const side = loadConfig({
        clusterName: config.clusterName,
        stateDir: config.stateDir,
        provider: config.provider,
      });
      await runSuites(
        side,
        { suites: o.suites, artifacts: dirs[i] as string, retain: false, install: o.install },
        logger,
      );
    }
  } finally {
    if (saved === undefined) delete process.env[variable];
    else process.env[variable] = saved;
  }
  return diffDirs(dirs[0], dirs[1], join(resolve(o.artifacts), "diff.txt"));
}

/** `tph diff RUN_A RUN_B`: the two runs' verdicts.json, compared; the text also goes to `out` if given. */
export async function diffDirs(a: string, b: string, out?: string): Promise<number> {
  const [ra, rb] = [await readRecord(a), await readRecord(b)];
  const diffs = diffRuns(ra.rows, rb.rows);
  const compared = new Set([...ra.rows, ...rb.rows].map((r) => `${r.suite} ${comparableName(r.test)}`)).size;
  const text = renderDiff(diffs, ra, rb, compared);
  process.stdout.write(`\n${text}`);
  if (out) await writeFile(out, text);
  return diffExitCode(diffs);
}

async function readRecord(dir: string): Promise<RunRecord> {
  const file = join(dir, "verdicts.json");
  try {
    return JSON.parse(await readFile(file, "utf8")) as RunRecord;
  } catch (err) {
    throw new UsageError(
      `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`,
      "give the artifacts directory of a finished `tph run` (one with verdicts.json; with --repeat, one repeat-<i>/ folder)",
    );
  }
}
