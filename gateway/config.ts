/**
 * Configuration of the sign-gateway: the shape of `config/sign-gateway.yaml`, its safe defaults,
 * and a validator that turns parsed YAML (snake_case keys) into a typed {@link GatewayConfig}
 * (camelCase keys). Pure: reading files is `main.ts`'s job, the environment and the flags
 * `config_args.ts`'s.
 *
 * @module
 */

import { parseYamlBounded } from "../platform/yaml.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../platform/logger.ts";
import { AddressSet } from "../platform/net_address.ts";
import { applyOverrides as applyPathOverrides } from "../platform/settings_layers.ts";

export type { LogFormat, LogLevel };

/** Limits the gateway enforces; every one has a safe default in {@link DEFAULT_LIMITS}. */
export interface GatewayLimits {
  /** Largest accepted POST body in bytes (413 above). */
  maxBodyBytes: number;
  /** Regular expression (source text) a room id must match in full (400 otherwise). */
  roomIdPattern: string;
  /** Messages kept per room; the oldest are dropped beyond it. */
  maxHistoryMessages: number;
  /** Bytes of message bodies kept per room; the oldest are dropped beyond it. */
  maxHistoryBytes: number;
  /** Bytes of history kept by one in-memory backend across all rooms (503 `storage_full`). */
  maxTotalHistoryBytes: number;
  /** A room with no subscriber and no activity for this long is forgotten. */
  roomIdleTtlMs: number;
  /** Rooms that may exist at once (503 `too_many_rooms` when full). */
  maxRooms: number;
  /** Subscribers of one room on one instance (429 `too_many_subscribers`). */
  maxSubscribersPerRoom: number;
  /** Subscribers on one instance (503 `server_busy`). */
  maxSubscribers: number;
  /** Bytes queued for one subscriber that does not read; beyond it the subscriber is dropped. */
  subscriberQueueBytes: number;
  /** Bytes of request bodies being received at once on one instance (503 `server_busy`). */
  maxInflightBodyBytes: number;
  /**
   * A room with no message, no unique index issued and no subscriber is forgotten after this
   * long (rooms nobody uses do not hold a slot for {@link roomIdleTtlMs}).
   */
  emptyRoomTtlMs: number;
  /** Rooms created by one source that exist at once (429 `too_many_source_rooms`). */
  maxRoomsPerSource: number;
  /**
   * History bytes held by the rooms one source created (429 `too_many_source_bytes`): one
   * source cannot fill `maxTotalHistoryBytes` (or Redis) for everyone.
   */
  maxHistoryBytesPerSource: number;
  /**
   * History bytes held by the anonymous rooms (memory backend; 503 `storage_full`): anonymous
   * requests cannot fill the history token holders need.
   */
  maxAnonymousHistoryBytes: number;
  /**
   * Rooms created without a room token that exist at once, when access control is on and
   * anonymous requests are allowed (503 `too_many_anonymous_rooms`); the rest of
   * {@link maxRooms} stays for requests with a token.
   */
  maxAnonymousRooms: number;
  /** Subscribers of one source on one instance (429 `too_many_source_subscribers`). */
  maxSubscribersPerSource: number;
  /**
   * Bytes queued for all subscribers of one instance; beyond it the subscribers with the
   * largest queues (those that do not read) are disconnected.
   */
  maxTotalQueuedBytes: number;
  /** Open connections of one instance; more are refused (closed at once). */
  maxConnections: number;
  /** Open connections of one source on one instance; more are refused (closed at once). */
  maxConnectionsPerSource: number;
  /**
   * Sources (addresses or CIDR ranges) that the per-source limits do not apply to (default:
   * loopback, where the local stack and a same-host proxy live).
   */
  quotaExemptSources: string[];
  /** `/healthz` reports a limit as saturated for this long after it last refused something. */
  degradedWindowMs: number;
  /**
   * A source refused this many times by capacity limits within 10 s is banned: its
   * connections are closed and new ones refused for {@link sourceBanMs} (0: never).
   */
  sourceBanAfterRefusals: number;
  /** How long a ban lasts. */
  sourceBanMs: number;
}

/** Server-sent-events options. */
export interface SseOptions {
  /** Interval of `: keep-alive` comments on idle streams, in milliseconds (0 disables). */
  keepaliveMs: number;
  /** Reconnection delay advertised to clients with `retry:` (0: not sent). */
  retryMs: number;
}

/** Optional room-token access control (see docs/gateway.md). */
export interface AccessConfig {
  /** When true, subscribe, broadcast and issue_unique_idx need `Authorization: Bearer <token>`. */
  enabled: boolean;
  /** Secret (at least 32 bytes) keying the HMAC of room tokens. Prefer the environment. */
  tokenSecret: string;
  /** Secret (at least 32 bytes) that authorises `POST /rooms/{id}/tokens`; empty disables it. */
  issuerSecret: string;
  /** Lifetime of issued tokens in seconds. */
  tokenTtlS: number;
  /** Also accept the token in an `access_token` query parameter of subscribe (for EventSource). */
  allowQueryToken: boolean;
  /**
   * With access control on: serve requests that carry no token as anonymous, under the
   * per-source quotas and `limits.max_anonymous_rooms` (a request with an invalid token is still
   * refused). Off: no token is 401.
   */
  allowAnonymous: boolean;
}

/** TLS of the listening socket: PEM files, both empty for plain HTTP. */
export interface TlsConfig {
  /** Certificate chain (PEM), leaf first. */
  certFile: string;
  /** Private key (PEM). */
  keyFile: string;
}

/** Redis backend settings. */
export interface RedisConfig {
  /** `redis://[user:password@]host:port/db` */
  url: string;
  /** Prefix of every key and channel the gateway uses. */
  keyPrefix: string;
  /** Time allowed for one command before it fails (503 to the client). */
  commandTimeoutMs: number;
}

/** Which backend stores history and fans messages out. */
export interface BackendConfig {
  /** `memory` (one instance) or `redis` (several instances). */
  kind: "memory" | "redis";
  /** Used when `kind` is `redis`. */
  redis: RedisConfig;
}

/** The whole configuration file, validated. */
export interface GatewayConfig {
  /** Listening socket and CORS. */
  server: {
    host: string;
    port: number;
    corsOrigins: string[];
    /** How long a graceful shutdown waits for streams to flush before cutting them. */
    shutdownGraceMs: number;
    /** TLS certificate and key (HTTP/1.1 and HTTP/2 over TLS); both empty: plain HTTP/1.1. */
    tls: TlsConfig;
    /**
     * A connection must have sent a complete request head (and finished its TLS handshake)
     * this long after it opened; else it is closed.
     */
    headersTimeoutMs: number;
    /** A connection with no request in progress is closed after this long. */
    keepAliveTimeoutMs: number;
    /** A request body must be received within this long (408 `request_timeout`). */
    requestTimeoutMs: number;
    /**
     * Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client for
     * the per-source room and subscriber quotas.
     */
    trustedProxies: string[];
  };
  /** Log level and format. */
  logging: { level: LogLevel; format: LogFormat };
  /** Limits. */
  limits: GatewayLimits;
  /** SSE options. */
  sse: SseOptions;
  /** Access control. */
  access: AccessConfig;
  /** Backend. */
  backend: BackendConfig;
}

/** Safe default limits. */
export const DEFAULT_LIMITS: Readonly<GatewayLimits> = Object.freeze({
  maxBodyBytes: 1024 * 1024,
  roomIdPattern: "^[A-Za-z0-9_-]{1,128}$",
  maxHistoryMessages: 1000,
  maxHistoryBytes: 4 * 1024 * 1024,
  maxTotalHistoryBytes: 256 * 1024 * 1024,
  roomIdleTtlMs: 60 * 60 * 1000,
  maxRooms: 10_000,
  maxSubscribersPerRoom: 16,
  maxSubscribers: 15_000,
  subscriberQueueBytes: 2 * 1024 * 1024,
  maxInflightBodyBytes: 64 * 1024 * 1024,
  emptyRoomTtlMs: 10_000,
  maxRoomsPerSource: 100,
  maxHistoryBytesPerSource: 16 * 1024 * 1024,
  maxAnonymousHistoryBytes: 64 * 1024 * 1024,
  maxAnonymousRooms: 1000,
  maxSubscribersPerSource: 64,
  maxTotalQueuedBytes: 64 * 1024 * 1024,
  maxConnections: 20_000,
  maxConnectionsPerSource: 128,
  quotaExemptSources: Object.freeze(["127.0.0.0/8", "::1/128"]) as unknown as string[],
  degradedWindowMs: 60_000,
  sourceBanAfterRefusals: 100,
  sourceBanMs: 30_000,
});

/** Default timeouts of the listening socket. */
export const DEFAULT_TIMEOUTS: Readonly<
  { headersTimeoutMs: number; keepAliveTimeoutMs: number; requestTimeoutMs: number }
> = Object.freeze({ headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5000, requestTimeoutMs: 30_000 });

/** Default SSE options. */
export const DEFAULT_SSE: Readonly<SseOptions> = Object.freeze({
  keepaliveMs: 15_000,
  retryMs: 2000,
});

/**
 * Returns the default configuration (a fresh object each call).
 *
 * @returns the configuration used when the file sets nothing
 */
export function defaultConfig(): GatewayConfig {
  return {
    server: {
      host: "127.0.0.1",
      port: 8080,
      corsOrigins: [],
      shutdownGraceMs: 5000,
      tls: { certFile: "", keyFile: "" },
      ...DEFAULT_TIMEOUTS,
      trustedProxies: [],
    },
    logging: { level: "info", format: "json" },
    limits: { ...DEFAULT_LIMITS, quotaExemptSources: [...DEFAULT_LIMITS.quotaExemptSources] },
    sse: { ...DEFAULT_SSE },
    access: {
      enabled: false,
      tokenSecret: "",
      issuerSecret: "",
      tokenTtlS: 86_400,
      allowQueryToken: false,
      allowAnonymous: false,
    },
    backend: {
      kind: "memory",
      redis: { url: "redis://127.0.0.1:6379/0", keyPrefix: "gw:", commandTimeoutMs: 5000 },
    },
  };
}

type Rule =
  | { t: "string"; oneOf?: readonly string[] }
  | { t: "int"; min: number; max: number }
  | { t: "bool" }
  | { t: "strings" };

const INT_MAX = Number.MAX_SAFE_INTEGER;
const pos = (min = 1, max = INT_MAX): Rule => ({ t: "int", min, max });

/** Validation rules, by YAML path (snake_case). */
const RULES: Record<string, Record<string, Rule>> = {
  server: {
    host: { t: "string" },
    port: pos(0, 65535),
    cors_origins: { t: "strings" },
    shutdown_grace_ms: pos(0, 600_000),
    headers_timeout_ms: pos(100, 3_600_000),
    keep_alive_timeout_ms: pos(100, 3_600_000),
    request_timeout_ms: pos(100, 3_600_000),
    trusted_proxies: { t: "strings" },
  },
  "server.tls": { cert_file: { t: "string" }, key_file: { t: "string" } },
  logging: {
    level: { t: "string", oneOf: LOG_LEVELS },
    format: { t: "string", oneOf: LOG_FORMATS },
  },
  limits: {
    max_body_bytes: pos(1, 256 * 1024 * 1024),
    room_id_pattern: { t: "string" },
    max_history_messages: pos(1, 10_000_000),
    max_history_bytes: pos(),
    max_total_history_bytes: pos(),
    room_idle_ttl_ms: pos(1000),
    max_rooms: pos(),
    max_subscribers_per_room: pos(),
    max_subscribers: pos(),
    subscriber_queue_bytes: pos(1024),
    max_inflight_body_bytes: pos(),
    empty_room_ttl_ms: pos(1000),
    max_rooms_per_source: pos(),
    max_history_bytes_per_source: pos(),
    max_anonymous_history_bytes: pos(),
    max_anonymous_rooms: pos(),
    max_subscribers_per_source: pos(),
    max_total_queued_bytes: pos(1024),
    max_connections: pos(),
    max_connections_per_source: pos(),
    quota_exempt_sources: { t: "strings" },
    degraded_window_ms: pos(1000, 86_400_000),
    source_ban_after_refusals: pos(0),
    source_ban_ms: pos(1000, 86_400_000),
  },
  sse: { keepalive_ms: pos(0, 3_600_000), retry_ms: pos(0, 3_600_000) },
  access: {
    enabled: { t: "bool" },
    token_secret: { t: "string" },
    issuer_secret: { t: "string" },
    token_ttl_s: pos(1, 366 * 86_400),
    allow_query_token: { t: "bool" },
    allow_anonymous: { t: "bool" },
  },
  backend: { kind: { t: "string", oneOf: ["memory", "redis"] } },
  "backend.redis": {
    url: { t: "string" },
    key_prefix: { t: "string" },
    command_timeout_ms: pos(10, 600_000),
  },
};

function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkValue(path: string, rule: Rule, v: unknown): unknown {
  const got = () => (v === null ? "null" : Array.isArray(v) ? "a list" : `${typeof v} ${v}`);
  switch (rule.t) {
    case "string":
      if (typeof v !== "string") throw new TypeError(`${path}: expected a string, got ${got()}`);
      if (rule.oneOf && !rule.oneOf.includes(v)) {
        throw new RangeError(`${path}: expected one of ${rule.oneOf.join(", ")}, got ${v}`);
      }
      return v;
    case "int":
      if (typeof v !== "number" || !Number.isInteger(v)) {
        throw new TypeError(`${path}: expected an integer, got ${got()}`);
      }
      if (v < rule.min || v > rule.max) {
        throw new RangeError(`${path}: expected ${rule.min}..${rule.max}, got ${v}`);
      }
      return v;
    case "bool":
      if (typeof v !== "boolean") {
        throw new TypeError(`${path}: expected true or false, got ${got()}`);
      }
      return v;
    case "strings":
      if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
        throw new TypeError(`${path}: expected a list of strings, got ${got()}`);
      }
      return [...v];
  }
}

function applySection(
  section: string,
  input: unknown,
  target: Record<string, unknown>,
): void {
  if (input === undefined || input === null) return;
  if (!isRecord(input)) throw new TypeError(`${section}: expected a mapping, got ${typeof input}`);
  const rules = RULES[section];
  for (const [key, value] of Object.entries(input)) {
    const path = `${section}.${key}`;
    if (Object.hasOwn(RULES, path)) {
      applySection(path, value, target[key] as Record<string, unknown>);
      continue;
    }
    const rule = Object.hasOwn(rules, key) ? rules[key] : undefined;
    if (!rule) {
      throw new RangeError(
        `${path}: unknown key; expected one of ${
          [
            ...Object.keys(rules),
            ...Object.keys(RULES).filter((k) => k.startsWith(`${section}.`)).map((k) =>
              k.slice(section.length + 1)
            ),
          ].join(", ")
        }`,
      );
    }
    target[camel(key)] = checkValue(path, rule, value);
  }
}

/**
 * Validates a parsed configuration document (the YAML's object form, snake_case keys) on top of the
 * defaults, then checks the cross-field rules.
 *
 * @param doc parsed YAML; `null`/`undefined` means "all defaults"
 * @returns a complete, validated configuration
 * @throws {TypeError} a value has the wrong type
 * @throws {RangeError} a value is out of range, a key is unknown, or the limits contradict each
 * other (e.g. a body larger than the history it must fit in)
 * @example
 * ```ts
 * import { resolveConfig } from "./config.ts";
 * const c = resolveConfig({ server: { port: 9000 } });
 * console.assert(c.server.port === 9000 && c.backend.kind === "memory");
 * ```
 */
export function resolveConfig(doc: unknown): GatewayConfig {
  const config = defaultConfig();
  if (doc !== undefined && doc !== null) {
    if (!isRecord(doc)) throw new TypeError(`config: expected a mapping, got ${typeof doc}`);
    for (const [section, value] of Object.entries(doc)) {
      if (!Object.hasOwn(RULES, section) || section.includes(".")) {
        throw new RangeError(
          `${section}: unknown section; expected one of server, logging, limits, sse, access, backend`,
        );
      }
      applySection(
        section,
        value,
        (config as unknown as Record<string, Record<string, unknown>>)[
          section
        ],
      );
    }
  }
  validateConfig(config);
  return config;
}

/**
 * Checks the rules that tie several settings together.
 *
 * @param config a configuration whose individual fields are already valid
 * @throws {RangeError} when the settings contradict each other
 */
export function validateConfig(config: GatewayConfig): void {
  const l = config.limits;
  try {
    new RegExp(l.roomIdPattern);
  } catch (e) {
    throw new RangeError(`limits.room_id_pattern: not a valid regular expression`, { cause: e });
  }
  if (l.maxBodyBytes > l.maxHistoryBytes) {
    throw new RangeError(
      `limits.max_body_bytes (${l.maxBodyBytes}) must not exceed limits.max_history_bytes (${l.maxHistoryBytes})`,
    );
  }
  if (l.maxHistoryBytes > l.maxTotalHistoryBytes) {
    throw new RangeError(
      `limits.max_history_bytes (${l.maxHistoryBytes}) must not exceed limits.max_total_history_bytes (${l.maxTotalHistoryBytes})`,
    );
  }
  for (
    const [key, v] of [
      ["max_history_bytes_per_source", l.maxHistoryBytesPerSource],
      ["max_anonymous_history_bytes", l.maxAnonymousHistoryBytes],
    ] as const
  ) {
    if (l.maxBodyBytes > v) {
      throw new RangeError(
        `limits.max_body_bytes (${l.maxBodyBytes}) must not exceed limits.${key} (${v})`,
      );
    }
  }
  if (l.maxBodyBytes > l.maxTotalQueuedBytes) {
    throw new RangeError(
      `limits.max_body_bytes (${l.maxBodyBytes}) must not exceed limits.max_total_queued_bytes (${l.maxTotalQueuedBytes})`,
    );
  }
  AddressSet.parse(l.quotaExemptSources, "limits.quota_exempt_sources");
  AddressSet.parse(config.server.trustedProxies, "server.trusted_proxies");
  const tls = config.server.tls;
  if ((tls.certFile === "") !== (tls.keyFile === "")) {
    throw new RangeError(
      `${
        tls.certFile === "" ? "server.tls.cert_file" : "server.tls.key_file"
      }: expected both server.tls.cert_file and server.tls.key_file, or neither`,
    );
  }
  if (l.maxBodyBytes > l.maxInflightBodyBytes) {
    throw new RangeError(
      `limits.max_body_bytes (${l.maxBodyBytes}) must not exceed limits.max_inflight_body_bytes (${l.maxInflightBodyBytes})`,
    );
  }
  for (const origin of config.server.corsOrigins) {
    if (origin !== "*" && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new RangeError(
        `server.cors_origins: expected "*" or an origin like https://wallet.example, got ${origin}`,
      );
    }
  }
  const a = config.access;
  if (a.enabled && byteLength(a.tokenSecret) < 32) {
    throw new RangeError(
      `access.token_secret: expected at least 32 bytes when access.enabled, got ${
        byteLength(a.tokenSecret)
      }`,
    );
  }
  if (a.issuerSecret !== "" && byteLength(a.issuerSecret) < 32) {
    throw new RangeError(
      `access.issuer_secret: expected empty or at least 32 bytes, got ${
        byteLength(a.issuerSecret)
      }`,
    );
  }
}

function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/**
 * Parses YAML text and validates it with {@link resolveConfig}.
 *
 * @param text the contents of a configuration file
 * @param overrides extra `section.key` values (already parsed) applied after the file
 * @returns the validated configuration
 * @throws {SyntaxError} the YAML does not parse
 * @throws {TypeError|RangeError} see {@link resolveConfig}
 */
export function parseConfig(text: string, overrides: Record<string, unknown> = {}): GatewayConfig {
  let doc: unknown;
  try {
    doc = parseYamlBounded(text);
  } catch (e) {
    throw new SyntaxError(`config: not valid YAML: ${(e as Error).message}`, { cause: e });
  }
  if (doc !== null && doc !== undefined && !isRecord(doc)) {
    throw new TypeError(
      `config: expected a mapping, got ${Array.isArray(doc) ? "a list" : typeof doc}`,
    );
  }
  return resolveConfig(applyOverrides(doc, overrides));
}

/**
 * Sets dotted-path values (`server.port`, `backend.redis.url`) in a parsed YAML document.
 *
 * @param doc parsed YAML (not modified)
 * @param overrides map from dotted snake_case path to value
 * @returns a new document with the overrides applied
 * @throws {RangeError} a path has fewer than two parts, an empty part or a prototype key
 */
export function applyOverrides(doc: unknown, overrides: Record<string, unknown>): unknown {
  return applyPathOverrides(doc, overrides, (path) => {
    if (path.split(".").length < 2) {
      throw new RangeError(`override: expected section.key, got ${path}`);
    }
  });
}
