/**
 * The fuzzing engine (runtime-free): a seeded PRNG, mutators over bytes, text and JSON, the
 * oracle judge of one input, a time-boxed campaign loop steered by new behaviour, and the
 * minimizer of a failing input. `main.ts` runs it in workers; `regressions_test.ts` replays saved
 * inputs through the same judge.
 *
 * Oracle of every harness: the input is either accepted or refused with one of the error types
 * the harness allows; never another error (a `RangeError: Maximum call stack size exceeded` is
 * never allowed, whatever the harness), never a wrong acceptance (a harness throws
 * `OracleFailure` when an accepted input breaks its round-trip or delivery rule), and never more
 * than the harness's time bound per input.
 * @module
 */
import { concatBytes } from "@noble/hashes/utils.js";

/** A failure of the oracle, thrown by a harness (an accepted input that should not be). */
export class OracleFailure extends Error {
  override readonly name = "OracleFailure";
}

/** The kinds of oracle failure. */
export type FailureKind = "untyped-error" | "wrongly-accepted" | "slow" | "hang";

/** One failure found, with the input that shows it. */
export interface Failure {
  readonly kind: FailureKind;
  /** Stable identity of the failure (kind, error name, message shape): minimization keeps it. */
  readonly signature: string;
  readonly message: string;
  readonly input: Uint8Array;
}

/** What the engine fuzzes: one harness = one target and its oracle. */
export interface Harness {
  readonly name: string;
  /** The oracle in one sentence: what the target may do with any input. */
  readonly oracle: string;
  /**
   * How inputs are mutated: raw bytes, UTF-8 text, JSON text (structural and byte mutations), or
   * a JSON value (structural mutations only: the target takes a parsed value).
   */
  readonly kind: "bytes" | "text" | "json" | "value";
  /** A fast decoder: CI requires at least 100k inputs on it. */
  readonly fast: boolean;
  /** Default time box of a campaign, in seconds. */
  readonly seconds: number;
  /** Time allowed for one input, in milliseconds. */
  readonly timeoutMs: number;
  /** Largest mutated input, in bytes (default 64 KiB). */
  readonly maxBytes?: number;
  /** Tokens the mutators insert (field names, keywords). */
  readonly dictionary?: readonly string[];
  /** Builds the target once per process (fixtures, seeds). */
  setup(): Target | Promise<Target>;
}

/** A harness set up in this process. */
export interface Target {
  /** Valid inputs made by the project's own code. */
  readonly seeds: readonly Uint8Array[];
  /** Whether an error thrown by `run` is a refusal the oracle allows. */
  allowed(e: unknown): boolean;
  /**
   * Runs one input. Returns when it was accepted (optionally a string naming the outcome, for
   * feedback); throws an allowed error when refused, `OracleFailure` when the oracle is broken.
   */
  run(input: Uint8Array): unknown;
  /**
   * For a harness of kind "value": runs a parsed value (the campaign then mutates values, not
   * text, and never serializes an input unless it fails). `run` must equal
   * `runValue(JSON.parse(text))`; {@link valueTarget} makes both.
   */
  runValue?(value: unknown): unknown;
  /** A structured mutation of its own (e.g. a recipe), or null to use the generic mutators. */
  mutate?(input: Uint8Array, rng: Rng): Uint8Array | null;
  /** Releases what setup made. */
  close?(): void | Promise<void>;
}

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

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

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

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(...parts);

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
      const k = rng.pick(keys);
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

function structuredCloneJson(v: Json): Json {
  return JSON.parse(jsonText(v));
}

function parseJson(b: Uint8Array): { ok: true; v: Json } | { ok: false } {
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
  h: Harness,
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

// ---------------------------------------------------------------------------------------------
// The judge of one input

/** Whether `e` is the engine's own stack exhaustion (never an allowed refusal). */
export function isStackOverflow(e: unknown): boolean {
  return e instanceof RangeError && /call stack|too much recursion/i.test(e.message);
}

/**
 * Shape of an error message: quoted text, hex runs and digits folded, so that one cause is one
 * signature whatever the input it quotes.
 */
function shape(message: string): string {
  return message.replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, "<s>").replace(/[0-9a-f]{8,}/gi, "<hex>")
    .replace(/[0-9]+/g, "#").slice(0, 100);
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${e.name}${typeof code === "string" ? `(${code})` : ""}: ${e.message}`;
  }
  return `non-error thrown: ${String(e)}`;
}

/** What one input did: accepted or refused (with a signature for feedback), or a failure. */
export type Verdict =
  | { readonly ok: true; readonly signature: string; readonly ms: number }
  | { readonly ok: false; readonly failure: Failure; readonly ms: number };

const now = () => performance.now();

/** One input: how to run it, and its bytes (made only when it fails). */
interface Case {
  run(): unknown;
  bytes(): Uint8Array;
}

const byteCase = (t: Target, input: Uint8Array): Case => ({
  run: () => t.run(input),
  bytes: () => input,
});

async function once(t: Target, c: Case, timeoutMs: number): Promise<Verdict> {
  const t0 = now();
  let signature = "accepted";
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    let r = c.run();
    if (r instanceof Promise) {
      const timeout = new Promise<"hang">((resolve) => {
        timer = setTimeout(() => resolve("hang"), timeoutMs);
      });
      r = await Promise.race([r, timeout]);
      if (r === "hang") {
        const failure: Failure = {
          kind: "hang",
          signature: "hang",
          message: `no answer within ${timeoutMs} ms`,
          input: c.bytes(),
        };
        return { ok: false, failure, ms: now() - t0 };
      }
    }
    if (typeof r === "string") signature = `accepted: ${r}`;
  } catch (e) {
    const ms = now() - t0;
    if (e instanceof OracleFailure) {
      const failure: Failure = {
        kind: "wrongly-accepted",
        signature: `wrongly-accepted: ${shape(e.message)}`,
        message: e.message,
        input: c.bytes(),
      };
      return { ok: false, failure, ms };
    }
    if (isStackOverflow(e) || !t.allowed(e)) {
      const name = e instanceof Error ? e.name : typeof e;
      const failure: Failure = {
        kind: "untyped-error",
        signature: `untyped-error: ${name}: ${shape(e instanceof Error ? e.message : "")}`,
        message: describe(e),
        input: c.bytes(),
      };
      return { ok: false, failure, ms };
    }
    signature = `refused: ${shape(describe(e))}`;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  return { ok: true, signature, ms: now() - t0 };
}

/**
 * Runs one input through the oracle. An input slower than the bound is run once more, and is a
 * failure ("slow") only when it is slow again (a pause of the machine is not a finding).
 */
export async function judge(
  h: Harness,
  t: Target,
  input: Uint8Array | Case,
): Promise<Verdict> {
  const c = input instanceof Uint8Array ? byteCase(t, input) : input;
  const v = await once(t, c, h.timeoutMs);
  if (!v.ok || v.ms <= h.timeoutMs) return v;
  const again = await once(t, c, h.timeoutMs);
  if (!again.ok || again.ms <= h.timeoutMs) return again;
  const failure: Failure = {
    kind: "slow",
    signature: "slow",
    message: `took ${again.ms.toFixed(0)} ms, the bound is ${h.timeoutMs} ms`,
    input: c.bytes(),
  };
  return { ok: false, failure, ms: again.ms };
}

// ---------------------------------------------------------------------------------------------
// Minimization

/**
 * The smallest input found that fails with the same signature: structural shrinking for JSON
 * (drop entries and fields, replace values by null, lift a value out of its container), then
 * removal of byte ranges, halving their size down to one byte. Hangs and slow inputs are kept as
 * they are (each attempt could take the whole bound).
 */
export async function minimize(
  h: Harness,
  t: Target,
  f: Failure,
  budget: { attempts: number; ms: number } = { attempts: 2000, ms: 20_000 },
  heartbeat: () => void = () => {},
): Promise<Failure> {
  if (f.kind === "hang" || f.kind === "slow") return f;
  const deadline = now() + budget.ms;
  let attempts = 0;
  let best = f;
  const tryInput = async (cand: Uint8Array): Promise<boolean> => {
    if (attempts >= budget.attempts || now() > deadline || cand.length >= best.input.length) {
      return false;
    }
    attempts++;
    heartbeat();
    const v = await once(t, byteCase(t, cand), h.timeoutMs);
    if (!v.ok && v.failure.signature === best.signature) {
      best = v.failure;
      return true;
    }
    return false;
  };
  if (h.kind === "json" || h.kind === "value") {
    for (let progress = true; progress && attempts < budget.attempts && now() < deadline;) {
      progress = false;
      const parsed = parseJson(best.input);
      if (!parsed.ok) break;
      const count = slotsOf({ v: parsed.v }).length;
      for (let k = count - 1; k >= 0 && !progress; k--) {
        for (const op of ["remove", "lift", "null", "halve"] as const) {
          const root = { v: structuredCloneJson(parsed.v) };
          const slot = slotsOf(root)[k];
          if (!slot) continue;
          const v = slot.get();
          if (op === "remove") slot.remove();
          else if (op === "null") {
            if (v === null) continue;
            slot.set(null);
          } else if (op === "lift") {
            const inner = Array.isArray(v)
              ? v[0]
              : v !== null && typeof v === "object"
              ? Object.values(v)[0]
              : undefined;
            if (inner === undefined) continue;
            slot.set(inner);
          } else {
            // Halve a chain of single-entry containers (deep nesting) in one step.
            let depth = 0;
            let inner: Json = v;
            for (;;) {
              const next: Json | undefined = Array.isArray(inner) && inner.length === 1
                ? inner[0]
                : inner !== null && typeof inner === "object" && !Array.isArray(inner) &&
                    Object.keys(inner).length === 1
                ? Object.values(inner)[0]
                : undefined;
              if (next === undefined) break;
              inner = next;
              depth++;
            }
            if (depth < 4) continue;
            const object = !Array.isArray(v);
            slot.set(nest(Math.floor(depth / 2), inner, object));
          }
          if (await tryInput(utf8.encode(jsonText(root.v)))) {
            progress = true;
            break;
          }
        }
      }
    }
  }
  for (let size = best.input.length >> 1; size >= 1; size >>= 1) {
    for (let at = 0; at + size <= best.input.length;) {
      const b = best.input;
      if (!(await tryInput(concat(b.subarray(0, at), b.subarray(at + size))))) at += size;
      if (attempts >= budget.attempts || now() > deadline) return best;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// A campaign

/** Counters of a campaign. */
export interface CampaignStats {
  inputs: number;
  accepted: number;
  refused: number;
  /** Distinct behaviours seen (signatures). */
  behaviours: number;
  ms: number;
}

/** Options of {@link campaign}. */
export interface CampaignOptions {
  readonly seed: number;
  /** Time box in milliseconds. */
  readonly ms: number;
  /** Stop after this many inputs (default unbounded). */
  readonly maxInputs?: number;
  /**
   * Called before input number `index` runs, and with -1 before each attempt of a minimization
   * (the watchdog of `main.ts` records it: a campaign is deterministic, so the input a hang
   * stopped at is found again by replaying up to its index).
   */
  readonly onInput?: (index: number) => void;
  /** Called now and then with the counters. */
  readonly onProgress?: (s: CampaignStats) => void;
  /** Called with each new failure: once as found, then once minimized. */
  readonly onFailure?: (f: Failure, minimized: boolean) => void;
  /** Replay: stop before running input number `stopBefore` and return it. */
  readonly stopBefore?: number;
  /** Distinct failures after which the campaign stops (default 5). */
  readonly maxFailures?: number;
}

const POOL_MAX = 512;

/**
 * Fuzzes one harness for a time box: seeds first, then mutants of a pool that starts as the
 * seeds and keeps every input that showed a new behaviour (a refusal or an outcome not seen
 * before), and now and then an accepted one.
 */
export async function campaign(
  h: Harness,
  t: Target,
  o: CampaignOptions,
): Promise<{ stats: CampaignStats; failures: Failure[]; stopped?: Uint8Array }> {
  const rng = new Rng(o.seed);
  const seeds = t.seeds.length > 0 ? t.seeds : [new Uint8Array(0)];
  const pool: Uint8Array[] = [...seeds];
  const values = h.kind === "value" && t.runValue
    ? seeds.map((b) => JSON.parse(textOf(b)) as unknown)
    : null;
  const seen = new Set<string>();
  const failures: Failure[] = [];
  const failed = new Set<string>();
  const stats: CampaignStats = { inputs: 0, accepted: 0, refused: 0, behaviours: 0, ms: 0 };
  const t0 = now();
  let lastProgress = t0;
  for (let k = 0;; k++) {
    const elapsed = now() - t0;
    if (elapsed >= o.ms || (o.maxInputs !== undefined && stats.inputs >= o.maxInputs)) break;
    if (failures.length >= (o.maxFailures ?? 5)) break;
    let input: Uint8Array | Case;
    let keep: () => void;
    if (values) {
      const v = k < seeds.length
        ? values[k]
        : mutateValue(rng.pick(values), rng, () => rng.pick(values), h.dictionary);
      let b: Uint8Array | null = null;
      input = { run: () => t.runValue!(v), bytes: () => (b ??= bytesOf(jsonText(v))) };
      keep = () => addToPool(values, seeds.length, v, rng);
    } else {
      let b: Uint8Array;
      if (k < seeds.length) b = seeds[k];
      else {
        const parent = rng.pick(pool);
        b = (t.mutate && rng.chance(0.7) ? t.mutate(parent, rng) : null) ??
          mutate(h, parent, rng, pool);
      }
      input = b;
      keep = () => addToPool(pool, seeds.length, b, rng);
    }
    if (k === o.stopBefore) {
      return { stats, failures, stopped: input instanceof Uint8Array ? input : input.bytes() };
    }
    o.onInput?.(k);
    const v = await judge(h, t, input);
    stats.inputs++;
    if (!v.ok) {
      if (!failed.has(v.failure.signature)) {
        failed.add(v.failure.signature);
        o.onFailure?.(v.failure, false);
        const small = await minimize(h, t, v.failure, undefined, () => o.onInput?.(-1));
        failures.push(small);
        o.onFailure?.(small, true);
      }
      continue;
    }
    if (v.signature.startsWith("accepted")) stats.accepted++;
    else stats.refused++;
    if (!seen.has(v.signature)) {
      seen.add(v.signature);
      stats.behaviours = seen.size;
      keep();
    } else if (v.signature.startsWith("accepted") && rng.chance(0.05)) {
      keep();
    }
    const t1 = now();
    if (t1 - lastProgress > 1000) {
      lastProgress = t1;
      stats.ms = t1 - t0;
      o.onProgress?.({ ...stats });
    }
  }
  stats.ms = now() - t0;
  return { stats, failures };
}

function addToPool<T>(pool: T[], keep: number, input: T, rng: Rng): void {
  if (pool.length < POOL_MAX) pool.push(input);
  else pool[keep + rng.below(POOL_MAX - keep)] = input;
}

// ---------------------------------------------------------------------------------------------
// Helpers for harnesses

/** An `allowed` predicate from a list of error classes (stack exhaustion is never allowed). */
export function allowOnly(
  ...classes: (abstract new (...args: never[]) => Error)[]
): (e: unknown) => boolean {
  return (e) => !isStackOverflow(e) && classes.some((c) => e instanceof c);
}

/** UTF-8 bytes of a string. */
export const bytesOf = (s: string): Uint8Array => utf8.encode(s);

/** A string of UTF-8 bytes (invalid sequences replaced). */
export const textOf = (b: Uint8Array): string => fromUtf8.decode(b);

/**
 * A target of kind "value" from a function of a parsed value: `run` parses the bytes (a saved
 * input) and calls it; text that is not JSON is refused with SyntaxError (the transport refuses
 * it before any decoder).
 */
export function valueTarget(o: {
  seeds: readonly unknown[];
  allowed: (e: unknown) => boolean;
  runValue: (v: unknown) => unknown;
}): Target {
  return {
    seeds: o.seeds.map((v) => bytesOf(jsonText(v))),
    allowed: (e) => e instanceof SyntaxError || o.allowed(e),
    runValue: o.runValue,
    run(input) {
      let v: unknown;
      try {
        v = JSON.parse(textOf(input));
      } catch {
        throw new SyntaxError("not JSON");
      }
      return o.runValue(v);
    },
  };
}
