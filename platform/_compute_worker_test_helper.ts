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
 * - `workerData.crashOn`: a machine call (`{ protocol, round }`, round 0 for `start`) that
 *   crashes the worker instead of running.
 * @module
 */
import { checkpoint, type ComputeJob, createJobRunner, serveComputeJobs } from "./_compute_jobs.ts";

let crashOn: { protocol: string; round: number } | undefined;
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
  start: machineCall,
  step: machineCall,
}, (data) => {
  crashOn = (data as { crashOn?: typeof crashOn } | undefined)?.crashOn;
});
