import type { Logger } from "./logger.ts";

type CleanupFn = () => Promise<void> | void;

/**
 * A LIFO stack of undo steps. Whatever a pipeline creates, it pushes the matching removal right after,
 * so a failure at any step unwinds exactly what exists. Cleanup errors are collected and reported;
 * they never replace the error that caused the unwind.
 *
 * This is the in-process half of cleanup. The other half is `gc`, which finds leftovers by name
 * prefix after a crash or SIGKILL, when no stack survives.
 */
export class CleanupStack {
  readonly #steps: { name: string; fn: CleanupFn }[] = [];
  readonly #logger: Logger | undefined;
  #running: Promise<unknown[]> | undefined;

  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  push(name: string, fn: CleanupFn): void {
    this.#steps.push({ name, fn });
  }

  get size(): number {
    return this.#steps.length;
  }

  /** Runs every step, last pushed first; returns the errors (each named by its step). Idempotent. */
  run(): Promise<unknown[]> {
    this.#running ??= (async () => {
      const errors: unknown[] = [];
      for (let step = this.#steps.pop(); step; step = this.#steps.pop()) {
        this.#logger?.debug(`cleanup: ${step.name}`);
        try {
          await step.fn();
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          this.#logger?.warn(`cleanup step "${step.name}" failed: ${message}`);
          errors.push(new Error(`${step.name}: ${message}`, { cause: err }));
        }
      }
      this.#running = undefined;
      return errors;
    })();
    return this.#running;
  }

  /** Drops every step without running it: the pipeline succeeded and the resources now outlive it. */
  release(): void {
    this.#steps.length = 0;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.run();
  }
}

/**
 * Runs `body` with a fresh stack. On error (or SIGINT/SIGTERM while it runs) the stack unwinds and the
 * original error is rethrown with `cleanupErrors` attached. On success the stack is released unless
 * `alwaysCleanup` is set.
 */
export async function withCleanup<T>(
  body: (stack: CleanupStack, signal: AbortSignal) => Promise<T>,
  options: { logger?: Logger; alwaysCleanup?: boolean; signal?: AbortSignal } = {},
): Promise<T> {
  const stack = new CleanupStack(options.logger);
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", onParentAbort, { once: true });
  const removeHandlers = onTerminationSignals((sig) => controller.abort(new Interrupted(sig)));
  try {
    const value = await body(stack, controller.signal);
    if (options.alwaysCleanup) await reportCleanup(await stack.run(), options.logger);
    else stack.release();
    return value;
  } catch (err) {
    const cleanupErrors = await stack.run();
    if (cleanupErrors.length > 0 && err instanceof Error) {
      (err as Error & { cleanupErrors?: unknown[] }).cleanupErrors = cleanupErrors;
    }
    throw err;
  } finally {
    removeHandlers();
    options.signal?.removeEventListener("abort", onParentAbort);
  }
}

/** The error a wait sees when the user pressed Ctrl-C. */
export class Interrupted extends Error {
  readonly signalName: string;
  constructor(signalName: string) {
    super(`interrupted by ${signalName}`);
    this.name = "Interrupted";
    this.signalName = signalName;
  }
}

/** Calls `handler` on SIGINT/SIGTERM instead of letting Node exit; returns the function that removes it. */
export function onTerminationSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}

async function reportCleanup(errors: unknown[], logger?: Logger): Promise<void> {
  if (errors.length > 0) {
    throw new AggregateError(errors, `cleanup failed in ${errors.length} step(s)`);
  }
  logger?.debug("cleanup complete");
}
