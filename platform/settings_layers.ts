/**
 * The layers of an entry point's settings, written once for all of them: configuration file <
 * environment < flags, one environment prefix scheme, deprecated variable names kept as aliases,
 * and dotted-path overrides applied to the parsed file. Pure: `env` is a parameter and warnings
 * are returned, not printed.
 *
 * ## Environment scheme
 *
 * Every variable of a program is `WALLET_MPC_<PROGRAM>_...`, the program being `GATEWAY`,
 * `SERVICE` (the sign-service and its admin commands) or `CLIENT`:
 *
 * - `WALLET_MPC_<PROGRAM>_CONFIG`: the configuration file (gateway, service);
 * - `WALLET_MPC_<PROGRAM>_<FLAG>`: the variable of a flag, its name in capitals with `_` for
 *   `-` (`--redis-url` is `WALLET_MPC_GATEWAY_REDIS_URL`); a few settings (secrets) have a
 *   variable and no flag;
 * - `WALLET_MPC_<PROGRAM>__<SECTION>__<KEY>`: any setting of the file, like
 *   `--set section.key=value` (`WALLET_MPC_SERVICE__RATE_LIMIT__BURST=5`).
 *
 * @example
 * ```ts
 * import { parseArgs } from "./cli_args.ts";
 * import { settingsCommand, settingsFromCommandLine } from "./settings_layers.ts";
 * const spec = {
 *   program: "GATEWAY",
 *   defaultConfigPath: "config/sign-gateway.yaml",
 *   settingFlags: { port: { setting: "server.port", arg: "n" } },
 *   convert: (_setting: string, raw: string) => Number(raw),
 * };
 * const args = parseArgs(["gw.yaml", "--port=9"], settingsCommand(spec));
 * const cli = settingsFromCommandLine(args, { WALLET_MPC_GATEWAY_PORT: "8" }, spec);
 * console.assert(cli.configPath === "gw.yaml" && cli.overrides["server.port"] === 9);
 * ```
 * @module
 */

import { type FlagSpec, type ParsedArgs, UsageError } from "./cli_args.ts";

/** The prefix of every environment variable of the project's programs. */
export const ENV_PREFIX = "WALLET_MPC";

/**
 * The environment variable of a program's flag (module doc).
 *
 * @param program `GATEWAY`, `SERVICE` or `CLIENT`.
 * @param flag the flag's name without `--` (or a name of a variable without a flag).
 * @returns `WALLET_MPC_<PROGRAM>_<FLAG>`.
 * @example
 * ```ts
 * import { envName } from "./settings_layers.ts";
 * console.assert(envName("GATEWAY", "redis-url") === "WALLET_MPC_GATEWAY_REDIS_URL");
 * ```
 */
export function envName(program: string, flag: string): string {
  return `${ENV_PREFIX}_${program}_${flag.toUpperCase().replace(/-/g, "_")}`;
}

/** A deprecated variable (or, with `prefix`, every variable that starts so) and its new name. */
export interface EnvAlias {
  /** The deprecated name, or prefix. */
  readonly from: string;
  /** The name (or prefix) that replaces it. */
  readonly to: string;
  /** `from` and `to` are prefixes: `from + rest` becomes `to + rest`. */
  readonly prefix?: boolean;
}

/** The environment with its deprecated names resolved. */
export interface AliasedEnv {
  /** The environment with every deprecated name also set under its new name (when unset). */
  readonly env: Record<string, string | undefined>;
  /** One line per deprecated name present, for standard error. */
  readonly warnings: string[];
}

/**
 * Resolves deprecated environment variable names: each one present is copied to its new name
 * unless the new name is set too (the new name wins), with a warning either way.
 *
 * @param env the environment (not modified).
 * @param aliases the deprecated names of a program.
 * @returns the environment to read, and the warnings to print to standard error.
 * @example
 * ```ts
 * import { applyEnvAliases } from "./settings_layers.ts";
 * const { env, warnings } = applyEnvAliases(
 *   { GATEWAY_PORT: "1" },
 *   [{ from: "GATEWAY_PORT", to: "WALLET_MPC_GATEWAY_PORT" }],
 * );
 * console.assert(env.WALLET_MPC_GATEWAY_PORT === "1" && warnings.length === 1);
 * ```
 */
export function applyEnvAliases(
  env: Readonly<Record<string, string | undefined>>,
  aliases: readonly EnvAlias[],
): AliasedEnv {
  const out: Record<string, string | undefined> = { ...env };
  const warnings: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const alias = aliases.find((a) => a.prefix ? name.startsWith(a.from) : name === a.from);
    if (!alias) continue;
    const to = alias.prefix ? alias.to + name.slice(alias.from.length) : alias.to;
    if (env[to] !== undefined) {
      warnings.push(`warning: ${name} is deprecated and ignored: ${to} is set`);
    } else {
      out[to] = value;
      warnings.push(`warning: ${name} is deprecated; use ${to}`);
    }
  }
  return { env: out, warnings };
}

/**
 * The deprecated names of a program's variables under an older prefix: `<OLD>_CONFIG`, the
 * variables of its flags and of `envOnly` as `<OLD>_<FLAG>`, and `<OLD>__SECTION__KEY`.
 *
 * @param spec the program's settings.
 * @param oldPrefix the older prefix (`GATEWAY`, `SIGN_SERVICE`).
 * @returns the aliases, for {@link applyEnvAliases}.
 * @example
 * ```ts
 * import { legacyEnvAliases } from "./settings_layers.ts";
 * const spec = {
 *   program: "GATEWAY",
 *   defaultConfigPath: "gw.yaml",
 *   settingFlags: { "redis-url": { setting: "backend.redis.url", arg: "url" } },
 *   convert: (_s: string, raw: string) => raw,
 * };
 * const a = legacyEnvAliases(spec, "GATEWAY");
 * console.assert(a.some((x) => x.from === "GATEWAY_REDIS_URL" && x.to === "WALLET_MPC_GATEWAY_REDIS_URL"));
 * ```
 */
export function legacyEnvAliases(spec: SettingsSpec, oldPrefix: string): EnvAlias[] {
  const names = ["config", ...Object.keys(spec.settingFlags), ...Object.keys(spec.envOnly ?? {})];
  return [
    { from: `${oldPrefix}__`, to: `${ENV_PREFIX}_${spec.program}__`, prefix: true },
    ...renamedEnv(oldPrefix, spec.program, names),
  ];
}

/**
 * Aliases of variables renamed from `<OLD>_<NAME>` to `WALLET_MPC_<PROGRAM>_<NAME>`.
 *
 * @param oldPrefix the older prefix (`WALLET_MPC` for the client's `WALLET_MPC_TOKEN`).
 * @param program the program.
 * @param names the names, as flags (`service-url`) or variable suffixes.
 * @returns the aliases, for {@link applyEnvAliases}.
 * @example
 * ```ts
 * import { renamedEnv } from "./settings_layers.ts";
 * const [a] = renamedEnv("WALLET_MPC", "CLIENT", ["token"]);
 * console.assert(a.from === "WALLET_MPC_TOKEN" && a.to === "WALLET_MPC_CLIENT_TOKEN");
 * ```
 */
export function renamedEnv(
  oldPrefix: string,
  program: string,
  names: readonly string[],
): EnvAlias[] {
  return names.map((n) => ({
    from: `${oldPrefix}_${n.toUpperCase().replace(/-/g, "_")}`,
    to: envName(program, n),
  }));
}

/**
 * Names each flag's variable in its help (`env` of each flag, module doc).
 *
 * @param program the program.
 * @param flags flags by name.
 * @returns the same flags, each with its `env`.
 * @example
 * ```ts
 * import { withEnvNames } from "./settings_layers.ts";
 * const f = withEnvNames("CLIENT", { token: { help: "the token" } });
 * console.assert(f.token.env === "WALLET_MPC_CLIENT_TOKEN");
 * ```
 */
export function withEnvNames<K extends string>(
  program: string,
  flags: Readonly<Record<K, FlagSpec>>,
): Record<K, FlagSpec> {
  const out = {} as Record<K, FlagSpec>;
  for (const name of Object.keys(flags) as K[]) {
    out[name] = { ...flags[name], env: envName(program, name) };
  }
  return out;
}

/** A flag that sets one setting of the configuration file. */
export interface SettingFlag {
  /** The dotted setting (`server.port`). */
  readonly setting: string;
  /** Placeholder of the value in the help. */
  readonly arg: string;
  /** Help beyond the setting's name (e.g. its choices). */
  readonly help?: string;
}

/** How a program's configuration file, environment and flags combine. */
export interface SettingsSpec {
  /** `GATEWAY` or `SERVICE` (module doc). */
  readonly program: string;
  /** The file read when none is named (a missing default file means defaults). */
  readonly defaultConfigPath: string;
  /** Flags naming one setting each; each also has its variable (module doc). */
  readonly settingFlags: Readonly<Record<string, SettingFlag>>;
  /** Settings with a variable and no flag (secrets), by the variable's suffix. */
  readonly envOnly?: Readonly<Record<string, string>>;
  /**
   * Converts an override's text to the setting's value.
   *
   * @param setting the dotted setting.
   * @param raw the text.
   * @param source where it came from, for messages (`--port`, a variable's name).
   */
  readonly convert: (setting: string, raw: string, source: string) => unknown;
}

/**
 * The flags of a program with settings: its setting flags, `--config` and `--set`, and one
 * positional argument (the configuration file), for {@link parseArgs}.
 *
 * @param spec the program's settings.
 * @param extra more flags of the command (shown after the settings' flags).
 * @returns the command's flags and positional count.
 */
export function settingsCommand(
  spec: SettingsSpec,
  extra: Readonly<Record<string, FlagSpec>> = {},
): { flags: Record<string, FlagSpec>; maxPositionals: number } {
  const flags: Record<string, FlagSpec> = {
    config: {
      arg: "path",
      help: `configuration file, also the only argument (default ${spec.defaultConfigPath})`,
      env: envName(spec.program, "config"),
    },
  };
  const settings: Record<string, FlagSpec> = {};
  for (const [name, f] of Object.entries(spec.settingFlags)) {
    settings[name] = { arg: f.arg, help: f.help ? `${f.setting}: ${f.help}` : f.setting };
  }
  Object.assign(flags, withEnvNames(spec.program, settings));
  flags.set = {
    kind: "list",
    arg: "section.key=value",
    help: `any setting (env ${ENV_PREFIX}_${spec.program}__SECTION__KEY=value)`,
  };
  return { flags: { ...flags, ...extra }, maxPositionals: 1 };
}

/** The configuration file to read and the overrides, from the environment and the flags. */
export interface SettingsCommandLine {
  /** Path of the configuration file. */
  readonly configPath: string;
  /** Whether the path was named (argument, flag or environment), so that it must exist. */
  readonly configExplicit: boolean;
  /** Dotted setting -> value: the environment, then the flags in order (the later wins). */
  readonly overrides: Record<string, unknown>;
}

/**
 * Reads the configuration file's path and the overrides of a program (module doc): the file is
 * the positional argument, else `--config`, else `WALLET_MPC_<PROGRAM>_CONFIG`, else the default;
 * the overrides are the variables of the flags and of `envOnly`, then the
 * `WALLET_MPC_<PROGRAM>__SECTION__KEY` variables, then the flags in command-line order.
 *
 * @param args the parsed command line (see {@link settingsCommand}).
 * @param env the environment (deprecated names already resolved with {@link applyEnvAliases}).
 * @param spec the program's settings.
 * @returns the configuration path and the converted overrides.
 * @throws {UsageError} the file named twice (argument and `--config`), an empty path, `--set`
 *   without `=`; and whatever `spec.convert` throws.
 */
export function settingsFromCommandLine(
  args: ParsedArgs,
  env: Readonly<Record<string, string | undefined>>,
  spec: SettingsSpec,
): SettingsCommandLine {
  const overrides: Record<string, unknown> = {};
  const named: [string, string][] = [
    ...Object.entries(spec.settingFlags).map(([f, s]): [string, string] => [f, s.setting]),
    ...Object.entries(spec.envOnly ?? {}),
  ];
  for (const [suffix, setting] of named) {
    const name = envName(spec.program, suffix);
    const v = env[name];
    if (v !== undefined) overrides[setting] = spec.convert(setting, v, name);
  }
  const generic = `${ENV_PREFIX}_${spec.program}__`;
  for (const [name, v] of Object.entries(env)) {
    if (!name.startsWith(generic) || v === undefined) continue;
    const setting = name.slice(generic.length).toLowerCase().split("__").join(".");
    overrides[setting] = spec.convert(setting, v, name);
  }
  for (const { flag, value } of args.given) {
    if (value === true) continue;
    if (flag === "set") {
      const k = value.indexOf("=");
      if (k <= 0) {
        throw new UsageError("bad-value", "--set", "--set: expected section.key=value");
      }
      const setting = value.slice(0, k);
      overrides[setting] = spec.convert(setting, value.slice(k + 1), "--set");
    } else if (Object.hasOwn(spec.settingFlags, flag)) {
      const setting = spec.settingFlags[flag].setting;
      overrides[setting] = spec.convert(setting, value, `--${flag}`);
    }
  }
  const fromArg = args.positionals[0];
  const fromFlag = args.value("config");
  if (fromArg !== undefined && fromFlag !== undefined) {
    throw new UsageError(
      "unexpected-argument",
      "--config",
      "--config: the configuration file is named twice (argument and --config); give one",
    );
  }
  const fromEnv = env[envName(spec.program, "config")];
  const configPath = fromArg ?? fromFlag ?? fromEnv ?? spec.defaultConfigPath;
  if (configPath === "") {
    throw new UsageError("missing-value", "--config", "--config: expected a path");
  }
  const configExplicit = fromArg !== undefined || fromFlag !== undefined || fromEnv !== undefined;
  return { configPath, configExplicit, overrides };
}

const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Sets dotted-path values (`server.port`, `server.tls.cert_file`) in a parsed YAML document.
 *
 * @param doc parsed YAML (not modified).
 * @param overrides dotted snake_case path -> value.
 * @param checkPath refuses a path that names no setting (throws the program's own error); runs
 *   before the check below.
 * @returns a new document with the overrides applied.
 * @throws {RangeError} a path with an empty part or a prototype key (`__proto__`), whatever
 *   `checkPath` throws.
 * @example
 * ```ts
 * import { applyOverrides } from "./settings_layers.ts";
 * const d = applyOverrides({}, { "server.tls.cert_file": "c.pem" }, () => {}) as any;
 * console.assert(d.server.tls.cert_file === "c.pem");
 * ```
 */
export function applyOverrides(
  doc: unknown,
  overrides: Readonly<Record<string, unknown>>,
  checkPath: (path: string) => void,
): unknown {
  const root: Record<string, unknown> = isRecord(doc) ? structuredClone(doc) : {};
  for (const [path, value] of Object.entries(overrides)) {
    checkPath(path);
    const parts = path.split(".");
    if (parts.some((p) => p === "" || UNSAFE_KEYS.has(p))) {
      throw new RangeError(`override: expected section.key, got ${path}`);
    }
    let node = root;
    for (const p of parts.slice(0, -1)) {
      if (!isRecord(node[p])) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = value;
  }
  return root;
}
