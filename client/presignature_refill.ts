/**
 * The client's background presigning: keeps each target's pool (account, path, hash; see
 * session/presignature_pool.ts) between its low-water mark and its size, one presigning session
 * at a time, only while no signing call runs, and within a share of the CPU.
 *
 * - **When.** A target whose count falls below `lowWater` is filled up to `size`, in sessions of
 *   at most `batch` presignatures. Nothing runs while a signing call is in flight (`busy`), and
 *   a signing call that starts during a presigning session aborts it (`yieldToSigning`): the
 *   presignatures it finished stay in the pools, the rest is dropped by both parties.
 * - **How much.** After a session that took `t` ms the next one starts no earlier than
 *   `t * (1 / cpuShare - 1)` later, so presigning uses at most about `cpuShare` of the time (the
 *   client computes inline); a pool full after a session owes nothing.
 * - **Failures.** A refusal with a retry hint (the service is busy: it presigns only when idle)
 *   waits for the hint; any other failure waits 1 s, doubling to 60 s, and is reported to
 *   `onError`. The refiller never throws.
 *
 * Time is injected (`sleep`), so tests drive it without timers.
 *
 * @example
 * ```ts
 * import { createPresignatureRefiller } from "./presignature_refill.ts";
 * const counts = new Map<string, number>();
 * const refiller = createPresignatureRefiller({
 *   count: (t) => Promise.resolve(counts.get(t.accountId) ?? 0),
 *   presign: (t, n) => {
 *     counts.set(t.accountId, (counts.get(t.accountId) ?? 0) + n);
 *     return Promise.resolve();
 *   },
 * }, { size: 4, lowWater: 2, batch: 2 });
 * refiller.add({ accountId: "alice", path: [], hash: "keccak256" });
 * await refiller.idle();
 * console.assert(counts.get("alice") === 4);
 * await refiller.close();
 * ```
 * @module
 */
import { type PoolTarget, targetKey } from "../session/presignature_pool.ts";
import { MAX_PRESIGN_BATCH } from "../session/inputs.ts";

/** Settings of the background presigning. */
export interface RefillOptions {
  /** Presignatures kept per target (default 4). */
  readonly size?: number;
  /** A target below this many is filled up to `size` (default half of `size`, at least 1). */
  readonly lowWater?: number;
  /** Presignatures per session, 1 to 8 (default 2). */
  readonly batch?: number;
  /** Share of the time presigning may take, in (0, 1] (default 0.5). */
  readonly cpuShare?: number;
  /** Targets kept at most; the least recently added beyond it is forgotten (default 16). */
  readonly maxTargets?: number;
}

/** What the refiller needs from the client. */
export interface RefillDeps {
  /** The target's presignatures at the account's current epoch. */
  count(target: PoolTarget): Promise<number>;
  /** Runs one presigning session of `count` presignatures for `target`. */
  presign(target: PoolTarget, count: number, signal: AbortSignal): Promise<void>;
  /** Retry hint of a refusal, ms (undefined: not a refusal with a hint). */
  retryHintMs?(error: unknown): number | undefined;
  /** A failed session (the refiller retries). */
  onError?(error: unknown, target: PoolTarget): void;
  /** Waits `ms` or until `signal` aborts (default: a timer). */
  sleep?(ms: number, signal: AbortSignal): Promise<void>;
  /** Milliseconds now (default `performance.now`). */
  now?(): number;
}

/** Counters of the refiller. */
export interface RefillStats {
  readonly targets: number;
  readonly sessions: number;
  readonly made: number;
  readonly failures: number;
  /** Sessions aborted because a signing call started. */
  readonly yielded: number;
}

/** The background presigning of a client. */
export interface PresignatureRefiller {
  /** Keeps a pool for `target` from now on (a no-op when kept already). */
  add(target: PoolTarget): void;
  /** Looks at the pools again (after a signing call used a presignature). */
  kick(): void;
  /** A signing call starts: aborts the running session and holds the next until `release`. */
  yieldToSigning(): () => void;
  /**
   * A key change (refresh) of the client starts: as `yieldToSigning`, and resolves once the
   * running session has ended on this side (the service refuses a key change while a session
   * of the account runs there).
   */
  pause(): Promise<() => void>;
  /** Resolves when every target is at its size and nothing runs (tests, warm-up). */
  idle(): Promise<void>;
  stats(): RefillStats;
  /** Stops; resolves when the running session (if any) has ended. */
  close(): Promise<void>;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

function settings(o: RefillOptions) {
  const size = o.size ?? 4;
  if (!Number.isSafeInteger(size) || size < 1 || size > 1024) {
    throw new RangeError(`presignature pool size: expected 1 to 1024, got ${String(o.size)}`);
  }
  const lowWater = o.lowWater ?? Math.max(1, Math.floor(size / 2));
  if (!Number.isSafeInteger(lowWater) || lowWater < 1 || lowWater > size) {
    throw new RangeError(
      `presignature low-water mark: expected 1 to ${size}, got ${String(o.lowWater)}`,
    );
  }
  const batch = o.batch ?? 2;
  if (!Number.isSafeInteger(batch) || batch < 1 || batch > MAX_PRESIGN_BATCH) {
    throw new RangeError(
      `presignature batch: expected 1 to ${MAX_PRESIGN_BATCH}, got ${String(o.batch)}`,
    );
  }
  const cpuShare = o.cpuShare ?? 0.5;
  if (!(typeof cpuShare === "number" && cpuShare > 0 && cpuShare <= 1)) {
    throw new RangeError(
      `presignature cpuShare: expected a number in (0, 1], got ${String(o.cpuShare)}`,
    );
  }
  const maxTargets = o.maxTargets ?? 16;
  if (!Number.isSafeInteger(maxTargets) || maxTargets < 1) {
    throw new RangeError(
      `presignature maxTargets: expected a positive integer, got ${String(o.maxTargets)}`,
    );
  }
  return { size, lowWater, batch, cpuShare, maxTargets };
}

/**
 * Starts the background presigning (module doc).
 * @param deps the client's count and presign functions.
 * @param options size, low-water mark, batch, CPU share.
 * @throws {RangeError} for a setting out of range.
 */
export function createPresignatureRefiller(
  deps: RefillDeps,
  options: RefillOptions = {},
): PresignatureRefiller {
  const o = settings(options);
  const sleep = deps.sleep ?? defaultSleep;
  const now = deps.now ?? (() => performance.now());
  const targets = new Map<string, PoolTarget>();
  /** Targets being filled up to `size` (below the low-water mark when last looked at). */
  const filling = new Set<string>();
  const stopped = new AbortController();
  let wake = new AbortController();
  let running: AbortController | undefined;
  /** The running session, settled (never rejects). */
  let session: Promise<unknown> | undefined;
  let signing = 0;
  let idleWaiters: (() => void)[] = [];
  const counters = { sessions: 0, made: 0, failures: 0, yielded: 0 };

  const kick = () => wake.abort();

  /** The next target to fill and how many to make, or undefined when all are full. */
  async function next(): Promise<[PoolTarget, number] | undefined> {
    for (const [key, t] of targets) {
      let have: number;
      try {
        have = await deps.count(t);
      } catch (e) {
        // An account that cannot be read (gone, uncommitted): skipped, the others go on.
        deps.onError?.(e, t);
        continue;
      }
      if (have < o.lowWater) filling.add(key);
      if (have >= o.size) filling.delete(key);
      if (filling.has(key)) return [t, Math.min(o.batch, o.size - have)];
    }
    return undefined;
  }

  async function loop(): Promise<void> {
    let backoff = 0;
    /** When the next session may start (the CPU share of the last one). */
    let notBefore = -Infinity;
    while (!stopped.signal.aborted) {
      if (wake.signal.aborted) wake = new AbortController();
      const job = signing > 0 ? undefined : await next();
      if (!job) {
        if (wake.signal.aborted) continue; // kicked while looking: look again
        if (signing === 0) {
          for (const w of idleWaiters.splice(0)) w();
        }
        // No timer: an idle refiller keeps no process alive; a kick or close wakes it.
        await aborted(AbortSignal.any([wake.signal, stopped.signal]));
        continue;
      }
      // The CPU share: the pause owed by the last session is taken before the next one, so a
      // pool that is full after it waits for nothing.
      const owed = notBefore - now();
      if (owed > 0) {
        await sleep(owed, stopped.signal);
        continue; // look again: a signing call may have started, the pools changed
      }
      const [target, count] = job;
      running = new AbortController();
      const started = now();
      counters.sessions++;
      try {
        const p = deps.presign(target, count, AbortSignal.any([running.signal, stopped.signal]));
        session = p.catch(() => undefined);
        await p;
        counters.made += count;
        backoff = 0;
      } catch (e) {
        if (running.signal.aborted || stopped.signal.aborted) {
          counters.yielded += running.signal.aborted ? 1 : 0;
          continue;
        }
        counters.failures++;
        deps.onError?.(e, target);
        const hint = deps.retryHintMs?.(e);
        if (hint === undefined) backoff = Math.min(60_000, backoff === 0 ? 1_000 : backoff * 2);
        await sleep(hint ?? backoff, stopped.signal);
        continue;
      } finally {
        running = undefined;
        session = undefined;
      }
      const spent = now() - started;
      notBefore = now() + spent * (1 / o.cpuShare - 1);
    }
  }

  const done = loop();

  function yieldToSigning(): () => void {
    signing++;
    running?.abort(new DOMException("a signing call started", "AbortError"));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      signing--;
      kick();
    };
  }

  return {
    add(target) {
      const key = targetKey(target);
      if (targets.has(key)) return;
      targets.set(key, { accountId: target.accountId, path: [...target.path], hash: target.hash });
      while (targets.size > o.maxTargets) {
        const oldest = targets.keys().next().value as string;
        targets.delete(oldest);
        filling.delete(oldest);
      }
      kick();
    },
    kick,
    yieldToSigning,
    async pause() {
      const release = yieldToSigning();
      await session;
      return release;
    },
    idle() {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        kick();
      });
    },
    stats: () => ({ targets: targets.size, ...counters }),
    async close() {
      stopped.abort();
      running?.abort();
      await done;
      for (const w of idleWaiters.splice(0)) w();
      idleWaiters = [];
    },
  };
}
