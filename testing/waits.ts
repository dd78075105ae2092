/**
 * Bounded waits for tests: a test that waits for an event fails with a message naming what it
 * waited for instead of hanging. The bound is a safety net, never a timed assertion: a test
 * passes or fails on what happened, not on how long it took.
 *
 * @example
 * ```ts
 * import { bounded, WaitBoundExceeded } from "./waits.ts";
 * console.assert((await bounded(1000, "an answer", Promise.resolve(42))) === 42);
 * const never = new Promise<never>(() => {});
 * const e = await bounded(1, "nothing", never).catch((e: unknown) => e);
 * console.assert(e instanceof WaitBoundExceeded);
 * ```
 * @module
 */

/** The bound of a single wait in a unit test (in process: a hang becomes a clear failure). */
export const WAIT_MS = 10_000;

/** The error of a wait that reached its bound: `what` was awaited `ms` without settling. */
export class WaitBoundExceeded extends Error {
  /** What was awaited. */
  readonly what: string;
  /** The bound, ms. */
  readonly ms: number;
  /**
   * @param what what was awaited.
   * @param ms the bound, ms.
   */
  constructor(what: string, ms: number) {
    super(`${what}: nothing after ${ms} ms`);
    this.name = "WaitBoundExceeded";
    this.what = what;
    this.ms = ms;
  }
}

/**
 * Awaits `p`, failing (instead of hanging) when it has not settled after `ms`: a bound, not a
 * timed assertion. The timer is cleared once `p` settles, so a bounded wait keeps no process
 * alive.
 * @param ms the bound.
 * @param what what is awaited, for the failure.
 * @param p the promise.
 * @returns its value.
 * @throws {WaitBoundExceeded} naming `what` after `ms`; what `p` throws.
 * @example
 * ```ts
 * import { bounded } from "./waits.ts";
 * const v = await bounded(1000, "a resolved promise", Promise.resolve("ok"));
 * console.assert(v === "ok");
 * ```
 */
export async function bounded<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        t = setTimeout(() => reject(new WaitBoundExceeded(what, ms)), ms);
      }),
    ]);
  } finally {
    clearTimeout(t);
  }
}
