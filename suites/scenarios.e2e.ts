import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { NodeSpec } from "../harness/core/config.ts";
import { loadScenario } from "../harness/scenario/load.ts";
import { runScenario } from "../harness/scenario/run.ts";
import type { Scenario } from "../harness/scenario/types.ts";
import { useCluster } from "./support/cluster.ts";
import { useLedger } from "./support/ledger.ts";

/**
 * Scenario files (docs/scenario-format.md): `tph scenario run FILE...` sets TPH_SCENARIOS and every
 * expectation of each file must hold. Without it this runs the library, scenarios/*.yaml, as the
 * conformance run's own check of it: a safe scenario must pass; an unsafe one (knownFailure) must fail
 * exactly its named verdicts, which is its negative control; a reported upstream bug (releases) runs
 * on the release that fixed it (must pass) and on the one it was reported on (must fail as known).
 */
const chosen = process.env.TPH_SCENARIOS?.split(",").filter(Boolean);
const library = chosen === undefined;
const files = chosen ?? libraryFiles();

function libraryFiles(): string[] {
  const dir = join(import.meta.dirname, "../scenarios");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => join(dir, f));
}

/** The runs of a file: as written; for the library, a reported bug on both of its releases. */
function runsOf(s: Scenario): { label: string; kubeProxyVersion?: string; failing: boolean }[] {
  if (library && s.releases)
    return [
      { label: `fixed release ${s.releases.fixed}`, kubeProxyVersion: s.releases.fixed, failing: false },
      {
        label: `reported release ${s.releases.reported}`,
        kubeProxyVersion: s.releases.reported,
        failing: true,
      },
    ];
  return [{ label: "as written", failing: library && s.knownFailure !== undefined }];
}

// Read (and checked) before any cluster starts: a bad file stops the run with its errors.
const scenarios = await Promise.all(files.map((f) => loadScenario(f)));

scenarios.forEach((s, i) => {
  describe(`scenario ${s.name}`, () => {
    runsOf(s).forEach((r, j) => {
      describe(r.label, () => {
        const version = r.kubeProxyVersion ?? s.cluster.kubeProxyVersion;
        const nodes: NodeSpec[] = s.cluster.nodes.map((n) => ({ ...n }));
        const f = useCluster({
          clusterName: `sc${i}${String.fromCharCode(97 + j)}`,
          cluster: {
            nodes,
            ...(s.cluster.proxyMode && { proxyMode: s.cluster.proxyMode }),
            ...(version && { kubeProxyVersion: version }),
            ...(s.cluster.kubeProxyConfig && { kubeProxyConfig: s.cluster.kubeProxyConfig }),
          },
        });
        const ledger = useLedger();

        it(
          r.failing ? `fails as known: ${s.knownFailure?.verdicts.join(", ")}` : "every expectation holds",
          async () => {
            const result = await runScenario(s, {
              cluster: f.cluster,
              k8s: f.k8s,
              namespace: f.ns,
              disrupt: ledger.disrupt(f.cluster, f.k8s),
              traffic: (paths) => ledger.traffic(f.cluster, paths),
            });
            if (!r.failing) return ledger.expectAll(result.verdicts);
            // The negative control: exactly the known verdicts fail (the symptom is caught by them), and
            // every other expectation holds.
            ledger.record(result.verdicts);
            const failed = [
              ...new Set(result.verdicts.filter((v) => !v.passed).map((v) => v.name.split(" ")[0])),
            ];
            expect(failed.sort(), result.verdicts.map((v) => v.summary).join("\n")).toEqual(
              [...(s.knownFailure?.verdicts ?? [])].sort(),
            );
          },
        );
      });
    });
  });
});
