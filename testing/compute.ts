/**
 * TEST-ONLY: a compute pool of the test worker (platform/_compute_worker_test_helper.ts: work
 * counters, crash hooks) whose events a test can wait for, so tests of cancellation and failure
 * wait for events instead of time.
 * @module
 */
import {
  type ComputePool,
  type ComputePoolEvent,
  type ComputePoolOptions,
  createComputePool,
} from "../platform/compute_pool.ts";

/** The test worker module. */
export const TEST_WORKER: URL = new URL(
  "../platform/_compute_worker_test_helper.ts",
  import.meta.url,
);

/** A pool and its events. */
export interface WatchedPool {
  readonly pool: ComputePool;
  /** Every event so far, in order. */
  readonly events: ComputePoolEvent[];
  /**
   * The first event from index `since` on (default: the next one) that satisfies `pred`.
   * @throws {Error} naming `what` when none comes within `boundMs` (default 120 s): a bound to
   *   fail instead of hanging, not a timed assertion.
   */
  next(
    what: string,
    pred: (e: ComputePoolEvent) => boolean,
    since?: number,
    boundMs?: number,
  ): Promise<ComputePoolEvent>;
}

/**
 * Starts a pool of the test worker and waits for it to be ready.
 * @param workers its size.
 * @param options its `workerData` (crash hooks), another listener of its events (metrics), and
 *   the pool's `randomizers` and `accounts` options.
 * @returns the pool and its events.
 */
export async function watchedPool(
  workers: number,
  options:
    & { workerData?: unknown; onEvent?: (e: ComputePoolEvent) => void }
    & Pick<ComputePoolOptions, "randomizers" | "accounts"> = {},
): Promise<WatchedPool> {
  const events: ComputePoolEvent[] = [];
  const waiters: { pred: (e: ComputePoolEvent) => boolean; resolve(e: ComputePoolEvent): void }[] =
    [];
  const pool = createComputePool({
    workers,
    workerUrl: TEST_WORKER,
    workerData: options.workerData,
    randomizers: options.randomizers,
    accounts: options.accounts,
    onEvent: (e) => {
      events.push(e);
      options.onEvent?.(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    },
  });
  await pool.ready();
  const next = (
    what: string,
    pred: (e: ComputePoolEvent) => boolean,
    since = events.length,
    boundMs = 120_000,
  ): Promise<ComputePoolEvent> => {
    const seen = events.slice(since).find(pred);
    if (seen) return Promise.resolve(seen);
    let t: ReturnType<typeof setTimeout> | undefined;
    const waiter = { pred, resolve: (_e: ComputePoolEvent) => {} };
    return new Promise<ComputePoolEvent>((resolve, reject) => {
      waiter.resolve = (e) => {
        clearTimeout(t);
        resolve(e);
      };
      waiters.push(waiter);
      t = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`${what}: no such event in ${boundMs} ms`));
      }, boundMs);
    });
  };
  return { pool, events, next };
}
