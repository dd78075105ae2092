/**
 * Per-caller request rate limits and session concurrency limits of the sign-service.
 *
 * - {@link createRateLimiter}: a token bucket per caller. A bucket holds up to `burst` tokens
 *   and refills at `perMinute` tokens per minute; each request takes one. Memory is bounded:
 *   a bucket that has refilled completely is the same as no bucket and is dropped (each call
 *   drops such buckets from the least recently used end), and at most `maxBuckets` exist at once (the least recently used is evicted when a
 *   new caller arrives at the cap; that caller's next bucket starts full, a leniency bounded
 *   by `burst`). Callers are authenticated before they are limited, so the key space is the
 *   callers file's ids.
 * - {@link createSessionLimiter}: counts running protocol sessions, globally and per caller,
 *   and hands out an idempotent release function per admitted session.
 *
 * Both throw {@link RateLimited} with `retryAfterMs`. The clock is injected (milliseconds,
 * monotonic preferred), so tests need no timers.
 *
 * @example
 * ```ts
 * import { createRateLimiter, createSessionLimiter } from "./rate_limit.ts";
 * let now = 0;
 * const rate = createRateLimiter({ perMinute: 60, burst: 2, clock: () => now });
 * rate.take("app");
 * rate.take("app");
 * try {
 *   rate.take("app");
 * } catch (e) {
 *   console.assert((e as { retryAfterMs: number }).retryAfterMs === 1000);
 * }
 * now += 1000;
 * rate.take("app");
 * const sessions = createSessionLimiter({ maxConcurrent: 8, maxPerCaller: 2 });
 * const release = sessions.acquire("app");
 * release();
 * ```
 * @module
 */

import { RateLimited } from "./errors.ts";

/** Options of {@link createRateLimiter}. */
export interface RateLimiterOptions {
  /** Sustained requests per caller per minute (> 0). */
  readonly perMinute: number;
  /** Bucket size: requests a caller may make at once after being idle (integer >= 1). */
  readonly burst: number;
  /** Milliseconds clock (default `performance.now`). */
  readonly clock?: () => number;
  /** Most buckets kept at once (default 10 000). */
  readonly maxBuckets?: number;
}

/** A per-caller token bucket limiter. */
export interface RateLimiter {
  /**
   * Takes `cost` tokens from `callerId`'s bucket.
   *
   * @param callerId the authenticated caller's id.
   * @param cost tokens to take (default 1; at most `burst`).
   * @throws {RateLimited} `rate-limited`, with the wait until enough tokens are back.
   */
  take(callerId: string, cost?: number): void;
  /** Number of buckets held (for metrics and tests). */
  size(): number;
}

interface Bucket {
  tokens: number;
  at: number;
}

function positiveInt(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`${what}: expected an integer >= 1, got ${String(v)}`);
  }
  return v;
}

/**
 * Creates a per-caller token bucket limiter (module doc).
 *
 * @param options rate, burst, clock and the bucket cap.
 * @returns the limiter.
 * @throws {RangeError} for a rate, burst or cap that is not a positive number.
 * @example
 * ```ts
 * import { createRateLimiter } from "./rate_limit.ts";
 * const rate = createRateLimiter({ perMinute: 6, burst: 1, clock: () => 0 });
 * rate.take("a");
 * rate.take("b"); // buckets are per caller
 * ```
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { perMinute } = options;
  if (typeof perMinute !== "number" || !Number.isFinite(perMinute) || perMinute <= 0) {
    throw new RangeError(`perMinute: expected a number > 0, got ${String(perMinute)}`);
  }
  const burst = positiveInt(options.burst, "burst");
  const maxBuckets = positiveInt(options.maxBuckets ?? 10_000, "maxBuckets");
  const clock = options.clock ?? (() => performance.now());
  const perMs = perMinute / 60_000;
  /** Insertion order = least recently used first (a bucket is re-inserted on every use). */
  const buckets = new Map<string, Bucket>();

  /** Drops refilled buckets from the least recently used end; stops at the first one that is
   * not full, so a call costs O(1) amortized. */
  function sweep(now: number): void {
    for (const [id, b] of buckets) {
      if (b.tokens + (now - b.at) * perMs < burst) return;
      buckets.delete(id);
    }
  }

  function take(callerId: string, cost = 1): void {
    if (typeof callerId !== "string") throw new TypeError("callerId: expected a string");
    if (!Number.isSafeInteger(cost) || cost < 1 || cost > burst) {
      throw new RangeError(`cost: expected an integer in 1..${burst}, got ${String(cost)}`);
    }
    const now = clock();
    sweep(now);
    let b = buckets.get(callerId);
    if (b) {
      buckets.delete(callerId);
      // A clock that goes backwards refills nothing.
      b.tokens = Math.min(burst, b.tokens + Math.max(0, now - b.at) * perMs);
      b.at = Math.max(b.at, now);
    } else {
      if (buckets.size >= maxBuckets) {
        const oldest = buckets.keys().next().value as string;
        buckets.delete(oldest);
      }
      b = { tokens: burst, at: now };
    }
    buckets.set(callerId, b);
    if (b.tokens < cost) {
      const waitMs = (cost - b.tokens) / perMs;
      throw new RateLimited(
        "rate-limited",
        waitMs,
        `rate limit of ${perMinute} requests per minute (burst ${burst}) reached`,
      );
    }
    b.tokens -= cost;
  }

  return { take, size: () => buckets.size };
}

/** Options of {@link createSessionLimiter}. */
export interface SessionLimiterOptions {
  /** Sessions running at once over all callers (integer >= 1). */
  readonly maxConcurrent: number;
  /** Sessions one caller may run at once (integer >= 1, default 2). */
  readonly maxPerCaller?: number;
  /** The `retryAfterMs` hint of a refusal (default 1000). */
  readonly retryAfterMs?: number;
}

/** A concurrency limiter for protocol sessions. */
export interface SessionLimiter {
  /**
   * Admits one session of `callerId`.
   *
   * @returns the release function: call it once the session ends (later calls do nothing).
   * @throws {RateLimited} `too-many-sessions` or `too-many-caller-sessions`.
   */
  acquire(callerId: string): () => void;
  /** Sessions running, over all callers or for one caller. */
  active(callerId?: string): number;
}

/**
 * Creates a session concurrency limiter (module doc).
 *
 * @param options the global and per-caller maxima and the retry hint.
 * @returns the limiter.
 * @throws {RangeError} for maxima that are not integers >= 1.
 * @example
 * ```ts
 * import { createSessionLimiter } from "./rate_limit.ts";
 * const limiter = createSessionLimiter({ maxConcurrent: 1 });
 * const release = limiter.acquire("a");
 * try {
 *   limiter.acquire("b");
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "too-many-sessions");
 * }
 * release();
 * console.assert(limiter.active() === 0);
 * ```
 */
export function createSessionLimiter(options: SessionLimiterOptions): SessionLimiter {
  const maxConcurrent = positiveInt(options.maxConcurrent, "maxConcurrent");
  const maxPerCaller = positiveInt(options.maxPerCaller ?? 2, "maxPerCaller");
  const retryAfterMs = positiveInt(options.retryAfterMs ?? 1000, "retryAfterMs");
  const perCaller = new Map<string, number>();
  let total = 0;

  function acquire(callerId: string): () => void {
    if (typeof callerId !== "string") throw new TypeError("callerId: expected a string");
    const mine = perCaller.get(callerId) ?? 0;
    if (mine >= maxPerCaller) {
      throw new RateLimited(
        "too-many-caller-sessions",
        retryAfterMs,
        `this caller already runs ${mine} sessions (at most ${maxPerCaller})`,
      );
    }
    if (total >= maxConcurrent) {
      throw new RateLimited(
        "too-many-sessions",
        retryAfterMs,
        `the service already runs ${total} sessions (at most ${maxConcurrent})`,
      );
    }
    perCaller.set(callerId, mine + 1);
    total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      total--;
      const n = (perCaller.get(callerId) ?? 1) - 1;
      if (n <= 0) perCaller.delete(callerId);
      else perCaller.set(callerId, n);
    };
  }

  function active(callerId?: string): number {
    return callerId === undefined ? total : perCaller.get(callerId) ?? 0;
  }

  return { acquire, active };
}
