/**
 * Caller authentication and authorization of the sign-service: static bearer tokens, stored only
 * as SHA-256 hashes in a callers file, each caller limited to a list of accounts.
 *
 * ## Callers file (`auth.tokens_file`, YAML or JSON)
 *
 * ```yaml
 * callers:
 *   - id: wallet-backend                 # shown in the audit log; [A-Za-z0-9._-]{1,64}
 *     token_sha256: 5e88...              # SHA-256 of the token, 64 lowercase hex digits
 *     accounts: ["acct-1", "team-*"]    # exact ids, "prefix*", or "*" for every account
 *     may_keygen: true                   # may create accounts (within `accounts`); default false
 * ```
 *
 * ## Tokens
 *
 * A token is opaque text of 32 to 512 visible ASCII characters, sent as
 * `Authorization: Bearer <token>`. {@link generateToken} makes one (base64url of 32 random bytes)
 * and {@link hashToken} its file entry. Tokens are never stored or logged; only their hashes are.
 *
 * ## Constant-time policy
 *
 * `authenticate` hashes the presented token once and compares the hash with every caller's
 * hash, touching every byte of every hash with no early exit and no branch on a byte, so its
 * timing depends only on the number of callers, not on which caller matched or how much of a
 * hash did. What it may leak through timing is public: whether the header was well formed.
 * Every refusal is the same `AuthError("unauthenticated", "missing or invalid credentials")`.
 *
 * @example
 * ```ts
 * import { createAuthenticator, generateToken, hashToken } from "./auth.ts";
 * const token = generateToken();
 * const auth = createAuthenticator([
 *   { id: "app", tokenSha256: hashToken(token), accounts: ["team-*"], mayKeygen: false },
 * ]);
 * const caller = auth.authenticate(`Bearer ${token}`);
 * auth.authorize(caller, "team-7", "sign");
 * console.assert(caller.id === "app" && !auth.canAccess(caller, "other"));
 * ```
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { parseYamlBounded } from "../platform/yaml.ts";
import { fromHex, toHex } from "../core/bytes.ts";
import { AuthError, ConfigError, type ConfigErrorCode } from "./errors.ts";

/** What a caller asks to do with an account. */
export type Action = "sign" | "read" | "keygen" | "refresh";

/** One caller as configured (the callers file's entry, camelCase). */
export interface CallerConfig {
  /** Stable name of the caller, for the audit log and rate limits: `[A-Za-z0-9._-]{1,64}`. */
  readonly id: string;
  /** SHA-256 of the caller's token, 64 lowercase hex digits. */
  readonly tokenSha256: string;
  /** Account ids the caller may use: exact ids, `prefix*`, or `*`. */
  readonly accounts: readonly string[];
  /** Whether the caller may create accounts (ids must still match `accounts`). */
  readonly mayKeygen: boolean;
}

/** An authenticated caller: the configuration minus the token hash. */
export interface Caller {
  readonly id: string;
  readonly accounts: readonly string[];
  readonly mayKeygen: boolean;
}

/** What {@link createAuthenticator} returns. */
export interface Authenticator {
  /**
   * Finds the caller of an `Authorization` header value.
   *
   * @param header the header's value (`Bearer <token>`), or null when absent.
   * @returns the caller.
   * @throws {AuthError} `unauthenticated`, one message for every reason.
   */
  authenticate(header: string | null | undefined): Caller;
  /**
   * Checks that `caller` may do `action` on `accountId`. The caller is looked up by its `id`
   * among the configured callers, so only the id of the object passed matters.
   *
   * @throws {AuthError} `permission-denied` (also for an id that is not configured).
   */
  authorize(caller: { readonly id: string }, accountId: string, action: Action): void;
  /**
   * Whether `caller` may use `accountId` at all (to filter account lists); false for a string
   * that is not a valid account id (`[A-Za-z0-9._-]{1,128}`).
   */
  canAccess(caller: { readonly id: string }, accountId: string): boolean;
}

/** Shortest accepted token, in characters. */
export const MIN_TOKEN_CHARS = 32;
/** Longest accepted token, in characters. */
export const MAX_TOKEN_CHARS = 512;
/** Most callers a callers file may list. */
export const MAX_CALLERS = 10_000;

const CALLER_ID = /^[A-Za-z0-9._-]{1,64}$/;
const ACCOUNT_PATTERN = /^(\*|[A-Za-z0-9._-]{1,128}|[A-Za-z0-9._-]{1,127}\*)$/;
const ACCOUNT_ID = /^[A-Za-z0-9._-]{1,128}$/;
const HASH_HEX = /^[0-9a-f]{64}$/;
const TOKEN = new RegExp(`^[\\x21-\\x7e]{${MIN_TOKEN_CHARS},${MAX_TOKEN_CHARS}}$`);
const UNAUTHENTICATED = "missing or invalid credentials";

/**
 * The SHA-256 of a token, as the callers file stores it.
 *
 * @param token the token (32 to 512 visible ASCII characters).
 * @returns 64 lowercase hex digits.
 * @throws {RangeError} when the token is not a valid token (too short, spaces, non-ASCII).
 * @example
 * ```ts
 * import { hashToken } from "./auth.ts";
 * console.assert(hashToken("x".repeat(32)).length === 64);
 * ```
 */
export function hashToken(token: string): string {
  if (typeof token !== "string" || !TOKEN.test(token)) {
    throw new RangeError(
      `expected a token of ${MIN_TOKEN_CHARS} to ${MAX_TOKEN_CHARS} visible ASCII characters`,
    );
  }
  return toHex(sha256(new TextEncoder().encode(token)));
}

/**
 * A new random token: base64url (no padding) of 32 bytes from `crypto.getRandomValues`.
 *
 * @returns a 43-character token; give it to the caller and store only `hashToken(token)`.
 * @example
 * ```ts
 * import { generateToken } from "./auth.ts";
 * console.assert(/^[A-Za-z0-9_-]{43}$/.test(generateToken()));
 * ```
 */
export function generateToken(): string {
  const bytes = new Uint8Array(32);
  globalThis.crypto.getRandomValues(bytes);
  const b64 = btoa(String.fromCharCode(...bytes));
  return b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function configError(
  where: string,
  message: string,
  code: ConfigErrorCode = "out-of-range",
): ConfigError {
  return new ConfigError(code, "auth.tokens_file", `${where}: ${message}`);
}

function checkCaller(v: unknown, index: number): CallerConfig {
  const where = `callers[${index}]`;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw configError(where, "expected a mapping", "wrong-type");
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!["id", "token_sha256", "accounts", "may_keygen"].includes(k)) {
      const shown = /^[A-Za-z0-9_]{1,32}$/.test(k) ? k : "(a strange key)";
      throw configError(
        where,
        `unknown key ${shown}; expected id, token_sha256, accounts, may_keygen`,
        "unknown-key",
      );
    }
  }
  if (typeof o.id !== "string" || !CALLER_ID.test(o.id)) {
    throw configError(where, "id: expected 1 to 64 characters of A-Z a-z 0-9 . _ -");
  }
  const at = `${where} (${o.id})`;
  if (typeof o.token_sha256 !== "string" || !HASH_HEX.test(o.token_sha256)) {
    throw configError(at, "token_sha256: expected 64 lowercase hex digits (SHA-256 of the token)");
  }
  if (!Array.isArray(o.accounts) || o.accounts.length > 10_000) {
    throw configError(at, "accounts: expected a list (at most 10000 entries)");
  }
  for (const a of o.accounts) {
    if (typeof a !== "string" || !ACCOUNT_PATTERN.test(a)) {
      throw configError(at, 'accounts: expected account ids, "prefix*" or "*"');
    }
  }
  if (o.may_keygen !== undefined && typeof o.may_keygen !== "boolean") {
    throw configError(at, "may_keygen: expected true or false");
  }
  return {
    id: o.id,
    tokenSha256: o.token_sha256,
    accounts: [...o.accounts] as string[],
    mayKeygen: o.may_keygen === true,
  };
}

/**
 * Parses and validates a callers file (module doc). Ids and token hashes must be unique.
 *
 * @param text the file's contents, YAML or JSON.
 * @returns the callers.
 * @throws {ConfigError} with setting `auth.tokens_file`, naming the entry and the field at
 *   fault (never a hash): `unparsable`, `wrong-type`, `unknown-key`, `out-of-range`,
 *   `contradictory` (a duplicate id or token hash).
 * @example
 * ```ts
 * import { parseCallersFile } from "./auth.ts";
 * const callers = parseCallersFile(`callers:
 *   - { id: app, token_sha256: "${"ab".repeat(32)}", accounts: ["*"] }`);
 * console.assert(callers[0].mayKeygen === false);
 * ```
 */
export function parseCallersFile(text: string): CallerConfig[] {
  let doc: unknown;
  try {
    doc = parseYamlBounded(text);
  } catch {
    throw configError("file", "not valid YAML or JSON", "unparsable");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw configError("top level", "expected a mapping with a callers list", "wrong-type");
  }
  const keys = Object.keys(doc);
  if (keys.length !== 1 || keys[0] !== "callers") {
    throw configError("top level", "expected exactly one key, callers", "unknown-key");
  }
  const list = (doc as { callers: unknown }).callers;
  if (!Array.isArray(list) || list.length > MAX_CALLERS) {
    throw configError("callers", `expected a list of at most ${MAX_CALLERS} callers`);
  }
  const callers = list.map(checkCaller);
  checkUnique(callers);
  return callers;
}

function checkUnique(callers: readonly CallerConfig[]): void {
  const ids = new Set<string>();
  const hashes = new Set<string>();
  callers.forEach((c, i) => {
    if (ids.has(c.id)) throw configError(`callers[${i}]`, `duplicate id ${c.id}`, "contradictory");
    if (hashes.has(c.tokenSha256)) {
      const where = `callers[${i}] (${c.id})`;
      throw configError(where, "token_sha256 equals another caller's", "contradictory");
    }
    ids.add(c.id);
    hashes.add(c.tokenSha256);
  });
}

function matches(patterns: readonly string[], accountId: string): boolean {
  let ok = false;
  for (const p of patterns) {
    if (p === "*") ok = true;
    else if (p.endsWith("*")) ok ||= accountId.startsWith(p.slice(0, -1));
    else ok ||= p === accountId;
  }
  return ok;
}

/** The token of a `Bearer` header, or null when the header is missing or malformed. */
function bearerToken(header: string | null | undefined): string | null {
  if (typeof header !== "string" || header.length > MAX_TOKEN_CHARS + 64) return null;
  const m = /^[Bb][Ee][Aa][Rr][Ee][Rr] +([^ ]+) *$/.exec(header);
  return m && TOKEN.test(m[1]) ? m[1] : null;
}

/**
 * Builds the authenticator of a list of callers (usually from {@link parseCallersFile}).
 *
 * @param callers the callers; ids and token hashes must be unique.
 * @returns `authenticate`, `authorize` and `canAccess` (see {@link Authenticator}).
 * @throws {ConfigError} when a caller entry is invalid or duplicated (as parseCallersFile).
 * @example
 * ```ts
 * import { createAuthenticator, hashToken } from "./auth.ts";
 * const auth = createAuthenticator([
 *   { id: "ops", tokenSha256: hashToken("t".repeat(40)), accounts: ["*"], mayKeygen: true },
 * ]);
 * try {
 *   auth.authenticate("Bearer wrong-token-wrong-token-wrong-token");
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "unauthenticated");
 * }
 * ```
 */
export function createAuthenticator(callers: readonly CallerConfig[]): Authenticator {
  const checked = callers.map((c, i) =>
    checkCaller(
      { id: c.id, token_sha256: c.tokenSha256, accounts: c.accounts, may_keygen: c.mayKeygen },
      i,
    )
  );
  checkUnique(checked);
  const hashes = checked.map((c) => fromHex(c.tokenSha256));
  const public_: Caller[] = checked.map((c) =>
    Object.freeze({ id: c.id, accounts: Object.freeze([...c.accounts]), mayKeygen: c.mayKeygen })
  );
  const byId = new Map(public_.map((c) => [c.id, c]));

  function authenticate(header: string | null | undefined): Caller {
    const token = bearerToken(header);
    if (token === null) throw new AuthError("unauthenticated", UNAUTHENTICATED);
    const h = sha256(new TextEncoder().encode(token));
    // Constant time over all callers (module doc): no early exit, no branch on a byte.
    let found = 0;
    for (let i = 0; i < hashes.length; i++) {
      const ref = hashes[i];
      let diff = 0;
      for (let j = 0; j < 32; j++) diff |= h[j] ^ ref[j];
      // 1 when diff === 0 (diff - 1 is negative only then), else 0.
      const equal = ((diff - 1) >>> 31) & 1;
      found += equal * (i + 1); // hashes are unique: at most one term is non-zero
    }
    h.fill(0);
    if (found === 0) throw new AuthError("unauthenticated", UNAUTHENTICATED);
    return public_[found - 1];
  }

  function configured(caller: { readonly id: string }): Caller | undefined {
    const id = typeof caller === "object" && caller !== null ? caller.id : undefined;
    return typeof id === "string" ? byId.get(id) : undefined;
  }

  function canAccess(caller: { readonly id: string }, accountId: string): boolean {
    const c = configured(caller);
    return c !== undefined && typeof accountId === "string" && ACCOUNT_ID.test(accountId) &&
      matches(c.accounts, accountId);
  }

  function authorize(caller: { readonly id: string }, accountId: string, action: Action): void {
    if (!["sign", "read", "keygen", "refresh"].includes(action)) {
      throw new AuthError("permission-denied", "unknown action");
    }
    const c = configured(caller);
    if (c === undefined) throw new AuthError("permission-denied", "unknown caller");
    if (!canAccess(c, accountId)) {
      throw new AuthError(
        "permission-denied",
        `caller ${c.id} may not use this account (${action})`,
      );
    }
    if (action === "keygen" && !c.mayKeygen) {
      throw new AuthError("permission-denied", `caller ${c.id} may not create accounts`);
    }
  }

  return { authenticate, authorize, canAccess };
}
