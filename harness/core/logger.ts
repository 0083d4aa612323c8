/**
 * The logger every module takes as a parameter (never a global). Progress goes to stderr so that stdout
 * stays machine-readable (`tph kubeconfig` prints a path and nothing else).
 *
 * - `step` marks the start of a long step; it is shown at the default level.
 * - `info` is shown at the default level; `debug` only with `--verbose`.
 * - A quiet logger shows warnings and errors only: what tests use, so a passing run prints nothing.
 */
export type LogLevel = "quiet" | "normal" | "verbose";

export interface Logger {
  step(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createLogger(
  level: LogLevel = "normal",
  write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Logger {
  const start = Date.now();
  const stamp = () => `[${((Date.now() - start) / 1000).toFixed(1).padStart(6)}s]`;
  const show = (min: LogLevel) => order[level] >= order[min];
  return {
    step: (m) => show("normal") && write(`${stamp()} ▶ ${m}`),
    info: (m) => show("normal") && write(`${stamp()}   ${m}`),
    debug: (m) => show("verbose") && write(`${stamp()}   · ${m}`),
    warn: (m) => write(`${stamp()} warning: ${m}`),
    error: (m) => write(`${stamp()} error: ${m}`),
  };
}

const order: Record<LogLevel, number> = { quiet: 0, normal: 1, verbose: 2 };

/** A logger that records lines, for tests that assert on progress output. */
export function createMemoryLogger(level: LogLevel = "verbose"): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(
    createLogger(level, (l) => lines.push(l)),
    { lines },
  );
}
