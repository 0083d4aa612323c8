import { defineConfig } from "vitest/config";

// Two projects: `unit` needs nothing (no root, no cluster) and runs in seconds; `e2e` boots real local
// clusters and needs root plus the upstream binaries (built on demand by the suite's global setup).

// e2e suite files run one at a time. TPH_E2E_WORKERS=2 runs two side by side on the local provider (each
// worker's clusters have a subnet of their own, suites/support/env.ts; a shared cluster serves one suite
// at a time, suites/support/cluster.ts): 24 min instead of 45 here, but on 2 cores kube-proxy's syncs
// then outrun the fixed settle waits of some suites (traffic-distribution's 3 s after the hints), so it
// is not the default yet. Never where the suites would share what they cannot split: a cluster tph did
// not make (--provider kubeconfig, --use-running), or kind's one docker network and MetalLB range.
const ownClusters = (process.env.TPH_PROVIDER ?? "local") === "local" && !process.env.TPH_REUSE_CLUSTER;
const e2eWorkers = ownClusters ? Number(process.env.TPH_E2E_WORKERS ?? 1) : 1;

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["harness/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["suites/**/*.e2e.ts"],
          globalSetup: ["suites/support/global-setup.ts"],
          maxWorkers: e2eWorkers,
          fileParallelism: e2eWorkers > 1,
          testTimeout: 300_000,
          hookTimeout: 600_000,
          // After the unit tests (a group of their own: vitest runs projects with different worker
          // counts in separate groups).
          sequence: { shuffle: false, groupOrder: 1 },
        },
      },
    ],
  },
});
