import type { Logger } from "../core/logger.ts";

/** One disruption action on a run's timeline: what, on what, from when to when, and how it ended. */
export interface TimelineEvent {
  action: string;
  target: string;
  start: number;
  end: number;
  error?: string;
}

/**
 * The record of what a test did to the cluster while traffic ran. Every action goes through step(), so
 * the report can put each failed request next to the action it happened during.
 */
export class Timeline {
  readonly events: TimelineEvent[] = [];
  readonly #logger: Logger | undefined;

  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  /** Runs `fn` as the action `action` on `target`, recording its start and end (also when it throws). */
  async step<T>(action: string, target: string, fn: () => Promise<T>): Promise<T> {
    const start = Date.now();
    this.#logger?.info(`▶ ${action} ${target}`);
    try {
      const value = await fn();
      this.#push({ action, target, start, end: Date.now() });
      return value;
    } catch (err) {
      this.#push({
        action,
        target,
        start,
        end: Date.now(),
        error: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
  }

  /**
   * The latest event of `action` (e.g. the "stop-node" a test just did): by name, because other events
   * (marks made while traffic runs) may land after it.
   */
  last(action: string): TimelineEvent {
    const found = this.events.findLast((e) => e.action === action);
    if (!found)
      throw new Error(
        `no ${action} on the timeline (has: ${this.events.map((e) => e.action).join(", ") || "nothing"})`,
      );
    return found;
  }

  /** An instant on the timeline (e.g. "blackhole expected from here"). */
  mark(action: string, target: string): void {
    const now = Date.now();
    this.#push({ action, target, start: now, end: now });
  }

  #push(e: TimelineEvent): void {
    this.events.push(e);
    this.events.sort((a, b) => a.start - b.start);
  }
}
