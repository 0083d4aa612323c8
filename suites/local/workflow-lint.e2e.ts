import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { run } from "../../harness/core/exec.ts";
import { e2eConfig } from "../support/env.ts";

/**
 * The users' workflow must be valid GitHub Actions: actionlint, pinned in upstream/actionlint and built
 * from the Go module proxy, checks it (syntax, expressions, matrix references, shell of run steps).
 */
describe(".github/workflows", () => {
  it("passes actionlint", async () => {
    const config = e2eConfig();
    const bin = join(config.cacheDir, "bin", "actionlint");
    await mkdir(bin, { recursive: true });
    await run(["go", "build", "-o", join(bin, "actionlint"), "github.com/rhysd/actionlint/cmd/actionlint"], {
      cwd: join(config.repoRoot, "upstream/actionlint"),
      timeoutMs: 300_000,
    });
    const r = await run([join(bin, "actionlint"), "-color=false"], {
      cwd: config.repoRoot,
      allowFailure: true,
    });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
  }, 320_000);

  it("catches a broken workflow (so the check above can fail)", async () => {
    const config = e2eConfig();
    const bin = join(config.cacheDir, "bin", "actionlint", "actionlint");
    // A GitHub expression, not a JS template: it refers to a matrix the job does not have.
    const expression = ["$", "{{ matrix.nope }}"].join("");
    const broken = `on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${expression}\n`;
    const r = await run([bin, "-color=false", "-"], { input: broken, allowFailure: true });
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).toMatch(/matrix/);
  });
});
