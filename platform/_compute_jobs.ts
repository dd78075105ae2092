/**
 * The jobs of a compute worker and the messages that carry them (private to `platform/`): the
 * pool (compute_pool.ts) posts a job, the worker (compute_worker.ts) runs it and posts the
 * answer. One job at a time per worker, synchronously: a protocol machine's `start` or `step`,
 * or a safe prime.
 *
 * Machine states stay in their encoded form (core/protocols/state_codec.ts) between steps: the
 * host keeps them opaque, reading only the routing fields the driver needs, and only the
 * outputs are decoded on the host.
 *
 * **Cooperative cancellation.** A step cannot be interrupted from outside reliably: Deno's
 * `Worker.terminate()` does not stop a worker that is busy in JavaScript (it is signalled at the
 * worker's next event-loop turn; measured here: still computing seconds later, as
 * denoland/deno#35657 reports for 2.9). So every exponentiation of the protocols (each goes
 * through a `core/math` backend) first passes a checkpoint: it counts one unit of work (the
 * worker's work counter, shared with the host) and throws {@link JobCancelled} when the host
 * has marked the running job cancelled, in a shared flag. The same checkpoint runs in the
 * safe-prime search of Deno (its progress callback). A step thus stops within one
 * exponentiation (milliseconds, at most a few hundred on Deno's BigInt path), and the worker
 * stays up for the next job.
 *
 * **Randomizers made when idle.** Each worker keeps a `RandomizerRegistry` (core/paillier.ts,
 * installed as its thread's randomizer source): the Paillier randomizers r^N of presigning for
 * the moduli its jobs used, one's own N by CRT and the peers' N with their public keys. When it
 * has no job, it makes one entry at a time (a macrotask each, so a job that arrives waits for at
 * most one entry: one exponentiation modulo N^2) until every pool is at its target, then reports
 * its counters (`randomizers`). This work is no job's: it passes no checkpoint and is not
 * counted in the work counter. The entries stay in the worker's memory; nothing is serialised.
 * @module
 */
import { getModPowBackends, type ModPowBackend, setModPowBackends } from "../core/math/modpow.ts";
import { webCryptoRandom } from "../core/math/random.ts";
import {
  RandomizerRegistry,
  type RandomizerRegistryOptions,
  type RandomizerStats,
  setRandomizerSource,
} from "../core/paillier.ts";
import {
  createDecoder,
  type EncodedError,
  encodeError,
  encodeValue,
} from "../core/protocols/state_codec.ts";
import type { Message, Transition } from "../core/protocols/types.ts";
import { COMPUTE_PROTOCOLS } from "./_compute_protocols.ts";
import { installPlatformBackends, platformSafePrime, sizeModPowCaches } from "./mod.ts";
import { workerPort } from "./_worker_host.ts";

/** The key under which an opaque state carries its encoded form. */
export const ENCODED_STATE = "$encoded";

/** A state as the host holds it between steps: routing fields plus the encoded machine state. */
export interface OpaqueState {
  readonly sid: Uint8Array;
  readonly i: number;
  readonly n: number;
  readonly round: number;
  readonly [ENCODED_STATE]: unknown;
}

/** A job, as posted to a worker. */
export type ComputeJob =
  | { readonly kind: "start"; readonly protocol: string; readonly input: unknown }
  | {
    readonly kind: "step";
    readonly protocol: string;
    readonly state: unknown;
    readonly inbox: readonly Message[];
  }
  | { readonly kind: "safe-prime"; readonly bits: number }
  | { readonly kind: string; readonly [k: string]: unknown };

/** A machine call's answer: the messages, and the next opaque state or the encoded output. */
export interface EncodedTransition {
  readonly outgoing: readonly Message[];
  readonly state?: OpaqueState;
  readonly output?: unknown;
}

/** Messages from a worker. */
export type WorkerAnswer =
  | { readonly type: "ready" }
  /** The randomizer pools are at their targets again (or were refilled as far as idle went). */
  | { readonly type: "randomizers"; readonly stats: WorkerRandomizerStats }
  | {
    readonly type: "done";
    readonly id: number;
    readonly ok: true;
    readonly value: unknown;
    readonly busyMs: number;
    /** Checkpoints the job passed (its exponentiations). */
    readonly ops: number;
  }
  | {
    readonly type: "done";
    readonly id: number;
    readonly ok: false;
    readonly error: EncodedError;
    readonly busyMs: number;
    readonly ops: number;
  };

/** What a worker gets before its first job. */
export interface WorkerInit {
  readonly type: "init";
  /** The pool's `workerData`. */
  readonly data: unknown;
  /** Int32 [1]: the id of the job to cancel (this worker's own flag). */
  readonly cancel: SharedArrayBuffer;
  /** Int32 [1]: the pool's work counter, added to at every checkpoint (all workers). */
  readonly work: SharedArrayBuffer;
  /** The targets of the worker's randomizer pools, or false for none (module doc). */
  readonly randomizers?: RandomizerRegistryOptions | false;
  /** Accounts the process serves: sizes the per-modulus caches (`sizeModPowCaches`). */
  readonly accounts?: number;
}

/** A worker's randomizer counters (`RandomizerRegistry.stats`). */
export type WorkerRandomizerStats = RandomizerStats & {
  readonly moduli: number;
  readonly missing: number;
};

/** Messages to a worker. */
export type WorkerRequest =
  | WorkerInit
  | { readonly type: "job"; readonly id: number; readonly job: ComputeJob }
  | { readonly type: "configure"; readonly accounts: number };

/** Thrown at a checkpoint of a job the host cancelled (the worker answers with it). */
export class JobCancelled extends Error {
  override readonly name = "JobCancelled";
}

/** The worker's side of cancellation and work counting (module doc). */
const progress = {
  cancel: null as Int32Array | null,
  work: null as Int32Array | null,
  job: 0,
  ops: 0,
  /** Making randomizers between jobs: no job's work. */
  idle: false,
};

/**
 * The checkpoint of every exponentiation and prime candidate batch: counts one unit of work and
 * throws when the running job is cancelled. Randomizers made between jobs pass no checkpoint.
 * @throws {JobCancelled} when the host marked the running job cancelled.
 */
export function checkpoint(): void {
  if (progress.idle) return;
  progress.ops++;
  if (progress.work) Atomics.add(progress.work, 0, 1);
  if (progress.cancel && progress.job !== 0 && Atomics.load(progress.cancel, 0) === progress.job) {
    throw new JobCancelled("job cancelled");
  }
}

function guarded(b: ModPowBackend): ModPowBackend {
  return {
    name: b.name,
    constantTime: b.constantTime,
    modPow(x, e, m) {
      checkpoint();
      return b.modPow(x, e, m);
    },
  };
}

/** A job kind a worker module adds (tests add a few). */
export type JobHandler = (job: ComputeJob) => unknown;

function transition(
  t: Transition<{ sid: Uint8Array; i: number; n: number; round: number }, unknown>,
): EncodedTransition {
  if (t.state === undefined) return { outgoing: t.outgoing, output: encodeValue(t.output) };
  const s = t.state;
  const state: OpaqueState = {
    sid: s.sid,
    i: s.i,
    n: s.n,
    round: s.round,
    [ENCODED_STATE]: encodeValue(s),
  };
  return { outgoing: t.outgoing, state };
}

/**
 * Creates the runner of the built-in jobs (machine calls and safe primes).
 * @returns `run(job)`: the job's encoded answer, or a promise of it.
 * @throws {TypeError} (from `run`) for an unknown job kind or machine name.
 */
export function createJobRunner(): (job: ComputeJob) => unknown {
  const decode = createDecoder();
  const machine = (name: unknown) => {
    const p = typeof name === "string" && Object.hasOwn(COMPUTE_PROTOCOLS, name)
      ? COMPUTE_PROTOCOLS[name]
      : undefined;
    if (!p) throw new TypeError(`compute worker: unknown protocol ${String(name)}`);
    return p;
  };
  return (job) => {
    switch (job.kind) {
      case "start": {
        const j = job as Extract<ComputeJob, { kind: "start" }>;
        return transition(machine(j.protocol).start(decode(j.input), webCryptoRandom));
      }
      case "step": {
        const j = job as Extract<ComputeJob, { kind: "step" }>;
        const state = decode((j.state as OpaqueState)[ENCODED_STATE]);
        return transition(machine(j.protocol).step(state, j.inbox, webCryptoRandom));
      }
      case "safe-prime": {
        const bits = (job as Extract<ComputeJob, { kind: "safe-prime" }>).bits;
        return platformSafePrime(bits, undefined, () => checkpoint());
      }
      default:
        throw new TypeError(`compute worker: unknown job kind ${String(job.kind)}`);
    }
  };
}

/**
 * Serves jobs in the current worker thread: installs the runtime's big-integer backends, says
 * `ready`, then answers every job in order with its result or its encoded error and the time it
 * took (wall time of one synchronous job: the worker's busy time).
 *
 * @param extra job kinds of a test worker (tried before the built-in ones).
 * @param onInit receives the pool's `workerData` before `ready` is posted.
 */
export function serveComputeJobs(
  extra: Readonly<Record<string, JobHandler>> = {},
  onInit?: (data: unknown) => void,
): void {
  installPlatformBackends();
  const installed = getModPowBackends();
  setModPowBackends({ public: guarded(installed.public), secret: guarded(installed.secret) });
  const port = workerPort();
  const run = createJobRunner();
  let chain: Promise<void> = Promise.resolve();
  let registry: RandomizerRegistry | undefined;
  /** Jobs received and not yet answered. */
  let pending = 0;
  let refillTimer: ReturnType<typeof setTimeout> | undefined;
  let refilled = false;
  const refillLater = () => {
    if (!registry || refillTimer !== undefined || pending > 0) return;
    refillTimer = setTimeout(refillOne, 0);
  };
  const refillOne = () => {
    refillTimer = undefined;
    if (!registry || pending > 0) return;
    progress.idle = true;
    try {
      refilled = registry.refill(1) > 0 || refilled;
    } finally {
      progress.idle = false;
    }
    if (registry.missing > 0) {
      refillLater();
    } else if (refilled) {
      refilled = false;
      port.post({ type: "randomizers", stats: registry.stats() } satisfies WorkerAnswer);
    }
  };
  port.onMessage((raw) => {
    const m = raw as WorkerRequest;
    if (m.type === "init") {
      progress.cancel = new Int32Array(m.cancel);
      progress.work = new Int32Array(m.work);
      if (m.accounts !== undefined) sizeModPowCaches(m.accounts);
      if (m.randomizers !== false) {
        registry = new RandomizerRegistry(m.randomizers ?? {});
        setRandomizerSource(registry);
      }
      onInit?.(m.data);
      port.post({ type: "ready" } satisfies WorkerAnswer);
      return;
    }
    if (m.type === "configure") {
      sizeModPowCaches(m.accounts);
      return;
    }
    if (m.type !== "job") return;
    pending++;
    chain = chain.then(async () => {
      const t0 = performance.now();
      progress.job = m.id;
      progress.ops = 0;
      const done = { type: "done", id: m.id } as const;
      try {
        const handler = Object.hasOwn(extra, m.job.kind) ? extra[m.job.kind] : run;
        const value = await handler(m.job);
        const busyMs = performance.now() - t0;
        port.post({ ...done, ok: true, value, busyMs, ops: progress.ops } satisfies WorkerAnswer);
      } catch (e) {
        const busyMs = performance.now() - t0;
        const error = encodeError(e);
        port.post({ ...done, ok: false, error, busyMs, ops: progress.ops } satisfies WorkerAnswer);
      } finally {
        progress.job = 0;
        pending--;
        refillLater();
      }
    });
  });
}
