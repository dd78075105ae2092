/**
 * The schema of `config/sign-service.yaml` (private to config.ts and config_args.ts): one rule
 * per setting, by section path, and the checks that copy a parsed YAML mapping onto the
 * defaults. Every refusal is a `ConfigError` naming the setting.
 * @module
 */

import { LOG_FORMATS, LOG_LEVELS } from "../platform/logger.ts";
import { ConfigError } from "./errors.ts";

/** The rule of one setting: its type and range; `section` names a nested mapping. */
export type Rule =
  | { t: "string"; oneOf?: readonly string[] }
  | { t: "int"; min: number; max: number }
  | { t: "bool" }
  | { t: "strings" }
  | { t: "section" };

const int = (min: number, max: number): Rule => ({ t: "int", min, max });
const str: Rule = { t: "string" };
const bool: Rule = { t: "bool" };

/** Validation rules by section path (snake_case); `section` rules name a nested section. */
const SCHEMA: Readonly<Record<string, Readonly<Record<string, Rule>>>> = {
  "": {
    gateway: { t: "section" },
    server: { t: "section" },
    mpc: { t: "section" },
    key_store: { t: "section" },
    auth: { t: "section" },
    rate_limit: { t: "section" },
    compute: { t: "section" },
    presignatures: { t: "section" },
    audit: { t: "section" },
    logging: { t: "section" },
  },
  gateway: { url: str, token: str, issuer_secret: str },
  server: {
    host: str,
    port: int(0, 65535),
    web_port: int(0, 65535),
    index: int(0, 63),
    tls: { t: "section" },
    cors_origins: { t: "strings" },
    shutdown_grace_ms: int(0, 600_000),
  },
  "server.tls": { cert_file: str, key_file: str },
  mpc: {
    threshold: int(1, 64),
    total_participants: int(1, 64),
    key_share_file: str,
    round_timeout_ms: int(1000, 3_600_000),
  },
  key_store: {
    age_identity_file: str,
    passphrase_env: str,
    allow_plaintext: bool,
    recipients: { t: "strings" },
  },
  auth: { tokens_file: str },
  rate_limit: {
    per_caller_per_minute: int(1, 1_000_000),
    burst: int(1, 100_000),
    max_concurrent_sessions: int(1, 100_000),
    max_sessions_per_caller: int(1, 100_000),
  },
  compute: {
    workers: int(0, 256),
    max_queue_wait_ms: int(0, 3_600_000),
    allow_variable_time_secrets: bool,
  },
  presignatures: {
    max_per_target: int(1, 1024),
    max_per_account: int(1, 65_536),
    max_total: int(1, 1_000_000),
    cpu_percent: int(1, 100),
  },
  audit: { file: str, fsync: bool },
  logging: {
    level: { t: "string", oneOf: LOG_LEVELS },
    format: { t: "string", oneOf: LOG_FORMATS },
  },
};

/** The rule of a dotted setting path, or undefined when no such setting exists. */
export function ruleOf(path: string): Rule | undefined {
  const parts = path.split(".");
  const key = parts.pop() as string;
  const rules = Object.hasOwn(SCHEMA, parts.join(".")) ? SCHEMA[parts.join(".")] : undefined;
  return rules && Object.hasOwn(rules, key) ? rules[key] : undefined;
}

/** `snake_case` -> `camelCase` (YAML key -> field). */
export function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A mapping (a non-null, non-array object). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The kind of a value for a message, never the value itself. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return typeof v;
}

/** Settings whose values are never repeated in an error message. */
const SECRET_SETTINGS = new Set(["gateway.token", "gateway.issuer_secret"]);

/** Checks one value against its rule and returns it (lists copied). @throws {ConfigError} */
export function checkValue(path: string, rule: Rule, v: unknown): unknown {
  switch (rule.t) {
    case "string":
      if (typeof v !== "string") {
        throw new ConfigError("wrong-type", path, `expected a string, got ${describe(v)}`);
      }
      if (rule.oneOf && !rule.oneOf.includes(v)) {
        const got = SECRET_SETTINGS.has(path) ? "another value" : JSON.stringify(v.slice(0, 64));
        throw new ConfigError("out-of-range", path, `expected one of ${rule.oneOf}, got ${got}`);
      }
      return v;
    case "int":
      if (typeof v !== "number" || !Number.isInteger(v)) {
        const got = typeof v === "number" ? String(v) : describe(v);
        throw new ConfigError("wrong-type", path, `expected an integer, got ${got}`);
      }
      if (v < rule.min || v > rule.max) {
        throw new ConfigError("out-of-range", path, `expected ${rule.min}..${rule.max}, got ${v}`);
      }
      return v;
    case "bool":
      if (typeof v !== "boolean") {
        throw new ConfigError("wrong-type", path, `expected true or false, got ${describe(v)}`);
      }
      return v;
    case "strings":
      if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
        throw new ConfigError("wrong-type", path, `expected a list of strings, got ${describe(v)}`);
      }
      return [...v];
    case "section":
      throw new ConfigError("wrong-type", path, `expected a mapping, got ${describe(v)}`);
  }
}

/**
 * Copies the keys of `input` (the YAML mapping at `section`, "" for the document) onto
 * `target`, checked, recursing into nested sections.
 * @throws {ConfigError} `unknown-key` or `wrong-type` / `out-of-range` of the value.
 */
export function applySection(
  section: string,
  input: unknown,
  target: Record<string, unknown>,
): void {
  if (input === undefined || input === null) return;
  const where = section === "" ? "config" : section;
  if (!isRecord(input)) {
    throw new ConfigError("wrong-type", where, `expected a mapping, got ${describe(input)}`);
  }
  const rules = SCHEMA[section];
  for (const [key, value] of Object.entries(input)) {
    const path = section === "" ? key : `${section}.${key}`;
    const rule = Object.hasOwn(rules, key) ? rules[key] : undefined;
    if (!rule) {
      const shown = /^[A-Za-z0-9_-]{1,64}$/.test(key) ? path : `${where}.(a strange key)`;
      throw new ConfigError(
        "unknown-key",
        shown,
        `unknown ${section === "" ? "section" : "key"}; expected one of ${Object.keys(rules)}`,
      );
    }
    if (rule.t === "section") {
      applySection(path, value, target[camel(key)] as Record<string, unknown>);
    } else {
      target[camel(key)] = checkValue(path, rule, value);
    }
  }
}

/** A setting path for a message: shown when plain, else a placeholder. */
export function showPath(path: string): string {
  return /^[A-Za-z0-9_.-]{1,100}$/.test(path) ? path : "(a strange setting name)";
}
