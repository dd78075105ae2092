/**
 * The sign-service's command line and environment (module doc of config.ts, and the convention
 * of every entry point, README "Entry points"): the configuration file as the only argument (or
 * `--config`), the flags and variables that name one setting each,
 * `WALLET_MPC_SERVICE__SECTION__KEY`, `--set`, the conversion of their text to each setting's
 * type, and the deprecated `SIGN_SERVICE_*` names. Pure: `argv` and `env` are parameters.
 *
 * @example
 * ```ts
 * import { parseServiceArgs } from "./config_args.ts";
 * const cli = parseServiceArgs(["--index", "0"], { WALLET_MPC_SERVICE__RATE_LIMIT__BURST: "4" });
 * console.assert(cli.overrides["server.index"] === 0 && cli.overrides["rate_limit.burst"] === 4);
 * ```
 * @module
 */

import { parseYamlBounded } from "../platform/yaml.ts";
import {
  type FlagSpec,
  formatHelp,
  parseArgs,
  type ParsedArgs,
  UsageError,
  type UsageErrorCode,
} from "../platform/cli_args.ts";
import {
  type EnvAlias,
  envName,
  legacyEnvAliases,
  settingsCommand,
  settingsFromCommandLine,
  type SettingsSpec,
} from "../platform/settings_layers.ts";
import { ruleOf, showPath } from "./_config_schema.ts";
import { ConfigError, type ConfigErrorCode } from "./errors.ts";

/** Default path of the configuration file, relative to the working directory. */
export const DEFAULT_CONFIG_PATH = "config/sign-service.yaml";

/**
 * Converts an override's text (environment or flag) to the type of its setting.
 *
 * @param path the dotted setting.
 * @param raw the text.
 * @param source where it came from, for messages (`--port`, `WALLET_MPC_SERVICE_PORT`).
 * @returns the typed value.
 * @throws {ConfigError} `unknown-key` or `wrong-type`.
 */
function overrideValue(path: string, raw: string, source: string): unknown {
  const rule = ruleOf(path);
  if (!rule || rule.t === "section") {
    throw new ConfigError("unknown-key", showPath(path), `no such setting (from ${source})`);
  }
  if (Object.hasOwn(ENV_ONLY_SECRETS, path) && source.startsWith("-") && raw !== "") {
    throw new ConfigError(
      "contradictory",
      path,
      `a secret is read from the environment only (${ENV_ONLY_SECRETS[path]}), never from ` +
        `${source} (the process list shows the command line)`,
    );
  }
  switch (rule.t) {
    case "string":
      return raw;
    case "int":
      if (!/^-?[0-9]{1,16}$/.test(raw.trim())) {
        throw new ConfigError(
          "wrong-type",
          path,
          `expected an integer from ${source}, got ${JSON.stringify(raw.slice(0, 32))}`,
        );
      }
      return Number(raw.trim());
    case "bool": {
      const v = raw.trim().toLowerCase();
      if (v === "true" || v === "1") return true;
      if (v === "false" || v === "0") return false;
      throw new ConfigError("wrong-type", path, `expected true or false from ${source}`);
    }
    case "strings": {
      const t = raw.trim();
      if (t.startsWith("[")) {
        let v: unknown;
        try {
          v = parseYamlBounded(t);
        } catch {
          throw new ConfigError("unparsable", path, `expected a list [a, b] from ${source}`);
        }
        return v;
      }
      return t === "" ? [] : t.split(",").map((s) => s.trim()).filter((s) => s !== "");
    }
  }
}

/** How the service's file, environment and flags combine. */
export const SERVICE_SETTINGS: SettingsSpec = {
  program: "SERVICE",
  defaultConfigPath: DEFAULT_CONFIG_PATH,
  settingFlags: {
    host: { setting: "server.host", arg: "addr" },
    port: { setting: "server.port", arg: "n", help: "gRPC; with TLS every protocol" },
    "web-port": { setting: "server.web_port", arg: "n", help: "gRPC-web / Connect without TLS" },
    index: { setting: "server.index", arg: "i", help: "this party's index in its key shares" },
    "key-share-file": { setting: "mpc.key_share_file", arg: "path" },
    "gateway-url": { setting: "gateway.url", arg: "url" },
    "tokens-file": { setting: "auth.tokens_file", arg: "path" },
    "log-level": { setting: "logging.level", arg: "level", help: "debug | info | warn | error" },
    "log-format": { setting: "logging.format", arg: "fmt", help: "json | text" },
  },
  envOnly: { "gateway-token": "gateway.token", "gateway-issuer-secret": "gateway.issuer_secret" },
  convert: overrideValue,
};

/**
 * Secrets read from the environment only (their variable): refused from the command line and,
 * when not empty, in the configuration file (config.ts).
 */
export const ENV_ONLY_SECRETS: Readonly<Record<string, string>> = {
  "gateway.issuer_secret": envName("SERVICE", "gateway-issuer-secret"),
};

/** The default variable of the key store's passphrase (`key_store.passphrase_env`). */
export const DEFAULT_PASSPHRASE_ENV: string = envName("SERVICE", "key-passphrase");

/**
 * The deprecated variable names (`SIGN_SERVICE_*`, before the `WALLET_MPC_SERVICE_` scheme),
 * the passphrase's included.
 */
export const SERVICE_ENV_ALIASES: readonly EnvAlias[] = [
  ...legacyEnvAliases(SERVICE_SETTINGS, "SIGN_SERVICE"),
  { from: "SIGN_SERVICE_KEY_PASSPHRASE", to: DEFAULT_PASSPHRASE_ENV },
];

/** Environment variables naming one setting each (besides `WALLET_MPC_SERVICE__SECTION__KEY`). */
export const ENV_OVERRIDES: Readonly<Record<string, string>> = Object.fromEntries(
  [
    ...Object.entries(SERVICE_SETTINGS.settingFlags).map(([f, s]) => [f, s.setting]),
    ...Object.entries(SERVICE_SETTINGS.envOnly ?? {}),
  ].map(([f, setting]) => [envName("SERVICE", f), setting]),
);

/** Flags naming one setting each (besides `--set` and `--config`). */
export const FLAG_OVERRIDES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(SERVICE_SETTINGS.settingFlags).map(([f, s]) => [`--${f}`, s.setting]),
);

/**
 * The flags of a command that reads the service's configuration (the service itself, and the
 * admin commands on its key store), with `extra` flags of the command.
 *
 * @param extra more flags (e.g. `--account` of an admin command).
 * @returns the command's flags and positional count, for `parseArgs`.
 */
export function serviceCommand(
  extra: Readonly<Record<string, FlagSpec>> = {},
): { flags: Record<string, FlagSpec>; maxPositionals: number } {
  return settingsCommand(SERVICE_SETTINGS, extra);
}

/** Usage text of the sign-service's command line (for `main.ts`'s `--help`). */
export const SERVICE_USAGE: string = formatHelp({
  title: "sign-service: the service party of wallet-mpc (2-of-2 CGGMP21)",
  usage: ["deno task service [config.yaml] [options]   (service:node under Node)"],
  flags: serviceCommand().flags,
  notes: [
    "Precedence: defaults < configuration file < environment < flags. The gateway token only " +
    `from the environment: ${envName("SERVICE", "gateway-token")}; the gateway's issuer ` +
    `secret (room tokens) only from ${envName("SERVICE", "gateway-issuer-secret")}. The key ` +
    "store passphrase is read from the variable named by key_store.passphrase_env (default " +
    `${DEFAULT_PASSPHRASE_ENV}).`,
  ],
});

export { wantsHelp } from "../platform/cli_args.ts";

/** The configuration file to read and the overrides, from the environment and the flags. */
export interface ServiceCommandLine {
  /** Path of the configuration file. */
  configPath: string;
  /** Whether the path was named (argument, flag or environment), so that it must exist. */
  configExplicit: boolean;
  /** Dotted setting -> typed value, environment first, flags last (later wins). */
  overrides: Record<string, unknown>;
}

const USAGE_CODES: Readonly<Record<UsageErrorCode, ConfigErrorCode>> = {
  "unknown-flag": "unknown-key",
  "missing-value": "unparsable",
  "unexpected-value": "unparsable",
  "bad-value": "unparsable",
  "unexpected-argument": "unparsable",
};

/**
 * A command-line refusal as the service's `ConfigError` (the code of its kind, the argument as
 * the setting at fault); any other error unchanged.
 *
 * @param e what parsing threw.
 * @returns the error to throw.
 */
export function asConfigError(e: unknown): unknown {
  if (!(e instanceof UsageError)) return e;
  const message = e.message.startsWith(`${e.argument}: `)
    ? e.message.slice(e.argument.length + 2)
    : e.message;
  return new ConfigError(USAGE_CODES[e.code], e.argument, message, { cause: e });
}

/**
 * The configuration file and the overrides of a parsed command line (see
 * {@link serviceCommand}) and the environment.
 *
 * @param args the parsed command line.
 * @param env the environment, deprecated names resolved (see {@link SERVICE_ENV_ALIASES}).
 * @returns the configuration path and the typed overrides.
 * @throws {ConfigError} as {@link parseServiceArgs}.
 */
export function serviceSettingsOf(
  args: ParsedArgs,
  env: Readonly<Record<string, string | undefined>>,
): ServiceCommandLine {
  try {
    return settingsFromCommandLine(args, env, SERVICE_SETTINGS);
  } catch (e) {
    throw asConfigError(e);
  }
}

/**
 * Reads the environment and the flags into overrides (module doc).
 *
 * @param argv the arguments after the script name.
 * @param env the environment, deprecated names resolved (see {@link SERVICE_ENV_ALIASES}).
 * @returns the configuration path and the typed overrides (none when help is asked for).
 * @throws {ConfigError} `unknown-key` (unknown flag or setting), `unparsable` (a flag without
 *   its value, `--set` without `=`, a second argument), `wrong-type`.
 * @example
 * ```ts
 * import { parseServiceArgs } from "./config.ts";
 * const cli = parseServiceArgs(["--port=7"], { WALLET_MPC_SERVICE_PORT: "6" });
 * console.assert(cli.overrides["server.port"] === 7);
 * ```
 */
export function parseServiceArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ServiceCommandLine {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, serviceCommand());
  } catch (e) {
    throw asConfigError(e);
  }
  if (args.help) return { configPath: DEFAULT_CONFIG_PATH, configExplicit: false, overrides: {} };
  return serviceSettingsOf(args, env);
}
