import { access, constants } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { TphError } from "./errors.ts";
import type { Logger } from "./logger.ts";

/** How many trailing characters of stdout/stderr an error keeps: enough to see why, small enough to read. */
const TAIL_CHARS = 2_000;

export interface ExecOptions {
  /** Runs the command inside this network namespace (`ip netns exec NS ...`). */
  netns?: string;
  cwd?: string;
  /** Added to the inherited environment. */
  env?: Record<string, string | undefined>;
  input?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Return the result of a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  logger?: Logger;
}

export interface ExecResult {
  argv: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A command that failed, with everything needed to reproduce and diagnose it. */
export class CommandError extends TphError {
  readonly argv: string[];
  readonly exitStatus: number | undefined;
  readonly stdoutTail: string;
  readonly stderrTail: string;

  constructor(argv: string[], exitCode: number | undefined, stdout: string, stderr: string, reason: string) {
    const stdoutTail = tail(stdout);
    const stderrTail = tail(stderr);
    const output = [
      stderrTail && `stderr:\n${indent(stderrTail)}`,
      stdoutTail && `stdout:\n${indent(stdoutTail)}`,
    ]
      .filter(Boolean)
      .join("\n");
    super(`command ${reason}: ${shellQuote(argv)}${output ? `\n${output}` : ""}`);
    this.name = "CommandError";
    this.argv = argv;
    this.exitStatus = exitCode;
    this.stdoutTail = stdoutTail;
    this.stderrTail = stderrTail;
  }

  /** The command as a line a person can paste into a shell. */
  get commandLine(): string {
    return shellQuote(this.argv);
  }
}

/** Runs `argv` (never a shell string) and returns its output; throws CommandError on failure. */
export async function run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const full = options.netns ? ["ip", "netns", "exec", options.netns, ...argv] : [...argv];
  const [file, ...args] = full;
  if (!file) throw new TphError("run() needs a command");
  options.logger?.debug(`$ ${shellQuote(full)}`);
  const result = await execa(file, args, {
    reject: false,
    stdin: options.input === undefined ? "ignore" : "pipe",
    ...(options.input !== undefined && { input: options.input }),
    ...(options.cwd !== undefined && { cwd: options.cwd }),
    ...(options.env !== undefined && { env: options.env }),
    ...(options.signal !== undefined && { cancelSignal: options.signal }),
    ...(options.timeoutMs !== undefined && { timeout: options.timeoutMs }),
    stripFinalNewline: false,
  });
  const stdout = String(result.stdout ?? "");
  const stderr = String(result.stderr ?? "");
  if (result.failed && result.exitCode === undefined) {
    // Never started, timed out or was cancelled: there is no exit code to hand back.
    const why = result.isCanceled
      ? "was cancelled"
      : result.timedOut
        ? `timed out after ${options.timeoutMs} ms`
        : (result as { code?: string }).code === "ENOENT"
          ? "not found (is it installed and on PATH?)"
          : `failed to run (${result.shortMessage})`;
    throw new CommandError(full, undefined, stdout, stderr, why);
  }
  const exitCode = result.exitCode ?? 0;
  if (exitCode !== 0 && !options.allowFailure) {
    throw new CommandError(full, exitCode, stdout, stderr, `exited ${exitCode}`);
  }
  return { argv: full, exitCode, stdout, stderr };
}

/** Finds a program on PATH; undefined when it is missing. */
export async function which(
  program: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  for (const dir of (env.PATH ?? "").split(":")) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ");
}

function tail(text: string): string {
  const trimmed = text.trimEnd();
  return trimmed.length > TAIL_CHARS ? `…${trimmed.slice(-TAIL_CHARS)}` : trimmed;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}
