import { readFileSync, renameSync, writeFileSync } from "node:fs";

/**
 * Live request counts of the running test, from the suites' worker to `tph run`'s progress reporter.
 * Vitest's reporters see a test only when it starts and ends; a disruption test runs for minutes, so the
 * worker keeps a small JSON file (TPH_PROGRESS_FILE, set by `tph run`) with the counts so far, rewritten
 * at most twice a second and replaced whole (rename), which the reporter polls.
 */
export interface LiveSnapshot {
  test: string;
  requests: number;
  failures: number;
  /** The first failed request so far: "refused on pod@a->clusterip", for the alert line. */
  firstFailure?: string;
}

const FLUSH_MS = 500;

export class LiveCounts {
  readonly #file: string | undefined;
  #snapshot: LiveSnapshot = { test: "", requests: 0, failures: 0 };
  #timer: NodeJS.Timeout | undefined;

  constructor(file: string | undefined = process.env.TPH_PROGRESS_FILE) {
    this.#file = file || undefined;
  }

  /** A test starts: counts from zero under its name. */
  start(test: string): void {
    this.#snapshot = { test, requests: 0, failures: 0 };
    this.flush();
  }

  /** Requests the test recorded (an outcome and the path it went on). */
  add(entries: readonly { outcome: string; path: string }[]): void {
    for (const e of entries) {
      this.#snapshot.requests++;
      if (e.outcome === "ok") continue;
      this.#snapshot.failures++;
      this.#snapshot.firstFailure ??= `${e.outcome} on ${e.path}`;
    }
    if (!this.#file || this.#timer) return;
    this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
    this.#timer.unref();
  }

  /** Writes the counts now. A progress file that cannot be written never fails a test. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#file) return;
    try {
      writeFileSync(`${this.#file}.tmp`, JSON.stringify(this.#snapshot));
      renameSync(`${this.#file}.tmp`, this.#file);
    } catch {
      // Progress is a convenience: the ledger is the record.
    }
  }
}

/** The worker's counts (one test at a time per worker: the e2e project runs files one by one). */
export const liveCounts = new LiveCounts();

/** What the reporter reads; undefined while there is no file or it is being replaced. */
export function readLive(file: string): LiveSnapshot | undefined {
  try {
    const s = JSON.parse(readFileSync(file, "utf8")) as Partial<LiveSnapshot>;
    if (typeof s.test !== "string" || typeof s.requests !== "number" || typeof s.failures !== "number")
      return undefined;
    return {
      test: s.test,
      requests: s.requests,
      failures: s.failures,
      ...(typeof s.firstFailure === "string" && { firstFailure: s.firstFailure }),
    };
  } catch {
    return undefined;
  }
}
