/**
 * The one strict CBOR decoder of `enclave/` (attestation documents, NSM responses), over cborg.
 * Private to this folder.
 * @module
 */

import { decode, encode } from "cborg";

/**
 * Decoding options: maps as `Map` (integer keys stay integers), duplicate map keys, indefinite
 * lengths, `undefined`, NaN, infinities, integers past 2^53 and non-minimal heads are refused;
 * no tag is understood (a tag is an error).
 */
const STRICT = {
  useMaps: true,
  rejectDuplicateMapKeys: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowNaN: false,
  allowInfinity: false,
  allowBigInt: false,
  strict: true,
} as const;

/**
 * Decodes one CBOR item that must span all of `bytes`.
 * @param bytes the encoding
 * @param maxBytes refuse longer input before parsing
 * @param what name for the error message
 * @returns the decoded item (maps as `Map`, byte strings as `Uint8Array`)
 * @throws {SyntaxError} too long, not CBOR, trailing bytes, or a construct refused above
 */
export function decodeCbor(bytes: Uint8Array, maxBytes: number, what: string): unknown {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${what}: expected a Uint8Array`);
  if (bytes.length === 0 || bytes.length > maxBytes) {
    throw new SyntaxError(`${what}: expected 1..${maxBytes} bytes, got ${bytes.length}`);
  }
  try {
    return decode(bytes, STRICT);
  } catch (e) {
    // cborg's messages name offsets and token kinds only; a stack overflow is a RangeError.
    throw new SyntaxError(`${what}: not strict CBOR (${(e as Error).message})`);
  }
}

/**
 * Encodes a value as CBOR (maps with sorted keys, as cborg does by default).
 * @param value a `Map`, array, `Uint8Array`, string, integer, boolean or null
 * @returns the encoding
 */
export function encodeCbor(value: unknown): Uint8Array<ArrayBuffer> {
  return encode(value) as Uint8Array<ArrayBuffer>;
}
