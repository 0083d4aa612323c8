import { defineConfig } from "vitest/config";

// Two projects: `unit` needs nothing (no root, no cluster) and runs in seconds; `e2e` boots real local
// clusters and needs root plus the upstream binaries (built on demand by the suite's global setup).
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
          // One cluster at a time: the machine has two cores and every suite brings up real processes.
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
          sequence: { shuffle: false },
        },
      },
    ],
  },
});
