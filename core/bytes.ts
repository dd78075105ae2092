/**
 * Bytes, hex and JSON on the wire, in one place: hex of bytes, integers, scalars and points;
 * canonical JSON; and the strict decoders and asserters that every received or loaded value goes
 * through before it is used (round messages, proofs, key share files, account records, stored
 * presignatures, transport frames).
 *
 * Every decoder and asserter here throws a built-in error (house style): `TypeError` for a wrong
 * type or shape, `SyntaxError` for text that does not parse, `RangeError` for a size or value
 * out of range. The message starts with the caller's label `what`, given verbatim
 * (`'field "K"'` in a round message or a proof, `"aux.parties[1].N"` in a key share file), says
 * what was expected and what was got, and never quotes a received value (it may be a secret): a
 * field name is shown only when short and plain. Each domain turns these errors into its own (a
 * round's `malformed-message` fault, a `ProofError` "malformed", an `InvalidKeyShare`
 * "malformed"); nothing here knows about those domains.
 *
 * Everything here is variable-time: hex of a secret (a key share's x, a presignature's k) is
 * only written to or read from storage, never compared with attacker input.
 *
 * @example
 * ```ts
 * import { decodeBytes, expectFields, fromHex, parseHexInt, toHex, toHexInt } from "./bytes.ts";
 * console.assert(toHex(fromHex("00ff")) === "00ff");
 * console.assert(parseHexInt(toHexInt(255n), 1, "x") === 255n);
 * const o = expectFields<{ V: string }>(JSON.parse('{"V":"abcd"}'), ["V"]);
 * console.assert(decodeBytes(o.V, 'field "V"', 2)[1] === 0xcd);
 * ```
 * @module
 */
import { MAX_COMPARED_VALUES, MAX_PAYLOAD_DEPTH, Point, Q } from "./params.ts";

// ---------------------------------------------------------------------------------------------
// Hex

const HEX_RE = /^[0-9a-f]*$/;

/**
 * Lowercase hex of bytes.
 * @param bytes the bytes.
 * @returns two lowercase hex digits per byte.
 */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/**
 * Bytes of lowercase even-length hex.
 * @param hex the text.
 * @returns its bytes.
 * @throws {SyntaxError} for anything but lowercase hex of even length.
 */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || !HEX_RE.test(hex)) {
    throw new SyntaxError("expected even-length lowercase hex");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
  return out;
}

/**
 * Lowercase even-length hex of x >= 0: the wire form of integers, read back by `parseHexInt`.
 * @param x a non-negative integer.
 * @returns minimal hex (no leading zero byte; "00" for 0).
 * @throws {RangeError} for a negative x.
 */
export function toHexInt(x: bigint): string {
  if (x < 0n) throw new RangeError("toHexInt: negative value");
  const h = x.toString(16);
  return h.length % 2 === 1 ? "0" + h : h;
}

/**
 * Parses the wire form of a non-negative integer (`toHexInt`: lowercase, even-length, minimal)
 * with a cap on its length, so that a hostile megabyte-sized field is refused before any
 * arithmetic.
 * @param hex the received value.
 * @param maxBytes the largest accepted size.
 * @param what the label of the messages.
 * @returns the integer.
 * @throws {TypeError} when not a string; {RangeError} when longer than `maxBytes`;
 *   {SyntaxError} for anything but minimal lowercase even-length hex.
 */
export function parseHexInt(hex: unknown, maxBytes: number, what = "integer"): bigint {
  if (typeof hex !== "string") throw new TypeError(`${what}: expected a hex string`);
  if (hex.length > maxBytes * 2) {
    throw new RangeError(`${what}: expected at most ${maxBytes} bytes, got ${hex.length / 2}`);
  }
  if (hex.length === 0 || hex.length % 2 !== 0 || !HEX_RE.test(hex)) {
    throw new SyntaxError(`${what}: expected even-length lowercase hex`);
  }
  if (hex.length > 2 && hex.startsWith("00")) {
    throw new SyntaxError(`${what}: expected minimal hex without a leading zero byte`);
  }
  return BigInt("0x" + hex);
}

/**
 * Signed wire form: "-" for negatives, then `toHexInt` of the magnitude.
 * @param x any integer.
 * @returns its wire form.
 */
export function toHexSigned(x: bigint): string {
  return x < 0n ? "-" + toHexInt(-x) : toHexInt(x);
}

/**
 * Parses the signed wire form of `toHexSigned` (refuses "-00").
 * @param s the received value.
 * @param maxBytes the largest accepted size of the magnitude.
 * @param what the label of the messages.
 * @returns the integer.
 * @throws as `parseHexInt`; {SyntaxError} for a negative zero.
 */
export function parseHexSigned(s: unknown, maxBytes: number, what = "integer"): bigint {
  if (typeof s !== "string") throw new TypeError(`${what}: expected a hex string`);
  if (s.startsWith("-")) {
    const v = parseHexInt(s.slice(1), maxBytes, what);
    if (v === 0n) throw new SyntaxError(`${what}: negative zero`);
    return -v;
  }
  return parseHexInt(s, maxBytes, what);
}

/**
 * Wire form of a scalar mod q: 64 lowercase hex digits (fixed width).
 * @param x a scalar in [0, q).
 * @returns 64 hex digits.
 */
export function scalarHex(x: bigint): string {
  return x.toString(16).padStart(64, "0");
}

/**
 * A scalar mod q from exactly 64 lowercase hex digits (`scalarHex`); values >= q are refused.
 * @param v the received value.
 * @param what the label of the messages.
 * @returns the scalar.
 * @throws {SyntaxError} for anything but 64 lowercase hex digits; {RangeError} for x >= q.
 */
export function decodeScalar(v: unknown, what: string): bigint {
  if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) {
    throw new SyntaxError(`${what}: expected a 32-byte scalar in lowercase hex`);
  }
  const x = BigInt("0x" + v);
  if (x >= Q) throw new RangeError(`${what}: expected a scalar below q`);
  return x;
}

/**
 * Lowercase hex of exactly `length` bytes.
 * @param v the received value.
 * @param what the label of the messages.
 * @param length the number of bytes.
 * @returns the bytes.
 * @throws {SyntaxError} for anything else.
 */
export function decodeBytes(v: unknown, what: string, length: number): Uint8Array {
  if (typeof v !== "string" || v.length !== 2 * length || !HEX_RE.test(v)) {
    throw new SyntaxError(
      `${what}: expected ${length} bytes of lowercase hex (${2 * length} hex digits)`,
    );
  }
  return fromHex(v);
}

// ---------------------------------------------------------------------------------------------
// Byte strings

/**
 * Big-endian 4-byte form of an unsigned 32-bit integer.
 * @param v an integer in [0, 2^32).
 * @returns its 4 bytes.
 * @throws {RangeError} for anything else.
 */
export function u32be(v: number): Uint8Array {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`u32be: expected an integer in [0, 2^32), got ${v}`);
  }
  return new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

/**
 * The injective encoding of a list of byte strings: each prefixed by its length (`u32be`),
 * concatenated.
 * @param parts the byte strings.
 * @returns their encoding.
 */
export function lengthPrefixed(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(u32be(p.length), at);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Points

const COMPRESSED_RE = /^0[23][0-9a-f]{64}$/;

/**
 * Wire form of a secp256k1 point: 33-byte compressed SEC 1, lowercase hex; "00" for the identity.
 * @param P the point.
 * @returns its hex.
 */
export function encodePoint(P: Point): string {
  return P.is0() ? "00" : P.toHex(true);
}

/**
 * A secp256k1 point as `encodePoint` writes it: 33-byte compressed lowercase hex on the curve,
 * or "00" for the identity (SEC 1), which decodes so that a value check can refuse it with a
 * precise code (`decodeNonZeroPoint` refuses it here).
 * @param v the received value.
 * @param what the label of the messages.
 * @returns the point.
 * @throws {SyntaxError} for anything else.
 */
export function decodePoint(v: unknown, what: string): Point {
  if (v === "00") return Point.ZERO;
  if (typeof v !== "string" || !COMPRESSED_RE.test(v)) {
    throw new SyntaxError(`${what}: expected a 33-byte compressed point in lowercase hex`);
  }
  try {
    const P = Point.fromHex(v);
    P.assertValidity();
    return P;
  } catch {
    throw new SyntaxError(`${what}: not a point of secp256k1`);
  }
}

/**
 * `decodePoint` refusing the identity.
 * @param v the received value.
 * @param what the label of the messages.
 * @returns a point other than the identity.
 * @throws {SyntaxError} as `decodePoint`; {RangeError} for the identity.
 */
export function decodeNonZeroPoint(v: unknown, what: string): Point {
  const P = decodePoint(v, what);
  if (P.is0()) throw new RangeError(`${what}: the identity is not allowed`);
  return P;
}

// ---------------------------------------------------------------------------------------------
// Asserters of in-memory values

/**
 * What a value is, for a message: "null", "an array", or its `typeof`.
 * @param v any value.
 * @returns a short description that never shows the value.
 */
export function kindOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
}

/**
 * A secp256k1 point object (not decoded from text): on the curve and not the identity.
 * @param P the value.
 * @param what the label of the messages.
 * @returns `P`.
 * @throws {TypeError} when not a point; {RangeError} for the identity or an invalid point.
 */
export function assertPoint(P: unknown, what: string): Point {
  if (!(P instanceof Point)) throw new TypeError(`${what}: expected a secp256k1 point`);
  if (P.is0()) throw new RangeError(`${what}: the point at infinity`);
  try {
    P.assertValidity();
  } catch {
    throw new RangeError(`${what}: not a point of secp256k1`);
  }
  return P;
}

/**
 * Bytes of exactly `length`.
 * @param v the value.
 * @param what the label of the messages.
 * @param length the number of bytes.
 * @returns `v`.
 * @throws {TypeError} for anything else.
 */
export function assertBytes(v: unknown, what: string, length: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== length) {
    const got = v instanceof Uint8Array ? `${v.length} bytes` : kindOf(v);
    throw new TypeError(`${what}: expected ${length} bytes, got ${got}`);
  }
  return v;
}

/**
 * A bigint.
 * @param v the value.
 * @param what the label of the messages.
 * @returns `v`.
 * @throws {TypeError} for anything else.
 */
export function assertBigint(v: unknown, what: string): bigint {
  if (typeof v !== "bigint") throw new TypeError(`${what}: expected a bigint, got ${kindOf(v)}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// JSON

/** A received JSON object, its fields unchecked. */
export type JsonObject = Readonly<Record<string, unknown>>;

/**
 * A received object that has the fields of the wire shape `W`, each still unchecked: what a
 * decoder reads before it checks every field into its decoded type.
 */
export type Unchecked<W> = { readonly [K in keyof W]: unknown };

/**
 * Parses JSON text or UTF-8 bytes with a cap on the size, checked first. The parser's own
 * message (which may quote the input, a secret) is never passed on.
 * @param text the text or its UTF-8 bytes.
 * @param maxBytes the largest accepted size (a string's length in UTF-16 units is at most its
 *   UTF-8 size, so the cap is never loosened).
 * @param what the label of the messages.
 * @returns the parsed value.
 * @throws {RangeError} when larger than `maxBytes`; {SyntaxError} for bytes that are not UTF-8
 *   or text that is not JSON.
 */
export function parseJson(text: string | Uint8Array, maxBytes: number, what: string): unknown {
  const size = typeof text === "string" ? text.length : text.byteLength;
  if (size > maxBytes) {
    throw new RangeError(`${what}: expected at most ${maxBytes} bytes, got ${size}`);
  }
  let s: string;
  if (typeof text === "string") {
    s = text;
  } else {
    try {
      s = new TextDecoder("utf-8", { fatal: true }).decode(text);
    } catch {
      throw new SyntaxError(`${what}: not UTF-8`);
    }
  }
  try {
    return JSON.parse(s);
  } catch {
    throw new SyntaxError(
      `${what}: not valid JSON (${s.length} characters, truncated or corrupt?)`,
    );
  }
}

/** A field name for a message: shown when short and plain, else only its length. */
function showKey(k: string): string {
  return /^[A-Za-z0-9._-]{1,64}$/.test(k) ? `"${k}"` : `(a name of ${k.length} characters)`;
}

/**
 * A plain object with exactly `fields` as own keys (an unexpected key is refused before a
 * missing one).
 * @param v the received value.
 * @param fields every field of the wire shape `W`.
 * @param what the label of the messages (none: the messages start with what was expected).
 * @returns `v` with the fields of `W`, their values unchecked.
 * @throws {TypeError} for anything else.
 */
export function expectFields<W = Record<string, unknown>>(
  v: unknown,
  fields: readonly (keyof W & string)[],
  what?: string,
): Unchecked<W> {
  const at = what === undefined ? "" : `${what}: `;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TypeError(`${at}expected an object, got ${kindOf(v)}`);
  }
  const names: readonly string[] = fields;
  for (const k of Object.keys(v)) {
    if (!names.includes(k)) throw new TypeError(`${at}unexpected field ${showKey(k)}`);
  }
  for (const f of fields) {
    if (!Object.hasOwn(v, f)) throw new TypeError(`${at}missing field "${f}"`);
  }
  return v as Unchecked<W>;
}

/**
 * A string of at most `maxChars` characters (the cap is checked before anything reads it).
 * @param v the received value.
 * @param what the label of the messages.
 * @param maxChars the longest accepted string.
 * @returns `v`.
 * @throws {TypeError} when not a string; {RangeError} when longer.
 */
export function expectString(v: unknown, what: string, maxChars: number): string {
  if (typeof v !== "string") throw new TypeError(`${what}: expected a string, got ${kindOf(v)}`);
  if (v.length > maxChars) {
    throw new RangeError(`${what}: expected at most ${maxChars} characters, got ${v.length}`);
  }
  return v;
}

/**
 * An array of at most `maxLength` entries, unchecked.
 * @param v the received value.
 * @param what the label of the messages.
 * @param maxLength the most entries accepted.
 * @returns `v`.
 * @throws {TypeError} when not an array; {RangeError} when longer.
 */
export function expectArray(v: unknown, what: string, maxLength: number): unknown[] {
  if (!Array.isArray(v)) throw new TypeError(`${what}: expected an array, got ${kindOf(v)}`);
  if (v.length > maxLength) {
    throw new RangeError(`${what}: expected at most ${maxLength} entries, got ${v.length}`);
  }
  return v;
}

/**
 * An array of exactly `length` entries, each decoded by `decode` (given the entry and its index,
 * it labels its own messages).
 * @param v the received value.
 * @param what the label of the messages about the array.
 * @param length the number of entries.
 * @param decode the decoder of one entry.
 * @returns the decoded entries.
 * @throws {TypeError} when not an array; {RangeError} for another length; what `decode` throws.
 */
export function decodeArray<T>(
  v: unknown,
  what: string,
  length: number,
  decode: (entry: unknown, k: number) => T,
): T[] {
  if (!Array.isArray(v)) throw new TypeError(`${what}: expected an array, got ${kindOf(v)}`);
  if (v.length !== length) {
    throw new RangeError(`${what}: expected ${length} entries, got ${v.length}`);
  }
  return v.map(decode);
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON

/**
 * Deterministic JSON (object keys sorted, fields set to `undefined` absent): what the echo
 * rounds hash of a received payload.
 * @param v a JSON-able value.
 * @returns its canonical text.
 * @throws {TypeError} for a non-finite number or a bigint.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") {
    if (typeof v === "number" && !Number.isFinite(v)) throw new TypeError("non-finite number");
    if (typeof v === "bigint") throw new TypeError("bigint in payload: encode it as hex");
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(",")}}`;
}

/**
 * Whether two received payloads have the same canonical JSON (`canonicalJson`: object keys in
 * any order, fields set to `undefined` absent), decided without recursion, so a peer's structure
 * cannot exhaust the call stack.
 *
 * @param a one payload (peer-controlled).
 * @param b the other.
 * @returns true only when both are equal and comparable: nested at most `MAX_PAYLOAD_DEPTH`
 *   deep, at most `MAX_COMPARED_VALUES` values, and nothing JSON cannot carry (a non-finite
 *   number, a bigint, a function, a symbol, `undefined` outside an object field, an object that
 *   is neither plain nor an array); false otherwise.
 * @example
 * ```ts
 * import { samePayload } from "./bytes.ts";
 * console.assert(samePayload({ a: [1, "x"], b: null }, { b: null, a: [1, "x"] }));
 * console.assert(!samePayload({ a: 1 }, { a: 2 }));
 * ```
 */
export function samePayload(a: unknown, b: unknown): boolean {
  const stack: [unknown, unknown, number][] = [[a, b, 0]];
  for (let visited = 1; stack.length > 0; visited++) {
    if (visited > MAX_COMPARED_VALUES) return false;
    const [x, y, depth] = stack.pop()!;
    const kind = jsonKind(x);
    if (kind === "bad" || kind !== jsonKind(y)) return false;
    if (kind === "scalar") {
      if (x !== y) return false;
      continue;
    }
    if (depth >= MAX_PAYLOAD_DEPTH) return false;
    if (kind === "array") {
      const xs = x as unknown[];
      const ys = y as unknown[];
      if (xs.length !== ys.length) return false;
      for (let k = 0; k < xs.length; k++) stack.push([xs[k], ys[k], depth + 1]);
      continue;
    }
    const ox = x as Record<string, unknown>;
    const oy = y as Record<string, unknown>;
    const keys = Object.keys(ox).filter((k) => ox[k] !== undefined).sort();
    const keysY = Object.keys(oy).filter((k) => oy[k] !== undefined).sort();
    if (keys.length !== keysY.length || keys.some((k, n) => k !== keysY[n])) return false;
    for (const k of keys) stack.push([ox[k], oy[k], depth + 1]);
  }
  return true;
}

function jsonKind(v: unknown): "scalar" | "array" | "object" | "bad" {
  if (v === null || typeof v === "string" || typeof v === "boolean") return "scalar";
  if (typeof v === "number") return Number.isFinite(v) ? "scalar" : "bad";
  if (typeof v !== "object") return "bad";
  if (Array.isArray(v)) return "array";
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null ? "object" : "bad";
}
