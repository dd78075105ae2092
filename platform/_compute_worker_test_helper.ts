/**
 * TEST-ONLY compute worker: the real job runner plus jobs that make a worker's progress and
 * failure observable without timing (compute_pool_test.ts, the service's overload tests).
 *
 * - `spin`: increments `counter[slot]` (a SharedArrayBuffer of Int32) until `counter[stop]` is
 *   set, passing the worker's cancellation checkpoint every 1024 increments (as the protocols
 *   pass it at every exponentiation): the work counter a test reads to see whether a cancelled
 *   job still runs. `checkpoints: false` spins without (a job only termination stops).
 * - `count`: increments `counter[slot]` `n` times and answers.
 * - `crash`: throws from a timer (an uncaught error: the worker dies without an answer).
 * - `cache-sizing`: the worker's `modPowCacheSizing()` (platform/mod.ts), as the pool's
 *   `accounts` and `setAccounts` set it.
 * - `take-randomizers`: takes `n` randomizers for the key (p, q) from the worker's randomizer
 *   source (a presigning's takes, without the rest of its work); answers "registry" when that
 *   source is a `RandomizerRegistry`, "none" when randomizers are computed on the spot.
 * - `workerData.crashOn`: a machine call (`{ protocol, round }`, round 0 for `start`) that
 *   crashes the worker instead of running.
 * @module
 */
import { checkpoint, type ComputeJob, createJobRunner, serveComputeJobs } from "./_compute_jobs.ts";
import { modPowCacheSizing } from "./mod.ts";
import { webCryptoRandom } from "../core/math/random.ts";
import { getRandomizerSource, PaillierSecretKey, RandomizerRegistry } from "../core/paillier.ts";

let crashOn: { protocol: string; round: number } | undefined;
let takeKey: PaillierSecretKey | undefined;
const run = createJobRunner();

function crash(): Promise<never> {
  setTimeout(() => {
    throw new Error("test worker crash");
  }, 0);
  return new Promise<never>(() => {});
}

function machineCall(job: ComputeJob): unknown {
  const j = job as { protocol?: string; state?: { round?: number } };
  const round = job.kind === "start" ? 0 : j.state?.round;
  if (crashOn && j.protocol === crashOn.protocol && round === crashOn.round) return crash();
  return run(job);
}

/** The fields of the counter jobs. */
type CounterJob = { counter: SharedArrayBuffer; slot: number; stop: number; n: number };

serveComputeJobs({
  spin(job) {
    const { counter, slot, stop } = job as unknown as CounterJob;
    const cooperative = (job as { checkpoints?: boolean }).checkpoints !== false;
    const view = new Int32Array(counter);
    for (let k = 1; Atomics.load(view, stop) === 0; k++) {
      Atomics.add(view, slot, 1);
      if (cooperative && (k & 1023) === 0) checkpoint();
    }
    return Atomics.load(view, slot);
  },
  count(job) {
    const { counter, slot, n } = job as unknown as CounterJob;
    const view = new Int32Array(counter);
    for (let k = 0; k < n; k++) Atomics.add(view, slot, 1);
    return Atomics.load(view, slot);
  },
  crash,
  "cache-sizing": () => modPowCacheSizing(),
  "take-randomizers"(job) {
    const { p, q, n } = job as unknown as { p: bigint; q: bigint; n: number };
    // The key is made once per worker (its constructor exponentiates).
    if (takeKey?.p !== p || takeKey.q !== q) takeKey = new PaillierSecretKey(p, q);
    const sk = takeKey;
    const source = getRandomizerSource();
    for (let k = 0; k < n; k++) source.take(sk, webCryptoRandom);
    return source instanceof RandomizerRegistry ? "registry" : "none";
  },
  start: machineCall,
  step: machineCall,
}, (data) => {
  crashOn = (data as { crashOn?: typeof crashOn } | undefined)?.crashOn;
});
