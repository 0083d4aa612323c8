import { TphError } from "./errors.ts";

export interface WaitOptions {
  /** What is being waited for, in words: it heads the timeout error. */
  description: string;
  timeoutMs: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

/** What a probe returns: done or not, plus what it saw (shown if the wait times out). */
export type Observation<T> = { done: true; value: T } | { done: false; state: unknown };

export class WaitTimeoutError extends TphError {
  readonly lastState: unknown;
  constructor(description: string, timeoutMs: number, lastState: unknown) {
    super(
      `timed out after ${(timeoutMs / 1000).toFixed(1)} s waiting for ${description}; last observed: ${render(lastState)}`,
    );
    this.name = "WaitTimeoutError";
    this.lastState = lastState;
  }
}

/**
 * Polls `probe` until it reports done, the timeout passes, or `signal` aborts.
 * A probe that throws counts as "not done" with the error as its state, so transient failures
 * (connection refused while a server starts) are retried and still explained on timeout; a fatal
 * TphError (say, the process being waited on died) ends the wait at once.
 */
export async function waitFor<T>(probe: () => Promise<Observation<T>>, options: WaitOptions): Promise<T> {
  const interval = options.intervalMs ?? 250;
  const deadline = Date.now() + options.timeoutMs;
  let lastState: unknown = "(never observed)";
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const observation = await probe();
      if (observation.done) return observation.value;
      lastState = observation.state;
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (err instanceof TphError && err.fatal) throw err;
      lastState = err instanceof Error ? err.message : err;
    }
    if (Date.now() + interval > deadline)
      throw new WaitTimeoutError(options.description, options.timeoutMs, lastState);
    await sleep(interval, options.signal);
  }
}

/** A sleep that ends early (rejecting) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Reads a value every `intervalMs` and calls `onChange` each time it differs from the last reading (the
 * first reading counts as a change). A read that throws is skipped. stop() ends it promptly and waits
 * for the read in flight, so no change is reported after it.
 */
export function watchValue<T>(
  read: () => Promise<T>,
  onChange: (value: T) => void,
  intervalMs: number,
): { stop(): Promise<void> } {
  const stopping = new AbortController();
  const loop = (async () => {
    let first = true;
    let last: T | undefined;
    while (!stopping.signal.aborted) {
      try {
        const value = await read();
        if (!stopping.signal.aborted && (first || value !== last)) {
          first = false;
          last = value;
          onChange(value);
        }
      } catch {}
      await sleep(intervalMs, stopping.signal).catch(() => undefined);
    }
  })();
  return {
    async stop() {
      stopping.abort();
      await loop;
    },
  };
}

function render(state: unknown): string {
  if (typeof state === "string") return state;
  try {
    const text = JSON.stringify(state);
    return text.length > 500 ? `${text.slice(0, 500)}…` : text;
  } catch {
    return String(state);
  }
}
