/**
 * The fuzzing engine (runtime-free): the harness interface, the oracle judge of one input, a
 * time-boxed campaign loop steered by new behaviour, and the minimizer of a failing input (the
 * PRNG and the mutators over bytes, text and JSON are in `_mutate.ts`). `main.ts` runs it in
 * workers; `regressions_test.ts` replays saved inputs through the same judge.
 *
 * Oracle of every harness: the input is either accepted or refused with one of the error types
 * the harness allows; never another error (a `RangeError: Maximum call stack size exceeded` is
 * never allowed, whatever the harness), never a wrong acceptance (a harness throws
 * `OracleFailure` when an accepted input breaks its round-trip or delivery rule), and never more
 * than the harness's time bound per input.
 * @module
 */
import {
  bytesOf,
  concat,
  type Json,
  jsonText,
  mutate,
  mutateValue,
  nest,
  parseJson,
  Rng,
  slotsOf,
  structuredCloneJson,
  textOf,
  utf8,
} from "./_mutate.ts";
export { bytesOf, jsonText, mutate, mutateValue, nest, Rng, textOf };

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
  if (!v.ok && v.failure.kind === "hang") {
    // A loaded machine can stall one answer past the bound: a hang must hang twice.
    const again = await once(t, c, h.timeoutMs);
    return again.ok || again.failure.kind !== "hang" ? again : v;
  }
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
  /**
   * Keep going past the time box until this many inputs were tried, but never past `maxMs`
   * (a busy machine still reaches the count CI asks of a fast decoder).
   */
  readonly minInputs?: number;
  readonly maxMs?: number;
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
    const boxed = elapsed >= o.ms &&
      (stats.inputs >= (o.minInputs ?? 0) || elapsed >= (o.maxMs ?? o.ms));
    if (boxed || (o.maxInputs !== undefined && stats.inputs >= o.maxInputs)) break;
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
