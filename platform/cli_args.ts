/**
 * The one command-line parser of the entry points (gateway, service, admin, client, keygen) and
 * the one shape of their `--help`. Pure: the caller passes `argv` (the arguments after the
 * script name) and prints what it gets.
 *
 * The convention (README, "Entry points"):
 *
 * - `--name value` and `--name=value` are the same; a boolean flag takes no value (`--json`);
 *   a `list` flag may be repeated and keeps every value in order (`--set a=1 --set b=2`); any
 *   other flag given twice keeps its last value.
 * - `--help` or `-h` anywhere before `--` asks for the help text, whatever else is given.
 * - `--` ends the flags: every argument after it is positional (`deno task x -- --y` passes
 *   `--y` as an argument, so write `deno task x --y`).
 * - Positional arguments (a command, a configuration file) may stand before, between or after
 *   the flags; a command accepts a fixed number of them.
 * - A flag the command does not know, a missing value, a value given to a boolean flag or one
 *   positional argument too many is a {@link UsageError}.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./cli_args.ts";
 * const args = parseArgs(["sign", "--account=demo", "--json", "--path", "m/0/1"], {
 *   flags: {
 *     account: { help: "the account", arg: "id" },
 *     path: { help: "derivation path" },
 *     json: { kind: "boolean", help: "one JSON object on stdout" },
 *   },
 *   maxPositionals: 1,
 * });
 * console.assert(args.positionals[0] === "sign" && args.value("account") === "demo");
 * console.assert(args.has("json") && args.value("path") === "m/0/1");
 * ```
 * @module
 */

/** Why a command line was refused. */
export type UsageErrorCode =
  | "unknown-flag" // a flag the command does not know
  | "missing-value" // a flag that takes a value came last, or an empty value where one is needed
  | "unexpected-value" // `--flag=value` for a boolean flag
  | "bad-value" // a value that does not have the required form (`--set` without `=`)
  | "unexpected-argument"; // more positional arguments than the command accepts

/**
 * A command line the command cannot run: `code` says why, `argument` names the flag or
 * argument at fault (or a placeholder when it is not plain text). Entry points print the
 * message and the help and exit with status 2. A `RangeError`, as other misuse is.
 *
 * @example
 * ```ts
 * import { UsageError } from "./cli_args.ts";
 * const e = new UsageError("unknown-flag", "--prot", "unknown option --prot; see --help");
 * console.assert(e.argument === "--prot" && e instanceof RangeError);
 * ```
 */
export class UsageError extends RangeError {
  override readonly name = "UsageError";
  /** Why the command line was refused. */
  readonly code: UsageErrorCode;
  /** The flag or argument at fault (`--port`), as shown in the message. */
  readonly argument: string;
  /**
   * @param code why.
   * @param argument the flag or argument at fault.
   * @param message what was expected and what was got, naming the argument.
   */
  constructor(code: UsageErrorCode, argument: string, message: string) {
    super(message);
    this.code = code;
    this.argument = argument;
  }
}

/** One flag of a command. */
export interface FlagSpec {
  /**
   * `value` (default) takes a value; `boolean` takes none; `list` takes a value and may be
   * repeated, keeping every value.
   */
  readonly kind?: "value" | "boolean" | "list";
  /** Placeholder of the value in the help (default `value`). */
  readonly arg?: string;
  /** One line of help. */
  readonly help: string;
  /** The environment variable that also sets it, named in the help. */
  readonly env?: string;
}

/** What a command accepts. */
export interface CommandSpec {
  /** Flags by name without the leading `--`; `help` (and `-h`) is always accepted. */
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Most positional arguments accepted (default 0). */
  readonly maxPositionals?: number;
}

/** One flag as given. */
export interface GivenFlag {
  /** The flag's name without `--`. */
  readonly flag: string;
  /** Its value; `true` for a boolean flag. */
  readonly value: string | true;
}

/** A parsed command line. */
export interface ParsedArgs {
  /** Whether `--help` or `-h` was given (nothing else was then checked). */
  readonly help: boolean;
  /** The flags in command-line order. */
  readonly given: readonly GivenFlag[];
  /** The positional arguments in order. */
  readonly positionals: readonly string[];
  /** Whether the flag was given. */
  has(flag: string): boolean;
  /** The last value of a value flag, or undefined. */
  value(flag: string): string | undefined;
  /** Every value of a flag in order (a `list` flag's repetitions). */
  values(flag: string): string[];
}

/** A flag or argument for a message: shown when plain, else a placeholder. */
function shown(arg: string): string {
  return /^-{0,2}[A-Za-z0-9_.-]{1,64}$/.test(arg) ? arg : "(an argument)";
}

function parsed(help: boolean, given: GivenFlag[], positionals: string[]): ParsedArgs {
  const values = (flag: string) =>
    given.filter((g) => g.flag === flag && g.value !== true).map((g) => g.value as string);
  return {
    help,
    given,
    positionals,
    has: (flag) => given.some((g) => g.flag === flag),
    value: (flag) => values(flag).at(-1),
    values,
  };
}

/**
 * Whether the command line asks for help: `--help` or `-h` before any `--`.
 *
 * @param argv the arguments after the script name.
 * @returns true when help is asked for.
 * @example
 * ```ts
 * import { wantsHelp } from "./cli_args.ts";
 * console.assert(wantsHelp(["--port", "1", "-h"]) && !wantsHelp(["--", "--help"]));
 * ```
 */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  const args = end < 0 ? argv : argv.slice(0, end);
  return args.includes("--help") || args.includes("-h");
}

/**
 * Parses a command line by the convention of the module doc.
 *
 * @param argv the arguments after the script name.
 * @param spec the command's flags and how many positional arguments it takes.
 * @returns the flags in order and the positional arguments; with `help` set, nothing else.
 * @throws {UsageError} an unknown flag, a missing or unexpected value, too many arguments.
 * @example
 * ```ts
 * import { parseArgs } from "./cli_args.ts";
 * const spec = { flags: { set: { kind: "list" as const, help: "a setting" } }, maxPositionals: 1 };
 * const a = parseArgs(["app.yaml", "--set", "a.b=1", "--set=c.d=2"], spec);
 * console.assert(a.positionals[0] === "app.yaml" && a.values("set").join() === "a.b=1,c.d=2");
 * ```
 */
export function parseArgs(argv: readonly string[], spec: CommandSpec): ParsedArgs {
  if (wantsHelp(argv)) return parsed(true, [], []);
  const given: GivenFlag[] = [];
  const positionals: string[] = [];
  const max = spec.maxPositionals ?? 0;
  let ended = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!ended && arg === "--") {
      ended = true;
      continue;
    }
    if (ended || !arg.startsWith("-") || arg === "-") {
      if (positionals.length >= max) {
        const hint = ended && arg.startsWith("--")
          ? " (flags after -- are arguments: drop the --)"
          : "";
        const expected = max === 0 ? "no argument" : `at most ${max} argument(s)`;
        throw new UsageError(
          "unexpected-argument",
          shown(arg),
          `unexpected argument ${shown(arg)}: expected ${expected}${hint}; see --help`,
        );
      }
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq > 2 ? arg.slice(2, eq) : arg.slice(2);
    const flag = `--${name}`;
    const def = arg.startsWith("--") && Object.hasOwn(spec.flags, name)
      ? spec.flags[name]
      : undefined;
    if (!def) {
      const what = arg.startsWith("--") ? flag : arg;
      throw new UsageError(
        "unknown-flag",
        shown(what),
        `unknown option ${shown(what)}; see --help`,
      );
    }
    if (def.kind === "boolean") {
      if (eq > 2) throw new UsageError("unexpected-value", flag, `${flag}: takes no value`);
      given.push({ flag: name, value: true });
      continue;
    }
    const value = eq > 2 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) {
      throw new UsageError("missing-value", flag, `${flag}: expected a value`);
    }
    given.push({ flag: name, value });
  }
  return parsed(false, given, positionals);
}

/** Where an entry point prints: `console`, or a test's collector. */
export interface Printer {
  /** Standard output (the help asked for). */
  log(text: string): void;
  /** Standard error (a refusal and the help). */
  error(text: string): void;
}

/**
 * {@link parseArgs} for an entry point: the help asked for is printed (exit status 0), a
 * {@link UsageError} is printed with the help (exit status 2).
 *
 * @param argv the arguments after the script name (or after the command).
 * @param spec the command's flags.
 * @param usage the help text.
 * @param print where to print.
 * @returns the parsed command line, or the exit status when there is nothing to run.
 * @throws whatever `parseArgs` throws besides a UsageError (none).
 * @example
 * ```ts
 * import { parseCommandLine } from "./cli_args.ts";
 * const out: string[] = [];
 * const print = { log: (t: string) => out.push(t), error: (t: string) => out.push(t) };
 * console.assert(parseCommandLine(["--x"], { flags: {} }, "usage", print) === 2);
 * console.assert(out[0].startsWith("unknown option --x"));
 * ```
 */
export function parseCommandLine(
  argv: readonly string[],
  spec: CommandSpec,
  usage: string,
  print: Printer,
): ParsedArgs | number {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, spec);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    print.error(`${e.message}\n\n${usage}`);
    return 2;
  }
  if (!args.help) return args;
  print.log(usage);
  return 0;
}

/**
 * The command of a program with commands (`keygen offline`, `admin callers add`) and
 * its command line: the command's words come first, then its flags and arguments. No command
 * prints the help (exit status 2; 0 when asked for with `--help`), an unknown one is refused
 * (2).
 *
 * @param argv the arguments after the script name.
 * @param commands each command (its words joined by a space) and its flags.
 * @param usage the help text.
 * @param print where to print.
 * @returns the command and its parsed command line, or the exit status.
 * @example
 * ```ts
 * import { parseCommand } from "./cli_args.ts";
 * const print = { log: () => {}, error: () => {} };
 * const got = parseCommand(["callers", "add", "--id=a"], {
 *   "callers add": { flags: { id: { help: "the id" } } },
 * }, "usage", print);
 * console.assert(typeof got !== "number" && got.command === "callers add");
 * ```
 */
export function parseCommand(
  argv: readonly string[],
  commands: Readonly<Record<string, CommandSpec>>,
  usage: string,
  print: Printer,
): { command: string; args: ParsedArgs } | number {
  if (argv.length === 0 || wantsHelp(argv.slice(0, 1))) {
    print.log(usage);
    return argv.length === 0 ? 2 : 0;
  }
  const command = Object.keys(commands).find((c) =>
    c.split(" ").every((word, i) => argv[i] === word)
  );
  if (command === undefined) {
    const words = argv.slice(0, 2).filter((w) => !w.startsWith("-")).map(shown).join(" ");
    print.error(`unknown command ${words}\n\n${usage}`);
    return 2;
  }
  const args = parseCommandLine(
    argv.slice(command.split(" ").length),
    commands[command],
    usage,
    print,
  );
  return typeof args === "number" ? args : { command, args };
}

/**
 * The one line an entry point prints for a failed command: `error: <name> (<code>): <message>`.
 *
 * @param e what the command threw.
 * @returns the line, for standard error.
 * @example
 * ```ts
 * import { describeFailure } from "./cli_args.ts";
 * const e = Object.assign(new Error("gone"), { code: "not-found" });
 * console.assert(describeFailure(e) === "error: Error (not-found): gone");
 * ```
 */
export function describeFailure(e: unknown): string {
  const err = e as Error & { code?: unknown };
  const code = err?.code !== undefined ? ` (${String(err.code)})` : "";
  return `error: ${err?.name ?? "Error"}${code}: ${err?.message ?? String(e)}`;
}

/**
 * Prints a failed command ({@link describeFailure}) and returns its exit status: 2 for misuse
 * (a `RangeError`: a missing or invalid flag value), 1 for anything else.
 *
 * @param e what the command threw.
 * @param print where to print.
 * @returns 2 or 1.
 */
export function failureStatus(e: unknown, print: Printer): number {
  print.error(describeFailure(e));
  return e instanceof RangeError ? 2 : 1;
}

/** The parts of a help text (see {@link formatHelp}). */
export interface HelpSpec {
  /** First line: `name: what it is`. */
  readonly title: string;
  /** Usage lines, e.g. `deno task gateway [config.yaml] [options]`. */
  readonly usage: readonly string[];
  /** Commands and what each does, when the program has commands. */
  readonly commands?: readonly (readonly [string, string])[];
  /** The flags, in the order shown. */
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Closing paragraphs (environment, precedence, notes). */
  readonly notes?: readonly string[];
}

/**
 * The help text of an entry point, in the one shape they all share: title, usage, commands,
 * options (each with its environment variable), notes.
 *
 * @param spec the parts.
 * @returns the text, ending with a newline.
 * @example
 * ```ts
 * import { formatHelp } from "./cli_args.ts";
 * const text = formatHelp({
 *   title: "demo: an example",
 *   usage: ["deno task demo [options]"],
 *   flags: { port: { help: "server.port", arg: "n", env: "WALLET_MPC_DEMO_PORT" } },
 * });
 * console.assert(/--port <n> +server\.port \(env WALLET_MPC_DEMO_PORT\)/.test(text));
 * ```
 */
export function formatHelp(spec: HelpSpec): string {
  const flagRows: [string, string][] = Object.entries(spec.flags).map(([name, f]) => [
    f.kind === "boolean" ? `--${name}` : `--${name} <${f.arg ?? "value"}>`,
    f.help + (f.env ? ` (env ${f.env})` : "") + (f.kind === "list" ? " (repeatable)" : ""),
  ]);
  flagRows.push(["--help, -h", "this text"]);
  const table = (rows: readonly (readonly [string, string])[]) => {
    const width = Math.min(32, Math.max(...rows.map(([a]) => a.length)));
    const indent = " ".repeat(width + 4);
    return rows.map(([a, b]) => {
      const text = wrap(b, HELP_WIDTH - indent.length).join(`\n${indent}`);
      return a.length > width ? `  ${a}\n${indent}${text}` : `  ${a.padEnd(width)}  ${text}`;
    });
  };
  const lines = [spec.title, "", "Usage:", ...spec.usage.map((u) => `  ${u}`)];
  if (spec.commands && spec.commands.length > 0) lines.push("Commands:", ...table(spec.commands));
  lines.push("Options:", ...table(flagRows));
  for (const n of spec.notes ?? []) lines.push("", ...wrap(n, HELP_WIDTH));
  return lines.join("\n") + "\n";
}

/** Width of a help text's lines. */
const HELP_WIDTH = 100;

/**
 * `text` in lines of at most `width` characters (a longer word stands alone); `(env NAME)` is
 * kept on one line.
 */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/(?<!\(env)\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}
