/**
 * Admission control of the sign-service's protocol sessions: the service knows the work it has
 * admitted and what each kind of session costs, and refuses at once a request that could not
 * start before its deadline, instead of letting it queue, time out, and take others with it.
 *
 * - **Cost per kind**: the worker time a session of that kind takes (the sum of its jobs'
 *   busy time on the compute pool, wall time: a machine shared with other load makes it
 *   longer), starting from measured defaults ({@link DEFAULT_COSTS_MS}, docs/performance.md)
 *   and following what sessions of this process measure: a running average over the sessions
 *   that end well, and a session that failed after using more than the estimate raises it to
 *   what it used (when nothing completes, the estimate still learns that it was too low).
 * - **Backlog**: over the admitted sessions, what each is still expected to take (its kind's
 *   cost less the worker time it has used so far). The expected start of a new session is the
 *   backlog spread over the workers, `backlog / workers`: the pool runs the steps of older
 *   sessions first (their admission number is their priority), so a new session waits for
 *   about that much.
 * - **Refusal**: when the queue is not empty and `now + backlog / workers + cost(kind)` is after
 *   the request's deadline, the request is refused with {@link RateLimited} `overloaded` and a
 *   retry hint (when, with no new arrivals, the backlog will have drained enough). A request
 *   with an empty queue ahead of it is always admitted. The deadline is the caller's own
 *   (Connect / gRPC timeout), capped by the protocol's round timeout: a session whose first
 *   step waits longer than that is timed out by its peer anyway.
 *
 * - **Adaptive concurrency**: the worker time is not all a session waits for: its peer
 *   computes too, and on a machine shared with other work (clients on the same host, other
 *   processes) the workers get less than their cores. So the controller also keeps a limit on
 *   the sessions admitted at once, found from what the sessions' deadlines say (additive
 *   increase, multiplicative decrease, as TCP and concurrency limiters do): a session that ends
 *   well within half of its time budget raises the limit by 1/limit; one that ends past 80% of
 *   it lowers the limit by 10%; one that misses its deadline lowers it by 25%. Beyond the limit a
 *   request is refused at once (`overloaded`), its hint the expected time for one session to
 *   end. Sessions thus stop being admitted where they would only make every session late,
 *   whatever the bottleneck is.
 *
 * - **Background work** (presigning, {@link BACKGROUND_KINDS}): admitted only when no
 *   foreground session (signing, key generation, refresh) is running, and while fewer than
 *   `backgroundShare` of the workers (at least one session) run background sessions; refused
 *   otherwise with `overloaded` and the expected time for the foreground work to end. Its jobs
 *   are queued after every foreground session's (priorities from 2^40), so a signing request
 *   that arrives while presignatures are being made runs first.
 *
 * The per-caller token bucket and the session counts of rate_limit.ts stay in front of this.
 * Deadlines are relative (time left) and the backlog is counted in worker time; the clock is
 * injected, so tests need no timers.
 *
 * @example
 * ```ts
 * import { createAdmission } from "./admission.ts";
 * const admission = createAdmission({ workers: 2, costMs: { sign: 1000 } });
 * const a = admission.admit("sign", 10_000);
 * const b = admission.admit("sign", 10_000); // backlog 1 s over 2 workers: starts at ~0.5 s
 * try {
 *   admission.admit("sign", 1_500); // would start at 1 s and end at 2 s: after its deadline
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "overloaded");
 * }
 * a.finish("ok");
 * b.finish("ok");
 * ```
 * @module
 */
import { RateLimited } from "./errors.ts";

/** The kinds of protocol session the service runs. */
export type SessionKind = "sign" | "keygen" | "refresh" | "presign" | "sign_message";

/** The session kinds, for metrics. */
export const SESSION_KINDS: readonly SessionKind[] = [
  "sign",
  "keygen",
  "refresh",
  "presign",
  "sign_message",
];

/**
 * Background kinds: work done ahead for later requests (presignatures), admitted only when no
 * other session runs and on at most a share of the workers, their jobs after every other
 * session's (module doc, "Background work").
 */
export const BACKGROUND_KINDS: ReadonlySet<SessionKind> = new Set(["presign"]);

/** Priorities of background sessions start here, after any foreground session's. */
const BACKGROUND_PRIORITY = 2 ** 40;

/**
 * Worker time per session on the service's side at start, ms, before this process has measured
 * its own (it follows its sessions from the first one on). Signing: the service's CPU per
 * signature in the load benchmark on the reference machine (2 cores; docs/performance.md, Deno
 * with OpenSSL through FFI and Node alike, about 0.9 s). Keygen and refresh (their two safe
 * primes and the aux-info proofs) are estimates from the components' figures, not measured
 * end to end.
 */
export const DEFAULT_COSTS_MS: Readonly<Record<"deno" | "node", Record<SessionKind, number>>> = {
  deno: { sign: 900, keygen: 12_000, refresh: 10_000, presign: 1_700, sign_message: 20 },
  node: { sign: 900, keygen: 12_000, refresh: 10_000, presign: 1_700, sign_message: 20 },
};

/** Options of {@link createAdmission}. */
export interface AdmissionOptions {
  /** Workers the sessions' jobs run on (the compute pool's size). */
  readonly workers: number;
  /** Expected worker time per session at start, ms (kinds left out: `DEFAULT_COSTS_MS.deno`). */
  readonly costMs?: Partial<Record<SessionKind, number>>;
  /** Longest accepted wait, ms, also for requests without a deadline (the round timeout). */
  readonly maxWaitMs?: number;
  /** Weight of one session's measured cost in the running estimate (default 0.2). */
  readonly learningRate?: number;
  /** Most sessions admitted at once, the adaptive limit's ceiling (default 16). */
  readonly maxConcurrent?: number;
  /** The adaptive limit's start (default: four per worker, at most `maxConcurrent`). */
  readonly initialLimit?: number;
  /** Share of the workers background sessions may use, (0, 1] (default 0.5; at least one). */
  readonly backgroundShare?: number;
  /** Milliseconds clock (default `performance.now`). */
  readonly clock?: () => number;
}

/** One admitted session. */
export interface AdmissionTicket {
  /** Its admission number: the priority of its jobs (older first). */
  readonly priority: number;
  readonly kind: SessionKind;
  /** The expected wait before its first job runs, ms, as estimated at admission. */
  readonly expectedStartMs: number;
  /** Adds worker time the session used (each job's busy time), ms. */
  charge(busyMs: number): void;
  /**
   * Ends the session (later calls do nothing). A session that ended `ok` teaches the estimate
   * its kind's cost; one that failed or was cancelled teaches it only when it used more. An
   * `ok` session and a `late` one (its deadline passed) move the concurrency limit (module doc).
   */
  finish(outcome: "ok" | "failed" | "late"): void;
}

/** The admission controller (module doc). */
export interface Admission {
  /**
   * Admits a session or refuses it at once.
   * @param kind what the session runs.
   * @param deadlineMs time left before the caller's deadline, ms (undefined: none given).
   * @returns the ticket; `finish` it when the session ends.
   * @throws {RateLimited} `overloaded`, with the wait after which a retry may be admitted.
   */
  admit(kind: SessionKind, deadlineMs?: number): AdmissionTicket;
  /**
   * Refuses now what `admit` would refuse now, admitting nothing: the first call of a session
   * (OpenRoom) is refused before it costs a room and a gateway token.
   * @throws {RateLimited} `overloaded`, as `admit`.
   */
  probe(kind: SessionKind, deadlineMs?: number): void;
  /** The current expected worker time of one session of `kind`, ms. */
  cost(kind: SessionKind): number;
  /** Expected worker time the admitted sessions still need, ms. */
  backlogMs(): number;
  /** Expected wait of a session admitted now, ms (`backlog / workers`). */
  expectedStartMs(): number;
  /** Sessions admitted and not finished. */
  active(): number;
  /** The adaptive concurrency limit now (module doc). */
  limit(): number;
}

function positive(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new RangeError(`${what}: expected a number > 0, got ${String(v)}`);
  }
  return v;
}

interface Admitted {
  readonly kind: SessionKind;
  spent: number;
}

/** Adaptive limit: a good end below this share of the budget raises it, above the next lowers. */
const FAST_SHARE = 0.5;
const SLOW_SHARE = 0.8;

/**
 * Creates an admission controller (module doc).
 * @param options workers, starting costs, the longest wait and the learning rate.
 * @returns the controller.
 * @throws {RangeError} for a worker count, cost, wait or rate out of range.
 */
export function createAdmission(options: AdmissionOptions): Admission {
  const workers = positive(options.workers, "workers");
  const maxWaitMs = positive(options.maxWaitMs ?? 60_000, "maxWaitMs");
  const rate = options.learningRate ?? 0.2;
  if (!(rate > 0 && rate <= 1)) throw new RangeError(`learningRate: expected (0, 1], got ${rate}`);
  const costs: Record<SessionKind, number> = { ...DEFAULT_COSTS_MS.deno };
  for (const [k, v] of Object.entries(options.costMs ?? {})) {
    costs[k as SessionKind] = positive(v, `costMs.${k}`);
  }
  const clock = options.clock ?? (() => performance.now());
  const share = options.backgroundShare ?? 0.5;
  if (!(share > 0 && share <= 1)) {
    throw new RangeError(
      `backgroundShare: expected (0, 1], got ${String(options.backgroundShare)}`,
    );
  }
  const maxBackground = Math.max(1, Math.floor(workers * share));
  let admittedBackground = 0;
  const ceiling = positive(options.maxConcurrent ?? 16, "maxConcurrent");
  let limit = Math.min(ceiling, positive(options.initialLimit ?? 4 * workers, "initialLimit"));
  /** Running average of a session's wall time, ms (for the hint of the limit's refusals). */
  let wallMs = costs.sign;
  const running = new Set<Admitted>();
  let admitted = 0;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

  /** Work still expected of the admitted sessions, ms (background work runs last: not counted). */
  const backlogMs = () => {
    let sum = 0;
    for (const s of running) {
      if (!BACKGROUND_KINDS.has(s.kind)) sum += Math.max(0, costs[s.kind] - s.spent);
    }
    return sum;
  };

  /** Refuses background work unless the foreground is idle and the share has room. */
  function admitBackground(kind: SessionKind): void {
    let background = 0;
    for (const s of running) if (BACKGROUND_KINDS.has(s.kind)) background++;
    const busy = running.size > background;
    const foreground = backlogMs();
    if (busy || background >= maxBackground) {
      const retryAfterMs = Math.max(busy ? foreground / workers : costs[kind], 100);
      throw new RateLimited(
        "overloaded",
        retryAfterMs,
        busy
          ? `the service presigns only when idle: retry in ${seconds(retryAfterMs)}`
          : `the service presigns on at most ${maxBackground} of its workers; retry in ` +
            seconds(retryAfterMs),
      );
    }
  }

  /** Refuses what `admit` would refuse; returns the expected start otherwise. */
  function check(kind: SessionKind, deadlineMs?: number): number {
    if (!Object.hasOwn(costs, kind)) throw new TypeError(`unknown session kind ${String(kind)}`);
    const background = BACKGROUND_KINDS.has(kind);
    if (background) admitBackground(kind);
    const budget = Math.min(maxWaitMs, deadlineMs ?? Infinity);
    const backlog = background ? 0 : backlogMs();
    const start = backlog / workers;
    const own = costs[kind];
    if (backlog > 0 && start + own > budget) {
      // With no new arrivals the queue drains at `workers` ms of work per ms.
      const retryAfterMs = Math.max(start + own - budget, 100);
      throw new RateLimited(
        "overloaded",
        retryAfterMs,
        `the service is busy: a ${kind} session would start in about ${seconds(start)} and ` +
          `take ${seconds(own)}, after the request's deadline (${seconds(Math.max(0, budget))}); ` +
          `retry in ${seconds(retryAfterMs)}`,
      );
    }
    let foregroundRunning = 0;
    for (const s of running) if (!BACKGROUND_KINDS.has(s.kind)) foregroundRunning++;
    if (!background && foregroundRunning >= Math.floor(limit)) {
      // A slot frees, on average, every wall time / sessions running.
      const retryAfterMs = Math.max(wallMs / Math.max(1, running.size), 100);
      throw new RateLimited(
        "overloaded",
        retryAfterMs,
        `the service is busy: ${running.size} sessions run, as many as finish in time now; ` +
          `retry in ${seconds(retryAfterMs)}`,
      );
    }
    return start;
  }

  function admit(kind: SessionKind, deadlineMs?: number): AdmissionTicket {
    const start = check(kind, deadlineMs);
    const background = BACKGROUND_KINDS.has(kind);
    const budget = Math.min(maxWaitMs, deadlineMs ?? Infinity);
    const entry: Admitted = { kind, spent: 0 };
    running.add(entry);
    const t0 = clock();
    let done = false;
    return {
      priority: background ? BACKGROUND_PRIORITY + ++admittedBackground : ++admitted,
      kind,
      expectedStartMs: start,
      charge(busyMs) {
        if (!done && Number.isFinite(busyMs) && busyMs > 0) entry.spent += busyMs;
      },
      finish(outcome) {
        if (done) return;
        done = true;
        running.delete(entry);
        const wall = clock() - t0;
        if (outcome === "ok" && entry.spent > 0) {
          costs[kind] = costs[kind] * (1 - rate) + entry.spent * rate;
        } else if (entry.spent > costs[kind]) {
          costs[kind] = costs[kind] * (1 - rate) + entry.spent * rate;
        }
        if (background) return; // the concurrency limit follows the foreground only
        if (outcome === "late") {
          limit = Math.max(1, limit * 0.75);
        } else if (outcome === "ok") {
          wallMs = wallMs * (1 - rate) + wall * rate;
          const share = Number.isFinite(budget) ? wall / budget : 0;
          if (share > SLOW_SHARE) limit = Math.max(1, limit * 0.9);
          else if (share < FAST_SHARE) limit = Math.min(ceiling, limit + 1 / limit);
        }
      },
    };
  }

  return {
    admit,
    probe: (kind, deadlineMs) => void check(kind, deadlineMs),
    cost: (kind) => costs[kind],
    backlogMs,
    expectedStartMs: () => backlogMs() / workers,
    active: () => running.size,
    limit: () => limit,
  };
}
