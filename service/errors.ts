/**
 * The typed errors of the sign-service's infrastructure: configuration, the encrypted key store,
 * caller authentication and rate limiting. Each is a class with a `name` and a string-union
 * `code` (house style); the Connect routes map them to status codes. Messages say what was
 * expected and what was got, and never contain a token, a passphrase, an identity or a share.
 *
 * Key share contents that fail validation keep their core error, `InvalidKeyShare`
 * (core/errors.ts); protocol failures keep `ProtocolAbort` / `TransportError`.
 *
 * @example
 * ```ts
 * import { AuthError, RateLimited } from "./errors.ts";
 * const e = new AuthError("permission-denied", "caller may not sign for this account");
 * console.assert(e.name === "AuthError" && e.code === "permission-denied");
 * console.assert(new RateLimited("rate-limited", 1500, "slow down").retryAfterMs === 1500);
 * ```
 * @module
 */

/** Why a configuration was refused. */
export type ConfigErrorCode =
  | "unknown-key" // a key (or section, flag, environment override) that does not exist
  | "wrong-type" // a value of the wrong type (a string where a number is expected, ...)
  | "out-of-range" // a value outside its allowed range or set
  | "contradictory" // settings that cannot hold together, or a required setting left empty
  | "unparsable" // the file is not YAML, a flag lacks its value
  | "unreadable"; // the configuration file cannot be read

/**
 * A configuration file, environment override or flag was refused. `setting` names the
 * offending setting as written in the YAML (`server.port`), or the flag (`--port`), or
 * `config` for the file as a whole.
 *
 * @example
 * ```ts
 * import { ConfigError } from "./errors.ts";
 * const e = new ConfigError("out-of-range", "server.port", "expected 0..65535, got 70000");
 * console.assert(e.message === "server.port: expected 0..65535, got 70000");
 * ```
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code: ConfigErrorCode;
  /** The setting at fault (`section.key`, a flag, or `config`). */
  readonly setting: string;
  /**
   * @param code what kind of refusal.
   * @param setting the setting at fault; the message is prefixed with it.
   * @param message what was expected and what was got (never a secret value).
   * @param options an optional `cause`.
   */
  constructor(
    code: ConfigErrorCode,
    setting: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${setting}: ${message}`, options);
    this.code = code;
    this.setting = setting;
  }
}

/** Why a caller was refused. */
export type AuthErrorCode =
  | "unauthenticated" // no, malformed or unknown credentials (one uniform message)
  | "permission-denied"; // a known caller asked for an account or action it may not use

/**
 * A request was refused by authentication (`unauthenticated`) or authorization
 * (`permission-denied`). An `unauthenticated` error always carries the same message, whatever
 * was wrong with the credentials.
 *
 * @example
 * ```ts
 * import { AuthError } from "./errors.ts";
 * console.assert(new AuthError("unauthenticated", "x").code === "unauthenticated");
 * ```
 */
export class AuthError extends Error {
  override readonly name = "AuthError";
  readonly code: AuthErrorCode;
  /**
   * @param code `unauthenticated` or `permission-denied`.
   * @param message the text shown to the caller (never a token or a token hash).
   */
  constructor(code: AuthErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Which limit refused a request. */
export type RateLimitedCode =
  | "rate-limited" // the caller's token bucket is empty
  | "too-many-sessions" // the service runs its maximum of concurrent sessions
  | "too-many-caller-sessions" // this caller runs its maximum of concurrent sessions
  | "overloaded"; // the admitted work would not let the session start before its deadline

/**
 * A request was refused by a rate or concurrency limit. `retryAfterMs` is when a retry may
 * succeed: exact for the token bucket, a hint for the concurrency limits.
 *
 * @example
 * ```ts
 * import { RateLimited } from "./errors.ts";
 * const e = new RateLimited("too-many-sessions", 1000, "8 sessions already run");
 * console.assert(e.retryAfterMs === 1000);
 * ```
 */
export class RateLimited extends Error {
  override readonly name = "RateLimited";
  readonly code: RateLimitedCode;
  /** Milliseconds after which a retry may succeed (an integer >= 1). */
  readonly retryAfterMs: number;
  /**
   * @param code which limit.
   * @param retryAfterMs when a retry may succeed, in milliseconds (rounded up, at least 1).
   * @param message what limit was reached.
   */
  constructor(code: RateLimitedCode, retryAfterMs: number, message: string) {
    super(message);
    this.code = code;
    this.retryAfterMs = Math.max(1, Math.ceil(retryAfterMs));
  }
}
