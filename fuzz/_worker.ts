/**
 * One harness's campaign in a Web Worker (started by `main.ts`, Deno). Before each input it
 * stores the input's index and the time in the shared control block, so the main thread can tell
 * a hang (an input that never returns, even synchronously) and find the input again by replaying
 * the deterministic campaign up to that index in a new worker.
 *
 * Messages to the main thread: `ready` (setup time), `progress`, `failure` (found, then
 * minimized), `done` (counters), `replayed` (the input at the asked index), `error`.
 * @module
 */
import "../testing/setup.ts";
import { campaign, type Failure } from "./_engine.ts";
import { loadHarness } from "./harnesses/mod.ts";

/** What `main.ts` asks a worker to do. */
export interface WorkerJob {
  readonly harness: string;
  readonly seed: number;
  readonly ms: number;
  /** A fast decoder: go on past `ms` until this many inputs, up to `maxMs`. */
  readonly minInputs?: number;
  readonly maxMs?: number;
  /** Int32Array over it: [index of the running input, ms since `epoch` it started]. */
  readonly control: SharedArrayBuffer;
  readonly epoch: number;
  /** Replay mode: return the input with this index instead of fuzzing. */
  readonly replayIndex?: number;
}

const post = (m: unknown) => (self as unknown as Worker).postMessage(m);
const wire = (f: Failure) => ({ ...f, input: Array.from(f.input) });

(self as unknown as Worker).onmessage = async (ev: MessageEvent<WorkerJob>) => {
  const job = ev.data;
  const control = new Int32Array(job.control);
  try {
    const h = await loadHarness(job.harness);
    const t0 = performance.now();
    const target = await h.setup();
    post({ type: "ready", setupMs: performance.now() - t0 });
    if (job.replayIndex !== undefined) {
      const r = await campaign(h, target, {
        seed: job.seed,
        ms: Infinity,
        stopBefore: job.replayIndex,
      });
      post({ type: "replayed", input: r.stopped ? Array.from(r.stopped) : null });
    } else {
      const r = await campaign(h, target, {
        seed: job.seed,
        ms: job.ms,
        minInputs: job.minInputs,
        maxMs: job.maxMs,
        onInput: (index) => {
          Atomics.store(control, 0, index);
          Atomics.store(control, 1, Date.now() - job.epoch);
        },
        onProgress: (stats) => post({ type: "progress", stats }),
        onFailure: (f, minimized) => post({ type: "failure", failure: wire(f), minimized }),
      });
      Atomics.store(control, 0, -2); // finished: nothing runs
      post({ type: "done", stats: r.stats });
    }
    await target.close?.();
  } catch (e) {
    post({ type: "error", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
  (self as unknown as { close(): void }).close();
};
