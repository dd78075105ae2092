/**
 * A pool of compute worker threads (Web Workers in Deno, `worker_threads` in Node: one
 * interface, `_worker_host.ts`) that runs the protocol machines' `start` / `step` calls and safe
 * prime generation off the event loop, so a process uses every core and its I/O loop (health,
 * metrics, new requests, the sessions' messages) stays responsive while every worker computes.
 *
 * - **One job at a time per worker**, the number of workers sized to the cores by default.
 *   Jobs wait in one queue ordered by `priority` (lower first), then by arrival: the service
 *   gives each session the number of its admission, so the steps of older sessions go first
 *   and a burst of sessions is served one after the other instead of all slowing down together.
 * - **Stateless workers**: a step carries its machine state (encoded by
 *   core/protocols/state_codec.ts) there and back, so any worker runs any step, a queue never
 *   waits behind one busy worker, and stopping a worker loses one step, not other sessions.
 *   Measured cost in docs/performance.md ("Compute on worker threads").
 * - **Cancellation**: a job's `signal` drops it from the queue; a running job is stopped at its
 *   next exponentiation (a cooperative checkpoint in the worker, `_compute_jobs.ts`: Deno's
 *   `Worker.terminate()` does not stop a busy worker), its caller answered at once, and the
 *   worker takes the next job as soon as it has stopped. A worker that has not stopped within
 *   `cancelGraceMs` is terminated, and started again when a job needs one. So a departed
 *   client costs no CPU beyond one exponentiation, and no worker restart.
 * - **Failure**: a worker that dies (uncaught error, exit, out of memory) fails the job it ran
 *   with {@link ComputeWorkerError} "crashed" and is replaced.
 * - **Idle work**: each worker precomputes the Paillier randomizers of presigning for the moduli
 *   its jobs used (`randomizers`, on by default; `_compute_jobs.ts`), one at a time when it has
 *   no job, and reports its counters (event `randomizers`, `stats().randomizers`). A job that
 *   arrives meanwhile waits for at most one of them.
 * - **Caches sized to the accounts**: `accounts` (and later `setAccounts`) sizes every worker's
 *   per-modulus exponentiation contexts (`sizeModPowCaches` of platform/mod.ts) as the main
 *   thread's.
 *
 * @example
 * ```ts
 * import { type ComputePool, createComputePool } from "./compute_pool.ts";
 * import { fullSignProtocol, runProtocol, type Transport } from "../core/protocols/mod.ts";
 * import type { FullSignInput } from "../core/protocols/sign.ts";
 * // Workers need read access (a doc test has none): functions, type-checked, not run here.
 * export async function startPool(): Promise<ComputePool> {
 *   const pool = createComputePool({ workers: 2 }); // once per process; pool.close() at exit
 *   await pool.ready();
 *   return pool;
 * }
 * // The session admitted n-th: its start / step calls run on the workers, older sessions first.
 * export function sign(pool: ComputePool, n: number, input: FullSignInput, transport: Transport) {
 *   const compute = pool.stepper({ priority: n, label: "sign" });
 *   const signal = AbortSignal.timeout(60_000); // cancels the queued or running step too
 *   return runProtocol(fullSignProtocol, input, transport, { compute, signal });
 * }
 * ```
 * @module
 */
import { availableParallelism } from "node:os";
import { TransportError } from "../core/errors.ts";
import { webCryptoRandom } from "../core/math/random.ts";
import type { ComputeCall, StepCompute } from "../core/protocols/driver.ts";
import { createDecoder, decodeError, encodeValue } from "../core/protocols/state_codec.ts";
import type { RandomizerRegistryOptions } from "../core/paillier.ts";
import type { Protocol, ProtocolState, Transition } from "../core/protocols/types.ts";
import {
  type ComputeJob,
  ENCODED_STATE,
  type EncodedTransition,
  type WorkerAnswer,
  type WorkerRandomizerStats,
  type WorkerRequest,
} from "./_compute_jobs.ts";
import { computeName } from "./_compute_protocols.ts";
import { spawnWorker, type WorkerLink } from "./_worker_host.ts";

/** Why a job failed without an answer of its own. */
export class ComputeWorkerError extends Error {
  override readonly name = "ComputeWorkerError";
  /** `crashed`: the worker running the job died; `unavailable`: no worker can start, or closed. */
  readonly code: "crashed" | "unavailable";
  /**
   * @param code what happened.
   * @param message what, naming the job.
   */
  constructor(code: ComputeWorkerError["code"], message: string) {
    super(message);
    this.code = code;
  }
}

/** How a job ended. */
export type JobOutcome = "ok" | "failed" | "cancelled" | "crashed";

/** The times of one settled job. */
export interface JobTimes {
  /** Time in the queue, ms (until a worker took it, or until it was dropped). */
  readonly waitMs: number;
  /**
   * Time a worker spent on it, ms (0 when it never ran); for a job cancelled while running, the
   * time until it was cancelled (the rest is in the `stopped` event).
   */
  readonly busyMs: number;
  readonly outcome: JobOutcome;
}

/** Options of one job. */
export interface ComputeJobOptions {
  /** Lower runs first (default 0); equal priorities run in submission order. */
  readonly priority?: number;
  /** Drops the job from the queue, or stops the worker running it. */
  readonly signal?: AbortSignal;
  /** Names the job in events and errors ("sign round 3"). */
  readonly label?: string;
  /** Called once when the job settles, with its times. */
  readonly onSettled?: (t: JobTimes) => void;
}

/** What the pool reports as it works (metrics, tests). */
export type ComputePoolEvent =
  | { readonly type: "queued"; readonly label: string; readonly queued: number }
  | { readonly type: "started"; readonly label: string; readonly waitMs: number }
  | { readonly type: "settled"; readonly label: string; readonly times: JobTimes }
  | {
    /** A cancelled running job has stopped: its whole busy time and its checkpoints. */
    readonly type: "stopped";
    readonly label: string;
    readonly busyMs: number;
    readonly ops: number;
  }
  | { readonly type: "worker-ready"; readonly workers: number }
  | { readonly type: "worker-stopped"; readonly reason: "cancelled" | "crashed" | "closed" }
  | {
    /** A worker's randomizer pools are at their targets again: its counters. */
    readonly type: "randomizers";
    readonly stats: WorkerRandomizerStats;
  };

/** Options of {@link createComputePool}. */
export interface ComputePoolOptions {
  /** Worker threads (default: the cores, `availableParallelism()`). */
  readonly workers?: number;
  /** The worker module (default compute_worker.ts; tests give one with extra job kinds). */
  readonly workerUrl?: URL;
  /** Sent to every worker before its first job (test workers read their hooks from it). */
  readonly workerData?: unknown;
  readonly onEvent?: (e: ComputePoolEvent) => void;
  /** Time a cancelled running job has to stop before its worker is terminated (default 2000). */
  readonly cancelGraceMs?: number;
  /** Milliseconds clock (default `performance.now`). */
  readonly clock?: () => number;
  /**
   * The targets of each worker's randomizer pools (core/paillier.ts `RandomizerRegistry`
   * options), or false for none. Default: on, with the registry's defaults.
   */
  readonly randomizers?: RandomizerRegistryOptions | false;
  /**
   * Accounts the process serves: each worker sizes its per-modulus exponentiation caches for
   * them (`sizeModPowCaches`). Default: the caches' minimum (64 moduli).
   */
  readonly accounts?: number;
}

/** Counters of the pool since it was made. */
export interface ComputePoolStats {
  /** Workers the pool keeps (at most). */
  readonly size: number;
  /** Workers running or starting. */
  readonly live: number;
  /** Workers running a job. */
  readonly busy: number;
  /** Jobs waiting for a worker. */
  readonly queued: number;
  /** Jobs a worker answered (with a result or an error). */
  readonly completed: number;
  /** Jobs dropped from the queue by their signal. */
  readonly cancelledQueued: number;
  /** Jobs stopped while running (their worker terminated). */
  readonly cancelledRunning: number;
  /** Workers that died on their own. */
  readonly crashed: number;
  /** Workers started. */
  readonly spawned: number;
  /** Sum of the time workers spent on jobs, ms. */
  readonly busyMs: number;
  /** The workers' work counter: checkpoints passed (exponentiations), all jobs. */
  readonly work: number;
  /** The live workers' randomizer counters as last reported, summed. */
  readonly randomizers: {
    readonly ready: number;
    readonly made: number;
    readonly fromPool: number;
    readonly inline: number;
  };
}

/** Options of {@link ComputePool.stepper}: one session's jobs. */
export interface StepperOptions {
  /** The session's priority (lower first). */
  readonly priority?: number;
  /** Names the session's jobs ("sign"). */
  readonly label?: string;
  /** Called with the times of each of the session's jobs. */
  readonly onJob?: (t: JobTimes) => void;
}

/** A pool of compute workers (module doc). */
export interface ComputePool {
  /** Workers the pool keeps. */
  readonly size: number;
  /** Resolves when the first workers are up. @throws {ComputeWorkerError} when none starts. */
  ready(): Promise<void>;
  /**
   * Runs one job on a worker.
   * @returns the worker's answer.
   * @throws the job's own error (rebuilt); {TransportError} "aborted" when its signal aborts;
   *   {ComputeWorkerError} when its worker dies or the pool is closed.
   */
  run(job: ComputeJob, options?: ComputeJobOptions): Promise<unknown>;
  /**
   * A `RunOptions.compute` for one session: the machines of `_compute_protocols.ts` run on the
   * workers (the run's signal cancels their jobs), any other machine inline.
   */
  stepper(options?: StepperOptions): StepCompute;
  /** A safe prime of `bits` bits generated on a worker (the runtime's fastest generator). */
  safePrime(bits: number, options?: ComputeJobOptions): Promise<bigint>;
  /**
   * Sizes every worker's per-modulus caches for `accounts` accounts, now and for the workers
   * started later (after keygen adds accounts).
   * @throws {RangeError} for a count that is not an integer >= 0.
   */
  setAccounts(accounts: number): void;
  stats(): ComputePoolStats;
  /** Fails queued and running jobs with "unavailable" and stops every worker. */
  close(): Promise<void>;
}

interface Pending {
  readonly seq: number;
  readonly job: ComputeJob;
  readonly priority: number;
  readonly label: string;
  readonly queuedAt: number;
  startedAt?: number;
  slot?: Slot;
  /** Busy time counted when it was cancelled while running. */
  cancelledAfterMs?: number;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  readonly options: ComputeJobOptions;
  unlisten(): void;
}

interface Slot {
  link: WorkerLink;
  /** The worker's randomizer counters as it last reported them. */
  randomizers?: WorkerRandomizerStats;
  /** `stopping`: running a cancelled job until its next checkpoint. */
  state: "starting" | "idle" | "busy" | "stopping" | "gone";
  job?: Pending;
  /** This worker's cancel flag: the id of the job to stop. */
  readonly cancel: Int32Array;
  /** Terminates the worker when a cancelled job does not stop in time. */
  grace?: ReturnType<typeof setTimeout>;
}

/** Consecutive workers that die before they are ready, after which the pool gives up. */
const MAX_START_FAILURES = 3;

/**
 * Creates a pool and starts its workers (module doc).
 * @param options size, worker module, events, clock.
 * @returns the pool; `await pool.ready()` before relying on its first workers.
 * @throws {RangeError} for a size that is not an integer >= 1.
 */
export function createComputePool(options: ComputePoolOptions = {}): ComputePool {
  const size = options.workers ?? availableParallelism();
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new RangeError(`workers: expected an integer >= 1, got ${String(size)}`);
  }
  let accounts = options.accounts;
  if (accounts !== undefined) checkAccounts(accounts);
  const url = options.workerUrl ?? new URL("./compute_worker.ts", import.meta.url);
  const clock = options.clock ?? (() => performance.now());
  const emit = options.onEvent ?? (() => {});
  const cancelGraceMs = options.cancelGraceMs ?? 2000;
  const work = new Int32Array(new SharedArrayBuffer(4));
  const slots: Slot[] = [];
  const queue: Pending[] = [];
  const decode = createDecoder({ cachedSecretKeys: 0 });
  let seq = 0;
  let closed = false;
  let broken: ComputeWorkerError | undefined;
  let startFailures = 0;
  const counts = {
    completed: 0,
    cancelledQueued: 0,
    cancelledRunning: 0,
    crashed: 0,
    spawned: 0,
    busyMs: 0,
  };
  let firstReady!: { resolve(): void; reject(e: unknown): void };
  const readyPromise = new Promise<void>((resolve, reject) => (firstReady = { resolve, reject }));
  readyPromise.catch(() => {});

  function settle(p: Pending, outcome: JobOutcome, busyMs: number): JobTimes {
    p.unlisten();
    const waitMs = (p.startedAt ?? clock()) - p.queuedAt;
    const times = { waitMs, busyMs, outcome };
    try {
      p.options.onSettled?.(times);
    } finally {
      emit({ type: "settled", label: p.label, times });
    }
    return times;
  }

  function spawn(): void {
    const cancel = new SharedArrayBuffer(4);
    const slot: Slot = {
      state: "starting",
      link: undefined as unknown as WorkerLink,
      cancel: new Int32Array(cancel),
    };
    slots.push(slot);
    counts.spawned++;
    slot.link = spawnWorker(url, {
      message: (m) => onAnswer(slot, m as WorkerAnswer),
      failed: (reason) => onFailed(slot, reason),
    });
    const init: WorkerRequest = {
      type: "init",
      data: options.workerData,
      cancel,
      work: work.buffer as SharedArrayBuffer,
      randomizers: options.randomizers ?? {},
      ...(accounts !== undefined ? { accounts } : {}),
    };
    slot.link.post(init);
  }

  function drop(slot: Slot, reason: "cancelled" | "crashed" | "closed"): void {
    if (slot.state === "gone") return;
    slot.state = "gone";
    clearTimeout(slot.grace);
    slot.link.terminate();
    const k = slots.indexOf(slot);
    if (k >= 0) slots.splice(k, 1);
    emit({ type: "worker-stopped", reason });
  }

  function onAnswer(slot: Slot, m: WorkerAnswer): void {
    if (slot.state === "gone") return;
    if (m.type === "ready") {
      startFailures = 0;
      slot.state = "idle";
      emit({ type: "worker-ready", workers: slots.filter((s) => s.state !== "starting").length });
      firstReady.resolve();
      pump();
      return;
    }
    if (m.type === "randomizers") {
      slot.randomizers = m.stats;
      emit({ type: "randomizers", stats: m.stats });
      return;
    }
    const p = slot.job;
    if (m.type !== "done" || !p || m.id !== p.seq) return;
    const stopping = slot.state === "stopping";
    clearTimeout(slot.grace);
    slot.job = undefined;
    slot.state = "idle";
    if (stopping) {
      // The cancelled job reached a checkpoint (or its end): only its time is left to count.
      counts.busyMs += Math.max(0, m.busyMs - (p.cancelledAfterMs ?? 0));
      emit({ type: "stopped", label: p.label, busyMs: m.busyMs, ops: m.ops });
    } else {
      counts.completed++;
      counts.busyMs += m.busyMs;
      settle(p, m.ok ? "ok" : "failed", m.busyMs);
      if (m.ok) p.resolve(m.value);
      else p.reject(decodeError(m.error));
    }
    pump();
  }

  function onFailed(slot: Slot, reason: string): void {
    if (slot.state === "gone") return;
    const wasStarting = slot.state === "starting";
    const p = slot.state === "stopping" ? undefined : slot.job;
    drop(slot, "crashed");
    counts.crashed++;
    if (p) {
      const busyMs = clock() - (p.startedAt ?? clock());
      counts.busyMs += busyMs;
      settle(p, "crashed", busyMs);
      p.reject(
        new ComputeWorkerError("crashed", `compute worker failed running ${p.label}: ${reason}`),
      );
    }
    if (wasStarting) {
      if (++startFailures >= MAX_START_FAILURES) {
        broken = new ComputeWorkerError("unavailable", `compute workers fail to start: ${reason}`);
        firstReady.reject(broken);
        for (const q of queue.splice(0)) {
          settle(q, "failed", 0);
          q.reject(broken);
        }
        return;
      }
      // Try again at once, so `ready()` settles even when no job waits.
      if (!closed) spawn();
      return;
    }
    pump();
  }

  function pump(): void {
    while (queue.length > 0 && !closed) {
      const slot = slots.find((s) => s.state === "idle");
      if (!slot) {
        if (slots.length < size && !broken) spawn();
        return;
      }
      const p = queue.shift()!;
      p.startedAt = clock();
      p.slot = slot;
      slot.job = p;
      slot.state = "busy";
      emit({ type: "started", label: p.label, waitMs: p.startedAt - p.queuedAt });
      slot.link.post({ type: "job", id: p.seq, job: p.job } satisfies WorkerRequest);
    }
  }

  function enqueue(p: Pending): void {
    // Sorted by (priority, seq); a new job goes after every job of its priority or lower.
    let lo = 0;
    let hi = queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (queue[mid].priority <= p.priority) lo = mid + 1;
      else hi = mid;
    }
    queue.splice(lo, 0, p);
    emit({ type: "queued", label: p.label, queued: queue.length });
    pump();
  }

  function cancel(p: Pending, reason: unknown): void {
    const aborted = new TransportError("aborted", `${p.label}: cancelled`, { cause: reason });
    const k = queue.indexOf(p);
    if (k >= 0) {
      queue.splice(k, 1);
      counts.cancelledQueued++;
      settle(p, "cancelled", 0);
      p.reject(aborted);
      return;
    }
    const slot = p.slot;
    if (slot && slot.job === p && slot.state === "busy") {
      // Answered now; the worker stops at its next checkpoint and then takes the next job.
      const busyMs = clock() - (p.startedAt ?? clock());
      p.cancelledAfterMs = busyMs;
      counts.busyMs += busyMs;
      counts.cancelledRunning++;
      slot.state = "stopping";
      Atomics.store(slot.cancel, 0, p.seq);
      slot.grace = setTimeout(() => {
        drop(slot, "cancelled");
        pump();
      }, cancelGraceMs);
      settle(p, "cancelled", busyMs);
      p.reject(aborted);
    }
  }

  function run(job: ComputeJob, o: ComputeJobOptions = {}): Promise<unknown> {
    const label = o.label ?? job.kind;
    if (closed || broken) {
      return Promise.reject(broken ?? new ComputeWorkerError("unavailable", "compute pool closed"));
    }
    if (o.signal?.aborted) {
      return Promise.reject(
        new TransportError("aborted", `${label}: cancelled`, { cause: o.signal.reason }),
      );
    }
    return new Promise((resolve, reject) => {
      const p: Pending = {
        seq: ++seq,
        job,
        priority: o.priority ?? 0,
        label,
        queuedAt: clock(),
        resolve,
        reject,
        options: o,
        unlisten: () => o.signal?.removeEventListener("abort", onAbort),
      };
      const onAbort = () => cancel(p, o.signal?.reason);
      o.signal?.addEventListener("abort", onAbort, { once: true });
      enqueue(p);
    });
  }

  function stepper(so: StepperOptions = {}): StepCompute {
    return {
      async run<I, S extends ProtocolState, O>(
        protocol: Protocol<I, S, O>,
        call: ComputeCall<I, S>,
        signal: AbortSignal | undefined,
      ): Promise<Transition<S, O>> {
        const name = computeName(protocol);
        if (name === undefined) {
          return call.op === "start"
            ? protocol.start(call.input, webCryptoRandom)
            : protocol.step(call.state, call.inbox, webCryptoRandom);
        }
        const job: ComputeJob = call.op === "start"
          ? { kind: "start", protocol: name, input: encodeValue(call.input) }
          : { kind: "step", protocol: name, state: opaque(call.state), inbox: call.inbox };
        const where = call.op === "start" ? "start" : `round ${call.state.round}`;
        let t: EncodedTransition;
        try {
          t = await run(job, {
            priority: so.priority,
            signal,
            label: `${so.label ?? protocol.name} (${name} ${where})`,
            onSettled: so.onJob,
          }) as EncodedTransition;
        } catch (e) {
          // Cancelled because the session failed: its failure (a tampered frame, the gateway
          // gone) is the cause to report, not the cancellation.
          if (signal?.aborted && signal.reason instanceof TransportError) throw signal.reason;
          throw e;
        }
        if (t.state) return { state: t.state as unknown as S, outgoing: t.outgoing };
        return { outgoing: t.outgoing, output: decode(t.output) as O };
      },
    };
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    const gone = new ComputeWorkerError("unavailable", "compute pool closed");
    for (const p of queue.splice(0)) {
      settle(p, "cancelled", 0);
      p.reject(gone);
    }
    for (const slot of [...slots]) {
      const p = slot.state === "stopping" ? undefined : slot.job;
      drop(slot, "closed");
      if (p) {
        settle(p, "cancelled", clock() - (p.startedAt ?? clock()));
        p.reject(gone);
      }
    }
    firstReady.reject(gone);
    await Promise.resolve();
  }

  for (let k = 0; k < size; k++) spawn();

  return {
    size,
    ready: () => readyPromise,
    run,
    stepper,
    async safePrime(bits, o) {
      const v = await run({ kind: "safe-prime", bits }, {
        label: `safe prime (${bits} bits)`,
        ...o,
      });
      return v as bigint;
    },
    setAccounts(n) {
      checkAccounts(n);
      accounts = n;
      for (const slot of slots) {
        if (slot.state !== "gone") slot.link.post({ type: "configure", accounts: n });
      }
    },
    stats: () => {
      const randomizers = { ready: 0, made: 0, fromPool: 0, inline: 0 };
      for (const slot of slots) {
        const r = slot.randomizers;
        if (!r) continue;
        randomizers.ready += r.ready;
        randomizers.made += r.made;
        randomizers.fromPool += r.fromPool;
        randomizers.inline += r.inline;
      }
      return {
        size,
        live: slots.length,
        busy: slots.filter((s) => s.state === "busy" || s.state === "stopping").length,
        queued: queue.length,
        ...counts,
        work: Atomics.load(work, 0),
        randomizers,
      };
    },
    close,
  };
}

function checkAccounts(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`accounts: expected an integer >= 0, got ${String(n)}`);
  }
}

/** A state to post: the opaque form a worker returned, or a state made inline, encoded. */
function opaque(state: ProtocolState): unknown {
  if (Object.hasOwn(state, ENCODED_STATE)) return state;
  const { sid, i, n, round } = state;
  return { sid, i, n, round, [ENCODED_STATE]: encodeValue(state) };
}
