/**
 * The client's allowance of protocol sessions (private to `client/`): calls beyond
 * `maxConcurrent` wait in a bounded local queue, in order, instead of failing at the service;
 * a call the service refuses for load or rate (RESOURCE_EXHAUSTED with a retry hint) waits
 * for the hint and tries again, as long as the call's deadline allows. Waiting honours the
 * call's `AbortSignal` and its deadline.
 *
 * | what happens | error |
 * |---|---|
 * | the queue already holds `maxQueued` calls | `RESOURCE_EXHAUSTED`, at once |
 * | the deadline passes while queued, or before a retry hint would let the call try again | `DEADLINE_EXCEEDED` (the service's own refusal when its hint does not fit) |
 * | the signal aborts while queued or between tries | `CANCELED` |
 *
 * The default allowance is the service's default per caller (`rate_limit.max_sessions_per_caller`:
 * 2); a caller with another allowance configures the client to match.
 *
 * @example
 * ```ts
 * import { createCallQueue } from "./_call_queue.ts";
 * const queue = createCallQueue({ maxConcurrent: 1, maxQueued: 4 });
 * const order: number[] = [];
 * await Promise.all([1, 2, 3].map((k) => queue.run({}, async () => void order.push(k))));
 * console.assert(order.join() === "1,2,3");
 * ```
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** Options of {@link createCallQueue}. */
export interface CallQueueOptions {
  /** Calls running at once (default 2). */
  readonly maxConcurrent?: number;
  /** Calls waiting at most (default 64); one more is refused at once. */
  readonly maxQueued?: number;
  /** Tries after the first, on RESOURCE_EXHAUSTED with a retry hint (default 8). */
  readonly maxRetries?: number;
  /** Longest wait for one retry hint, ms (default 60 000). */
  readonly maxRetryDelayMs?: number;
  /** Milliseconds clock (default `performance.now`). */
  readonly clock?: () => number;
}

/** What bounds one call. */
export interface CallBudget {
  readonly signal?: AbortSignal;
  /** Time allowed for the whole call, queue and retries included, ms. */
  readonly timeoutMs?: number;
}

/** One try of a call: its signal (the caller's and the deadline's) and the time left. */
export interface CallTry {
  readonly signal: AbortSignal;
  /** Time left before the call's deadline, ms (undefined: none). */
  readonly timeoutMs?: number;
  /** 0 for the first try. */
  readonly attempt: number;
}

/** The queue (module doc). */
export interface CallQueue {
  /**
   * Runs `call` within the allowance: waits for a slot, retries on a fitting hint.
   * @throws {ConnectError} RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, CANCELED (module doc), or what
   *   the last try threw.
   */
  run<T>(budget: CallBudget, call: (t: CallTry) => Promise<T>): Promise<T>;
  /** Calls running. */
  active(): number;
  /** Calls waiting for a slot. */
  queued(): number;
}

/**
 * The retry hint of a refusal, ms: `retry-after-ms`, else `retry-after` (seconds).
 * @param e a thrown error.
 * @returns the hint, or undefined when `e` is not a RESOURCE_EXHAUSTED with one.
 */
export function retryHintMs(e: unknown): number | undefined {
  if (!(e instanceof ConnectError) || e.code !== Code.ResourceExhausted) return undefined;
  const ms = Number(e.metadata.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const s = Number(e.metadata.get("retry-after"));
  return Number.isFinite(s) && s > 0 ? s * 1000 : undefined;
}

function positiveInt(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what}: expected an integer >= 0`);
  return v;
}

/**
 * Creates a call queue (module doc).
 * @param options the allowance, queue bound, retries and clock.
 * @returns the queue.
 * @throws {RangeError} for a bound that is not an integer (maxConcurrent >= 1).
 */
export function createCallQueue(options: CallQueueOptions = {}): CallQueue {
  const maxConcurrent = positiveInt(options.maxConcurrent ?? 2, "maxConcurrent");
  if (maxConcurrent < 1) throw new RangeError("maxConcurrent: expected an integer >= 1");
  const maxQueued = positiveInt(options.maxQueued ?? 64, "maxQueued");
  const maxRetries = positiveInt(options.maxRetries ?? 8, "maxRetries");
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 60_000;
  const clock = options.clock ?? (() => performance.now());
  let running = 0;
  const waiting: (() => void)[] = [];

  const deadlineError = (what: string) =>
    new ConnectError(`the call's deadline passed ${what}`, Code.DeadlineExceeded);
  const cancelled = (what: string, reason: unknown) =>
    new ConnectError(`the call was cancelled ${what}`, Code.Canceled, undefined, undefined, reason);

  /** Waits for `ms`, or for the signal (rejects). */
  function pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Takes a slot, waiting in line when none is free. */
  function acquire(signal: AbortSignal, deadline: AbortSignal | undefined): Promise<void> {
    if (running < maxConcurrent && waiting.length === 0) {
      running++;
      return Promise.resolve();
    }
    if (waiting.length >= maxQueued) {
      return Promise.reject(
        new ConnectError(
          `the client's queue is full: ${waiting.length} calls wait for one of ` +
            `${maxConcurrent} sessions; retry later`,
          Code.ResourceExhausted,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const ahead = waiting.length;
      const go = () => {
        signal.removeEventListener("abort", onAbort);
        running++;
        resolve();
      };
      const onAbort = () => {
        const k = waiting.indexOf(go);
        if (k >= 0) waiting.splice(k, 1);
        reject(
          deadline?.aborted
            ? deadlineError(`while it waited in the client's queue (${ahead} ahead)`)
            : cancelled("while it waited in the client's queue", signal.reason),
        );
      };
      waiting.push(go);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  function release(): void {
    running--;
    const next = waiting.shift();
    if (next) next();
  }

  async function run<T>(budget: CallBudget, call: (t: CallTry) => Promise<T>): Promise<T> {
    const t0 = clock();
    // Not AbortSignal.timeout(): its timer does not keep Node's event loop alive, and a call
    // waiting in the queue may be all a program waits for.
    const timer = new AbortController();
    const t = budget.timeoutMs === undefined ? undefined : setTimeout(
      () => timer.abort(new DOMException("the call's deadline passed", "TimeoutError")),
      Math.max(0, budget.timeoutMs),
    );
    const deadline = t === undefined ? undefined : timer.signal;
    const signal = AbortSignal.any([budget.signal, deadline].filter((s) => s !== undefined));
    // Whole milliseconds, at least 1: Connect's timeout header takes an integer.
    const left = () =>
      budget.timeoutMs === undefined
        ? undefined
        : Math.max(1, Math.floor(budget.timeoutMs - (clock() - t0)));
    try {
      await acquire(signal, deadline);
    } catch (e) {
      clearTimeout(t);
      throw e;
    }
    try {
      for (let attempt = 0;; attempt++) {
        if (signal.aborted) {
          throw deadline?.aborted
            ? deadlineError("before the call could run")
            : cancelled("before it could run", signal.reason);
        }
        try {
          return await call({ signal, timeoutMs: left(), attempt });
        } catch (e) {
          const hint = retryHintMs(e);
          const rest = left();
          if (
            hint === undefined || attempt >= maxRetries || hint > maxRetryDelayMs ||
            (rest !== undefined && hint >= rest)
          ) throw e;
          try {
            await pause(hint * (1 + Math.random() / 4), signal);
          } catch {
            throw deadline?.aborted ? e : cancelled("while it waited to retry", signal.reason);
          }
        }
      }
    } finally {
      clearTimeout(t);
      release();
    }
  }

  return { run, active: () => running, queued: () => waiting.length };
}
