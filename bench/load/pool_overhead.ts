/**
 * What moving the protocol compute to worker threads costs per step (docs/performance.md,
 * "Compute on worker threads"): both parties of full signing through one compute pool, and for
 * every job the time the host saw (post to answer) against the time the worker spent in the
 * machine's call; the difference is the boundary: the state's encoding and decoding
 * (core/protocols/state_codec.ts), the structured clones, and the message hops. Also the size
 * of the encoded states, and the cost of the codec alone.
 *
 * ```sh
 * node --import tsx bench/load/pool_overhead.ts [runs]
 * node node_modules/deno/bin.cjs run -A bench/load/pool_overhead.ts [runs]
 * ```
 * @module
 */
import "../../testing/setup.ts";
import process from "node:process";
import { runProtocol } from "../../core/protocols/driver.ts";
import { createMemoryNetwork } from "../../core/protocols/memory_transport.ts";
import { fullSignProtocol } from "../../core/protocols/sign.ts";
import { createDecoder, encodeValue } from "../../core/protocols/state_codec.ts";
import { createComputePool } from "../../platform/compute_pool.ts";
import { detectRuntime } from "../../platform/mod.ts";
import { dealKeyShares, freshSid } from "../../testing/fixtures/protocol_fixtures.ts";

const RUNS = Number(process.argv[2] ?? 10);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const shares = dealKeyShares(2);
const digest = new Uint8Array(32).fill(5);
const boundary: number[] = [];
const busy: number[] = [];
let started = new Map<string, number>();
const pool = createComputePool({
  workers: 2,
  onEvent: (e) => {
    if (e.type === "started") started.set(e.label, performance.now());
    if (e.type === "settled" && e.times.outcome === "ok") {
      const t0 = started.get(e.label);
      if (t0 !== undefined) {
        boundary.push(performance.now() - t0 - e.times.busyMs);
        busy.push(e.times.busyMs);
      }
    }
  },
});
await pool.ready();
for (let k = 0; k < RUNS + 1; k++) {
  if (k === 1) boundary.length = busy.length = 0; // the first run warms the workers up
  started = new Map();
  const net = createMemoryNetwork(2);
  const sid = freshSid();
  await Promise.all(
    shares.map((share, i) =>
      runProtocol(fullSignProtocol, { share, sid, keyId: "k", digest }, net[i], {
        compute: pool.stepper({ label: `party ${i}` }),
      })
    ),
  );
}
await pool.close();

// The codec alone, on the states of one inline run (what every step pays in the worker).
const states: unknown[] = [];
const recording = {
  ...fullSignProtocol,
  start: (input: Parameters<typeof fullSignProtocol.start>[0], rng: never) => {
    const t = fullSignProtocol.start(input, rng);
    if (t.state) states.push(t.state);
    return t;
  },
  step: (s: Parameters<typeof fullSignProtocol.step>[0], inbox: never, rng: never) => {
    const t = fullSignProtocol.step(s, inbox, rng);
    if (t.state) states.push(t.state);
    return t;
  },
};
const net = createMemoryNetwork(2);
const sid = freshSid();
await Promise.all(
  shares.map((share, i) => runProtocol(recording, { share, sid, keyId: "k", digest }, net[i], {})),
);
const decode = createDecoder();
const codec: number[] = [];
let bytes = 0;
for (let r = 0; r < 5; r++) {
  for (const s of states) {
    const t0 = performance.now();
    const e = structuredClone(encodeValue(s));
    decode(e);
    codec.push(performance.now() - t0);
    if (r === 0) {
      bytes += JSON.stringify(e, (_k, v) => (typeof v === "bigint" ? v.toString(16) : v)).length;
    }
  }
}

console.log(
  `| ${detectRuntime()} | ${busy.length} | ${median(busy).toFixed(1)} ms | ` +
    `${median(boundary).toFixed(2)} ms | ${Math.max(...boundary).toFixed(1)} ms | ` +
    `${(bytes / states.length / 1024).toFixed(1)} KiB | ${median(codec).toFixed(2)} ms |`,
);
