/**
 * What a test changed on shared state (nodes, kube-proxy, replica counts) and how to put it back. Each
 * disruption action registers its undo under a key naming what it changed; the action that reverses it
 * (uncordon after cordon, start after stop) clears the key. Whatever is left when the test ends, passed
 * or failed, is undone, newest first, so a failed verdict never hands a stopped, cordoned or tainted
 * node to the next test.
 */
export interface UndoEntry {
  /** What the undo does, in words ("uncordon worker2"). */
  what: string;
  /** The state before the first change under this key (e.g. the replica count, the kube-proxy binary). */
  original?: unknown;
  /**
   * Nodes come back before workloads: scaling a Deployment back waits for its pods, which cannot start
   * on a node that is still stopped, cordoned or tainted. Default "node".
   */
  phase?: "node" | "workload";
  fn: () => Promise<void>;
}

export class UndoStack {
  readonly #entries = new Map<string, UndoEntry>();

  /**
   * Registers how to undo the change keyed `key`. The first registration wins: it alone knows the
   * state before the test touched it (a second scale must scale back to the first count).
   */
  register(key: string, entry: UndoEntry): void {
    if (!this.#entries.has(key)) this.#entries.set(key, entry);
  }

  /** The registered undo under `key`, if any (to read `original`). */
  get(key: string): UndoEntry | undefined {
    return this.#entries.get(key);
  }

  /** The test reversed the change itself: nothing to undo under `key`. */
  done(key: string): void {
    this.#entries.delete(key);
  }

  get pending(): string[] {
    return [...this.#entries.values()].map((e) => e.what);
  }

  /**
   * Runs every pending undo: the nodes' first, then the workloads', each newest first. Each runs even if
   * an earlier one failed; the failures are returned (with what they were undoing), not thrown, so the
   * caller can report all of them.
   */
  async run(): Promise<{ undone: string[]; errors: Error[] }> {
    const newestFirst = [...this.#entries.entries()].reverse();
    const entries = [
      ...newestFirst.filter(([, e]) => (e.phase ?? "node") === "node"),
      ...newestFirst.filter(([, e]) => e.phase === "workload"),
    ];
    this.#entries.clear();
    const undone: string[] = [];
    const errors: Error[] = [];
    for (const [, e] of entries) {
      try {
        await e.fn();
        undone.push(e.what);
      } catch (err) {
        errors.push(
          new Error(`undo "${e.what}" failed: ${err instanceof Error ? err.message : String(err)}`),
        );
      }
    }
    return { undone, errors };
  }
}
