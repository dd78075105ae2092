/**
 * Runs one of the repository's entry points (`keygen/main.ts`, `service/admin.ts`, ...) as a
 * process under the runtime running the caller (Deno or Node through tsx), bounded, and returns
 * its exit code and whole output: for tests of a command line as an operator runs it.
 *
 * @example
 * ```ts
 * import { runEntryPoint } from "./entry_point.ts";
 * const r = await runEntryPoint("service/admin.ts", ["--help"]);
 * console.assert(r.code === 0 && r.stdout.includes("Usage:"));
 * ```
 * @module
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { detectRuntime } from "../platform/mod.ts";

/** The repository's root directory. */
const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** How an entry point ended. */
export interface EntryPointRun {
  /** Exit code (null when killed by a signal). */
  readonly code: number | null;
  /** Everything written to standard output. */
  readonly stdout: string;
  /** Everything written to standard error. */
  readonly stderr: string;
}

/**
 * Runs `script` (relative to the repository root) with `args` in the root directory.
 *
 * @param script e.g. `keygen/main.ts`.
 * @param args its arguments.
 * @param env variables added to this process's environment (`NO_COLOR=1` always).
 * @param ms bound: the process is killed and the promise rejects after this long.
 * @returns the exit code and the output.
 */
export function runEntryPoint(
  script: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  ms = 60_000,
): Promise<EntryPointRun> {
  const main = join(ROOT, script);
  const [cmd, argv] = detectRuntime() === "deno"
    ? [join(ROOT, "node_modules/.bin/deno"), ["run", "-A", "--no-check", main, ...args]]
    : [process.execPath, ["--import", "tsx", main, ...args]];
  const p = spawn(cmd, argv, {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  p.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
  p.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`${script} ${args[0]} gave no answer in ${ms} ms: ${stderr.slice(-500)}`));
    }, ms);
    p.once("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}
