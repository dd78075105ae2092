/**
 * The sign-service's command line and environment overrides (module doc of config.ts): the
 * variables and flags that name one setting each, `SIGN_SERVICE__SECTION__KEY`, `--set`, and the
 * conversion of their text to each setting's type. Pure: `argv` and `env` are parameters.
 *
 * @example
 * ```ts
 * import { parseServiceArgs } from "./config_args.ts";
 * const cli = parseServiceArgs(["--index", "0"], { SIGN_SERVICE__RATE_LIMIT__BURST: "4" });
 * console.assert(cli.overrides["server.index"] === 0 && cli.overrides["rate_limit.burst"] === 4);
 * ```
 * @module
 */

import { parse as parseYaml } from "yaml";
import { ruleOf, showPath } from "./_config_schema.ts";
import { ConfigError } from "./errors.ts";

/** Default path of the configuration file, relative to the working directory. */
export const DEFAULT_CONFIG_PATH = "config/sign-service.yaml";

/**
 * Converts an override's text (environment or flag) to the type of its setting.
 *
 * @param path the dotted setting.
 * @param raw the text.
 * @param source where it came from, for messages (`--port`, `SIGN_SERVICE_PORT`).
 * @returns the typed value.
 * @throws {ConfigError} `unknown-key` or `wrong-type`.
 */
function overrideValue(path: string, raw: string, source: string): unknown {
  const rule = ruleOf(path);
  if (!rule || rule.t === "section") {
    throw new ConfigError("unknown-key", showPath(path), `no such setting (from ${source})`);
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
          v = parseYaml(t);
        } catch {
          throw new ConfigError("unparsable", path, `expected a list [a, b] from ${source}`);
        }
        return v;
      }
      return t === "" ? [] : t.split(",").map((s) => s.trim()).filter((s) => s !== "");
    }
  }
}

/** Environment variables naming one setting each (besides `SIGN_SERVICE__SECTION__KEY`). */
export const ENV_OVERRIDES: Readonly<Record<string, string>> = {
  SIGN_SERVICE_KEY_SHARE_FILE: "mpc.key_share_file",
  SIGN_SERVICE_HOST: "server.host",
  SIGN_SERVICE_PORT: "server.port",
  SIGN_SERVICE_INDEX: "server.index",
  SIGN_SERVICE_GATEWAY_URL: "gateway.url",
  SIGN_SERVICE_GATEWAY_TOKEN: "gateway.token",
  SIGN_SERVICE_TOKENS_FILE: "auth.tokens_file",
  SIGN_SERVICE_LOG_LEVEL: "logging.level",
};

/** Flags naming one setting each (besides `--set` and `--config`). */
export const FLAG_OVERRIDES: Readonly<Record<string, string>> = {
  "--host": "server.host",
  "--port": "server.port",
  "--web-port": "server.web_port",
  "--index": "server.index",
  "--key-share-file": "mpc.key_share_file",
  "--gateway-url": "gateway.url",
  "--tokens-file": "auth.tokens_file",
  "--log-level": "logging.level",
  "--log-format": "logging.format",
};

/** Usage text of the sign-service's command line (for `main.ts`'s `--help`). */
export const SERVICE_USAGE = `sign-service: the service party of wallet-mpc (2-of-2 CGGMP21)

Usage: main.ts [options]
  --config <path>          YAML configuration (default ${DEFAULT_CONFIG_PATH}; env SIGN_SERVICE_CONFIG)
  --host <addr>            server.host
  --port <n>               server.port (gRPC; with TLS every protocol)
  --web-port <n>           server.web_port (gRPC-web / Connect without TLS)
  --index <i>              server.index (this party's index in its key shares)
  --key-share-file <path>  mpc.key_share_file (env SIGN_SERVICE_KEY_SHARE_FILE)
  --gateway-url <url>      gateway.url
  --tokens-file <path>     auth.tokens_file
  --log-level <level>      logging.level: debug | info | warn | error
  --log-format <fmt>       logging.format: json | text
  --set <path>=<value>     any setting, e.g. --set rate_limit.burst=5
  --help                   this text
Environment: SIGN_SERVICE__SECTION__KEY=value sets any setting; the key store passphrase is read
from the variable named by key_store.passphrase_env (default SIGN_SERVICE_KEY_PASSPHRASE).
`;

/**
 * Whether the command line asks for the usage text (`--help` or `-h`): `main.ts` prints
 * {@link SERVICE_USAGE} and exits before loading the configuration.
 *
 * @param argv the arguments after the script name.
 * @returns true when `--help` or `-h` is present (before a `--` separator).
 * @example
 * ```ts
 * import { wantsHelp } from "./config.ts";
 * console.assert(wantsHelp(["--port", "1", "-h"]) && !wantsHelp([]));
 * ```
 */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  const args = end < 0 ? argv : argv.slice(0, end);
  return args.includes("--help") || args.includes("-h");
}

/** The configuration file to read and the overrides, from the environment and the flags. */
export interface ServiceCommandLine {
  /** Path of the configuration file. */
  configPath: string;
  /** Whether the path was named (flag or environment), so that it must exist. */
  configExplicit: boolean;
  /** Dotted setting -> typed value, environment first, flags last (later wins). */
  overrides: Record<string, unknown>;
}

/**
 * Reads the environment and the flags into overrides (module doc).
 *
 * @param argv the arguments after the script name.
 * @param env the environment.
 * @returns the configuration path and the typed overrides.
 * @throws {ConfigError} `unknown-key` (unknown flag or setting), `unparsable` (a flag without
 *   its value, `--set` without `=`), `wrong-type`.
 * @example
 * ```ts
 * import { parseServiceArgs } from "./config.ts";
 * const cli = parseServiceArgs(["--port=7"], { SIGN_SERVICE_PORT: "6" });
 * console.assert(cli.overrides["server.port"] === 7);
 * ```
 */
export function parseServiceArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ServiceCommandLine {
  const overrides: Record<string, unknown> = {};
  let configPath = env.SIGN_SERVICE_CONFIG ?? DEFAULT_CONFIG_PATH;
  let configExplicit = env.SIGN_SERVICE_CONFIG !== undefined;
  for (const [name, path] of Object.entries(ENV_OVERRIDES)) {
    const v = env[name];
    if (v !== undefined) overrides[path] = overrideValue(path, v, name);
  }
  for (const [name, v] of Object.entries(env)) {
    if (!name.startsWith("SIGN_SERVICE__") || v === undefined) continue;
    const path = name.slice("SIGN_SERVICE__".length).toLowerCase().split("__").join(".");
    overrides[path] = overrideValue(path, v, name);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") break;
    if (arg === "--help" || arg === "-h") continue;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const next = (): string => {
      if (eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new ConfigError("unparsable", flag, "expected a value");
      return v;
    };
    if (flag === "--config") {
      configPath = next();
      configExplicit = true;
    } else if (flag === "--set") {
      const kv = next();
      const k = kv.indexOf("=");
      if (k <= 0) throw new ConfigError("unparsable", "--set", "expected section.key=value");
      const path = kv.slice(0, k);
      overrides[path] = overrideValue(path, kv.slice(k + 1), "--set");
    } else if (Object.hasOwn(FLAG_OVERRIDES, flag)) {
      overrides[FLAG_OVERRIDES[flag]] = overrideValue(FLAG_OVERRIDES[flag], next(), flag);
    } else {
      const shown = /^[A-Za-z0-9_-]{1,40}$/.test(flag) ? flag : "(an argument)";
      throw new ConfigError("unknown-key", shown, "unknown option; see --help");
    }
  }
  if (configPath === "") throw new ConfigError("unparsable", "--config", "expected a path");
  return { configPath, configExplicit, overrides };
}
