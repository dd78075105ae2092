/**
 * `deno task fuzz`: runs every fuzz harness (or the ones picked) time-boxed, each in its own
 * worker, `--jobs` at a time; prints inputs per second per harness; saves each failure's
 * minimized input to `fuzz/corpus/<harness>/<hash>.bin` (replayed by `regressions_test.ts` in
 * the fast tier) and exits 1 when any harness failed. See `docs/fuzzing.md`.
 *
 * ```text
 * deno task fuzz [--only frames,envelopes] [--seconds N | --scale X] [--jobs N] [--seed N]
 *                [--min-fast-inputs N] [--list]
 * ```
 *
 * `--seconds` replaces every harness's time box, `--scale` multiplies them (also
 * `WALLET_MPC_FUZZ_SCALE`); with `--min-fast-inputs N` a fast decoder goes on past its time box
 * until N inputs (at most three times the box), and the run fails when one still tried fewer.
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import process from "node:process";
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "../core/bytes.ts";
import type { CampaignStats, Failure, Harness } from "./_engine.ts";
import type { WorkerJob } from "./_worker.ts";
import { HARNESSES, loadHarness } from "./harnesses/mod.ts";

interface Options {
  only: string[];
  seconds: number | null;
  scale: number;
  jobs: number;
  seed: number;
  minFastInputs: number;
  list: boolean;
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = {
    only: [],
    seconds: null,
    scale: Number(process.env.WALLET_MPC_FUZZ_SCALE ?? "1"),
    jobs: 2,
    seed: Date.now() % 0x7fffffff,
    minFastInputs: 0,
    list: false,
  };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    const value = () => {
      const v = argv[++k];
      if (v === undefined) throw new RangeError(`${a}: expected a value`);
      return v;
    };
    const num = (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new RangeError(`${a}: expected a number, got ${v}`);
      return n;
    };
    if (a === "--only") o.only.push(...value().split(",").filter((s) => s !== ""));
    else if (a === "--seconds") o.seconds = num(value());
    else if (a === "--scale") o.scale = num(value());
    else if (a === "--jobs") o.jobs = Math.max(1, Math.floor(num(value())));
    else if (a === "--seed") o.seed = Math.floor(num(value()));
    else if (a === "--min-fast-inputs") o.minFastInputs = num(value());
    else if (a === "--list") o.list = true;
    else throw new RangeError(`unknown argument ${a} (see fuzz/main.ts)`);
  }
  if (!(o.scale > 0)) throw new RangeError("--scale: expected a number > 0");
  for (const name of o.only) {
    if (!(name in HARNESSES)) {
      throw new RangeError(`unknown harness ${name}; known: ${Object.keys(HARNESSES).join(", ")}`);
    }
  }
  return o;
}

/** What one harness's run gave. */
interface Result {
  name: string;
  fast: boolean;
  setupMs: number;
  stats: CampaignStats | null;
  failures: Failure[];
  saved: string[];
  error?: string;
}

const CORPUS = new URL("./corpus/", import.meta.url);

function save(name: string, input: Uint8Array): string {
  const dir = new URL(`${name}/`, CORPUS);
  mkdirSync(dir, { recursive: true });
  const hash = toHex(sha256(input).subarray(0, 8));
  const file = new URL(`${hash}.bin`, dir);
  writeFileSync(file, input);
  return `fuzz/corpus/${name}/${hash}.bin`;
}

function startWorker(job: WorkerJob): Worker {
  const w = new Worker(new URL("./_worker.ts", import.meta.url).href, { type: "module" });
  w.postMessage(job);
  return w;
}

const unwire = (f: Omit<Failure, "input"> & { input: number[] }): Failure => ({
  ...f,
  input: Uint8Array.from(f.input),
});

/** Finds the input a hang stopped at by replaying the campaign up to its index. */
function replay(job: WorkerJob, index: number, limitMs: number): Promise<Uint8Array | null> {
  return new Promise((resolve) => {
    const w = startWorker({ ...job, replayIndex: index, control: new SharedArrayBuffer(8) });
    const timer = setTimeout(() => {
      w.terminate();
      resolve(null);
    }, limitMs);
    w.onmessage = (ev) => {
      if (ev.data.type === "replayed" || ev.data.type === "error") {
        clearTimeout(timer);
        w.terminate();
        resolve(ev.data.input ? Uint8Array.from(ev.data.input) : null);
      }
    };
  });
}

/** Runs one harness in a worker, with a watchdog for inputs that never return. */
function runHarness(
  h: Harness,
  ms: number,
  seed: number,
  epoch: number,
  minFastInputs: number,
): Promise<Result> {
  const result: Result = {
    name: h.name,
    fast: h.fast,
    setupMs: 0,
    stats: null,
    failures: [],
    saved: [],
  };
  const control = new SharedArrayBuffer(8);
  const ctl = new Int32Array(control);
  Atomics.store(ctl, 0, -2);
  const job: WorkerJob = {
    harness: h.name,
    seed,
    ms,
    control,
    epoch,
    ...(h.fast && minFastInputs > 0 ? { minInputs: minFastInputs, maxMs: 3 * ms } : {}),
  };
  const hangMs = Math.max(3 * h.timeoutMs, 15_000);
  const found = new Map<string, Failure>();
  return new Promise((resolve) => {
    const w = startWorker(job);
    let ready = false;
    let last: CampaignStats | null = null;
    const finish = async (hang: { index: number } | null) => {
      clearInterval(watchdog);
      w.terminate();
      if (hang) {
        let input: Uint8Array | null = null;
        if (hang.index >= 0) input = await replay(job, hang.index, (job.maxMs ?? ms) + 120_000);
        const failure: Failure = {
          kind: "hang",
          signature: "hang",
          message: `input ${hang.index} ran more than ${hangMs} ms`,
          input: input ?? new Uint8Array(0),
        };
        found.set("hang", failure);
        result.stats ??= last;
      }
      for (const f of found.values()) {
        result.failures.push(f);
        if (f.input.length > 0 || f.kind !== "hang") result.saved.push(save(h.name, f.input));
      }
      resolve(result);
    };
    const watchdog = setInterval(() => {
      if (!ready) return;
      const index = Atomics.load(ctl, 0);
      const since = Date.now() - epoch - Atomics.load(ctl, 1);
      if (index !== -2 && since > hangMs) void finish({ index });
    }, 250);
    w.onmessage = (ev) => {
      const m = ev.data;
      if (m.type === "ready") {
        ready = true;
        result.setupMs = m.setupMs;
      } else if (m.type === "progress") {
        last = m.stats;
      } else if (m.type === "failure") {
        const f = unwire(m.failure);
        found.set(f.signature, f);
        const tag = m.minimized ? "minimized" : "found";
        console.log(`fuzz: ${h.name}: ${tag} ${f.kind}: ${f.message.slice(0, 300)}`);
      } else if (m.type === "done") {
        result.stats = m.stats;
        void finish(null);
      } else if (m.type === "error") {
        result.error = m.message;
        void finish(null);
      }
    };
    w.onerror = (e) => {
      e.preventDefault();
      result.error = e.message;
      void finish(null);
    };
  });
}

function table(results: readonly Result[]): string {
  const rows = [
    "| harness | fast | setup (s) | time (s) | inputs | inputs/s | accepted | refused | behaviours | failures |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    const s = r.stats;
    const secs = s ? s.ms / 1000 : 0;
    rows.push(
      `| ${r.name} | ${r.fast ? "yes" : ""} | ${(r.setupMs / 1000).toFixed(1)} | ${
        secs.toFixed(0)
      } | ` +
        `${s?.inputs ?? 0} | ${s && secs > 0 ? Math.round(s.inputs / secs) : 0} | ` +
        `${s?.accepted ?? 0} | ${s?.refused ?? 0} | ${s?.behaviours ?? 0} | ` +
        `${r.error ? "error" : r.failures.length} |`,
    );
  }
  return rows.join("\n");
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const names = o.only.length > 0 ? o.only : Object.keys(HARNESSES);
  const harnesses = await Promise.all(names.map(loadHarness));
  if (o.list) {
    for (const h of harnesses) {
      console.log(`${h.name.padEnd(18)} ${h.fast ? "fast" : "    "} ${h.seconds}s  ${h.oracle}`);
    }
    return 0;
  }
  const epoch = Date.now();
  console.log(`fuzz: seed ${o.seed}, ${harnesses.length} harnesses, ${o.jobs} at a time`);
  const results: Result[] = new Array(harnesses.length);
  let next = 0;
  const lane = async () => {
    while (next < harnesses.length) {
      const k = next++;
      const h = harnesses[k];
      const ms = 1000 * (o.seconds ?? h.seconds * o.scale);
      const r = await runHarness(h, ms, o.seed + k, epoch, o.minFastInputs);
      results[k] = r;
      const s = r.stats;
      const rate = s && s.ms > 0 ? Math.round(s.inputs / (s.ms / 1000)) : 0;
      console.log(
        `fuzz: ${h.name}: ${s?.inputs ?? 0} inputs in ${((s?.ms ?? 0) / 1000).toFixed(0)} s ` +
          `(${rate}/s), ${r.failures.length} failures${r.error ? `, error: ${r.error}` : ""}`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs, harnesses.length) }, lane));
  console.log(table(results));
  let bad = false;
  for (const r of results) {
    for (const [k, f] of r.failures.entries()) {
      bad = true;
      console.log(`FAIL ${r.name}: ${f.kind}: ${f.message.slice(0, 500)}`);
      if (r.saved[k]) console.log(`     saved ${r.saved[k]} (${f.input.length} bytes)`);
    }
    if (r.error) {
      bad = true;
      console.log(`FAIL ${r.name}: the harness broke: ${r.error}`);
    }
    if (r.fast && o.minFastInputs > 0 && (r.stats?.inputs ?? 0) < o.minFastInputs) {
      bad = true;
      console.log(`FAIL ${r.name}: ${r.stats?.inputs ?? 0} inputs, fewer than ${o.minFastInputs}`);
    }
  }
  return bad ? 1 : 0;
}

// Exit at once: a worker terminated while stuck in a hung input may keep running until it
// unwinds (a hang found by the campaign kept CI's process alive for minutes after the report).
process.exit(await main());
