/**
 * Addresses of a (derived) public key for the chains the adapters serve: Ethereum (EIP-55, from
 * `session/inputs.ts`) and Bitcoin native SegWit v0 P2WPKH (BIP-141 witness program
 * HASH160(compressed key), BIP-173 bech32 with the network's prefix). Pure; runs in browsers.
 *
 * @example
 * ```ts
 * import { p2wpkhAddress } from "./addresses.ts";
 * // BIP-173's example key 0279be66...f81798 (the generator G)
 * const a = p2wpkhAddress("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798");
 * console.assert(a === "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4");
 * ```
 * @module
 */
import { ripemd160 } from "@noble/hashes/legacy.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bech32 } from "@scure/base";
import { Point } from "../core/params.ts";
import { parseHexBytes } from "../session/inputs.ts";

export { ethereumAddress } from "../session/inputs.ts";

/** Bitcoin networks and their bech32 prefixes (BIP-173; regtest as Bitcoin Core names it). */
export const BECH32_PREFIX = { bitcoin: "bc", testnet: "tb", regtest: "bcrt" } as const;

/** A Bitcoin network of {@link BECH32_PREFIX}. */
export type BitcoinNetwork = keyof typeof BECH32_PREFIX;

/**
 * The P2WPKH address of a public key.
 *
 * @param publicKey the compressed (33-byte) or uncompressed (65-byte) key, hex (optional `0x`) or
 *   bytes; it is compressed first (P2WPKH commits to the compressed form, BIP-143).
 * @param network `bitcoin` (default), `testnet` or `regtest`.
 * @returns the bech32 address (`bc1q...`, `tb1q...`, `bcrt1q...`).
 * @throws {TypeError} for an unknown network; {SyntaxError} / {RangeError} for a key that is not
 *   hex of 33 or 65 bytes or not on secp256k1.
 */
export function p2wpkhAddress(
  publicKey: string | Uint8Array,
  network: BitcoinNetwork = "bitcoin",
): string {
  if (!Object.hasOwn(BECH32_PREFIX, network)) {
    throw new TypeError(
      `network: expected ${Object.keys(BECH32_PREFIX).join(", ")}, got ${String(network)}`,
    );
  }
  let bytes: Uint8Array;
  if (publicKey instanceof Uint8Array) bytes = publicKey;
  else {
    const digits = publicKey.replace(/^0x/i, "").length;
    bytes = parseHexBytes(publicKey, digits === 130 ? 65 : 33, "public key");
  }
  let point: Point;
  try {
    point = Point.fromBytes(bytes);
  } catch {
    throw new RangeError("public key: expected a secp256k1 point of 33 or 65 bytes");
  }
  const program = ripemd160(sha256(point.toBytes(true)));
  return bech32.encode(BECH32_PREFIX[network], [0, ...bech32.toWords(program)]);
}
