/**
 * The engine's randomness and mutators (private to `fuzz/`): a seeded PRNG, JSON text without
 * recursion, byte-level mutations, and structural mutations of JSON values that share every
 * untouched part with their parent (cheap for large values such as 200 KB proofs).
 * @module
 */
import { concatBytes } from "@noble/hashes/utils.js";
import type { Harness } from "./_engine.ts";

// ---------------------------------------------------------------------------------------------
// PRNG (SplitMix32 to seed, then sfc32)

/** A seeded pseudo-random generator: the same seed gives the same campaign. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = next();
    this.#b = next();
    this.#c = next();
    this.#d = next();
  }
  /** A 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 0x100000000 < p;
  }
  /** One element of a non-empty array. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)];
  }
  /** Fills `b` (a `RandomSource`). */
  fill(b: Uint8Array): void {
    for (let k = 0; k < b.length; k += 4) {
      const v = this.u32();
      for (let j = 0; j < 4 && k + j < b.length; j++) b[k + j] = (v >>> (8 * j)) & 0xff;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// JSON without recursion (mutated values nest deeper than JSON.stringify manages in Node)

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A piece of JSON text already made (punctuation, an object key). */
class Text {
  constructor(readonly text: string) {}
}
const COMMA = new Text(",");
const CLOSE_ARRAY = new Text("]");
const CLOSE_OBJECT = new Text("}");

/**
 * JSON text of a value, iteratively (no call-stack limit on depth). With `maxChars`, stops once
 * the text is longer (the result is then a truncated, invalid text).
 */
export function jsonText(v: unknown, maxChars = Infinity): string {
  const out: string[] = [];
  let chars = 0;
  const emit = (t: string) => {
    out.push(t);
    chars += t.length;
  };
  const stack: unknown[] = [v];
  while (stack.length > 0 && chars <= maxChars) {
    const x = stack.pop();
    if (x instanceof Text) {
      emit(x.text);
    } else if (Array.isArray(x)) {
      emit("[");
      stack.push(CLOSE_ARRAY);
      for (let k = x.length - 1; k >= 0; k--) {
        stack.push(x[k] === undefined ? null : x[k]);
        if (k > 0) stack.push(COMMA);
      }
    } else if (typeof x === "object" && x !== null) {
      const o = x as Record<string, unknown>;
      const keys = Object.keys(o).filter((k) => o[k] !== undefined);
      emit("{");
      stack.push(CLOSE_OBJECT);
      for (let k = keys.length - 1; k >= 0; k--) {
        stack.push(o[keys[k]]);
        stack.push(new Text(`${JSON.stringify(keys[k])}:`));
        if (k > 0) stack.push(COMMA);
      }
    } else if (typeof x === "number" && !Number.isFinite(x)) {
      emit("null");
    } else if (typeof x === "bigint") {
      emit(JSON.stringify(x.toString(16)));
    } else {
      emit(JSON.stringify(x) ?? "null");
    }
  }
  return out.join("");
}

/** A slot holding a JSON value: the root, an array entry or an object field. */
interface Slot {
  get(): Json;
  set(v: Json): void;
  remove(): void;
}

/** Up to `max` slots of a parsed value, breadth first, without recursion. */
export function slotsOf(root: { v: Json }, max = 4096): Slot[] {
  const slots: Slot[] = [{
    get: () => root.v,
    set: (v) => (root.v = v),
    remove: () => (root.v = null),
  }];
  for (let k = 0; k < slots.length && slots.length < max; k++) {
    const v = slots[k].get();
    if (Array.isArray(v)) {
      for (let j = 0; j < v.length && slots.length < max; j++) {
        slots.push({ get: () => v[j], set: (x) => (v[j] = x), remove: () => v.splice(j, 1) });
      }
    } else if (v !== null && typeof v === "object") {
      for (const key of Object.keys(v)) {
        if (slots.length >= max) break;
        slots.push({ get: () => v[key], set: (x) => (v[key] = x), remove: () => delete v[key] });
      }
    }
  }
  return slots;
}

/** A JSON value nested `depth` arrays or objects deep around `inner`. */
export function nest(depth: number, inner: Json, object = false): Json {
  let v = inner;
  for (let k = 0; k < depth; k++) v = object ? { a: v } : [v];
  return v;
}

// ---------------------------------------------------------------------------------------------
// Mutators

const INTERESTING_BYTES = [0, 1, 0x7f, 0x80, 0xff, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x30, 0x66];
const INTERESTING_NUMBERS = [
  0,
  -1,
  1,
  2,
  255,
  256,
  65535,
  65536,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  1.5,
  1e308,
  -0,
];
const GENERIC_TOKENS = [
  "null",
  "true",
  "false",
  "[]",
  "{}",
  '""',
  "0",
  "-1",
  "1e999",
  '"00"',
  "__proto__",
  "constructor",
  "\\u0000",
  "\\ud800",
  "0x",
  "\n",
  "\r\n",
  ",",
  ":",
];
const DEPTHS = [2, 63, 64, 65, 66, 100, 1000, 10_000];

/** UTF-8 encoder and (lenient) decoder. */
export const utf8: TextEncoder = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** The bytes of the parts, one after another. */
export const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(...parts);

/** One byte-level mutation. */
function mutateBytes(
  b: Uint8Array,
  rng: Rng,
  pool: readonly Uint8Array[],
  dict: readonly string[],
): Uint8Array {
  const at = () => rng.below(b.length + 1);
  switch (rng.below(11)) {
    case 0: {
      if (b.length === 0) return b;
      const c = b.slice();
      c[rng.below(c.length)] ^= 1 << rng.below(8);
      return c;
    }
    case 1: {
      if (b.length === 0) return b;
      const c = b.slice();
      c[rng.below(c.length)] = rng.chance(0.5) ? rng.below(256) : rng.pick(INTERESTING_BYTES);
      return c;
    }
    case 2: {
      const k = at();
      const ins = new Uint8Array(1 + rng.below(8));
      rng.fill(ins);
      return concat(b.subarray(0, k), ins, b.subarray(k));
    }
    case 3: {
      const k = at();
      const len = 1 + rng.below(rng.chance(0.8) ? 8 : Math.max(1, b.length));
      return concat(b.subarray(0, k), b.subarray(Math.min(b.length, k + len)));
    }
    case 4: {
      const from = at();
      const len = rng.below(Math.min(256, b.length - from) + 1);
      const k = at();
      return concat(b.subarray(0, k), b.subarray(from, from + len), b.subarray(k));
    }
    case 5:
      return b.subarray(0, at());
    case 6: {
      const other = rng.pick(pool);
      const from = rng.below(other.length + 1);
      const piece = other.subarray(from, from + rng.below(other.length - from + 1));
      const k = at();
      const keep = rng.chance(0.5) ? k : Math.min(b.length, k + piece.length);
      return concat(b.subarray(0, k), piece, b.subarray(keep));
    }
    case 7:
    case 8: {
      const tok = utf8.encode(rng.pick(rng.chance(0.6) && dict.length > 0 ? dict : GENERIC_TOKENS));
      const k = at();
      const replace = rng.chance(0.3) ? Math.min(b.length, k + tok.length) : k;
      return concat(b.subarray(0, k), tok, b.subarray(replace));
    }
    case 9: {
      // Replace a run of ASCII digits by an interesting number.
      const text = fromUtf8.decode(b);
      const runs = [...text.matchAll(/-?[0-9]+/g)];
      if (runs.length === 0) return b;
      const m = rng.pick(runs);
      const v = String(rng.pick(INTERESTING_NUMBERS));
      return utf8.encode(text.slice(0, m.index) + v + text.slice(m.index! + m[0].length));
    }
    default: {
      // Repeat a range many times (large inputs).
      const from = at();
      const len = 1 + rng.below(Math.min(64, Math.max(1, b.length - from)));
      const piece = b.subarray(from, from + len);
      const times = 2 + rng.below(rng.chance(0.9) ? 16 : 4096);
      const parts: Uint8Array[] = [b.subarray(0, from)];
      for (let k = 0; k < times; k++) parts.push(piece);
      parts.push(b.subarray(from));
      return concat(...parts);
    }
  }
}

/** A mutated string value (hex-aware). */
function mutateString(s: string, rng: Rng, dict: readonly string[]): Json {
  const hex = "0123456789abcdef";
  switch (rng.below(12)) {
    case 0: {
      if (s.length === 0) return "0";
      const k = rng.below(s.length);
      return s.slice(0, k) + rng.pick([...hex]) + s.slice(k + 1);
    }
    case 1:
      return s.slice(0, Math.max(0, s.length - 1 - rng.below(2)));
    case 2:
      return rng.chance(0.5) ? "00" + s : s + "0";
    case 3:
      return s.toUpperCase();
    case 4:
      return rng.pick(["0x", "-", "+", " ", "00"]) + s;
    case 5:
      return rng.pick(["", "0", "00", "1", "-1", "ff".repeat(32), "g", "\u0000", "\ud800"]);
    case 6:
      return s.repeat(2 + rng.below(rng.chance(0.9) ? 4 : 64));
    case 7:
      return Number.parseInt(s.slice(0, 12), 16) || 0;
    case 8:
      return dict.length > 0 ? rng.pick(dict) : s;
    case 9: {
      const k = rng.below(s.length + 1);
      return s.slice(0, k) + rng.pick(["\\", '"', "\n", "\u2028", "é", "/", ".."]) + s.slice(k);
    }
    case 10:
      return "f".repeat(s.length);
    default:
      return "0".repeat(s.length);
  }
}

const REMOVE = Symbol("remove");

/** Defines an own enumerable key (so "__proto__" is a key, not the prototype). */
function put(o: Record<string, Json>, key: string, value: Json): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** What one structural mutation puts in place of the value `v` (never modifies `v`). */
function replacement(
  v: Json,
  rng: Rng,
  donor: () => Json,
  dict: readonly string[],
): Json | typeof REMOVE {
  const r = rng.below(10);
  if (r === 0) return REMOVE;
  if (r === 1) return nest(rng.pick(DEPTHS), v, rng.chance(0.5));
  if (r === 2) return rng.pick(slotsOf({ v: donor() }, 512)).get();
  if (r === 3) {
    return rng.pick<Json>([null, true, false, 0, -1, "", [], {}, 2 ** 53 + 2, "00", [null], {
      "": 0,
    }]);
  }
  if (typeof v === "string") return mutateString(v, rng, dict);
  if (typeof v === "number") {
    return rng.chance(0.5) ? rng.pick(INTERESTING_NUMBERS) : v + rng.pick([-1, 1, 0.5, 2 ** 32]);
  }
  if (typeof v === "boolean") return !v;
  if (Array.isArray(v)) {
    const c = v.slice();
    switch (rng.below(5)) {
      case 0:
        if (c.length > 0) c.splice(rng.below(c.length), 1);
        break;
      case 1:
        if (c.length > 0) c.splice(rng.below(c.length), 0, rng.pick(c));
        break;
      case 2:
        c.reverse();
        break;
      case 3: {
        const times = rng.chance(0.8) ? 1 + rng.below(4) : 64 + rng.below(2048);
        for (let k = 0; k < times; k++) c.push(c.length > 0 ? c[0] : 0);
        break;
      }
      default:
        c.length = 0;
    }
    return c;
  }
  if (v !== null && typeof v === "object") {
    const o: Record<string, Json> = {};
    for (const k of Object.keys(v)) put(o, k, v[k]);
    const keys = Object.keys(o);
    switch (rng.below(4)) {
      case 0:
        if (keys.length > 0) delete o[rng.pick(keys)];
        break;
      case 1:
        put(o, rng.pick([...dict, "x", "__proto__", "constructor", ""]), rng.pick([0, "", null]));
        break;
      case 2:
        if (keys.length > 0) {
          const k = rng.pick(keys);
          const val = o[k];
          delete o[k];
          put(o, rng.chance(0.5) ? k.toUpperCase() : `${k}_`, val);
        }
        break;
      default:
        return Object.values(o);
    }
    return o;
  }
  return null;
}

/**
 * A mutant of a JSON value that shares every untouched part with it (copy on write along the
 * path to the mutated node: cheap for large values). The node is reached by a random walk that
 * stops at each level with probability 1/3.
 */
export function mutateValue(
  value: unknown,
  rng: Rng,
  donor: () => unknown,
  dict: readonly string[] = [],
): unknown {
  let v = value as Json;
  for (let round = 1 + rng.below(rng.chance(0.7) ? 2 : 4); round > 0; round--) {
    const path: (string | number)[] = [];
    let node: Json = v;
    for (;;) {
      const keys: (string | number)[] = Array.isArray(node)
        ? node.map((_, k) => k)
        : node !== null && typeof node === "object"
        ? Object.keys(node)
        : [];
      if (keys.length === 0 || rng.chance(1 / 3)) break;
      // Half the time one of the first 8 entries of an array: every entry takes the same path
      // through a decoder, and an early one is refused (or not) sooner.
      const k = Array.isArray(node) && rng.chance(0.5)
        ? rng.below(Math.min(8, keys.length))
        : rng.pick(keys);
      path.push(k);
      node = (node as Record<string | number, Json>)[k];
    }
    const r = replacement(node, rng, donor as () => Json, dict);
    v = rebuild(v, path, 0, r);
  }
  return v;
}

function rebuild(v: Json, path: (string | number)[], at: number, r: Json | typeof REMOVE): Json {
  if (at === path.length) return r === REMOVE ? null : r;
  const k = path[at];
  if (Array.isArray(v)) {
    const c = v.slice();
    const inner = rebuild(c[k as number], path, at + 1, r);
    if (r === REMOVE && at === path.length - 1) c.splice(k as number, 1);
    else c[k as number] = inner;
    return c;
  }
  const o: Record<string, Json> = {};
  for (const key of Object.keys(v as Record<string, Json>)) {
    put(o, key, (v as Record<string, Json>)[key]);
  }
  if (r === REMOVE && at === path.length - 1) delete o[k as string];
  else put(o, k as string, rebuild(o[k as string], path, at + 1, r));
  return o;
}

/** A deep copy of a JSON value (through its text: no recursion). */
export function structuredCloneJson(v: Json): Json {
  return JSON.parse(jsonText(v));
}

/** A JSON value parsed from UTF-8 bytes, if they hold one. */
export function parseJson(b: Uint8Array): { ok: true; v: Json } | { ok: false } {
  try {
    return { ok: true, v: JSON.parse(fromUtf8.decode(b)) };
  } catch {
    return { ok: false };
  }
}

/**
 * A mutant of `input`: one to four stacked mutations, structural for JSON harnesses most of the
 * time, byte-level otherwise; never longer than `maxBytes`.
 */
export function mutate(
  h: Pick<Harness, "kind" | "maxBytes" | "dictionary">,
  input: Uint8Array,
  rng: Rng,
  pool: readonly Uint8Array[],
): Uint8Array {
  const max = h.maxBytes ?? 64 * 1024;
  const dict = h.dictionary ?? [];
  if ((h.kind === "json" && rng.chance(0.75)) || h.kind === "value") {
    const parsed = parsedOf(input);
    if (parsed !== undefined) {
      const donor = () => parsedOf(rng.pick(pool)) ?? parsed;
      const b = utf8.encode(jsonText(mutateValue(parsed, rng, donor, dict), max));
      return b.length > max ? b.subarray(0, max) : b;
    }
  }
  let b = input;
  for (let k = 1 + rng.below(rng.chance(0.7) ? 2 : 4); k > 0; k--) {
    b = mutateBytes(b, rng, pool, dict);
  }
  return b.length > max ? b.subarray(0, max) : b;
}

/** Parsed JSON of pool inputs (mutants share their parents' values: never modified). */
const parsedCache = new WeakMap<Uint8Array, Json | undefined>();

function parsedOf(b: Uint8Array): Json | undefined {
  if (parsedCache.has(b)) return parsedCache.get(b);
  const p = parseJson(b);
  const v = p.ok ? p.v : undefined;
  parsedCache.set(b, v);
  return v;
}

/** UTF-8 bytes of a string. */
export const bytesOf = (s: string): Uint8Array => utf8.encode(s);

/** A string of UTF-8 bytes (invalid sequences replaced). */
export const textOf = (b: Uint8Array): string => fromUtf8.decode(b);
