/**
 * The sign-gateway's command line and environment (the convention of every entry point, README
 * "Entry points"): the configuration file as the only argument (or `--config`), the flags and
 * variables that name one setting each, `--set section.key=value` and
 * `WALLET_MPC_GATEWAY__SECTION__KEY`, and the deprecated `GATEWAY_*` names. Pure: `argv` and
 * `env` are parameters.
 *
 * Override values are parsed as YAML scalars (`true`, `500`), except secrets, URLs, hosts and
 * file paths, which are taken verbatim, and the address lists (`server.cors_origins`,
 * `server.trusted_proxies`, `limits.quota_exempt_sources`), comma-separated.
 *
 * @example
 * ```ts
 * import { parseGatewayArgs } from "./config_args.ts";
 * const cli = parseGatewayArgs(["gw.yaml", "--port=9000"], { WALLET_MPC_GATEWAY_BACKEND: "redis" });
 * console.assert(cli.configPath === "gw.yaml" && cli.overrides["server.port"] === 9000);
 * console.assert(cli.overrides["backend.kind"] === "redis");
 * ```
 * @module
 */

import { parseYamlBounded } from "../platform/yaml.ts";
import { formatHelp, parseArgs } from "../platform/cli_args.ts";
import {
  type EnvAlias,
  envName,
  legacyEnvAliases,
  settingsCommand,
  type SettingsCommandLine,
  settingsFromCommandLine,
  type SettingsSpec,
} from "../platform/settings_layers.ts";

/** Settings whose values are taken verbatim (never parsed as YAML). */
const VERBATIM = new Set([
  "access.token_secret",
  "access.issuer_secret",
  "backend.redis.url",
  "backend.redis.key_prefix",
  "server.host",
  "server.tls.cert_file",
  "server.tls.key_file",
]);

/** Lists given as `a,b` (or as a YAML list, `[a, b]`). */
const LISTS = new Set([
  "server.cors_origins",
  "server.trusted_proxies",
  "limits.quota_exempt_sources",
]);

function value(path: string, raw: string): unknown {
  if (LISTS.has(path) && !raw.trim().startsWith("[")) {
    return raw.trim() === "" ? [] : raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  }
  if (VERBATIM.has(path)) return raw;
  try {
    return parseYamlBounded(raw);
  } catch {
    return raw;
  }
}

/** How the gateway's file, environment and flags combine. */
export const GATEWAY_SETTINGS: SettingsSpec = {
  program: "GATEWAY",
  defaultConfigPath: "config/sign-gateway.yaml",
  settingFlags: {
    host: { setting: "server.host", arg: "addr" },
    port: { setting: "server.port", arg: "n", help: "0 for any free port" },
    backend: { setting: "backend.kind", arg: "kind", help: "memory | redis" },
    "redis-url": { setting: "backend.redis.url", arg: "url" },
    "log-level": { setting: "logging.level", arg: "level", help: "debug | info | warn | error" },
    "log-format": { setting: "logging.format", arg: "fmt", help: "json | text" },
    "cors-origins": { setting: "server.cors_origins", arg: "list", help: "comma separated" },
  },
  envOnly: {
    "access-enabled": "access.enabled",
    "token-secret": "access.token_secret",
    "issuer-secret": "access.issuer_secret",
  },
  convert: value,
};

/** The deprecated variable names (`GATEWAY_*`, before the `WALLET_MPC_GATEWAY_` scheme). */
export const GATEWAY_ENV_ALIASES: readonly EnvAlias[] = legacyEnvAliases(
  GATEWAY_SETTINGS,
  "GATEWAY",
);

const COMMAND = settingsCommand(GATEWAY_SETTINGS);

/** The gateway's `--help`. */
export const GATEWAY_USAGE: string = formatHelp({
  title: "sign-gateway: SSE relay for wallet-mpc sessions",
  usage: ["deno task gateway [config.yaml] [options]   (gateway:node under Node)"],
  flags: COMMAND.flags,
  notes: [
    "Precedence: defaults < configuration file < environment < flags. Secrets only from the " +
    `environment: ${envName("GATEWAY", "token-secret")}, ${envName("GATEWAY", "issuer-secret")}` +
    ` (and ${envName("GATEWAY", "access-enabled")}).`,
  ],
});

/** The gateway's command line: help asked for, or the file and the overrides. */
export interface GatewayCommandLine extends SettingsCommandLine {
  /** `--help` or `-h` was given: print {@link GATEWAY_USAGE}, nothing else was read. */
  readonly help: boolean;
}

/**
 * Reads the gateway's command line and environment (module doc).
 *
 * @param argv the arguments after the script name.
 * @param env the environment, deprecated names resolved (see {@link GATEWAY_ENV_ALIASES}).
 * @returns the configuration file and the overrides, or `help`.
 * @throws {UsageError} an unknown flag, a missing value, a second argument, `--set` without `=`.
 */
export function parseGatewayArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): GatewayCommandLine {
  const args = parseArgs(argv, COMMAND);
  if (args.help) {
    return { help: true, configPath: "", configExplicit: false, overrides: {} };
  }
  return { help: false, ...settingsFromCommandLine(args, env, GATEWAY_SETTINGS) };
}
