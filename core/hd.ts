/**
 * HD derivation of a threshold key: BIP-32 public (non-hardened) child derivation with the
 * SLIP-10 retry rule, applied to an n-of-n key share as an additive shift.
 *
 * The threshold public key X and the joint chain code c (both outputs of key generation) form
 * an extended public key. Child key derivation (BIP-32, "Public parent key -> public child
 * key"; SLIP-10, same section):
 *
 *   I = HMAC-SHA512(Key = c_par, Data = ser_P(K_par) || ser_32(i)),  I_L || I_R = I
 *   K_i = K_par + parse_256(I_L) * G,  c_i = I_R
 *
 * When parse_256(I_L) >= q or K_i is the point at infinity (probability about 2^-127), this
 * module follows **SLIP-10**: I = HMAC-SHA512(Key = c_par, Data = 0x01 || I_R || ser_32(i)) and
 * the split is repeated, so the child keeps the requested index. (BIP-32 instead skips to index
 * i + 1; @scure/bip32 does that. The two rules differ only on that negligible event. The
 * cggmp21 notes and the Rust reference's `slip-10` crate name the SLIP-10 rule.)
 *
 * Along a path i_1 / ... / i_d the child key is X + (sum_k I_L,k) * G. That sum mod q is the
 * **shift**: the child secret is x + shift, so exactly one party (index 0) adds the shift to its
 * secret share, and every party adds shift * G to the public key and to party 0's public share.
 *
 * Hardened indices (>= 2^31, written `'`, `h` or `H`) need the parent private key, which no
 * party holds; they are refused with a `RangeError` naming the index.
 *
 * @example
 * ```ts
 * import { deriveShift, applyShiftToShare, toXpub } from "./hd.ts";
 * import { Point, Q } from "./params.ts";
 * const x0 = 1234n, x1 = 5678n; // toy shares (tests use random ones)
 * const chainCode = new Uint8Array(32).fill(7);
 * const publicKey = Point.BASE.multiply(x0 + x1);
 * const d = deriveShift(publicKey, chainCode, "m/0/1");
 * const child = Point.BASE.multiply((x0 + x1 + d.shift) % Q);
 * console.assert(child.equals(d.childPublicKey));
 * console.assert(toXpub({ publicKey, chainCode }).startsWith("xpub"));
 * ```
 * @module
 */
import { hmac } from "@noble/hashes/hmac.js";
import { ripemd160 } from "@noble/hashes/legacy.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { concatBytes } from "@noble/hashes/utils.js";
import { createBase58check } from "@scure/base";
import { assertBytes, assertPoint, u32be } from "./bytes.ts";
import { fromBytesBE } from "./math/bigint.ts";
import { Point, Q } from "./params.ts";
import type { KeyShareCore } from "./protocols/types.ts";

/** First hardened index, 2^31. Every index of a path must be below it. */
export const HARDENED_OFFSET = 0x80000000;
/** Largest depth an extended key can carry (one byte in the serialization). */
export const MAX_DEPTH = 255;
/** Version bytes of a mainnet extended public key ("xpub"). */
export const XPUB_VERSION = 0x0488b21e;
/** Version bytes of a testnet extended public key ("tpub"). */
export const TPUB_VERSION = 0x043587cf;

const XPRV_VERSION = 0x0488ade4;
const TPRV_VERSION = 0x04358394;
/** Longest path string accepted (255 ten-digit indices with separators, plus "m"). */
const MAX_PATH_CHARS = 1 + MAX_DEPTH * 11;
/** A 78-byte payload plus 4 checksum bytes is 111 Base58 characters. */
const MAX_XPUB_CHARS = 120;

const base58check = createBase58check(sha256);

/** A derivation path: `"m/0/1/2"` or `[0, 1, 2]` (non-hardened indices only). */
export type DerivationPath = string | readonly number[];

/** HMAC-SHA512(key, data); replaceable in tests to reach the retry branch. */
export type Mac = (key: Uint8Array, data: Uint8Array) => Uint8Array;

const hmacSha512: Mac = (key, data) => hmac(sha512, key, data);

function assertChainCode(c: unknown): Uint8Array {
  return assertBytes(c, "hd: chain code", 32);
}

function assertPublicKey(P: unknown): Point {
  return assertPoint(P, "hd: public key");
}

function hardened(index: string, position: number): RangeError {
  return new RangeError(
    `hd: index ${index} at position ${position} is hardened; only non-hardened indices ` +
      `(0 to 2^31-1) can be derived from a threshold key`,
  );
}

/**
 * Parses and checks a non-hardened derivation path.
 *
 * Accepted: `"m"` (the key itself), `"m/0/1/2"` (decimal indices without leading zeros), or an
 * array of integers. Position 1 is the first index after `m`.
 *
 * @param path the path as a string or an array of indices.
 * @returns the indices, each in [0, 2^31).
 * @throws {TypeError} when `path` is neither a string nor an array of numbers.
 * @throws {SyntaxError} when the string is malformed (no leading `m`, empty or non-decimal
 *   segment, leading zero).
 * @throws {RangeError} for a hardened index (`'`, `h`, `H` or a value >= 2^31), a negative or
 *   fractional index, or a depth above 255.
 * @example
 * ```ts
 * import { parsePath } from "./hd.ts";
 * console.assert(parsePath("m/44/0/7").join() === "44,0,7");
 * console.assert(parsePath([3, 4]).length === 2);
 * ```
 */
export function parsePath(path: DerivationPath): number[] {
  if (typeof path === "string") {
    if (path.length > MAX_PATH_CHARS) {
      throw new RangeError(`hd: path of ${path.length} characters exceeds depth ${MAX_DEPTH}`);
    }
    if (path === "m") return [];
    if (!path.startsWith("m/")) {
      throw new SyntaxError('hd: expected a path of the form "m/0/1/2"');
    }
    const parts = path.slice(2).split("/");
    if (parts.length > MAX_DEPTH) {
      throw new RangeError(`hd: expected a depth of at most ${MAX_DEPTH}, got ${parts.length}`);
    }
    return parts.map((seg, k) => {
      const pos = k + 1;
      const shown = seg.length > 16 ? seg.slice(0, 16) + "..." : seg;
      if (/^\d+['hH]$/.test(seg)) throw hardened(shown, pos);
      if (!/^\d+$/.test(seg)) {
        throw new SyntaxError(
          `hd: expected a decimal index at position ${pos}, got ${JSON.stringify(shown)}`,
        );
      }
      if (seg.length > 1 && seg[0] === "0") {
        throw new SyntaxError(`hd: index at position ${pos} has a leading zero`);
      }
      if (seg.length > 10 || Number(seg) >= HARDENED_OFFSET) throw hardened(shown, pos);
      return Number(seg);
    });
  }
  if (!Array.isArray(path)) throw new TypeError("hd: expected a path string or an index array");
  if (path.length > MAX_DEPTH) {
    throw new RangeError(`hd: expected a depth of at most ${MAX_DEPTH}, got ${path.length}`);
  }
  return path.map((i: unknown, k) => {
    const pos = k + 1;
    if (typeof i !== "number") throw new TypeError(`hd: index at position ${pos} is not a number`);
    if (!Number.isInteger(i) || i < 0) {
      throw new RangeError(`hd: index at position ${pos} is not a non-negative integer`);
    }
    if (i >= HARDENED_OFFSET) throw hardened(String(i), pos);
    return i;
  });
}

/** The 4-byte key identifier prefix of BIP-32: HASH160(ser_P(P))[0..4] as a big-endian u32. */
export function fingerprint(publicKey: Point): number {
  const h = ripemd160(sha256(assertPublicKey(publicKey).toBytes(true)));
  return ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
}

/** One step of public child derivation. */
export interface ChildStep {
  /** parse_256(I_L) of the accepted I (the tweak of this step, in [0, q)). */
  readonly tweak: bigint;
  /** K_i = K_par + tweak * G. */
  readonly publicKey: Point;
  /** c_i = I_R. */
  readonly chainCode: Uint8Array;
}

/**
 * CKDpub of BIP-32 with the SLIP-10 retry rule (module doc): the child of (K_par, c_par) at
 * a non-hardened `index`.
 *
 * @param parent K_par (not the identity).
 * @param chainCode c_par (32 bytes).
 * @param index in [0, 2^31).
 * @param mac HMAC-SHA512; a test seam only (to force the retry branch). Leave it out.
 * @returns the tweak, child key and child chain code.
 * @throws {RangeError} for a hardened or invalid index.
 * @example
 * ```ts
 * import { ckdPub } from "./hd.ts";
 * import { Point } from "./params.ts";
 * const step = ckdPub(Point.BASE, new Uint8Array(32), 0);
 * console.assert(step.publicKey.equals(Point.BASE.add(Point.BASE.multiply(step.tweak))));
 * ```
 */
export function ckdPub(
  parent: Point,
  chainCode: Uint8Array,
  index: number,
  mac: Mac = hmacSha512,
): ChildStep {
  assertPublicKey(parent);
  assertChainCode(chainCode);
  const [i] = parsePath([index]);
  const idx = u32be(i);
  let I = mac(chainCode, concatBytes(parent.toBytes(true), idx));
  for (;;) {
    if (!(I instanceof Uint8Array) || I.length !== 64) throw new TypeError("hd: bad MAC output");
    const IL = I.subarray(0, 32);
    const IR = I.slice(32);
    const tweak = fromBytesBE(IL);
    if (tweak < Q) {
      // I_L = 0 is a valid tweak (SLIP-10 rejects only I_L >= q and the identity).
      const child = tweak === 0n ? parent : parent.add(Point.BASE.multiply(tweak));
      if (!child.is0()) return { tweak, publicKey: child, chainCode: IR };
    }
    // SLIP-10: I = HMAC-SHA512(c_par, 0x01 || I_R || ser_32(i)), then split again.
    I = mac(chainCode, concatBytes(new Uint8Array([1]), IR, idx));
  }
}

/** Result of deriving a threshold key along a path. */
export interface HdDerivation {
  /** The indices of the path. */
  readonly path: readonly number[];
  /** sum of I_L along the path, mod q: the child secret is the parent secret plus this. */
  readonly shift: bigint;
  /** The child public key, parent + shift * G. */
  readonly childPublicKey: Point;
  /** The child chain code (I_R of the last step; the parent's for an empty path). */
  readonly childChainCode: Uint8Array;
  /** Depth of the child below the given key (the path length; 0 for the key itself). */
  readonly depth: number;
  /** Fingerprint of the child's parent (0 for an empty path), as in the BIP-32 serialization. */
  readonly parentFingerprint: number;
  /** The last index of the path (0 for an empty path). */
  readonly index: number;
}

/**
 * Derives the additive shift of a non-hardened path for a threshold public key.
 *
 * @param publicKey the parent public key (the threshold key X, or any extended key's point).
 * @param chainCode the parent chain code (32 bytes).
 * @param path `"m/..."` or an index array; non-hardened only, depth <= 255.
 * @returns the shift, child public key and chain code, and the BIP-32 metadata of the child.
 * @throws {TypeError} / {SyntaxError} / {RangeError} as `parsePath`; {TypeError} for a chain
 *   code that is not 32 bytes.
 * @example
 * ```ts
 * import { deriveShift } from "./hd.ts";
 * import { Point } from "./params.ts";
 * const X = Point.BASE.multiply(42n);
 * const d = deriveShift(X, new Uint8Array(32), [0, 5]);
 * console.assert(d.childPublicKey.equals(X.add(Point.BASE.multiply(d.shift))));
 * console.assert(d.depth === 2 && d.index === 5);
 * ```
 */
export function deriveShift(
  publicKey: Point,
  chainCode: Uint8Array,
  path: DerivationPath,
): HdDerivation {
  assertPublicKey(publicKey);
  assertChainCode(chainCode);
  const indices = parsePath(path);
  let P = publicKey;
  let c = chainCode;
  let shift = 0n;
  let parentFingerprint = 0;
  for (const i of indices) {
    parentFingerprint = fingerprint(P);
    const step = ckdPub(P, c, i);
    shift = (shift + step.tweak) % Q;
    P = step.publicKey;
    c = step.chainCode;
  }
  return {
    path: indices,
    shift,
    childPublicKey: P,
    childChainCode: Uint8Array.from(c),
    depth: indices.length,
    parentFingerprint,
    index: indices.length ? indices[indices.length - 1] : 0,
  };
}

/**
 * Applies an HD shift to one party's key share (n-of-n, additive sharing).
 *
 * Party 0 adds `shift` to its secret share x_0; every party adds shift * G to the public key and
 * to X_0 in `publicShares`; the other parties' secrets stay as they are. The sum of the new
 * shares is the child secret x + shift. The chain code becomes `childChainCode` when given.
 * Every other field (aux info included) is copied unchanged.
 *
 * @param share this party's key share (any object extending `KeyShareCore`).
 * @param shift the `shift` of `deriveShift` (reduced mod q).
 * @param childChainCode the child chain code to record (optional).
 * @returns a new share object; the input is not modified.
 * @throws {RangeError} when `shift` is not in [0, q), or when the derived key or X_0 is the
 *   identity (a negligible event that leaves no usable key).
 * @example
 * ```ts
 * import { applyShiftToShare, deriveShift } from "./hd.ts";
 * import { Point, Q } from "./params.ts";
 * const x = [11n, 22n];
 * const publicShares = x.map((v) => Point.BASE.multiply(v));
 * const publicKey = publicShares[0].add(publicShares[1]);
 * const base = { curve: "secp256k1" as const, n: 2, publicKey, publicShares,
 *   rid: new Uint8Array(48), chainCode: new Uint8Array(32) };
 * const d = deriveShift(publicKey, base.chainCode, "m/1");
 * const s0 = applyShiftToShare({ ...base, i: 0, x: x[0] }, d.shift, d.childChainCode);
 * const s1 = applyShiftToShare({ ...base, i: 1, x: x[1] }, d.shift, d.childChainCode);
 * console.assert(Point.BASE.multiply((s0.x + s1.x) % Q).equals(d.childPublicKey));
 * ```
 */
export function applyShiftToShare<T extends KeyShareCore>(
  share: T,
  shift: bigint,
  childChainCode?: Uint8Array,
): T {
  if (typeof shift !== "bigint" || shift < 0n || shift >= Q) {
    throw new RangeError("hd: expected a shift in [0, q)");
  }
  const chainCode = childChainCode === undefined
    ? share.chainCode
    : Uint8Array.from(assertChainCode(childChainCode));
  if (shift === 0n) return { ...share, chainCode };
  const T = Point.BASE.multiply(shift);
  const publicKey = share.publicKey.add(T);
  const X0 = share.publicShares[0].add(T);
  if (publicKey.is0() || X0.is0()) throw new RangeError("hd: the derived key is degenerate");
  const publicShares = share.publicShares.map((X, j) => (j === 0 ? X0 : X));
  const x = share.i === 0 ? (share.x + shift) % Q : share.x;
  return { ...share, x, publicKey, publicShares, chainCode };
}

/**
 * Derives this party's share of the child key at `path`: `deriveShift` then
 * `applyShiftToShare` with the child chain code.
 *
 * @param share this party's key share.
 * @param path non-hardened path below the share's key.
 * @returns the shifted share (`publicKey` is the child public key).
 * @throws as `deriveShift` and `applyShiftToShare`.
 * @example
 * ```ts
 * import { deriveChildShare, deriveShift } from "./hd.ts";
 * import { Point } from "./params.ts";
 * const X = Point.BASE.multiply(9n);
 * const share = { curve: "secp256k1" as const, i: 0, n: 1, x: 9n, publicKey: X,
 *   publicShares: [X], rid: new Uint8Array(48), chainCode: new Uint8Array(32) };
 * const child = deriveChildShare(share, "m/3");
 * console.assert(child.publicKey.equals(deriveShift(X, share.chainCode, "m/3").childPublicKey));
 * ```
 */
export function deriveChildShare<T extends KeyShareCore>(share: T, path: DerivationPath): T {
  const d = deriveShift(share.publicKey, share.chainCode, path);
  return applyShiftToShare(share, d.shift, d.childChainCode);
}

/** The fields of a BIP-32 extended public key. */
export interface ExtendedPublicKey {
  /** Version bytes (`XPUB_VERSION` or `TPUB_VERSION`). */
  readonly version: number;
  readonly depth: number;
  readonly parentFingerprint: number;
  /** Child number of this key (0 at depth 0). */
  readonly index: number;
  readonly chainCode: Uint8Array;
  readonly publicKey: Point;
}

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`hd: expected ${what} to be a 32-bit unsigned integer`);
  }
  return v;
}

/**
 * Serializes an extended public key (BIP-32 "Serialization format", Base58Check, 78 bytes).
 *
 * @param key the public key and chain code; `depth`, `parentFingerprint`, `index` default to 0
 *   (a root key such as the threshold key), `version` to `XPUB_VERSION`.
 * @returns the `xpub...` (or `tpub...`) string.
 * @throws {TypeError} for a bad point or chain code; {RangeError} for out-of-range metadata or
 *   a depth-0 key with a non-zero index or parent fingerprint.
 * @example
 * ```ts
 * import { fromXpub, toXpub } from "./hd.ts";
 * import { Point } from "./params.ts";
 * const xpub = toXpub({ publicKey: Point.BASE, chainCode: new Uint8Array(32) });
 * console.assert(fromXpub(xpub).publicKey.equals(Point.BASE));
 * ```
 */
export function toXpub(key: {
  readonly publicKey: Point;
  readonly chainCode: Uint8Array;
  readonly depth?: number;
  readonly parentFingerprint?: number;
  readonly index?: number;
  readonly version?: number;
}): string {
  const P = assertPublicKey(key.publicKey);
  const c = assertChainCode(key.chainCode);
  const depth = key.depth ?? 0;
  if (!Number.isInteger(depth) || depth < 0 || depth > MAX_DEPTH) {
    throw new RangeError(`hd: expected a depth in 0..${MAX_DEPTH}`);
  }
  const fp = u32(key.parentFingerprint ?? 0, "the parent fingerprint");
  const index = u32(key.index ?? 0, "the index");
  const version = u32(key.version ?? XPUB_VERSION, "the version");
  if (version === XPRV_VERSION || version === TPRV_VERSION) {
    throw new RangeError("hd: expected public version bytes, got private ones");
  }
  if (depth === 0 && (fp !== 0 || index !== 0)) {
    throw new RangeError("hd: a depth-0 key must have index 0 and parent fingerprint 0");
  }
  const out = new Uint8Array(78);
  const view = new DataView(out.buffer);
  view.setUint32(0, version);
  out[4] = depth;
  view.setUint32(5, fp);
  view.setUint32(9, index);
  out.set(c, 13);
  out.set(P.toBytes(true), 45);
  return base58check.encode(out);
}

/**
 * Parses an extended public key with every check of BIP-32 test vector 5: length, checksum,
 * version, a compressed point on the curve, and depth-0 consistency.
 *
 * @param xpub the Base58Check string.
 * @param versions accepted version bytes (default: xpub and tpub).
 * @returns the decoded fields.
 * @throws {TypeError} when `xpub` is not a string; {SyntaxError} for any invalid encoding,
 *   including an extended private key (refused: this module never handles private keys).
 * @example
 * ```ts
 * import { fromXpub } from "./hd.ts";
 * const k = fromXpub(
 *   "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
 * );
 * console.assert(k.depth === 0 && k.chainCode.length === 32);
 * ```
 */
export function fromXpub(
  xpub: string,
  versions: readonly number[] = [XPUB_VERSION, TPUB_VERSION],
): ExtendedPublicKey {
  if (typeof xpub !== "string") throw new TypeError("hd: expected an extended key string");
  if (xpub.length > MAX_XPUB_CHARS || !/^[1-9A-HJ-NP-Za-km-z]+$/.test(xpub)) {
    throw new SyntaxError(
      `hd: expected a Base58 extended key of at most ${MAX_XPUB_CHARS} characters`,
    );
  }
  let raw: Uint8Array;
  try {
    raw = base58check.decode(xpub);
  } catch {
    throw new SyntaxError("hd: extended key has a bad Base58Check checksum");
  }
  if (raw.length !== 78) {
    throw new SyntaxError(`hd: expected a 78-byte extended key, got ${raw.length} bytes`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const version = view.getUint32(0);
  const depth = raw[4];
  const parentFingerprint = view.getUint32(5);
  const index = view.getUint32(9);
  const chainCode = raw.slice(13, 45);
  const key = raw.subarray(45);
  if (version === XPRV_VERSION || version === TPRV_VERSION || key[0] === 0) {
    throw new SyntaxError("hd: expected an extended public key, got a private one");
  }
  if (!versions.includes(version)) {
    throw new SyntaxError(`hd: unknown extended key version 0x${version.toString(16)}`);
  }
  if (depth === 0 && (parentFingerprint !== 0 || index !== 0)) {
    throw new SyntaxError("hd: depth-0 key with a non-zero index or parent fingerprint");
  }
  if (key[0] !== 2 && key[0] !== 3) {
    throw new SyntaxError(`hd: expected a compressed public key, got prefix ${key[0]}`);
  }
  let publicKey: Point;
  try {
    publicKey = Point.fromBytes(key);
    publicKey.assertValidity();
  } catch {
    throw new SyntaxError("hd: the extended key's public key is not on secp256k1");
  }
  return { version, depth, parentFingerprint, index, chainCode, publicKey };
}

/**
 * Derives a child extended public key from an extended public key string.
 *
 * @param xpub the parent (`xpub...` or `tpub...`).
 * @param path non-hardened path below it; the child depth is the parent's plus its length.
 * @returns the child's serialization, with the parent's version bytes.
 * @throws as `fromXpub` and `deriveShift`; {RangeError} when the child depth exceeds 255.
 * @example
 * ```ts
 * import { deriveXpub } from "./hd.ts";
 * const child = deriveXpub(
 *   "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
 *   "m/1",
 * ); // BIP-32 test vector 1, chain m/0H/1
 * console.assert(child.startsWith("xpub6ASuArnXKPbf"));
 * ```
 */
export function deriveXpub(xpub: string, path: DerivationPath): string {
  const parent = fromXpub(xpub);
  const indices = parsePath(path);
  if (parent.depth + indices.length > MAX_DEPTH) {
    throw new RangeError(`hd: child depth ${parent.depth + indices.length} exceeds ${MAX_DEPTH}`);
  }
  const d = deriveShift(parent.publicKey, parent.chainCode, indices);
  if (d.depth === 0) return toXpub(parent);
  return toXpub({
    version: parent.version,
    publicKey: d.childPublicKey,
    chainCode: d.childChainCode,
    depth: parent.depth + d.depth,
    parentFingerprint: d.parentFingerprint,
    index: d.index,
  });
}

/**
 * The extended public key of a threshold key share (depth 0: the threshold key is the root).
 *
 * @param share any key share (`publicKey` and `chainCode` are read).
 * @param version `XPUB_VERSION` (default) or `TPUB_VERSION`.
 * @returns the `xpub...` string every party computes identically.
 * @example
 * ```ts
 * import { keyShareXpub } from "./hd.ts";
 * import { Point } from "./params.ts";
 * const xpub = keyShareXpub({ publicKey: Point.BASE, chainCode: new Uint8Array(32) });
 * console.assert(xpub.startsWith("xpub661MyMwAqRbc"));
 * ```
 */
export function keyShareXpub(
  share: Pick<KeyShareCore, "publicKey" | "chainCode">,
  version: number = XPUB_VERSION,
): string {
  return toXpub({ publicKey: share.publicKey, chainCode: share.chainCode, version });
}
