/**
 * ECDSA signatures as the threshold protocols emit them: message hashing, low-S normalisation
 * with the recovery-id flip, the recovery id from the nonce point R, DER and 64-byte compact
 * encodings, and a verification by @noble/curves (an implementation we did not write) before
 * any signature is returned.
 *
 * ECDSA over secp256k1 (SEC 1 v2, Section 4.1): r = x(R) mod q, s = k^-1 (m + r x) mod q. Both
 * (r, s) and (r, q - s) verify; Bitcoin (BIP-62/BIP-146) and Ethereum (EIP-2) accept only
 * s <= q/2, so the emitted s is always the low one. Negating s corresponds to negating R, whose
 * y coordinate then changes parity: the recovery id's low bit flips.
 *
 * @example
 * ```ts
 * import { digestToScalar, finalizeSignature, hashMessage } from "./signature.ts";
 * import { modInv } from "./math/mod.ts";
 * import { Point, Q } from "./params.ts";
 * const x = 7n, k = 11n; // a toy key and nonce
 * const digest = hashMessage("sha256", new TextEncoder().encode("hello"));
 * const R = Point.BASE.multiply(modInv(k, Q));
 * const r = R.x % Q;
 * const s = (k * (digestToScalar(digest) + r * x)) % Q; // s = k (m + r x) with R = k^-1 G
 * const sig = finalizeSignature({ R, s, digest, publicKey: Point.BASE.multiply(x) });
 * console.assert(sig !== undefined && sig.s <= Q / 2n);
 * ```
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { fromBytesBE, toBytesBE } from "./math/bigint.ts";
import { toHex } from "./bytes.ts";
import { type Point, Q } from "./params.ts";

/**
 * Hash functions a presignature can be bound to (the fast path hashes the message itself):
 * SHA-256, double SHA-256 (Bitcoin) and Keccak-256 (Ethereum).
 */
export type HashName = "sha256" | "sha256d" | "keccak256";

/** The supported hash names. */
export const HASH_NAMES: readonly HashName[] = ["sha256", "sha256d", "keccak256"];

/** q / 2: the largest low s. */
const HALF_Q = Q >> 1n;

/**
 * Checks a hash name from outside.
 * @throws {TypeError} when `h` is not one of `HASH_NAMES`.
 */
export function assertHashName(h: unknown): HashName {
  if (typeof h !== "string" || !(HASH_NAMES as readonly string[]).includes(h)) {
    throw new TypeError(`expected a hash name (${HASH_NAMES.join(", ")}), got ${String(h)}`);
  }
  return h as HashName;
}

/**
 * The 32-byte digest of `message` under `hash`.
 * @throws {TypeError} for an unknown hash name or a message that is not bytes.
 */
export function hashMessage(hash: HashName, message: Uint8Array): Uint8Array {
  if (!(message instanceof Uint8Array)) throw new TypeError("expected the message as bytes");
  switch (assertHashName(hash)) {
    case "sha256":
      return sha256(message);
    case "sha256d":
      return sha256(sha256(message));
    case "keccak256":
      return keccak_256(message);
  }
}

/**
 * The ECDSA integer m of a 32-byte digest: the digest read big-endian, reduced mod q (SEC 1
 * 4.1.3 step 5 with a 256-bit hash and a 256-bit q: bits2int takes all 256 bits).
 * @throws {TypeError} when the digest is not 32 bytes.
 */
export function digestToScalar(digest: Uint8Array): bigint {
  if (!(digest instanceof Uint8Array) || digest.length !== 32) {
    throw new TypeError("expected a 32-byte digest");
  }
  return fromBytesBE(digest) % Q;
}

/** A recovery id (the `v` of Ethereum minus 27): bit 0 = parity of y(R), bit 1 = x(R) >= q. */
export type RecoveryId = 0 | 1 | 2 | 3;

/**
 * The recovery id of the nonce point R for the raw (not yet normalised) s: bit 0 is the parity
 * of y(R), bit 1 is set when x(R) >= q (then r = x(R) - q; probability about 2^-128).
 */
export function recoveryIdFromR(R: Point): RecoveryId {
  const { x, y } = R.toAffine();
  return (((x >= Q ? 2 : 0) | (y & 1n ? 1 : 0)) as RecoveryId);
}

/**
 * Low-S normalisation: s > q/2 becomes q - s and the recovery id's parity bit flips (q - s
 * signs with -R, whose y has the other parity).
 * @throws {RangeError} when s is not in [1, q).
 */
export function normalizeLowS(
  s: bigint,
  recoveryId: RecoveryId,
): { s: bigint; recoveryId: RecoveryId; flipped: boolean } {
  if (s <= 0n || s >= Q) throw new RangeError("expected s in [1, q)");
  if (s <= HALF_Q) return { s, recoveryId, flipped: false };
  return { s: Q - s, recoveryId: (recoveryId ^ 1) as RecoveryId, flipped: true };
}

function derInteger(x: bigint): Uint8Array {
  let b = toBytesBE(x);
  // X.690 8.3: minimal two's complement; a leading 0x00 keeps a positive integer positive.
  if (b.length === 0 || b[0] & 0x80) b = Uint8Array.of(0, ...b);
  return Uint8Array.of(0x02, b.length, ...b);
}

/**
 * DER encoding of (r, s): SEQUENCE { INTEGER r, INTEGER s } (SEC 1 C.5, X.690). At most 72 bytes,
 * so every length fits in one byte.
 * @throws {RangeError} when r or s is not in [1, q).
 */
export function encodeDer(r: bigint, s: bigint): Uint8Array {
  if (r <= 0n || r >= Q || s <= 0n || s >= Q) throw new RangeError("expected r, s in [1, q)");
  const body = Uint8Array.of(...derInteger(r), ...derInteger(s));
  return Uint8Array.of(0x30, body.length, ...body);
}

/**
 * The 64-byte compact encoding r || s (32 bytes each, big-endian).
 * @throws {RangeError} when r or s is not in [1, q).
 */
export function encodeCompact(r: bigint, s: bigint): Uint8Array {
  if (r <= 0n || r >= Q || s <= 0n || s >= Q) throw new RangeError("expected r, s in [1, q)");
  const out = new Uint8Array(64);
  out.set(toBytesBE(r, 32), 0);
  out.set(toBytesBE(s, 32), 32);
  return out;
}

/** A finished, verified ECDSA signature with its encodings. */
export interface EcdsaSignature {
  /** r = x(R) mod q. */
  readonly r: bigint;
  /** s, always low (s <= q/2). */
  readonly s: bigint;
  /** Recovery id of (r, s) for the emitted (low) s. */
  readonly recoveryId: RecoveryId;
  /** DER encoding, lowercase hex. */
  readonly der: string;
  /** 64-byte r || s, lowercase hex. */
  readonly compact: string;
}

/**
 * Verifies (r, s) on a 32-byte digest with @noble/curves (prehash off: the digest is the
 * message hash; low-S required) and, when `recoveryId` is given, that it is the recovery id of
 * (r, s): public-key recovery with it gives `publicKey` back.
 *
 * Both in one double scalar multiplication: noble's `verify` of the 65-byte "recovered" form
 * computes T = u1 G + u2 P, checks x(T) = r mod q and that `recoveryId` is T's (parity of y,
 * x >= q). T is exactly the point that recovery with that id reconstructs (s T = m G + r P), so
 * this holds iff recovery gives P back. (A separate recovery cost a second double
 * multiplication: half of the signing round's compute.) The key is passed uncompressed, so
 * decoding it takes no square root.
 * @returns whether it verifies (and the recovery id is right).
 */
export function verifySignature(
  publicKey: Point,
  digest: Uint8Array,
  r: bigint,
  s: bigint,
  recoveryId?: RecoveryId,
): boolean {
  try {
    const compact = encodeCompact(r, s);
    const pk = publicKey.toBytes(false);
    if (recoveryId === undefined) {
      return secp256k1.verify(compact, digest, pk, { prehash: false, lowS: true });
    }
    const recovered = new Uint8Array(65);
    recovered[0] = recoveryId;
    recovered.set(compact, 1);
    return secp256k1.verify(recovered, digest, pk, {
      prehash: false,
      lowS: true,
      format: "recovered",
    });
  } catch {
    return false;
  }
}

/**
 * Builds the emitted signature from the nonce point R and the combined s: r = x(R) mod q,
 * low-S normalisation, recovery id from R (flipped with s), DER and compact encodings, then a
 * verification by @noble/curves that also checks the recovery id (`verifySignature`: the
 * signature verifies and recovery with the id gives the key back; one double multiplication).
 * @param args.R the nonce point (the presignature's R).
 * @param args.s the combined s = sum of the partial signatures, mod q.
 * @param args.digest the 32-byte message digest.
 * @param args.publicKey the (possibly HD-derived) public key.
 * @returns the signature, or `undefined` when (r, s) is not a valid signature (the caller
 *   aborts and never returns it).
 */
export function finalizeSignature(args: {
  readonly R: Point;
  readonly s: bigint;
  readonly digest: Uint8Array;
  readonly publicKey: Point;
}): EcdsaSignature | undefined {
  const { R, digest, publicKey } = args;
  if (R.is0()) return undefined;
  const r = R.toAffine().x % Q;
  const s0 = ((args.s % Q) + Q) % Q;
  if (r === 0n || s0 === 0n) return undefined;
  const low = normalizeLowS(s0, recoveryIdFromR(R));
  if (!verifySignature(publicKey, digest, r, low.s, low.recoveryId)) return undefined;
  return {
    r,
    s: low.s,
    recoveryId: low.recoveryId,
    der: toHex(encodeDer(r, low.s)),
    compact: toHex(encodeCompact(r, low.s)),
  };
}
