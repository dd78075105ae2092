/**
 * Decoders of the values a caller hands to the client or the service (hex digests, room ids,
 * derivation paths, identity keys, account ids): each returns the checked value or throws a
 * built-in error saying what was expected and what was got (house style: `SyntaxError` for an
 * unparsable value, `RangeError` for a value out of range, `TypeError` for a wrong type). The
 * service maps them to `INVALID_ARGUMENT`.
 *
 * @example
 * ```ts
 * import { parseDerivationPath, parseDigest } from "./inputs.ts";
 * console.assert(parseDigest("0x" + "ab".repeat(32)).length === 32);
 * console.assert(parseDerivationPath("0/7").join() === "0,7");
 * ```
 * @module
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { expectString, fromHex, toHex } from "../core/bytes.ts";
import { ACCOUNT_ID_PATTERN } from "../core/keyshare.ts";
import { parsePath } from "../core/hd.ts";
import { MAX_SID_BYTES, MIN_SID_BYTES, type Point } from "../core/params.ts";
import { assertHashName, type HashName } from "../core/signature.ts";

/** Longest request field read at all (each field's own bound is checked after). */
const MAX_FIELD_CHARS = 1 << 20;

/**
 * Decodes hex of exactly `bytes` bytes: upper or lower case, optional `0x`.
 * @throws {TypeError} / {SyntaxError} / {RangeError}.
 */
export function parseHexBytes(v: unknown, bytes: number, what: string): Uint8Array {
  let s = expectString(v, what, MAX_FIELD_CHARS);
  if (s.length > 2 * bytes + 2) {
    throw new RangeError(`${what}: expected ${bytes} bytes (${2 * bytes} hex digits), got more`);
  }
  if (s.startsWith("0x") || s.startsWith("0X")) s = s.slice(2);
  if (!/^[0-9a-fA-F]*$/.test(s)) throw new SyntaxError(`${what}: expected hex digits`);
  if (s.length !== 2 * bytes) {
    throw new RangeError(`${what}: expected ${2 * bytes} hex digits, got ${s.length}`);
  }
  return fromHex(s.toLowerCase());
}

/** A 32-byte digest (e.g. a transaction hash) in hex. */
export function parseDigest(v: unknown): Uint8Array {
  return parseHexBytes(v, 32, "digest");
}

/** Length of a room id in hex digits (16 random bytes). */
export const ROOM_ID_HEX = 32;

/**
 * A gateway room id: exactly 32 lowercase hex digits (16 bytes chosen at random by the client).
 * @throws {TypeError} / {SyntaxError}.
 */
export function parseRoomId(v: unknown): string {
  const s = expectString(v, "room_id", MAX_FIELD_CHARS);
  if (s.length !== ROOM_ID_HEX || !/^[0-9a-f]+$/.test(s)) {
    throw new SyntaxError(`room_id: expected ${ROOM_ID_HEX} lowercase hex digits`);
  }
  return s;
}

/** A fresh random room id (Web Crypto). */
export function newRoomId(): string {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(ROOM_ID_HEX / 2)));
}

/**
 * A non-hardened derivation path: `""` or `"m"` (the root), `"m/0/1"` or `"0/1"`.
 * @returns the indices.
 * @throws {TypeError} / {SyntaxError} / {RangeError} (hardened index, depth above 255).
 */
export function parseDerivationPath(v: unknown): number[] {
  const s = expectString(v, "derivation_path", MAX_FIELD_CHARS);
  if (s === "" || s === "m") return [];
  return parsePath(s.startsWith("m/") ? s : `m/${s}`);
}

/** The normalised text of a path (`m` for the root). */
export function formatPath(path: readonly number[]): string {
  return ["m", ...path.map(String)].join("/");
}

/** An account id, `^[A-Za-z0-9._-]{1,128}$`. */
export function parseAccountId(v: unknown): string {
  const s = expectString(v, "account_id", MAX_FIELD_CHARS);
  if (!ACCOUNT_ID_PATTERN.test(s)) {
    throw new SyntaxError(
      `account_id: expected ${ACCOUNT_ID_PATTERN.source}, got ${s.length} characters`,
    );
  }
  return s;
}

/** Longest message `signMessage` accepts, bytes (an Ethereum transaction with its data fits). */
export const MAX_MESSAGE_BYTES = 128 * 1024;

/**
 * A message to sign with a presignature: hex (upper or lower case, optional `0x`) of at most
 * {@link MAX_MESSAGE_BYTES} bytes; empty is allowed.
 * @throws {TypeError} / {SyntaxError} / {RangeError}.
 */
export function parseMessage(v: unknown): Uint8Array {
  let s = expectString(v, "message", 2 * MAX_MESSAGE_BYTES + 2);
  if (s.startsWith("0x") || s.startsWith("0X")) s = s.slice(2);
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new SyntaxError("message: expected an even number of hex digits");
  }
  if (s.length > 2 * MAX_MESSAGE_BYTES) {
    throw new RangeError(`message: expected at most ${MAX_MESSAGE_BYTES} bytes`);
  }
  return fromHex(s.toLowerCase());
}

/** The hash a message is signed with (`keccak256`, `sha256`, `sha256d`). */
export function parseHash(v: unknown): HashName {
  return assertHashName(expectString(v, "hash", 16));
}

/** A presignature id: lowercase hex of a session id (16 to 1024 bytes). */
export function parsePresignatureId(v: unknown): string {
  const s = expectString(v, "presignature_id", 2 * MAX_SID_BYTES);
  if (!/^(?:[0-9a-f]{2})+$/.test(s) || s.length < 2 * MIN_SID_BYTES) {
    throw new SyntaxError(
      `presignature_id: expected ${2 * MIN_SID_BYTES} to ${2 * MAX_SID_BYTES} lowercase hex digits`,
    );
  }
  return s;
}

/** Most presignatures one presigning session makes. */
export const MAX_PRESIGN_BATCH = 8;

/** How many presignatures one Presign call makes: 1 to {@link MAX_PRESIGN_BATCH}. */
export function parsePresignCount(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > MAX_PRESIGN_BATCH) {
    throw new RangeError(
      `count: expected 1 to ${MAX_PRESIGN_BATCH} presignatures, got ${String(v)}`,
    );
  }
  return v;
}

/** An Ed25519 identity public key, 32 bytes hex. */
export function parseIdentityKey(v: unknown, what = "identity key"): Uint8Array {
  return parseHexBytes(v, 32, what);
}

/**
 * The EIP-55 checksummed Ethereum address of a secp256k1 public key.
 * @param publicKey the point.
 * @returns `0x` and 40 hex digits with the checksum case.
 */
export function ethereumAddress(publicKey: Point): string {
  const raw = toHex(keccak_256(publicKey.toBytes(false).subarray(1)).subarray(12));
  const h = toHex(keccak_256(new TextEncoder().encode(raw)));
  let out = "0x";
  for (let k = 0; k < raw.length; k++) {
    out += parseInt(h[k], 16) >= 8 ? raw[k].toUpperCase() : raw[k];
  }
  return out;
}
