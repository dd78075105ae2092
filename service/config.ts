/**
 * Configuration of the sign-service: the shape of `config/sign-service.yaml`, its defaults, the
 * environment and command-line overrides, and a strict validator that turns it into a typed
 * {@link ServiceConfig} (snake_case YAML keys become camelCase fields).
 *
 * Precedence: defaults < file < environment < flags (the convention of every entry point,
 * README "Entry points"; command line and environment in config_args.ts).
 *
 * - File: the only positional argument, else `--config <path>`, else
 *   `WALLET_MPC_SERVICE_CONFIG`, else `config/sign-service.yaml` (read when it exists; an
 *   explicitly named file must exist).
 * - Environment: one variable per flag, `WALLET_MPC_SERVICE_<FLAG>`
 *   (`WALLET_MPC_SERVICE_KEY_SHARE_FILE` is mpc.key_share_file), `WALLET_MPC_SERVICE_GATEWAY_TOKEN`
 *   (gateway.token, no flag), `WALLET_MPC_SERVICE_GATEWAY_ISSUER_SECRET` (gateway.issuer_secret:
 *   from the environment only, refused in the file and from `--set`), and any setting as
 *   `WALLET_MPC_SERVICE__SECTION__KEY`
 *   (`WALLET_MPC_SERVICE__SERVER__TLS__CERT_FILE=/x.pem`). The older `SIGN_SERVICE_*` names
 *   still work through `SERVICE_ENV_ALIASES`, which the entry points apply (with a warning).
 *   The key store's passphrase is read by the service from the variable that
 *   `key_store.passphrase_env` names (default `WALLET_MPC_SERVICE_KEY_PASSPHRASE`); this module
 *   only checks whether that variable is set, and never copies its value into the configuration.
 * - Flags: `--config`, `--host`, `--port`, `--web-port`, `--index`, `--key-share-file`,
 *   `--gateway-url`, `--tokens-file`, `--log-level`, `--log-format`, and
 *   `--set section.key=value` (repeatable); `--flag value` and `--flag=value` both work.
 *
 * Override values are strings, converted by the setting's type: integers in decimal, booleans
 * as `true`/`false`/`1`/`0`, lists as `a,b` or a YAML flow list `[a, b]`, strings verbatim.
 *
 * Every refusal is a {@link ConfigError} naming the setting: an unknown key, a value of the
 * wrong type, a value out of range, or settings that contradict each other (this product is
 * 2-of-2: `mpc.threshold` = `mpc.total_participants` = 2 and `server.index` is 0 or 1).
 *
 * Pure: the caller passes `argv`, `env` and a `readFile` function (only `main.ts` touches the
 * process).
 *
 * @example
 * ```ts
 * import { loadServiceConfig } from "./config.ts";
 * const config = await loadServiceConfig({
 *   argv: ["--port", "50061", "--set", "rate_limit.burst=5"],
 *   env: { WALLET_MPC_SERVICE_KEY_PASSPHRASE: "correct horse battery staple" },
 *   readFile: () => "auth: { tokens_file: callers.yaml }\n",
 * });
 * console.assert(config.server.port === 50061 && config.rateLimit.burst === 5);
 * console.assert(config.keyStore.mode === "passphrase");
 * ```
 * @module
 */

import { parseYamlBounded } from "../platform/yaml.ts";
import { applySection, describe, isRecord, ruleOf, showPath } from "./_config_schema.ts";
import {
  DEFAULT_PASSPHRASE_ENV,
  ENV_ONLY_SECRETS,
  parseServiceArgs,
  type ServiceCommandLine,
  serviceSettingsOf,
} from "./config_args.ts";
import type { ParsedArgs } from "../platform/cli_args.ts";
import { ConfigError } from "./errors.ts";
import type { LogFormat, LogLevel } from "../platform/logger.ts";
import { applyOverrides as applyPathOverrides } from "../platform/settings_layers.ts";

export {
  DEFAULT_CONFIG_PATH,
  DEFAULT_PASSPHRASE_ENV,
  ENV_ONLY_SECRETS,
  ENV_OVERRIDES,
  FLAG_OVERRIDES,
  parseServiceArgs,
  SERVICE_ENV_ALIASES,
  SERVICE_USAGE,
  serviceCommand,
  type ServiceCommandLine,
  wantsHelp,
} from "./config_args.ts";

export type { LogFormat, LogLevel } from "../platform/logger.ts";
/**
 * How the key share file is protected, derived from `key_store`: an X25519 age identity file,
 * a scrypt passphrase from the environment, or (development only) no encryption.
 */
export type KeyStoreMode = "identity" | "passphrase" | "plaintext";

/** The validated configuration of the sign-service (see config/sign-service.yaml). */
export interface ServiceConfig {
  /** The sign-gateway that relays protocol messages between the parties. */
  gateway: {
    /** Base URL, `http://` or `https://`, without credentials. */
    url: string;
    /** Optional static bearer token sent to the gateway; empty sends none. */
    token: string;
    /**
     * The gateway's `access.issuer_secret` (environment only): when set, the service opens the
     * session rooms (OpenRoom) and gets room tokens from the gateway for the caller and itself;
     * empty: clients pick their rooms and no room token is used.
     */
    issuerSecret: string;
  };
  /** Listening sockets. */
  server: {
    /** Bind address. */
    host: string;
    /** gRPC over HTTP/2 (h2c without TLS); with TLS the one port for every protocol. */
    port: number;
    /** gRPC-web and Connect over HTTP/1.1 when TLS is off (unused with TLS). */
    webPort: number;
    /** This party's index in its key shares (0 or 1). */
    index: number;
    /** TLS certificate and key files (PEM); both empty: no TLS. */
    tls: { certFile: string; keyFile: string };
    /** Origins allowed to call gRPC-web / Connect from a browser (`*` for any). */
    corsOrigins: string[];
    /** How long a graceful shutdown waits for running sessions. */
    shutdownGraceMs: number;
  };
  /** The threshold scheme and the key shares. */
  mpc: {
    /** Parties needed to sign: 2. */
    threshold: number;
    /** Parties holding shares: 2. */
    totalParticipants: number;
    /** Path of the (encrypted) key share file, relative to the working directory. */
    keyShareFile: string;
    /** Longest wait for one protocol round's messages. */
    roundTimeoutMs: number;
  };
  /** Encryption of the key share file at rest. */
  keyStore: {
    /** File holding one age identity (`AGE-SECRET-KEY-1...`); empty: not used. */
    ageIdentityFile: string;
    /** Name of the environment variable holding a scrypt passphrase; empty: not used. */
    passphraseEnv: string;
    /** Development only: accept a plaintext file (and write one when no key is configured). */
    allowPlaintext: boolean;
    /** More age recipients (`age1...`) every write is also encrypted to (identity mode only). */
    recipients: string[];
    /** Derived: which protection applies (see {@link KeyStoreMode}). */
    mode: KeyStoreMode;
  };
  /** Caller authentication. */
  auth: {
    /** YAML/JSON file of callers (service/auth.ts); required. */
    tokensFile: string;
  };
  /** Per-caller request rate and session concurrency. */
  rateLimit: {
    /** Sustained requests per caller per minute (token bucket refill). */
    perCallerPerMinute: number;
    /** Requests a caller may make at once after being idle (bucket size). */
    burst: number;
    /** Protocol sessions running at once over all callers. */
    maxConcurrentSessions: number;
    /** Protocol sessions one caller may run at once. */
    maxSessionsPerCaller: number;
  };
  /** Protocol compute: worker threads and admission control (service/admission.ts). */
  compute: {
    /** Compute worker threads; 0: one per core. */
    workers: number;
    /**
     * Longest expected wait of an admitted session (its deadline when the request gives none
     * or a later one); 0: `mpc.round_timeout_ms`.
     */
    maxQueueWaitMs: number;
    /**
     * Serve secrets on a variable-time exponentiation backend (BigInt: Deno without FFI) instead
     * of refusing to start (SECURITY.md, constant-time policy). Default false.
     */
    allowVariableTimeSecrets: boolean;
  };
  /**
   * The presignature pool (session/presignature_pool.ts): bounds of the presignatures held
   * unused (in memory; the used ones are in the journal), and the share of the compute workers
   * presigning may use (service/admission.ts, background work).
   */
  presignatures: {
    /** Per account, path and hash. */
    maxPerTarget: number;
    /** Per account. */
    maxPerAccount: number;
    /** In all. */
    maxTotal: number;
    /** Percent of the workers presigning sessions may use at once (at least one session). */
    cpuPercent: number;
  };
  /** Audit log (JSON lines). */
  audit: {
    /** `-` for standard output, else a file appended to. */
    file: string;
    /** fsync the file after every line. */
    fsync: boolean;
  };
  /** Operational log. */
  logging: { level: LogLevel; format: LogFormat };
  /** The configuration file that was read, or `null` when none was. */
  configFile: string | null;
}

/**
 * The defaults, before the key store mode is derived (a fresh object each call). They do not
 * validate alone: `auth.tokens_file` and a key store key (or `allow_plaintext`) must be set.
 *
 * @returns the configuration every key of which the file may override.
 * @example
 * ```ts
 * import { defaultServiceConfig } from "./config.ts";
 * console.assert(defaultServiceConfig().server.port === 50051);
 * ```
 */
export function defaultServiceConfig(): ServiceConfig {
  return {
    gateway: { url: "http://127.0.0.1:8080", token: "", issuerSecret: "" },
    server: {
      host: "127.0.0.1",
      port: 50051,
      webPort: 50052,
      index: 1,
      tls: { certFile: "", keyFile: "" },
      corsOrigins: [],
      shutdownGraceMs: 10_000,
    },
    mpc: {
      threshold: 2,
      totalParticipants: 2,
      keyShareFile: "service_key_shares.json",
      roundTimeoutMs: 60_000,
    },
    keyStore: {
      ageIdentityFile: "",
      passphraseEnv: DEFAULT_PASSPHRASE_ENV,
      allowPlaintext: false,
      recipients: [],
      mode: "plaintext",
    },
    auth: { tokensFile: "" },
    rateLimit: {
      perCallerPerMinute: 60,
      burst: 10,
      maxConcurrentSessions: 16,
      maxSessionsPerCaller: 2,
    },
    compute: { workers: 0, maxQueueWaitMs: 0, allowVariableTimeSecrets: false },
    presignatures: { maxPerTarget: 16, maxPerAccount: 64, maxTotal: 4096, cpuPercent: 50 },
    audit: { file: "-", fsync: false },
    logging: { level: "info", format: "json" },
    configFile: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Resolution and cross-field rules

/** Options of {@link resolveServiceConfig}. */
export interface ResolveOptions {
  /** The environment, to see whether `key_store.passphrase_env` is set (default: empty). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The configuration file that was read, recorded as `configFile`. */
  readonly configFile?: string | null;
}

/**
 * Validates a parsed configuration document (snake_case keys) on top of the defaults, derives
 * the key store mode and checks the rules that tie settings together.
 *
 * @param doc parsed YAML (with overrides applied); `null`/`undefined` means "all defaults".
 * @param options the environment and the file name to record.
 * @returns the complete, validated configuration.
 * @throws {ConfigError} naming the first setting at fault.
 * @example
 * ```ts
 * import { resolveServiceConfig } from "./config.ts";
 * const c = resolveServiceConfig({
 *   auth: { tokens_file: "callers.yaml" },
 *   key_store: { age_identity_file: "service.agekey" },
 * });
 * console.assert(c.keyStore.mode === "identity" && c.mpc.keyShareFile === "service_key_shares.json");
 * ```
 */
export function resolveServiceConfig(doc: unknown, options: ResolveOptions = {}): ServiceConfig {
  const config = defaultServiceConfig();
  applySection("", doc, config as unknown as Record<string, unknown>);
  config.configFile = options.configFile ?? null;
  config.keyStore.mode = deriveKeyStoreMode(config, options.env ?? {});
  validateServiceConfig(config);
  return config;
}

function deriveKeyStoreMode(
  config: ServiceConfig,
  env: Readonly<Record<string, string | undefined>>,
): KeyStoreMode {
  const k = config.keyStore;
  if (k.passphraseEnv !== "" && !/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(k.passphraseEnv)) {
    throw new ConfigError(
      "out-of-range",
      "key_store.passphrase_env",
      "expected the name of an environment variable (letters, digits, _) or empty",
    );
  }
  const passphraseSet = k.passphraseEnv !== "" && (env[k.passphraseEnv] ?? "") !== "";
  if (k.ageIdentityFile !== "" && passphraseSet) {
    throw new ConfigError(
      "contradictory",
      "key_store.age_identity_file",
      `set, and so is the passphrase variable ${k.passphraseEnv} (key_store.passphrase_env): ` +
        "expected exactly one way to decrypt the key share file",
    );
  }
  if (k.ageIdentityFile !== "") return "identity";
  if (passphraseSet) return "passphrase";
  if (k.allowPlaintext) return "plaintext";
  throw new ConfigError(
    "contradictory",
    "key_store.age_identity_file",
    "expected a way to decrypt the key share file: an age identity file, or the passphrase " +
      `variable ${k.passphraseEnv || "named by key_store.passphrase_env"} set, or ` +
      "(development only) key_store.allow_plaintext: true",
  );
}

/**
 * Checks the rules that tie several settings together, on a configuration whose individual
 * values are already valid (module doc).
 *
 * @param config the configuration (for example `resolveServiceConfig`'s, changed in code).
 * @throws {ConfigError} `out-of-range` or `contradictory`, naming the setting.
 * @example
 * ```ts
 * import { resolveServiceConfig, validateServiceConfig } from "./config.ts";
 * const c = resolveServiceConfig({ auth: { tokens_file: "c.yaml" }, key_store: { allow_plaintext: true } });
 * c.server.index = 2;
 * try {
 *   validateServiceConfig(c);
 * } catch (e) {
 *   console.assert((e as { setting: string }).setting === "server.index");
 * }
 * ```
 */
export function validateServiceConfig(config: ServiceConfig): void {
  const { gateway, server, mpc, keyStore, auth, rateLimit, audit } = config;

  let url: URL | undefined;
  try {
    url = new URL(gateway.url);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new ConfigError("out-of-range", "gateway.url", "expected an http:// or https:// URL");
  }
  if (url.username !== "" || url.password !== "") {
    throw new ConfigError(
      "out-of-range",
      "gateway.url",
      "expected no credentials in the URL; put the token in gateway.token",
    );
  }
  if (url.search !== "" || url.hash !== "") {
    throw new ConfigError("out-of-range", "gateway.url", "expected no query or fragment");
  }
  if (gateway.token !== "" && !/^[\x21-\x7e]{1,4096}$/.test(gateway.token)) {
    throw new ConfigError(
      "out-of-range",
      "gateway.token",
      "expected 1 to 4096 visible ASCII characters (it is sent in an HTTP header)",
    );
  }
  if (gateway.issuerSecret !== "" && !/^[\x21-\x7e]{32,4096}$/.test(gateway.issuerSecret)) {
    throw new ConfigError(
      "out-of-range",
      "gateway.issuer_secret",
      "expected 32 to 4096 visible ASCII characters (the gateway's access.issuer_secret, sent " +
        "in an HTTP header)",
    );
  }
  if (gateway.issuerSecret !== "" && gateway.token !== "") {
    throw new ConfigError(
      "contradictory",
      "gateway.token",
      "set, and so is gateway.issuer_secret: with room tokens the service presents the token of " +
        "each room to the gateway, not a static one",
    );
  }

  if (server.host === "") throw new ConfigError("out-of-range", "server.host", "expected a host");
  const tls = server.tls.certFile !== "" || server.tls.keyFile !== "";
  if (tls && (server.tls.certFile === "" || server.tls.keyFile === "")) {
    const missing = server.tls.certFile === "" ? "server.tls.cert_file" : "server.tls.key_file";
    throw new ConfigError(
      "contradictory",
      missing,
      "expected both server.tls.cert_file and server.tls.key_file, or neither",
    );
  }
  if (!tls && server.port !== 0 && server.port === server.webPort) {
    throw new ConfigError(
      "contradictory",
      "server.web_port",
      `equals server.port (${server.port}); without TLS gRPC (h2c) and gRPC-web/Connect ` +
        "(HTTP/1.1) need two ports",
    );
  }
  for (const origin of server.corsOrigins) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(
        "out-of-range",
        "server.cors_origins",
        `expected "*" or an origin like https://wallet.example, got ${
          JSON.stringify(origin.slice(0, 100))
        }`,
      );
    }
  }

  if (mpc.totalParticipants !== 2) {
    throw new ConfigError(
      "out-of-range",
      "mpc.total_participants",
      `expected 2 (this product is 2-of-2), got ${mpc.totalParticipants}`,
    );
  }
  if (mpc.threshold !== mpc.totalParticipants) {
    throw new ConfigError(
      "out-of-range",
      "mpc.threshold",
      `expected ${mpc.totalParticipants} (n-of-n: equal to mpc.total_participants), got ${mpc.threshold}`,
    );
  }
  if (server.index < 0 || server.index >= mpc.totalParticipants) {
    throw new ConfigError(
      "out-of-range",
      "server.index",
      `expected 0..${
        mpc.totalParticipants - 1
      } (mpc.total_participants = ${mpc.totalParticipants}), got ${server.index}`,
    );
  }
  if (mpc.keyShareFile === "") {
    throw new ConfigError("contradictory", "mpc.key_share_file", "expected a path, got nothing");
  }

  for (const r of keyStore.recipients) {
    if (!/^age1[02-9ac-hj-np-z]{20,2000}$/.test(r)) {
      throw new ConfigError(
        "out-of-range",
        "key_store.recipients",
        "expected age recipients (age1... in lowercase bech32)",
      );
    }
  }
  if (keyStore.recipients.length > 0 && keyStore.mode !== "identity") {
    throw new ConfigError(
      "contradictory",
      "key_store.recipients",
      `expected only with key_store.age_identity_file (age cannot mix recipients with a ` +
        `passphrase, and a plaintext file has none), got mode ${keyStore.mode}`,
    );
  }

  if (auth.tokensFile === "") {
    throw new ConfigError(
      "contradictory",
      "auth.tokens_file",
      "expected the file of callers; without one every request would be refused",
    );
  }

  if (rateLimit.maxSessionsPerCaller > rateLimit.maxConcurrentSessions) {
    throw new ConfigError(
      "contradictory",
      "rate_limit.max_sessions_per_caller",
      `expected at most rate_limit.max_concurrent_sessions (${rateLimit.maxConcurrentSessions}), got ${rateLimit.maxSessionsPerCaller}`,
    );
  }
  if (audit.file === "") {
    throw new ConfigError(
      "contradictory",
      "audit.file",
      'expected a path, or "-" for standard output; the audit log cannot be disabled',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Text, overrides, environment and flags

/**
 * Parses YAML text, applies dotted-path overrides and validates the result.
 *
 * @param text the contents of a configuration file ("" for none).
 * @param overrides `section.key` -> value (typed already: numbers, booleans, lists).
 * @param options the environment and the file name to record.
 * @returns the validated configuration.
 * @throws {ConfigError} `unparsable` when the YAML does not parse; see resolveServiceConfig.
 * @example
 * ```ts
 * import { parseServiceConfig } from "./config.ts";
 * const c = parseServiceConfig("server: { port: 1 }", {
 *   "server.port": 2,
 *   "auth.tokens_file": "c.yaml",
 *   "key_store.allow_plaintext": true,
 * });
 * console.assert(c.server.port === 2 && c.keyStore.mode === "plaintext");
 * ```
 */
export function parseServiceConfig(
  text: string,
  overrides: Readonly<Record<string, unknown>> = {},
  options: ResolveOptions = {},
): ServiceConfig {
  let doc: unknown;
  try {
    doc = parseYamlBounded(text);
  } catch (e) {
    // The parser's message quotes the offending line (maybe a token): keep its first line only.
    const first = (e instanceof Error ? e.message : "").split("\n")[0].slice(0, 200);
    throw new ConfigError("unparsable", "config", `not valid YAML (${first})`, { cause: e });
  }
  if (doc !== null && doc !== undefined && !isRecord(doc)) {
    throw new ConfigError("wrong-type", "config", `expected a mapping, got ${describe(doc)}`);
  }
  refuseSecretsInFile(doc);
  return resolveServiceConfig(applyOverrides(doc, overrides), options);
}

/**
 * Refuses a secret that is read from the environment only ({@link ENV_ONLY_SECRETS}) when the
 * file gives it a value (an empty one documents the setting).
 * @throws {ConfigError} `contradictory`, without the value.
 */
function refuseSecretsInFile(doc: unknown): void {
  for (const [path, variable] of Object.entries(ENV_ONLY_SECRETS)) {
    let v: unknown = doc;
    for (const k of path.split(".")) v = isRecord(v) && Object.hasOwn(v, k) ? v[k] : undefined;
    if (v !== undefined && v !== "") {
      throw new ConfigError(
        "contradictory",
        path,
        `a secret is read from the environment only (${variable}), never from the file`,
      );
    }
  }
}

/**
 * Sets dotted-path values (`server.port`, `server.tls.cert_file`) in a parsed YAML document.
 *
 * @param doc parsed YAML (not modified).
 * @param overrides dotted snake_case path -> value.
 * @returns a new document with the overrides applied.
 * @throws {ConfigError} `unknown-key` for a path that names no setting.
 * @example
 * ```ts
 * import { applyOverrides } from "./config.ts";
 * const d = applyOverrides({}, { "server.tls.cert_file": "c.pem" }) as any;
 * console.assert(d.server.tls.cert_file === "c.pem");
 * ```
 */
export function applyOverrides(
  doc: unknown,
  overrides: Readonly<Record<string, unknown>>,
): unknown {
  return applyPathOverrides(doc, overrides, (path) => {
    const rule = ruleOf(path);
    if (!rule || rule.t === "section") {
      throw new ConfigError("unknown-key", showPath(path), "no such setting");
    }
  });
}

/** Options of {@link loadServiceConfig}. */
export interface LoadOptions {
  /** Command-line arguments after the script name. */
  readonly argv: readonly string[];
  /** The environment (e.g. `process.env` or `Deno.env.toObject()`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Reads the configuration file as text (or UTF-8 bytes). A missing file must throw an error
   * whose `code` is `ENOENT` (node:fs) or whose `name` is `NotFound` (Deno).
   */
  readonly readFile: (path: string) => string | Uint8Array | Promise<string | Uint8Array>;
}

function isNotFound(e: unknown): boolean {
  const o = e as { code?: unknown; name?: unknown } | null;
  return typeof o === "object" && o !== null && (o.code === "ENOENT" || o.name === "NotFound");
}

/**
 * Loads the configuration: the file (module doc), then the environment, then the flags, then
 * validation.
 *
 * @param options `argv`, `env` and `readFile`.
 * @returns the validated configuration; `configFile` names the file read, if any.
 * @throws {ConfigError} `unreadable` when a named file is missing or unreadable; the codes of
 *   {@link parseServiceArgs} and {@link resolveServiceConfig}.
 * @example
 * ```ts
 * import { loadServiceConfig } from "./config.ts";
 * const c = await loadServiceConfig({
 *   argv: [],
 *   env: {
 *     WALLET_MPC_SERVICE__AUTH__TOKENS_FILE: "c.yaml",
 *     WALLET_MPC_SERVICE__KEY_STORE__ALLOW_PLAINTEXT: "true",
 *   },
 *   readFile: () => { throw Object.assign(new Error("missing"), { code: "ENOENT" }); },
 * });
 * console.assert(c.configFile === null && c.keyStore.mode === "plaintext");
 * ```
 */
export function loadServiceConfig(options: LoadOptions): Promise<ServiceConfig> {
  return readServiceConfig(parseServiceArgs(options.argv, options.env), options);
}

/**
 * {@link loadServiceConfig} of a command line parsed already, for a command with flags of its
 * own besides the service's (`serviceCommand(extra)`: the admin commands).
 *
 * @param args the parsed command line.
 * @param options `env` and `readFile`.
 * @returns the validated configuration.
 * @throws {ConfigError} as {@link loadServiceConfig}.
 */
export function loadServiceConfigFrom(
  args: ParsedArgs,
  options: Omit<LoadOptions, "argv">,
): Promise<ServiceConfig> {
  return readServiceConfig(serviceSettingsOf(args, options.env), options);
}

async function readServiceConfig(
  cli: ServiceCommandLine,
  options: Omit<LoadOptions, "argv">,
): Promise<ServiceConfig> {
  let text = "";
  let configFile: string | null = cli.configPath;
  try {
    const got = await options.readFile(cli.configPath);
    if (typeof got === "string") {
      text = got;
    } else {
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(got);
      } catch (e) {
        throw new ConfigError("unparsable", "config", `${cli.configPath} is not UTF-8 text`, {
          cause: e,
        });
      }
    }
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    if (isNotFound(e) && !cli.configExplicit) {
      configFile = null;
    } else {
      const why = isNotFound(e) ? "not found" : "cannot be read";
      throw new ConfigError("unreadable", "config", `${cli.configPath}: ${why}`, { cause: e });
    }
  }
  return parseServiceConfig(text, cli.overrides, { env: options.env, configFile });
}
