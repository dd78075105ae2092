/**
 * What the enclave's two programs (boot.ts, parent.ts) share as processes: a table of flags with
 * defaults, each also read from `WALLET_MPC_<PROGRAM>_<FLAG>` (platform/settings_layers.ts's
 * scheme; the enclave's environment is baked into its image), parsed with the project's one
 * parser (platform/cli_args.ts), precedence default < environment < flag; and the signals that
 * stop them.
 * @module
 */
import process from "node:process";
import {
  failureStatus,
  type FlagSpec,
  formatHelp,
  parseArgs,
  type ParsedArgs,
} from "../platform/cli_args.ts";
import type { Logger } from "../platform/logger.ts";
import { envName } from "../platform/settings_layers.ts";

/** One flag: its help, placeholder and default (`""`: none). */
export interface DefaultedFlag {
  readonly arg: string;
  readonly help: string;
  readonly default: string;
  readonly kind?: "value" | "list";
}

/** A program's flags and help. */
export interface FlagTable<F extends string> {
  /** `--help` text. */
  readonly usage: string;
  /**
   * Parses a command line.
   * @returns the parsed arguments and the value of each flag (flag, else variable, else
   *   default), or null when help was asked for.
   * @throws {UsageError} an unknown flag, a missing value, a stray argument.
   */
  parse(
    argv: readonly string[],
    env: Readonly<Record<string, string | undefined>>,
  ): { args: ParsedArgs; get: (flag: F) => string; list: (flag: F) => string[] } | null;
}

/**
 * Builds a program's flag table.
 * @param program `ENCLAVE` or `PARENT` (the variables' infix).
 * @param flags the flags.
 * @param help title, usage lines and notes of the help.
 * @param maxPositionals positional arguments accepted (a command).
 * @returns the table.
 */
export function flagTable<F extends string>(
  program: string,
  flags: Readonly<Record<F, DefaultedFlag>>,
  help: { title: string; usage: string[]; notes?: string[]; commands?: [string, string][] },
  maxPositionals = 0,
): FlagTable<F> {
  const specs: Record<string, FlagSpec> = {};
  for (const [name, f] of Object.entries(flags) as [string, DefaultedFlag][]) {
    const def = f.default === "" ? "" : ` (default ${f.default})`;
    specs[name] = { arg: f.arg, help: f.help + def, env: envName(program, name), kind: f.kind };
  }
  const usage = formatHelp({ ...help, flags: specs });
  return {
    usage,
    parse(argv, env) {
      const args = parseArgs(argv, { flags: specs, maxPositionals });
      if (args.help) return null;
      const fromEnv = (flag: F) => env[envName(program, flag)];
      return {
        args,
        get: (flag) => args.value(flag) ?? fromEnv(flag) ?? flags[flag].default,
        list: (flag) => {
          const given = args.values(flag);
          if (given.length > 0) return given;
          const v = fromEnv(flag);
          if (v !== undefined) return v.split(",").map((x) => x.trim()).filter((x) => x !== "");
          return flags[flag].default === "" ? [] : flags[flag].default.split(",");
        },
      };
    },
  };
}

/**
 * A flag's value as a non-negative integer.
 * @throws {RangeError} naming the flag.
 */
export function intFlag(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`--${flag}: expected an integer >= 0, got "${v}"`);
  }
  return n;
}

/**
 * The settings of a program, or nothing to run: help printed (`--help`), or a usage error
 * printed and the process exited with status 2 (1 for another error).
 * @param read reads the settings; null means help was asked for.
 * @param usage the help text.
 * @returns the settings, or undefined after printing the help.
 */
export function settingsOrExit<S>(read: () => S | null, usage: string): S | undefined {
  let s: S | null;
  try {
    s = read();
  } catch (e) {
    process.exit(failureStatus(e, console));
  }
  if (s === null) console.log(usage);
  return s ?? undefined;
}

/**
 * On SIGTERM or SIGINT (the first one): logs it, runs `stop`, exits 0.
 * @param logger the program's logger.
 * @param stop what stops the program.
 */
export function stopOnSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log("info", "signal received, stopping", { signal });
    await stop();
    logger.log("info", "stopped", {});
    process.exit(0);
  };
  process.on("SIGINT", () => void onSignal("SIGINT"));
  process.on("SIGTERM", () => void onSignal("SIGTERM"));
}
