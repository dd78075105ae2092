/**
 * Room tokens: stateless bearer tokens that let one party of a session use one room.
 *
 * A token is `v1.<party>.<expires>.<mac>` where `mac` is the base64url HMAC-SHA256, under the
 * server's token secret, of a length-prefixed encoding of
 * `("wallet-mpc/sign-gateway/room-token/v1", room, party, expires)`. The length prefixes make the
 * encoding injective (no two different tuples share an input). Verification recomputes the MAC for
 * the room of the request URL and compares in constant time, so a token for another room, another
 * secret, an edited party or expiry all fail the same way. Nothing is stored server side; several
 * instances sharing the secret accept each other's tokens.
 *
 * Uses only `crypto.subtle`, `TextEncoder`, `btoa` and `atob`.
 *
 * @module
 */

const encoder = new TextEncoder();
const DOMAIN = encoder.encode("wallet-mpc/sign-gateway/room-token/v1");
const PARTY = /^[A-Za-z0-9_-]{1,32}$/;
const EXPIRES = /^[1-9][0-9]{0,11}$/;
const MAC_B64 = /^[A-Za-z0-9_-]{43}$/;
const MAX_TOKEN_LENGTH = 128;

/** The result of verifying a token. */
export type TokenCheck =
  | { ok: true; party: string; expiresAt: number }
  | { ok: false; reason: "malformed" | "invalid" | "expired" };

/** Issues and verifies room tokens under one secret. */
export interface RoomTokenAuthority {
  /**
   * Issues a token for `party` in `room`.
   * @param room room id (already validated)
   * @param party party label, `^[A-Za-z0-9_-]{1,32}$`
   * @param ttlS lifetime in seconds
   * @returns the token and its expiry (unix seconds)
   * @throws {RangeError} when the party label is not acceptable
   */
  issue(room: string, party: string, ttlS: number): Promise<{ token: string; expiresAt: number }>;
  /**
   * Verifies a token for `room`.
   * @param token the bearer value
   * @param room the room of the request
   * @returns `{ ok: true, party }` or `{ ok: false, reason }` (the reason is for logs, not clients)
   */
  verify(token: string, room: string): Promise<TokenCheck>;
}

/**
 * Creates a token authority.
 *
 * @param options `secret` (at least 32 bytes) and an optional clock in milliseconds
 * @returns a {@link RoomTokenAuthority}
 * @throws {RangeError} when the secret is shorter than 32 bytes
 * @example
 * ```ts
 * import { createRoomTokenAuthority } from "./tokens.ts";
 * const auth = await createRoomTokenAuthority({ secret: "0123456789abcdef0123456789abcdef" });
 * const { token } = await auth.issue("room1", "1", 3600);
 * console.assert((await auth.verify(token, "room1")).ok);
 * console.assert(!(await auth.verify(token, "room2")).ok);
 * ```
 */
export async function createRoomTokenAuthority(
  options: { secret: string | Uint8Array; now?: () => number },
): Promise<RoomTokenAuthority> {
  const secret = typeof options.secret === "string"
    ? encoder.encode(options.secret)
    : options.secret;
  if (secret.length < 32) {
    throw new RangeError(`expected a token secret of at least 32 bytes, got ${secret.length}`);
  }
  const now = options.now ?? Date.now;
  const key = await crypto.subtle.importKey(
    "raw",
    secret as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = async (room: string, party: string, expires: string) =>
    new Uint8Array(
      await crypto.subtle.sign("HMAC", key, macInput([DOMAIN, room, party, expires])),
    );
  return {
    async issue(room, party, ttlS) {
      if (!PARTY.test(party)) {
        throw new RangeError(
          `expected a party label matching ${PARTY.source}, got ${
            JSON.stringify(party.slice(0, 40))
          }`,
        );
      }
      if (!Number.isInteger(ttlS) || ttlS < 1) {
        throw new RangeError(`expected a positive integer lifetime in seconds, got ${ttlS}`);
      }
      const expiresAt = Math.floor(now() / 1000) + ttlS;
      const tag = await mac(room, party, String(expiresAt));
      return { token: `v1.${party}.${expiresAt}.${toBase64Url(tag)}`, expiresAt };
    },
    async verify(token, room) {
      if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: "malformed" };
      const parts = token.split(".");
      if (
        parts.length !== 4 || parts[0] !== "v1" || !PARTY.test(parts[1]) ||
        !EXPIRES.test(parts[2]) || !MAC_B64.test(parts[3])
      ) {
        return { ok: false, reason: "malformed" };
      }
      const given = fromBase64Url(parts[3]);
      const expected = await mac(room, parts[1], parts[2]);
      if (given === null || !constantTimeEqual(given, expected)) {
        return { ok: false, reason: "invalid" };
      }
      const expiresAt = Number(parts[2]);
      if (expiresAt * 1000 <= now()) return { ok: false, reason: "expired" };
      return { ok: true, party: parts[1], expiresAt };
    },
  };
}

/**
 * Creates a checker for a shared secret presented as a bearer value (the token issuer's secret).
 * Both sides are hashed with SHA-256 first, so the comparison is constant-time and leaks neither
 * content nor length.
 *
 * @param secret the expected secret
 * @returns an async predicate
 * @example
 * ```ts
 * import { createSecretChecker } from "./tokens.ts";
 * const check = await createSecretChecker("an issuer secret of at least 32 bytes!!");
 * console.assert(await check("an issuer secret of at least 32 bytes!!"));
 * console.assert(!(await check("guess")));
 * ```
 */
export async function createSecretChecker(
  secret: string,
): Promise<(presented: string) => Promise<boolean>> {
  const want = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(secret)));
  return async (presented) => {
    const got = new Uint8Array(
      await crypto.subtle.digest("SHA-256", encoder.encode(presented.slice(0, 1024))),
    );
    return constantTimeEqual(got, want);
  };
}

/**
 * Compares two byte strings in time that depends only on their lengths.
 *
 * @param a first bytes
 * @param b second bytes
 * @returns true when equal
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function macInput(parts: readonly (string | Uint8Array)[]): Uint8Array<ArrayBuffer> {
  const bytes = parts.map((p) => (typeof p === "string" ? encoder.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + 2 + b.length, 0));
  let off = 0;
  for (const b of bytes) {
    out[off++] = b.length >> 8;
    out[off++] = b.length & 0xff;
    out.set(b, off);
    off += b.length;
  }
  return out;
}

function toBase64Url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array | null {
  try {
    const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/") + "=");
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}
