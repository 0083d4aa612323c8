import type { Reporter, TestCase, TestModule } from "vitest/node";

/**
 * Where a long `tph run` is, one line per event (what CI logs show, where vitest's own reporter prints a
 * file only once it ends): a suite starting, each test starting and ending with its time and state, and
 * the first line of a failure at once, not at the end of a 20-minute run.
 */
export class ProgressReporter implements Reporter {
  readonly #started = Date.now();
  readonly #write: (line: string) => void;

  constructor(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)) {
    this.#write = write;
  }

  #stamp(): string {
    const s = Math.round((Date.now() - this.#started) / 1000);
    return `[${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}]`;
  }

  onTestModuleStart(module: TestModule): void {
    this.#write(`${this.#stamp()} ▶ ${suiteOf(module.moduleId)}`);
  }

  onTestCaseReady(test: TestCase): void {
    this.#write(`${this.#stamp()}   … ${test.fullName}`);
  }

  onTestCaseResult(test: TestCase): void {
    const r = test.result();
    const ms = test.diagnostic()?.duration ?? 0;
    const mark = r.state === "passed" ? "ok  " : r.state === "failed" ? "FAIL" : "skip";
    this.#write(`${this.#stamp()}   ${mark} ${test.fullName} (${(ms / 1000).toFixed(1)} s)`);
    if (r.state === "failed") {
      const first = r.errors?.[0]?.message?.split("\n")[0];
      if (first) this.#write(`${" ".repeat(9)}↳ ${first}`);
    }
  }
}

function suiteOf(moduleId: string): string {
  return moduleId.replace(/^.*\/suites\//, "").replace(/\.e2e\.ts$/, "");
}
