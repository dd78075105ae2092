/**
 * Bytes, hex and JSON on the wire, in one place: hex of bytes, integers, scalars and points, and
 * canonical JSON (the form the echo rounds hash, and the equality of two received payloads).
 *
 * Everything here is variable-time: hex of a secret (a key share's x, a presignature's k) is
 * only written to or read from storage, never compared with attacker input.
 *
 * @example
 * ```ts
 * import { canonicalJson, fromHex, parseHexInt, toHex, toHexInt } from "./bytes.ts";
 * console.assert(toHex(fromHex("00ff")) === "00ff");
 * console.assert(parseHexInt(toHexInt(255n), 1, "x") === 255n);
 * console.assert(canonicalJson({ b: 1, a: [2] }) === '{"a":[2],"b":1}');
 * ```
 * @module
 */
import { MAX_COMPARED_VALUES, MAX_PAYLOAD_DEPTH, type Point } from "./params.ts";

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

// ---------------------------------------------------------------------------------------------
// Points

/**
 * Wire form of a secp256k1 point: 33-byte compressed SEC 1, lowercase hex; "00" for the identity.
 * @param P the point.
 * @returns its hex.
 */
export function encodePoint(P: Point): string {
  return P.is0() ? "00" : P.toHex(true);
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
