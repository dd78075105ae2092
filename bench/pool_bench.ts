/**
 * Presignature pool benchmark (issue 11), end to end: a real sign-gateway and a real
 * sign-service as child processes on loopback (`tools/local_stack.ts`, room tokens on), under
 * Deno, then under Node; the client library in this process. For each stack:
 *
 * - **Full signing**: `signTx` of N random digests, one after another: p50 / p95.
 * - **Pooled signing**: `signMessage` of N messages (keccak256), each after
 *   `warmPresignatures` refilled both pools, so that each one can take a presignature: p50 /
 *   p95, the share that was pooled (`pooled` of the answer), and its phases as the client sees
 *   them (OpenRoom, the secure session's handshake, the round, the service's answer).
 * - **Presigning rate**: `warmPresignatures` of a known count (pools of that size, sessions of
 *   `--batch`), timed against the CPU the service process used (user + system of every thread,
 *   `/proc`), from the start of the warm-up until the service is idle again (its compute
 *   workers precompute Paillier randomizers when idle: that work belongs to the presignatures);
 *   the client's CPU (this process) alike. Presignatures per minute per core = count / CPU
 *   seconds * 60.
 *
 * Before each timed call the benchmark waits (bounded) until the service is idle, so a
 * measurement does not pay for the previous one's background work. It reports the load average
 * and the cores other processes used during each phase (a shared machine skews every figure).
 *
 * Prints markdown tables (stdout; progress on stderr), also written to `--out=<file>`.
 *
 * Usage: `node --import tsx bench/pool_bench.ts` or `deno run -A bench/pool_bench.ts`, flags
 * `--n=20` (timed signatures of each kind per stack), `--warmup=2`, `--presign=32`
 * (presignatures of the rate measurement), `--batch=8` (presignatures per session),
 * `--stacks=deno,node`, `--out=<file>`.
 * @module
 */
import { writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import process from "node:process";
import {
  MemoryKeyStore,
  type MpcClient,
  type MpcClientConfig,
  newMpcClient,
} from "../client/mpc_client.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import { getModPowBackends } from "../core/math/mod.ts";
import { generateOfflineAccounts } from "../keygen/offline.ts";
import { installPlatformBackends } from "../platform/mod.ts";
import { fixturePrimes } from "../testing/accounts.ts";
import { type LocalStack, startLocalStack } from "../tools/local_stack.ts";
import { arg, runtimeLabel } from "./_harness.ts";
import { cpuSeconds, otherLoad } from "./e2e/_load.ts";

type Runtime = "deno" | "node";
type Parties = [Map<string, AccountEntry>, Map<string, AccountEntry>];

const N = Number(arg("n", "20"));
const WARMUP = Number(arg("warmup", "2"));
const PRESIGN = Number(arg("presign", "32"));
const BATCH = Number(arg("batch", "8"));
const STACKS = arg("stacks", "deno,node").split(",") as Runtime[];
const OUT = arg("out", "");
const ACCOUNT = "bench";
const OWN: Runtime = typeof Deno !== "undefined" ? "deno" : "node";
/** Target of issue 11: pooled end-to-end signMessage p50, in Node and in Deno. */
const TARGET_POOLED_P50_MS = 50;
/**
 * The service's settings beside the stack's: no rate limit in the way, and room in its pool for
 * the presignatures of the rate measurement.
 */
const SERVICE_ENV = {
  WALLET_MPC_SERVICE__RATE_LIMIT__PER_CALLER_PER_MINUTE: "100000",
  WALLET_MPC_SERVICE__RATE_LIMIT__BURST: "10000",
  WALLET_MPC_SERVICE__PRESIGNATURES__MAX_PER_TARGET: String(Math.max(16, PRESIGN)),
  WALLET_MPC_SERVICE__PRESIGNATURES__MAX_PER_ACCOUNT: String(Math.max(64, PRESIGN + 1)),
};
/** Pools of the latency phase: one presignature, refilled below one. */
const LATENCY_POOL = { size: 1, lowWater: 1, batch: 1, cpuShare: 1 } as const;

for (const s of STACKS) {
  if (s !== "deno" && s !== "node") {
    throw new RangeError(`--stacks: expected deno or node, got ${s}`);
  }
}
if (!(N >= 1 && WARMUP >= 0 && PRESIGN >= 1 && PRESIGN <= 1024 && BATCH >= 1 && BATCH <= 8)) {
  throw new RangeError("--n >= 1, --warmup >= 0, --presign in 1..1024, --batch in 1..8");
}

const started = performance.now();
/** Progress on stderr, with the seconds since the start. */
function say(message: string): void {
  console.error(`[pool bench +${((performance.now() - started) / 1000).toFixed(0)} s] ${message}`);
}

/** The nearest-rank p50 and p95 and the mean of `xs`. */
function summary(xs: readonly number[]): { p50: number; p95: number; mean: number } {
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
  return { p50: rank(50), p95: rank(95), mean: sorted.reduce((a, b) => a + b, 0) / xs.length };
}

/** Milliseconds, in seconds from 1 s, with one decimal below 100 ms. */
const ms = (v: number) =>
  v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(v >= 100 ? 0 : 1)} ms`;

const load = () => loadavg().map((x) => x.toFixed(2)).join(", ");

/**
 * Waits until the process used less than 20 ms of CPU over 500 ms (its background work, e.g.
 * randomizers, is done), at most `maxMs`.
 * @returns whether it went idle.
 */
async function idle(pid: number, maxMs = 30_000): Promise<boolean> {
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    const c0 = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 500));
    const used = cpuSeconds(pid) - c0;
    if (!(used >= 0.02)) return true; // idle, or no /proc (NaN)
  }
  return false;
}

/** Latencies of one kind of call and what the machine did meanwhile. */
interface Latencies {
  readonly ms: number[];
  /** Cores other processes used during each call. */
  readonly otherCores: number[];
  /** Calls after which the service was not idle within the bound. */
  notIdle: number;
}

/** Times `WARMUP + n` calls of `call` (each after `before`), keeping the last `n`. */
async function timed(
  stack: LocalStack,
  what: string,
  before: () => Promise<void>,
  call: (k: number) => Promise<void>,
): Promise<Latencies> {
  const out: Latencies = { ms: [], otherCores: [], notIdle: 0 };
  const pids = [process.pid, stack.servicePid, stack.gateway.pid];
  for (let k = 0; k < WARMUP + N; k++) {
    await before();
    if (!(await idle(stack.servicePid))) out.notIdle++;
    const other = otherLoad(pids);
    const start = performance.now();
    await call(k);
    const took = performance.now() - start;
    if (k >= WARMUP) {
      out.ms.push(took);
      out.otherCores.push(other.cores());
    }
    if ((k + 1) % 10 === 0) say(`${what}: ${k + 1}/${WARMUP + N}`);
  }
  return out;
}

/** What one stack measured. */
interface StackRun {
  readonly runtime: Runtime;
  readonly serviceBackends: string;
  readonly full: Latencies;
  readonly pooled: Latencies;
  readonly pooledCount: number;
  /**
   * Per pooled call, ms: OpenRoom answered; then until the client's party starts its round (the
   * secure session's handshake, the presignature taken); the round (its share out, the
   * service's in, the signature); the end (the service's answer to SignMessage compared).
   */
  readonly pooledPhases: number[][];
  readonly presign: {
    readonly count: number;
    readonly wallMs: number;
    /** CPU seconds of the service: during the warm-up, and until it was idle again. */
    readonly serviceCpu: number;
    readonly serviceCpuAfter: number;
    readonly clientCpu: number;
    readonly gatewayCpu: number;
    readonly otherCores: number;
    readonly sessions: number;
  };
}

/** The service's `exponentiation backends` log line, short. */
function serviceBackends(stack: LocalStack): string {
  for (const line of stack.serviceOutput().split("\n")) {
    if (!line.includes("exponentiation backends")) continue;
    try {
      const l = JSON.parse(line);
      return `${l.public} / ${l.secret}${l.secret_constant_time ? "" : " (variable time)"}`;
    } catch {
      // not JSON
    }
  }
  return "unknown";
}

async function runStack(runtime: Runtime, parties: Parties): Promise<StackRun> {
  say(`starting the ${runtime} gateway and service`);
  const stack = await startLocalStack({ runtime, preset: parties, serviceEnv: SERVICE_ENV });
  const clients: MpcClient[] = [];
  /**
   * When the last OpenRoom answer came and the client's party last started and finished a round
   * (performance.now()).
   */
  const marks = { room: NaN, started: NaN, finished: NaN };
  const fetchMarked: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const url = input instanceof Request ? input.url : String(input);
    if (url.endsWith("/OpenRoom")) marks.room = performance.now();
    return res;
  };
  const client = (pool: MpcClientConfig["presignaturePool"]) => {
    const c = newMpcClient({
      ...stack.clientConfig(new MemoryKeyStore(parties[0])),
      presignaturePool: pool,
      fetch: fetchMarked,
      onProgress: (e) => {
        if (e.type === "round-started") marks.started = performance.now();
        if (e.type === "round-finished") marks.finished = performance.now();
      },
    });
    clients.push(c);
    return c;
  };
  try {
    const signer = client(LATENCY_POOL);
    const timeout = () => AbortSignal.timeout(120_000);

    say(`${runtime}: full signing (signTx)`);
    const full = await timed(stack, `${runtime} signTx`, async () => {}, async () => {
      const digest = globalThis.crypto.getRandomValues(new Uint8Array(32));
      await signer.signTx(digest, ACCOUNT, { signal: timeout() });
    });

    say(`${runtime}: pooled signing (signMessage after warmPresignatures)`);
    const target = { account: ACCOUNT, hash: "keccak256", path: "" } as const;
    let pooledCount = 0;
    const phases: number[][] = [];
    const pooled = await timed(
      stack,
      `${runtime} signMessage`,
      () => signer.warmPresignatures(target),
      async (k) => {
        const message = new TextEncoder().encode(`pool bench ${k} ${Date.now()}`);
        marks.room = marks.started = marks.finished = NaN;
        const start = performance.now();
        const sig = await signer.signMessage(message, { ...target, signal: timeout() });
        const end = performance.now();
        if (k >= WARMUP && sig.pooled) {
          pooledCount++;
          phases.push([
            marks.room - start,
            marks.started - marks.room,
            marks.finished - marks.started,
            end - marks.finished,
          ]);
        }
      },
    );
    await signer.close();

    say(`${runtime}: presigning rate (${PRESIGN} presignatures in sessions of ${BATCH})`);
    const maker = client({
      size: PRESIGN,
      lowWater: PRESIGN,
      batch: BATCH,
      cpuShare: 1,
      maxPerTarget: PRESIGN,
      maxPerAccount: PRESIGN + 1,
    });
    const rateTarget = { account: ACCOUNT, hash: "sha256", path: "m/1" } as const;
    await idle(stack.servicePid, 60_000);
    const pids = [process.pid, stack.servicePid, stack.gateway.pid];
    const other = otherLoad(pids);
    const cpu0 = pids.map(cpuSeconds);
    const start = performance.now();
    await maker.warmPresignatures(rateTarget);
    const wallMs = performance.now() - start;
    const cpu1 = pids.map(cpuSeconds);
    const otherCores = other.cores();
    await idle(stack.servicePid, 60_000);
    const cpu2 = pids.map(cpuSeconds);
    const stats = maker.presignatureStats();
    if (stats.pool.held !== PRESIGN) {
      throw new Error(`expected ${PRESIGN} presignatures, the client holds ${stats.pool.held}`);
    }
    return {
      runtime,
      serviceBackends: serviceBackends(stack),
      full,
      pooled,
      pooledCount,
      pooledPhases: phases,
      presign: {
        count: PRESIGN,
        wallMs,
        serviceCpu: cpu1[1] - cpu0[1],
        serviceCpuAfter: cpu2[1] - cpu1[1],
        clientCpu: cpu2[0] - cpu0[0],
        gatewayCpu: cpu2[2] - cpu0[2],
        otherCores,
        sessions: stats.refill?.sessions ?? 0,
      },
    };
  } finally {
    for (const c of clients) await c.close();
    await stack.stop();
  }
}

function report(runs: StackRun[], loads: { start: string; end: string }): string {
  const be = getModPowBackends();
  const lines: string[] = [];
  const emit = (s = "") => lines.push(s);
  emit(
    `Client: ${runtimeLabel()} in the benchmark process (backends ${be.public.name} / ` +
      `${be.secret.name}); ${availableParallelism()} CPUs; load average (1, 5, 15 min) ` +
      `${loads.start} at the start, ${loads.end} at the end; ${N} timed calls of each kind per ` +
      `stack after ${WARMUP} warm-up; run ${new Date().toISOString().slice(0, 16)}Z.`,
  );
  emit();
  emit(
    "| client | gateway + service | service backends (public / secret) | full signTx p50 | " +
      "full p95 | pooled signMessage p50 | pooled p95 | pooled share | other load, cores " +
      "(full / pooled) | pooled p50 <= 50 ms |",
  );
  emit("|---|---|---|---:|---:|---:|---:|---:|---:|---|");
  for (const r of runs) {
    const full = summary(r.full.ms);
    const pooled = summary(r.pooled.ms);
    const met = pooled.p50 <= TARGET_POOLED_P50_MS;
    emit(
      `| ${OWN} | ${r.runtime} | ${r.serviceBackends} | ${ms(full.p50)} | ${ms(full.p95)} | ` +
        `${ms(pooled.p50)} | ${ms(pooled.p95)} | ${r.pooledCount}/${r.pooled.ms.length} | ` +
        `${summary(r.full.otherCores).mean.toFixed(2)} / ` +
        `${summary(r.pooled.otherCores).mean.toFixed(2)} | ` +
        `${met ? "met" : `not met (${(pooled.p50 / TARGET_POOLED_P50_MS).toFixed(1)}x)`} |`,
    );
  }
  emit();
  emit(
    "Pooled signMessage by phase, as the client sees it (p50 of each column on its own): " +
      "OpenRoom = from the call until the service's room is in; handshake = until the client's " +
      "party starts its round (the secure session's handshake through the gateway, the " +
      "presignature taken); round = " +
      "its share out, the service's in, the signature made and verified; answer = until the " +
      "service's SignMessage answer is in and compared.",
  );
  emit();
  emit("| client | gateway + service | OpenRoom | handshake | round | answer |");
  emit("|---|---|---:|---:|---:|---:|");
  for (const r of runs) {
    const col = (k: number) => ms(summary(r.pooledPhases.map((x) => x[k])).p50);
    emit(`| ${OWN} | ${r.runtime} | ${col(0)} | ${col(1)} | ${col(2)} | ${col(3)} |`);
  }
  const notIdle = runs.reduce((a, r) => a + r.full.notIdle + r.pooled.notIdle, 0);
  if (notIdle > 0) {
    emit();
    emit(`(${notIdle} timed calls started before the service was idle: 30 s bound reached.)`);
  }
  emit();
  emit(
    `Presigning: \`warmPresignatures\` of ${PRESIGN} presignatures (sessions of ${BATCH}); ` +
      "CPU = user + system of every thread of the process (/proc), from the start until the " +
      "service is idle again (its idle-time Paillier randomizers included); per core = " +
      "presignatures / CPU seconds * 60.",
  );
  emit();
  emit(
    "| client | gateway + service | presignatures | sessions | wall | per minute (wall, 2 " +
      "parties) | service CPU (during + after) | per minute per core, service | client CPU | " +
      "per minute per core, client | gateway CPU | other load, cores |",
  );
  emit("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of runs) {
    const p = r.presign;
    const service = p.serviceCpu + p.serviceCpuAfter;
    const perMin = (cpu: number) => (p.count / cpu * 60).toFixed(0);
    emit(
      `| ${OWN} | ${r.runtime} | ${p.count} | ${p.sessions} | ${ms(p.wallMs)} | ` +
        `${(p.count / p.wallMs * 60_000).toFixed(0)} | ${service.toFixed(2)} s ` +
        `(${p.serviceCpu.toFixed(2)} + ${p.serviceCpuAfter.toFixed(2)}) | ${perMin(service)} | ` +
        `${p.clientCpu.toFixed(2)} s | ${perMin(p.clientCpu)} | ${p.gatewayCpu.toFixed(2)} s | ` +
        `${p.otherCores.toFixed(2)} |`,
    );
  }
  emit();
  return lines.join("\n");
}

/** Both parties' accounts: offline keygen (every proof) with the fixture primes (real size). */
async function accounts(): Promise<Parties> {
  const [client, service] = await generateOfflineAccounts([ACCOUNT], {
    generatePrimes: fixturePrimes(),
  });
  return [client, service];
}

async function main(): Promise<void> {
  installPlatformBackends();
  const start = load();
  say(`client in this process: ${runtimeLabel()}; stacks: ${STACKS.join(", ")}; load ${start}`);
  say("generating the development account offline with fixture primes");
  const parties = await accounts();
  const runs: StackRun[] = [];
  for (const rt of STACKS) runs.push(await runStack(rt, parties));
  const text = report(runs, { start, end: load() });
  console.log(text);
  if (OUT) writeFileSync(OUT, text);
}

main().then(() => process.exit(0), (e) => {
  console.error(`pool bench failed: ${(e as Error)?.stack ?? e}`);
  process.exit(1);
});
