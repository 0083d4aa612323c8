/**
 * A failure the user can act on: `message` says what went wrong, `hint` says what to do about it.
 * The CLI prints both and exits with `exitCode`; anything else is treated as a bug and prints its stack.
 */
export class TphError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: number;
  /** A fatal error ends a `waitFor` at once instead of counting as "not done yet" (e.g. the process died). */
  readonly fatal: boolean;

  constructor(
    message: string,
    options: { hint?: string; exitCode?: number; cause?: unknown; fatal?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TphError";
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
    this.fatal = options.fatal ?? false;
  }
}

/** Bad input: a malformed flag, scenario or config. Exit code 2, like most CLIs. */
export class UsageError extends TphError {
  constructor(message: string, hint?: string) {
    super(message, hint === undefined ? { exitCode: 2 } : { hint, exitCode: 2 });
    this.name = "UsageError";
  }
}

/** Formats any error for a person: the message, the hint, the causes, and cleanup errors if any. */
export function describeError(err: unknown): string {
  const lines: string[] = [];
  let current: unknown = err;
  let depth = 0;
  while (current !== undefined && depth < 5) {
    if (current instanceof Error) {
      lines.push(depth === 0 ? `error: ${current.message}` : `caused by: ${current.message}`);
      if (current instanceof TphError && current.hint) lines.push(`hint: ${current.hint}`);
      const cleanupErrors = (current as { cleanupErrors?: unknown[] }).cleanupErrors;
      if (Array.isArray(cleanupErrors)) {
        for (const c of cleanupErrors)
          lines.push(`cleanup also failed: ${c instanceof Error ? c.message : String(c)}`);
      }
      current = current.cause;
    } else {
      lines.push(depth === 0 ? `error: ${String(current)}` : `caused by: ${String(current)}`);
      current = undefined;
    }
    depth++;
  }
  return lines.join("\n");
}
