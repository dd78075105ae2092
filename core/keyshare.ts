/**
 * The key share file format, version 1: JSON, one file holding the key shares of many accounts
 * for ONE party, validated on load.
 *
 * ## File (`encodeKeyShareFile` / `decodeKeyShareFile`)
 *
 * The seed's shape: a JSON object keyed by account id (`^[A-Za-z0-9._-]{1,128}$`). Each entry
 * holds the versioned key share, for tools that only list accounts the account's public key
 * (which must equal `key_share.public_key`), and, optionally, the identity keys pinned at key
 * generation that authenticate every later session of the account (`encodeAccountsFile` /
 * `decodeAccountsFile`; n distinct Ed25519 public keys, this party's matching its secret key):
 *
 * ```json
 * {
 *   "<account_id>": {
 *     "key_share": { ...key share, below... },
 *     "public_key": "<33-byte compressed point, lowercase hex>",
 *     "identity": { "secret_key": "<32 bytes hex>", "public_keys": ["<32 bytes hex>", ...] }
 *   }
 * }
 * ```
 *
 * ## Key share, version 1 (`encodeKeyShare` / `decodeKeyShare`)
 *
 * ```json
 * {
 *   "version": 1,
 *   "curve": "secp256k1",
 *   "i": 0,                        // this party's index, 0 <= i < n
 *   "n": 2,                        // number of parties (n-of-n), 2 <= n <= 64
 *   "x": "<32 bytes hex>",         // secret share x_i, 0 < x_i < q, fixed width
 *   "public_key": "<point>",       // X = sum_j X_j
 *   "public_shares": ["<point>"],  // X_j = x_j G for every party j (n entries)
 *   "rid": "<48 bytes hex>",       // joint randomness of key generation
 *   "chain_code": "<32 bytes hex>",// joint BIP-32 chain code
 *   "aux": {
 *     "p": "<int>", "q": "<int>",  // this party's Paillier safe primes (secret)
 *     "parties": [{ "N": "<int>", "s": "<int>", "t": "<int>" }]  // every party (n entries)
 *   }
 * }
 * ```
 *
 * Points are compressed SEC1 (`02`/`03` + 32 bytes), lowercase hex. Integers other than `x` are
 * minimal lowercase even-length hex (`toHexInt`: no leading zero byte), at most 384 bytes.
 * Fields are exact: a missing or unknown field is an error, and a later format gets a new
 * `version` (older versions keep loading: `testing/fixtures/keyshare_v1.json` is kept for that).
 *
 * ## Validation on load (cggmp21 notes, "Key share validation on load")
 *
 * Decoding is two steps (house style): `decodeKeyShareUnchecked` checks the syntax, with a cap on
 * every field's length before it is parsed, into an `UncheckedKeyShare`; `validateKeyShare`
 * checks the meaning and returns a `KeyShare`. Checks: curve secp256k1; n >= 2; 0 <= i < n;
 * n public shares and n aux entries; X_i == x_i G; sum of X_j == X; for every party N_j of
 * 3071-3072 bits, odd, without a factor below 2^16, composite (base-2 Fermat), pairwise distinct,
 * and s_j, t_j units mod N_j with s_j != t_j, neither 1. For this party, whose factors the file
 * holds (issue 15, finding 2): N_i == p q, p != q, both safe primes of exactly 1536 bits and
 * 3 mod 4 (Blum): (r - 1) / 2 passes 20 Miller-Rabin rounds with random bases and r one base-2
 * Fermat test, which proves r prime once (r - 1) / 2 is (Pocklington); and its own s_i, t_i as aux
 * info makes them: both at least bitLength(N_i) - 128 bits (a truncated or small value is
 * refused), t_i a quadratic residue of full order modulo p and modulo q, s_i in <t_i> (a residue
 * modulo p and q). Every exponentiation with p or q runs on the secret slot of `math/modpow.ts`.
 * Cost: about 46 exponentiations modulo 1536-bit primes per share, plus one 3072-bit one per
 * other party (measured in docs/key-lifecycle.md, "File format").
 *
 * What this cannot check: the other parties' N_j, s_j, t_j beyond their shape, `rid`, the chain
 * code. They are bound to the holder's secrets by the MAC of the version-3 accounts file
 * (`account_records.ts`); this version-1 file format has no MAC.
 *
 * Every failure is an `InvalidKeyShare` with a code: `malformed` (not JSON, wrong shape or type,
 * unknown field, bad hex, oversized field, bad account id), `unsupported-version`,
 * `wrong-curve`, `inconsistent` (counts, indices, shares that do not match), `weak-aux-info`
 * (a modulus, prime or ring-Pedersen parameter that fails its checks), and in a version-3
 * accounts file `tampered` (a missing or wrong MAC). Messages never contain a secret.
 *
 * @example
 * ```ts
 * import { decodeKeyShareFile, encodeKeyShareFile } from "./keyshare.ts";
 * const empty = encodeKeyShareFile(new Map());
 * console.assert(decodeKeyShareFile(empty).size === 0);
 * ```
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  assertBigint,
  assertBytes,
  assertPoint,
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
import {
  bitLength,
  fromBytesBE,
  gcd,
  hasSmallFactor,
  isDefinitelyComposite,
  millerRabin,
  modPowSecret,
  webCryptoRandom,
} from "./math/mod.ts";
import {
  KAPPA_BYTES,
  MAX_KEY_SHARE_PARTIES,
  MODULUS_BYTES,
  MODULUS_MAX_BITS,
  MODULUS_MIN_BITS,
  Point,
  PRIME_BITS,
  Q,
} from "./params.ts";
import type { KeyShare, PartyAux } from "./protocols/types.ts";

/** The format version this module writes. */
export const KEY_SHARE_VERSION = 1;
/** Largest key share file accepted by `decodeKeyShareFile` unless told otherwise (64 MiB). */
export const MAX_FILE_BYTES: number = 64 * 1024 * 1024;
/** Account ids: 1 to 128 characters of `A-Z a-z 0-9 . _ -`. */
export const ACCOUNT_ID_PATTERN: RegExp = /^[A-Za-z0-9._-]{1,128}$/;

/** Miller-Rabin rounds for half of each own prime (error <= 4^-20 per prime, random bases). */
const PRIME_TEST_ROUNDS = 20;
/** Own s, t must have at least bitLength(N) minus this many bits (module doc). */
const RP_SIZE_SLACK_BITS = 128;
const CURVE = "secp256k1";
const CHAIN_CODE_BYTES = 32;
const SCALAR_BYTES = 32;

/** Wire form of one party's public aux parameters (version 1). */
export interface PartyAuxJsonV1 {
  N: string;
  s: string;
  t: string;
}

/** Wire form of a key share (version 1); see the module doc. */
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

/** Wire form of an account's pinned session identities (optional field of a file entry). */
export interface AccountIdentityJsonV1 {
  /** This party's Ed25519 identity secret key (32-byte seed, hex). */
  secret_key: string;
  /** Every party's Ed25519 identity public key (32 bytes hex), by party index. */
  public_keys: string[];
}

/** Wire form of one account of a key share file. */
export interface AccountEntryJsonV1 {
  key_share: KeyShareJsonV1;
  public_key: string;
  /** Identity keys pinned at key generation; absent in files made before sessions existed. */
  identity?: AccountIdentityJsonV1;
}

/**
 * The identity keys of an account, pinned at key generation: every message of a later session
 * of this account is authenticated with them (see transport/).
 */
export interface AccountIdentity {
  /** This party's Ed25519 secret key (RFC 8032 32-byte seed). */
  readonly secretKey: Uint8Array;
  /** Every party's Ed25519 public key, by party index (n entries). */
  readonly publicKeys: readonly Uint8Array[];
}

/** One account of a key share file: the validated key share and its pinned identities. */
export interface AccountEntry {
  readonly keyShare: KeyShare;
  readonly identity?: AccountIdentity;
}

/** Wire form of a key share file: account id -> entry. */
export type KeyShareFileJsonV1 = Record<string, AccountEntryJsonV1>;

/**
 * A key share whose syntax was checked but not its meaning: counts, indices, the match of
 * secret and public shares and the aux info are unverified. Its `curve` is any string and its
 * `aux` lacks `i` and `n`, so it is not assignable to `KeyShare`: pass it to `validateKeyShare`.
 */
export interface UncheckedKeyShare {
  readonly curve: string;
  readonly i: number;
  readonly n: number;
  readonly x: bigint;
  readonly publicKey: Point;
  readonly publicShares: readonly Point[];
  readonly rid: Uint8Array;
  readonly chainCode: Uint8Array;
  readonly aux: {
    readonly p: bigint;
    readonly q: bigint;
    readonly parties: readonly PartyAux[];
  };
}

// ---------------------------------------------------------------------------------------------
// Syntax (the decoders of core/bytes.ts; their errors become InvalidKeyShare "malformed")

function malformed(message: string): InvalidKeyShare {
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
// Meaning

function inconsistent(message: string): InvalidKeyShare {
  return new InvalidKeyShare("inconsistent", message);
}

function weak(message: string): InvalidKeyShare {
  return new InvalidKeyShare("weak-aux-info", message);
}

/**
 * A secret prime of this party's modulus must be a safe prime r = 2r' + 1 of `PRIME_BITS` bits,
 * r = 3 mod 4. r' is tested by Miller-Rabin (`PRIME_TEST_ROUNDS` random bases); r then needs one
 * Fermat test only: by Pocklington's criterion (r - 1 = 2r' with r' prime and r' > sqrt(r)),
 * 2^(r-1) = 1 mod r and gcd(2^2 - 1, r) = 1 prove r prime. Every exponentiation runs on the
 * secret slot (r is secret).
 */
function checkSafePrime(name: "p" | "q", r: bigint): void {
  if (bitLength(r) !== PRIME_BITS) throw weak(`secret prime ${name} is not of ${PRIME_BITS} bits`);
  if ((r & 3n) !== 3n) throw weak(`secret prime ${name} is not 3 mod 4`);
  if (hasSmallFactor(r) || modPowSecret(2n, r - 1n, r) !== 1n) {
    throw weak(`secret prime ${name} is not prime`);
  }
  if (!millerRabin(r >> 1n, PRIME_TEST_ROUNDS, webCryptoRandom, true)) {
    throw weak(`secret prime ${name} is not a safe prime: (${name} - 1) / 2 is not prime`);
  }
}

/**
 * This party's own ring-Pedersen (N, s, t), checked with its factors as aux info makes them
 * (t = r^2 mod N, s = t^lambda mod N): t and s at least `bitLength(N) - RP_SIZE_SLACK_BITS` bits
 * (a uniform element of the group is shorter with probability below 2^-127, so a truncated or
 * small value is refused); t a quadratic residue modulo p and modulo q (Euler's criterion:
 * t^((r-1)/2) = 1 mod r) and of full order p'q' (the residues modulo a safe prime r form a group
 * of prime order r', so t != 1 mod r suffices); s a quadratic residue modulo p and q, which is
 * <t> itself when t has full order. Cost: four exponentiations modulo the 1536-bit primes, on the
 * secret slot. The parties' (N, s, t) of other parties cannot be checked without their factors:
 * aux info checked them with Pi-prm, Pi-mod and Pi-fac, and the MAC of a version-3 accounts
 * file (account_records.ts) keeps them as they were.
 */
function checkOwnRingPedersen(i: number, own: PartyAux, p: bigint, q: bigint): void {
  const minBits = bitLength(own.N) - RP_SIZE_SLACK_BITS;
  for (const [name, v] of [["s", own.s], ["t", own.t]] as const) {
    const bits = bitLength(v);
    if (bits < minBits) {
      throw weak(
        `party ${i} (own): ring-Pedersen ${name} has ${bits} bits, expected at least ${minBits}`,
      );
    }
  }
  for (const [name, r] of [["p", p], ["q", q]] as const) {
    const half = r >> 1n;
    if (own.t % r === 1n) {
      throw weak(`party ${i} (own): ring-Pedersen t is 1 modulo ${name} (not of full order)`);
    }
    if (modPowSecret(own.t, half, r) !== 1n) {
      throw weak(`party ${i} (own): ring-Pedersen t is not a quadratic residue modulo ${name}`);
    }
    if (modPowSecret(own.s, half, r) !== 1n) {
      throw weak(`party ${i} (own): ring-Pedersen s is not in <t> (not a residue modulo ${name})`);
    }
  }
}

/**
 * Checks the meaning of a decoded key share (module doc, "Validation on load") and returns the
 * checked `KeyShare`. Also usable on a share made in memory (a protocol output) before it is
 * stored. Cost: about 46 exponentiations modulo 1536-bit primes plus one 3072-bit
 * exponentiation per other party.
 *
 * @param u the share from `decodeKeyShareUnchecked` (or any `KeyShare`).
 * @returns a fresh, validated `KeyShare` (`aux.i` / `aux.n` set from `i` / `n`).
 * @throws {InvalidKeyShare} with code `malformed`, `wrong-curve`, `inconsistent` or
 *   `weak-aux-info`; the message names the check and the party, never a secret.
 * @example
 * ```ts
 * import { decodeKeyShareUnchecked, validateKeyShare } from "./keyshare.ts";
 * const check = (json: string) => validateKeyShare(decodeKeyShareUnchecked(json));
 * try {
 *   check("{");
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed");
 * }
 * ```
 */
export function validateKeyShare(u: UncheckedKeyShare): KeyShare {
  if (u.curve !== CURVE) {
    throw new InvalidKeyShare("wrong-curve", `key share: expected curve "${CURVE}"`);
  }
  const { i, n } = u;
  if (!Number.isInteger(n) || n < 2 || n > MAX_KEY_SHARE_PARTIES) {
    throw inconsistent(`expected 2 to ${MAX_KEY_SHARE_PARTIES} parties, got n = ${n}`);
  }
  if (!Number.isInteger(i) || i < 0 || i >= n) {
    throw inconsistent(`expected a party index 0 <= i < ${n}, got i = ${i}`);
  }
  if (!Array.isArray(u.publicShares) || u.publicShares.length !== n) {
    throw inconsistent(`expected ${n} public shares, got ${u.publicShares?.length}`);
  }
  const parties = u.aux?.parties;
  if (!Array.isArray(parties) || parties.length !== n) {
    throw inconsistent(`expected one aux entry per party (${n}), got ${parties?.length}`);
  }
  const x = asMalformed(() => assertBigint(u.x, "x"));
  if (x <= 0n || x >= Q) throw malformed("x: expected a scalar in [1, q)");
  const { publicKey, publicShares, rid, chainCode } = asMalformed(() => ({
    publicKey: assertPoint(u.publicKey, "public_key"),
    publicShares: u.publicShares.map((P, j) => assertPoint(P, `public_shares[${j}]`)),
    rid: Uint8Array.from(assertBytes(u.rid, "rid", KAPPA_BYTES)),
    chainCode: Uint8Array.from(assertBytes(u.chainCode, "chain_code", CHAIN_CODE_BYTES)),
  }));

  // X_i == x_i G, then sum_j X_j == X (n-of-n).
  if (!Point.BASE.multiply(x).equals(publicShares[i])) {
    throw inconsistent(`public share of party ${i} does not match the secret share`);
  }
  const sum = publicShares.reduce((acc, P) => acc.add(P));
  if (!sum.equals(publicKey)) {
    throw inconsistent("the public shares do not add up to the public key");
  }

  // Every party's public aux info.
  const checked: PartyAux[] = parties.map((e, j) => {
    const [N, s, t] = asMalformed(() =>
      (["N", "s", "t"] as const).map((k) => assertBigint(e?.[k], `aux.parties[${j}].${k}`))
    );
    const bits = bitLength(N);
    if (bits < MODULUS_MIN_BITS || bits > MODULUS_MAX_BITS) {
      throw weak(
        `party ${j}: expected N of ${MODULUS_MIN_BITS}-${MODULUS_MAX_BITS} bits, got ${bits}`,
      );
    }
    if ((N & 1n) === 0n) throw weak(`party ${j}: N is even`);
    if (hasSmallFactor(N)) throw weak(`party ${j}: N has a prime factor below 2^16`);
    if (s <= 1n || t <= 1n || s >= N || t >= N || s === t) {
      throw weak(`party ${j}: ring-Pedersen s, t must be distinct, in (1, N)`);
    }
    if (gcd(s, N) !== 1n || gcd(t, N) !== 1n) {
      throw weak(`party ${j}: ring-Pedersen s, t must be units modulo N`);
    }
    return { N, s, t };
  });
  for (let j = 0; j < n; j++) {
    for (let k = j + 1; k < n; k++) {
      if (checked[j].N === checked[k].N) throw weak(`parties ${j} and ${k} share a modulus N`);
    }
  }
  for (let j = 0; j < n; j++) {
    // Own N is checked against p q below; the others must at least not be prime.
    if (j !== i && !isDefinitelyComposite(checked[j].N)) throw weak(`party ${j}: N is prime`);
  }

  // This party's secret primes and ring-Pedersen parameters.
  const [p, q] = asMalformed(
    () => [assertBigint(u.aux.p, "aux.p"), assertBigint(u.aux.q, "aux.q")],
  );
  if (p * q !== checked[i].N) {
    throw inconsistent(`aux.p * aux.q does not equal the modulus N of party ${i}`);
  }
  if (p === q) throw weak("the secret primes p and q are equal");
  checkSafePrime("p", p);
  checkSafePrime("q", q);
  checkOwnRingPedersen(i, checked[i], p, q);
  return {
    curve: CURVE,
    i,
    n,
    x,
    publicKey,
    publicShares,
    rid,
    chainCode,
    aux: { i, n, p, q, parties: checked },
  };
}

/**
 * Decodes and validates one key share: `validateKeyShare(decodeKeyShareUnchecked(json))`.
 *
 * @param json JSON text, UTF-8 bytes, or a parsed value.
 * @returns the validated key share.
 * @throws {InvalidKeyShare} see the module doc for the codes.
 * @example
 * ```ts
 * import { decodeKeyShare } from "./keyshare.ts";
 * try {
 *   decodeKeyShare({ version: 1, curve: "ed25519" });
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed"); // fields are checked first
 * }
 * ```
 */
export function decodeKeyShare(json: unknown): KeyShare {
  return validateKeyShare(decodeKeyShareUnchecked(json));
}

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * Encodes a key share in the version-1 wire form (module doc). The result holds the secret
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

// ---------------------------------------------------------------------------------------------
// Files of many accounts

/** Options of `decodeKeyShareFile`. */
export interface DecodeFileOptions {
  /** Largest file accepted, in bytes (default `MAX_FILE_BYTES`). */
  readonly maxBytes?: number;
}

/** @internal shared with `account_records.ts`. */
export function checkAccountId(id: unknown): string {
  if (typeof id !== "string" || !ACCOUNT_ID_PATTERN.test(id)) {
    const len = typeof id === "string" ? `${id.length} characters` : typeof id;
    throw malformed(`account id (${len}) does not match ${ACCOUNT_ID_PATTERN.source}`);
  }
  return id;
}

/** @internal shared with `account_records.ts`. */
export function inAccount<T>(id: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof InvalidKeyShare) {
      throw new InvalidKeyShare(e.code, `account "${id}": ${e.message}`);
    }
    throw e;
  }
}

/** @internal shared with `account_records.ts`. */
export function encodeIdentity(id: AccountIdentity, share: KeyShare): AccountIdentityJsonV1 {
  checkIdentity(id, share);
  return identityJson(id);
}

/** The wire form of identities, unchecked. @internal shared with `account_records.ts`. */
export function identityJson(id: AccountIdentity): AccountIdentityJsonV1 {
  return { secret_key: toHex(id.secretKey), public_keys: id.publicKeys.map(toHex) };
}

const IDENTITY_KEY_BYTES = 32;

/** @internal shared with `account_records.ts`. */
export function decodeIdentity(v: unknown): AccountIdentity {
  return asMalformed(() => {
    const o = expectFields<AccountIdentityJsonV1>(v, ["secret_key", "public_keys"], "identity");
    const what = "identity.public_keys";
    return {
      secretKey: decodeBytes(o.secret_key, "identity.secret_key", IDENTITY_KEY_BYTES),
      publicKeys: expectArray(o.public_keys, what, MAX_KEY_SHARE_PARTIES).map((k, j) =>
        decodeBytes(k, `${what}[${j}]`, IDENTITY_KEY_BYTES)
      ),
    };
  });
}

/** The identity must list n distinct keys, this party's being the one of its secret key. */
/** @internal shared with `account_records.ts`. */
export function checkIdentity(id: AccountIdentity, share: KeyShare): void {
  if (id.secretKey.length !== IDENTITY_KEY_BYTES) throw malformed("identity: bad secret key size");
  if (id.publicKeys.length !== share.n) {
    throw inconsistent(`identity: expected ${share.n} public keys, got ${id.publicKeys.length}`);
  }
  const hexes = id.publicKeys.map((k) => {
    if (k.length !== IDENTITY_KEY_BYTES) throw malformed("identity: bad public key size");
    return toHex(k);
  });
  if (new Set(hexes).size !== hexes.length) throw inconsistent("identity: repeated public key");
  if (hexes[share.i] !== toHex(ed25519.getPublicKey(id.secretKey))) {
    throw inconsistent(`identity: public_keys[${share.i}] is not this party's key`);
  }
}

/**
 * Encodes accounts (key share and pinned identities) as a key share file (module doc), accounts
 * sorted by id, two-space indentation, trailing newline: equal input always gives equal bytes.
 *
 * @param accounts account id -> entry (a `Map` or a plain record).
 * @returns the JSON text (encode it with `TextEncoder`, encrypt it, then write it atomically).
 * @throws {InvalidKeyShare} `malformed` for a bad account id; `inconsistent` for identities
 *   that do not fit the share; as `encodeKeyShare` otherwise.
 * @example
 * ```ts
 * import { encodeAccountsFile } from "./keyshare.ts";
 * console.assert(encodeAccountsFile({}) === "{}\n");
 * ```
 */
export function encodeAccountsFile(
  accounts: ReadonlyMap<string, AccountEntry> | Readonly<Record<string, AccountEntry>>,
): string {
  const entries = accounts instanceof Map
    ? [...(accounts as ReadonlyMap<string, AccountEntry>).entries()]
    : Object.entries(accounts as Readonly<Record<string, AccountEntry>>);
  const out = entries
    .map(([id, entry]): [string, AccountEntryJsonV1] => {
      checkAccountId(id);
      return inAccount(id, () => {
        const key_share = encodeKeyShare(entry.keyShare);
        const json: AccountEntryJsonV1 = { key_share, public_key: key_share.public_key };
        if (entry.identity) json.identity = encodeIdentity(entry.identity, entry.keyShare);
        return [id, json];
      });
    })
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // fromEntries defines own properties, so an id such as "__proto__" stays an ordinary key.
  return JSON.stringify(Object.fromEntries(out), null, 2) + "\n";
}

/**
 * Decodes and validates a key share file: every account id, every entry, every key share and
 * every pinned identity. Nothing is returned unless everything is valid.
 *
 * @param json the file's contents (text or UTF-8 bytes, after decryption).
 * @param options `maxBytes` cap, checked before parsing.
 * @returns account id -> entry, in the file's order.
 * @throws {InvalidKeyShare} see the module doc; the message names the account.
 * @example
 * ```ts
 * import { decodeAccountsFile } from "./keyshare.ts";
 * try {
 *   decodeAccountsFile('{"bad id!": {}}');
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed");
 * }
 * ```
 */
export function decodeAccountsFile(
  json: string | Uint8Array,
  options: DecodeFileOptions = {},
): Map<string, AccountEntry> {
  if (typeof json !== "string" && !(json instanceof Uint8Array)) {
    throw malformed("key share file: expected text or bytes");
  }
  const v = asMalformed(() =>
    parseJson(json, options.maxBytes ?? MAX_FILE_BYTES, "key share file")
  );
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw malformed(`key share file: expected an object of accounts, got ${kindOf(v)}`);
  }
  const ids = Object.keys(v);
  ids.forEach(checkAccountId); // all ids before any costly validation
  const out = new Map<string, AccountEntry>();
  for (const id of ids) {
    const entry = inAccount(id, (): AccountEntry => {
      const raw = (v as JsonObject)[id];
      const hasIdentity = typeof raw === "object" && raw !== null && Object.hasOwn(raw, "identity");
      const fields: (keyof AccountEntryJsonV1)[] = hasIdentity
        ? ["key_share", "public_key", "identity"]
        : ["key_share", "public_key"];
      const o = asMalformed(() => expectFields<AccountEntryJsonV1>(raw, fields, "account entry"));
      const listed = asMalformed(() => pointField(o.public_key, "public_key"));
      const identity = hasIdentity ? decodeIdentity(o.identity) : undefined;
      const keyShare = validateKeyShare(decodeParsed(o.key_share));
      if (!listed.equals(keyShare.publicKey)) {
        throw inconsistent("the entry's public_key differs from key_share.public_key");
      }
      if (!identity) return { keyShare };
      checkIdentity(identity, keyShare);
      return { keyShare, identity };
    });
    out.set(id, entry);
  }
  return out;
}

/**
 * Encodes key shares without identities as a key share file (see `encodeAccountsFile`).
 *
 * @param accounts account id -> key share (a `Map` or a plain record).
 * @returns the JSON text.
 * @throws {InvalidKeyShare} as `encodeAccountsFile`.
 * @example
 * ```ts
 * import { encodeKeyShareFile } from "./keyshare.ts";
 * console.assert(encodeKeyShareFile({}) === "{}\n");
 * ```
 */
export function encodeKeyShareFile(
  accounts: ReadonlyMap<string, KeyShare> | Readonly<Record<string, KeyShare>>,
): string {
  const entries = accounts instanceof Map
    ? [...(accounts as ReadonlyMap<string, KeyShare>).entries()]
    : Object.entries(accounts as Readonly<Record<string, KeyShare>>);
  return encodeAccountsFile(new Map(entries.map(([id, keyShare]) => [id, { keyShare }])));
}

/**
 * Decodes and validates a key share file and returns its key shares only (identities are
 * validated, then dropped; see `decodeAccountsFile`).
 *
 * @param json the file's contents (text or UTF-8 bytes, after decryption).
 * @param options `maxBytes` cap, checked before parsing.
 * @returns account id -> validated key share, in the file's order.
 * @throws {InvalidKeyShare} see the module doc; the message names the account.
 * @example
 * ```ts
 * import { decodeKeyShareFile } from "./keyshare.ts";
 * try {
 *   decodeKeyShareFile('{"bad id!": {}}');
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed");
 * }
 * ```
 */
export function decodeKeyShareFile(
  json: string | Uint8Array,
  options: DecodeFileOptions = {},
): Map<string, KeyShare> {
  const out = new Map<string, KeyShare>();
  for (const [id, e] of decodeAccountsFile(json, options)) out.set(id, e.keyShare);
  return out;
}
