/**
 * The key share's version-1 JSON form (described in `keyshare.ts`): its wire types, the syntax
 * check that decodes it into an `UncheckedKeyShare` (every field's length capped before it is
 * parsed; the errors of the decoders of `bytes.ts` become `InvalidKeyShare` "malformed"), and
 * the encoder. `keyshare_validation.ts` checks the meaning.
 *
 * @example
 * ```ts
 * import { decodeKeyShareUnchecked } from "./keyshare_json.ts";
 * try {
 *   decodeKeyShareUnchecked('{"version": 1}');
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed");
 * }
 * ```
 * @module
 */
import {
  decodeBytes,
  decodeNonZeroPoint,
  expectArray,
  expectFields,
  expectString,
  type JsonObject,
  kindOf,
  parseHexInt,
  parseJson,
  scalarHex,
  toHex,
  toHexInt,
} from "./bytes.ts";
import { InvalidKeyShare } from "./errors.ts";
import { fromBytesBE } from "./math/mod.ts";
import { KAPPA_BYTES, MAX_KEY_SHARE_PARTIES, MODULUS_BYTES, type Point, Q } from "./params.ts";
import type { KeyShare, KeyShareCore, PartyAux } from "./protocols/types.ts";

/** The format version this module writes. */
export const KEY_SHARE_VERSION = 1;
/** Largest key share file accepted by `decodeKeyShareFile` unless told otherwise (64 MiB). */
export const MAX_FILE_BYTES: number = 64 * 1024 * 1024;
/** The only curve of a key share. @internal */
export const CURVE = "secp256k1";
/** Bytes of the joint BIP-32 chain code. @internal */
export const CHAIN_CODE_BYTES = 32;
const SCALAR_BYTES = 32;

/** Wire form of one party's public aux parameters (version 1). */
export interface PartyAuxJsonV1 {
  N: string;
  s: string;
  t: string;
}

/** Wire form of a key share (version 1); see `keyshare.ts`. */
export interface KeyShareJsonV1 {
  version: 1;
  curve: "secp256k1";
  i: number;
  n: number;
  x: string;
  public_key: string;
  public_shares: string[];
  rid: string;
  chain_code: string;
  aux: { p: string; q: string; parties: PartyAuxJsonV1[] };
}

/**
 * A key share whose syntax was checked but not its meaning: counts, indices, the match of
 * secret and public shares and the aux info are unverified. Its `curve` is any string and its
 * `aux` lacks `i` and `n`, so it is not assignable to `KeyShare`: pass it to `validateKeyShare`.
 */
export interface UncheckedKeyShare extends Omit<KeyShareCore, "curve"> {
  readonly curve: string;
  readonly aux: {
    readonly p: bigint;
    readonly q: bigint;
    readonly parties: readonly PartyAux[];
  };
}

// ---------------------------------------------------------------------------------------------
// Syntax (the decoders of core/bytes.ts; their errors become InvalidKeyShare "malformed")

/** @internal shared with the key share modules and `account_records.ts`. */
export function malformed(message: string): InvalidKeyShare {
  return new InvalidKeyShare("malformed", message);
}

/**
 * Runs `f`, turning the built-in errors of the decoders and asserters of `core/bytes.ts`
 * (`TypeError`, `SyntaxError`, `RangeError`, whose message names the field) into
 * `InvalidKeyShare` "malformed".
 * @internal shared with `account_records.ts`.
 */
export function asMalformed<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TypeError || e instanceof SyntaxError || e instanceof RangeError) {
      throw malformed(e.message);
    }
    throw e;
  }
}

function expectIndex(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_KEY_SHARE_PARTIES) {
    throw malformed(`${what}: expected an integer in 0..${MAX_KEY_SHARE_PARTIES}`);
  }
  return v;
}

/** Hex of exactly `length` bytes; the text's length is capped (and named) first. */
function hexField(v: unknown, what: string, length: number): Uint8Array {
  return decodeBytes(expectString(v, what, 2 * length), what, length);
}

/** An integer (N, s, t, p, q): minimal hex of at most `MODULUS_BYTES`, the text capped first. */
function intField(v: unknown, what: string): bigint {
  return parseHexInt(expectString(v, what, 2 * MODULUS_BYTES), MODULUS_BYTES, what);
}

/**
 * A point other than the identity, compressed; the text's length capped first.
 * @internal shared with `account_records.ts`.
 */
export function pointField(v: unknown, what: string): Point {
  return decodeNonZeroPoint(expectString(v, what, 66), what);
}

const KEY_SHARE_FIELDS = [
  "version",
  "curve",
  "i",
  "n",
  "x",
  "public_key",
  "public_shares",
  "rid",
  "chain_code",
  "aux",
] as const;

/**
 * Checks the version and syntax of a key share (JSON text or an already parsed value) and
 * returns it unchecked. Every field's length is capped before it is parsed.
 *
 * @param json the key share as JSON text, UTF-8 bytes, or a parsed value.
 * @returns the decoded, not yet validated key share.
 * @throws {InvalidKeyShare} `malformed`, `unsupported-version` or `wrong-curve`.
 * @example
 * ```ts
 * import { decodeKeyShareUnchecked } from "./keyshare.ts";
 * try {
 *   decodeKeyShareUnchecked({ version: 2 });
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "unsupported-version");
 * }
 * ```
 */
export function decodeKeyShareUnchecked(json: unknown): UncheckedKeyShare {
  return decodeParsed(
    typeof json === "string" || json instanceof Uint8Array
      ? asMalformed(() => parseJson(json, MAX_FILE_BYTES, "key share"))
      : json,
  );
}

/**
 * `decodeKeyShareUnchecked` of a parsed JSON value (inside a file: never a nested string).
 * @internal shared with `account_records.ts`.
 */
export function decodeParsed(v: unknown): UncheckedKeyShare {
  return asMalformed(() => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw malformed(`key share: expected an object, got ${kindOf(v)}`);
    }
    // The version first: a later version may have another shape.
    if (!Object.hasOwn(v, "version")) throw malformed('key share: missing field "version"');
    const version = (v as JsonObject).version;
    if (typeof version !== "number" || !Number.isSafeInteger(version)) {
      throw malformed("key share: expected an integer version");
    }
    if (version !== KEY_SHARE_VERSION) {
      throw new InvalidKeyShare(
        "unsupported-version",
        `key share: expected version ${KEY_SHARE_VERSION}, got ${version}`,
      );
    }
    const o = expectFields<KeyShareJsonV1>(v, KEY_SHARE_FIELDS, "key share");
    // The curve next: the points of another curve would fail to parse with a vaguer message.
    const curve = expectString(o.curve, "curve", 32);
    if (curve !== CURVE) {
      const shown = /^[A-Za-z0-9_-]+$/.test(curve) ? `"${curve}"` : "another curve";
      throw new InvalidKeyShare(
        "wrong-curve",
        `key share: expected curve "${CURVE}", got ${shown}`,
      );
    }
    const i = expectIndex(o.i, "i");
    const n = expectIndex(o.n, "n");
    const xBytes = hexField(o.x, "x", SCALAR_BYTES);
    const x = fromBytesBE(xBytes);
    xBytes.fill(0);
    if (x === 0n || x >= Q) throw malformed("x: expected a scalar in [1, q)");
    const publicKey = pointField(o.public_key, "public_key");
    const publicShares = expectArray(o.public_shares, "public_shares", MAX_KEY_SHARE_PARTIES).map((
      P,
      j,
    ) => pointField(P, `public_shares[${j}]`));
    const rid = hexField(o.rid, "rid", KAPPA_BYTES);
    const chainCode = hexField(o.chain_code, "chain_code", CHAIN_CODE_BYTES);
    const a = expectFields<KeyShareJsonV1["aux"]>(o.aux, ["p", "q", "parties"], "aux");
    const p = intField(a.p, "aux.p");
    const q = intField(a.q, "aux.q");
    const parties = expectArray(a.parties, "aux.parties", MAX_KEY_SHARE_PARTIES).map(
      (e, j): PartyAux => {
        const w = `aux.parties[${j}]`;
        const po = expectFields<PartyAuxJsonV1>(e, ["N", "s", "t"], w);
        return {
          N: intField(po.N, `${w}.N`),
          s: intField(po.s, `${w}.s`),
          t: intField(po.t, `${w}.t`),
        };
      },
    );
    return { curve, i, n, x, publicKey, publicShares, rid, chainCode, aux: { p, q, parties } };
  });
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * Encodes a key share in the version-1 wire form (`keyshare.ts`). The result holds the secret
 * share and primes: encrypt it before it leaves memory. Only the shape is checked here; run
 * `validateKeyShare` first to store nothing that would fail to load.
 *
 * @param share the key share (or a decoded, not yet validated one: the accounts file's MAC is
 *   computed over this encoding before validation).
 * @returns the JSON-able object (`JSON.stringify` it).
 * @throws {TypeError} / {RangeError} when a field cannot be encoded (wrong type or size).
 * @example
 * ```ts
 * import { decodeKeyShare, encodeKeyShare } from "./keyshare.ts";
 * import type { KeyShare } from "./protocols/types.ts";
 * // What a store does with a share from key generation: validate, encode; later decode.
 * function roundTrip(share: KeyShare): KeyShare {
 *   return decodeKeyShare(JSON.stringify(encodeKeyShare(share)));
 * }
 * console.assert(typeof roundTrip === "function");
 * ```
 */
export function encodeKeyShare(share: KeyShare | UncheckedKeyShare): KeyShareJsonV1 {
  if (share.curve !== CURVE) throw new TypeError(`keyshare: expected curve "${CURVE}"`);
  if (!(share.rid instanceof Uint8Array) || share.rid.length !== KAPPA_BYTES) {
    throw new RangeError(`keyshare: expected a ${KAPPA_BYTES}-byte rid`);
  }
  if (!(share.chainCode instanceof Uint8Array) || share.chainCode.length !== CHAIN_CODE_BYTES) {
    throw new RangeError(`keyshare: expected a ${CHAIN_CODE_BYTES}-byte chain code`);
  }
  if (typeof share.x !== "bigint" || share.x <= 0n || share.x >= Q) {
    throw new RangeError("keyshare: expected a secret share in [1, q)");
  }
  return {
    version: KEY_SHARE_VERSION,
    curve: CURVE,
    i: share.i,
    n: share.n,
    x: scalarHex(share.x),
    public_key: share.publicKey.toHex(true),
    public_shares: share.publicShares.map((P) => P.toHex(true)),
    rid: toHex(share.rid),
    chain_code: toHex(share.chainCode),
    aux: {
      p: toHexInt(share.aux.p),
      q: toHexInt(share.aux.q),
      parties: share.aux.parties.map(({ N, s, t }) => ({
        N: toHexInt(N),
        s: toHexInt(s),
        t: toHexInt(t),
      })),
    },
  };
}
