import { execa } from "execa";
import { cliEnv, TPH_BIN } from "./env.ts";

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `tph` CLI as a child process, as a user would, against the e2e state directory. */
export async function tph(
  args: string[],
  options: { env?: Record<string, string>; prefix?: string[] } = {},
): Promise<CliResult> {
  const argv = [...(options.prefix ?? []), TPH_BIN, ...args];
  const [file, ...rest] = argv as [string, ...string[]];
  const r = await execa(file, rest, {
    reject: false,
    env: cliEnv(options.env),
    stdin: "ignore",
    timeout: 600_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
