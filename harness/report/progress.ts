import type { Reporter, TestCase, TestModule } from "vitest/node";
import { type LiveSnapshot, readLive } from "./live.ts";

/** On a terminal: how often a running test's counts are printed, and how often the worker's file is read. */
const HEARTBEAT_MS = 15_000;
const POLL_MS = 1_000;

export interface LiveOptions {
  /** The worker's counts file (TPH_PROGRESS_FILE). */
  file: string;
  /** For tests: read the counts from here instead of the file, and the time from `clock`. */
  read?: () => LiveSnapshot | undefined;
  clock?: () => number;
}

/**
 * Where a long `tph run` is, one line per event (what CI logs show, where vitest's own reporter prints a
 * file only once it ends): a suite starting, each test starting and ending with its time and state, and
 * the first line of a failure at once, not at the end of a 20-minute run. With `live` (tph run passes it
 * on a terminal), also the running test's requests and failures so far: a line every 15 s, and one at
 * once when its first request fails. In CI logs only the start and end lines.
 */
export class ProgressReporter implements Reporter {
  readonly #started = Date.now();
  readonly #write: (line: string) => void;
  readonly #live: LiveOptions | undefined;
  #running: { name: string; since: number; lastBeat: number; alerted: boolean } | undefined;
  #poll: NodeJS.Timeout | undefined;

  constructor(write: (line: string) => void = (l) => process.stdout.write(`${l}\n`), live?: LiveOptions) {
    this.#write = write;
    this.#live = live;
  }

  /** One look at the running test's counts; `now` is passed by tests, the poll timer passes the clock. */
  tick(now = Date.now()): void {
    const running = this.#running;
    if (!running || !this.#live) return;
    const s = (this.#live.read ?? (() => readLive(this.#live?.file ?? "")))();
    // The worker names a test by its describe path and name, joined by " › "; vitest's fullName by " > ".
    if (!s || s.test !== running.name.replaceAll(" > ", " › ")) return;
    const elapsed = `${Math.round((now - running.since) / 1000)} s`;
    if (s.failures > 0 && !running.alerted) {
      running.alerted = true;
      this.#write(
        `${this.#stamp()}   ✗ ${s.failures} request(s) failed so far${s.firstFailure ? `, first: ${s.firstFailure}` : ""} (${elapsed} in) — ${running.name}`,
      );
    }
    if (now - running.lastBeat >= HEARTBEAT_MS) {
      running.lastBeat = now;
      this.#write(
        `${this.#stamp()}   · ${s.requests} requests, ${s.failures} failed, ${elapsed} — ${running.name}`,
      );
    }
  }

  onTestRunEnd(): void {
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = undefined;
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
    const now = (this.#live?.clock ?? Date.now)();
    this.#running = { name: test.fullName, since: now, lastBeat: now, alerted: false };
    if (this.#live && !this.#poll) {
      this.#poll = setInterval(() => this.tick(), POLL_MS);
      this.#poll.unref();
    }
  }

  onTestCaseResult(test: TestCase): void {
    this.#running = undefined;
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
