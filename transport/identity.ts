/**
 * Long-term identity keys of the parties: Ed25519 (RFC 8032). The secret key is the 32-byte
 * seed of RFC 8032 section 5.1.5; the public key is the 32-byte encoded point A. A party signs
 * its handshake hello with it; the peers pin the public key (at key generation) and refuse a
 * session whose hello is signed by another key.
 *
 * @example
 * ```ts
 * import { generateIdentity, identityFromSecret, publicKeyFromHex, publicKeyToHex } from "./identity.ts";
 * const id = generateIdentity();
 * const again = identityFromSecret(id.secretKey);
 * console.assert(publicKeyToHex(again.publicKey) === publicKeyToHex(id.publicKey));
 * console.assert(publicKeyFromHex(publicKeyToHex(id.publicKey)).length === 32);
 * ```
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { decodeBytes, toHex } from "../core/bytes.ts";
import { type RandomSource, webCryptoRandom } from "../core/math/random.ts";

/** Bytes of an identity secret key (the Ed25519 seed) and of a public key. */
export const IDENTITY_KEY_BYTES = 32;

/** An Ed25519 identity key pair. */
export interface Identity {
  /** The 32-byte Ed25519 seed (secret). */
  readonly secretKey: Uint8Array;
  /** The 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

function assertKeyBytes(bytes: unknown, what: string): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${what}: expected a Uint8Array`);
  if (bytes.length !== IDENTITY_KEY_BYTES) {
    throw new RangeError(`${what}: expected ${IDENTITY_KEY_BYTES} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/**
 * Generates a fresh identity.
 *
 * @param rng randomness (default Web Crypto)
 * @returns a new key pair
 * @example
 * ```ts
 * import { generateIdentity } from "./identity.ts";
 * console.assert(generateIdentity().publicKey.length === 32);
 * ```
 */
export function generateIdentity(rng: RandomSource = webCryptoRandom): Identity {
  const seed = new Uint8Array(IDENTITY_KEY_BYTES);
  rng(seed);
  return identityFromSecret(seed);
}

/**
 * The identity of a stored 32-byte secret key (RFC 8032 section 5.1.5).
 *
 * @param secretKey the 32-byte seed (copied)
 * @returns the key pair
 * @throws {TypeError} when not a Uint8Array; {RangeError} when not 32 bytes
 * @example
 * ```ts
 * import { identityFromSecret, publicKeyToHex } from "./identity.ts";
 * const id = identityFromSecret(new Uint8Array(32).fill(7));
 * console.assert(publicKeyToHex(id.publicKey).length === 64);
 * ```
 */
export function identityFromSecret(secretKey: Uint8Array): Identity {
  const seed = Uint8Array.from(assertKeyBytes(secretKey, "identity secret key"));
  return { secretKey: seed, publicKey: ed25519.getPublicKey(seed) };
}

/**
 * Lowercase hex of a public key.
 *
 * @param publicKey 32 bytes
 * @returns 64 lowercase hex digits
 * @throws {TypeError} / {RangeError} for anything but 32 bytes
 */
export function publicKeyToHex(publicKey: Uint8Array): string {
  return toHex(assertKeyBytes(publicKey, "identity public key"));
}

/**
 * Parses a public key from 64 lowercase hex digits and checks that it encodes a point of
 * Ed25519 (RFC 8032 section 5.1.3, canonical encoding).
 *
 * @param hex 64 lowercase hex digits
 * @returns the 32-byte public key
 * @throws {SyntaxError} for bad hex or a value that is not a canonical point encoding
 * @example
 * ```ts
 * import { publicKeyFromHex } from "./identity.ts";
 * let threw = false;
 * try { publicKeyFromHex("00"); } catch { threw = true; }
 * console.assert(threw);
 * ```
 */
export function publicKeyFromHex(hex: string): Uint8Array {
  const bytes = decodeBytes(hex, "identity public key", IDENTITY_KEY_BYTES);
  if (!ed25519.utils.isValidPublicKey(bytes, false)) {
    throw new SyntaxError("identity public key: not a valid Ed25519 point encoding");
  }
  return bytes;
}

/**
 * Parses a secret key from 64 lowercase hex digits.
 *
 * @param hex 64 lowercase hex digits
 * @returns the identity
 * @throws {SyntaxError} for bad hex
 */
export function identityFromHex(hex: string): Identity {
  return identityFromSecret(decodeBytes(hex, "identity secret key", IDENTITY_KEY_BYTES));
}
