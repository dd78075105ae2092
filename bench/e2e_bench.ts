/**
 * End-to-end 2-of-2 signing benchmark: a real sign-gateway and a real sign-service as child
 * processes on loopback (`tools/local_stack.ts`), under Deno and under Node, and the client
 * library (`client/mpc_client.ts`) in this process, signing N random digests one after another.
 * Keys are development accounts from the project's offline key generation fed with the fixture
 * safe primes (real 1536-bit primes, so the Paillier moduli have their real size).
 *
 * Beside the end-to-end times it measures, in the same run, the protocol compute alone: both
 * parties signing over the in-memory network with every step timed (`e2e/_compute.ts`), in this
 * runtime and (through `e2e/compute_main.ts` as a child process) in the service's runtime when
 * it differs. The two parties of a deployment compute in parallel, so the compute of one
 * signature is its critical path: per round, the slower party's step. Overhead (transport,
 * secure session, RPC, service bookkeeping, scheduling) = end-to-end - compute. It also reports
 * the CPU each process used per signature against its party's compute, and the CPU that other
 * processes of the machine used meanwhile (a shared machine skews every figure).
 *
 * Prints markdown tables (stdout; progress on stderr), also written to `--out=<file>`.
 *
 * Usage: `node --import tsx bench/e2e_bench.ts` or `deno run -A bench/e2e_bench.ts`, flags
 * `--n=20` (timed signatures per stack), `--warmup=2`, `--compute-runs=<n>`,
 * `--stacks=deno,node`, `--protocol=connect|grpc-web`, `--quiet-wait=0` (seconds each phase may
 * spend waiting, before each signature, for other processes to use less than 0.3 core),
 * `--out=<file>`.
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { MemoryKeyStore, newMpcClient } from "../client/mpc_client.ts";
import { getModPowBackends } from "../core/math/mod.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import { encodeAccountEntries } from "../core/account_records.ts";
import { generateOfflineAccounts } from "../keygen/offline.ts";
import { installPlatformBackends } from "../platform/mod.ts";
import { fixturePrimes } from "../testing/accounts.ts";
import { DENO, NODE, ROOT } from "../testing/processes.ts";
import { startLocalStack } from "../tools/local_stack.ts";
import { arg, runtimeLabel } from "./_harness.ts";
import { type ComputeSample, measureSigningCompute, SLOTS } from "./e2e/_compute.ts";
import { cpuSeconds, otherLoad, waitQuiet } from "./e2e/_load.ts";

type Runtime = "deno" | "node";
type Parties = [Map<string, AccountEntry>, Map<string, AccountEntry>];

const N = Number(arg("n", "20"));
const WARMUP = Number(arg("warmup", "2"));
const COMPUTE_RUNS = Number(arg("compute-runs", String(N)));
const STACKS = arg("stacks", "deno,node").split(",") as Runtime[];
const PROTOCOL = arg("protocol", "connect") as "connect" | "grpc-web";
const QUIET_WAIT_S = Number(arg("quiet-wait", "0"));
const OUT = arg("out", "");
const ACCOUNT = "bench";
const OWN: Runtime = typeof Deno !== "undefined" ? "deno" : "node";
/** Targets of issue 5: end-to-end p50 by the stack's runtime, and overhead per signature. */
const TARGET_P50_MS: Record<Runtime, number> = { node: 1500, deno: 3000 };
const TARGET_OVERHEAD_MS = 50;
/** Phases of one signature as the client sees it (`SPANS[k]` pairs with compute `SLOTS[k]`). */
const SPANS = ["session + start", ...SLOTS.slice(1), "finish"];

for (const s of STACKS) {
  if (s !== "deno" && s !== "node") {
    throw new RangeError(`--stacks: expected deno or node, got ${s}`);
  }
}
if (PROTOCOL !== "connect" && PROTOCOL !== "grpc-web") {
  throw new RangeError(`--protocol: expected connect or grpc-web, got ${PROTOCOL}`);
}
if (!(N >= 1 && COMPUTE_RUNS >= 1 && WARMUP >= 0 && QUIET_WAIT_S >= 0)) {
  throw new RangeError("--n, --compute-runs: expected >= 1; --warmup, --quiet-wait: >= 0");
}

const t0 = Date.now();
const say = (m: string) => console.error(`[e2e ${((Date.now() - t0) / 1000).toFixed(1)} s] ${m}`);

/** Nearest-rank percentile of `xs`. */
function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function ms(v: number): string {
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(2)} s`;
  return `${v.toFixed(0)} ms`;
}

function cores(v: number): string {
  return Number.isNaN(v) ? "n/a" : v.toFixed(2);
}

/** Both parties' accounts: offline keygen (every proof) with fixture primes. */
async function fixtureAccounts(): Promise<Parties> {
  const [client, service] = await generateOfflineAccounts([ACCOUNT], {
    generatePrimes: fixturePrimes(),
  });
  return [client, service];
}

/** The compute samples of `runtime`: in this process, or in a child process of that runtime. */
async function computeIn(
  runtime: Runtime,
  parties: Parties,
  dir: string,
): Promise<ComputeSample[]> {
  if (runtime === OWN) {
    return await measureSigningCompute(parties, ACCOUNT, COMPUTE_RUNS, 1, QUIET_WAIT_S);
  }
  const file = join(dir, "accounts.json");
  writeFileSync(
    file,
    JSON.stringify({
      client: encodeAccountEntries(parties[0]),
      service: encodeAccountEntries(parties[1]),
    }),
    { mode: 0o600 },
  );
  const main = join(ROOT, "bench/e2e/compute_main.ts");
  const args = [
    `--accounts=${file}`,
    `--account=${ACCOUNT}`,
    `--runs=${COMPUTE_RUNS}`,
    "--warmup=1",
    `--quiet-wait=${QUIET_WAIT_S}`,
  ];
  const [cmd, argv] = runtime === "deno"
    ? [DENO, ["run", "-A", "--no-check", main, ...args]]
    : [NODE, ["--import", "tsx", main, ...args]];
  const p = spawn(cmd, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  p.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    const bound = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`the ${runtime} compute child did not finish in 30 min`));
    }, 30 * 60_000);
    p.once("exit", (c) => {
      clearTimeout(bound);
      resolve(c);
    });
  });
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (code !== 0 || !line) {
    throw new Error(`the ${runtime} compute child failed: ${out.slice(-2000)}`);
  }
  return JSON.parse(line.slice("RESULT ".length)) as ComputeSample[];
}

/** One end-to-end signature as the client saw it. */
interface E2eSample {
  readonly totalMs: number;
  /** Milliseconds per phase (`SPANS`). */
  readonly spans: number[];
  /** Cores other processes of the machine used meanwhile. */
  readonly otherCores: number;
}

/** The timed signatures of one stack and the CPU per signature of each process, ms. */
interface E2eRun {
  readonly samples: E2eSample[];
  readonly cpu: { readonly client: number; readonly service: number; readonly gateway: number };
}

/** Signs `WARMUP + N` digests through a stack of `runtime`; returns the timed ones. */
async function e2eIn(runtime: Runtime, parties: Parties): Promise<E2eRun> {
  say(`starting the ${runtime} gateway and service`);
  const stack = await startLocalStack({
    runtime,
    preset: parties,
    serviceEnv: {
      WALLET_MPC_SERVICE__RATE_LIMIT__PER_CALLER_PER_MINUTE: "100000",
      WALLET_MPC_SERVICE__RATE_LIMIT__BURST: "10000",
    },
  });
  try {
    let marks: { started1?: number; finished: number[] } = { finished: [] };
    const client = newMpcClient({
      ...stack.clientConfig(new MemoryKeyStore(parties[0])),
      protocol: PROTOCOL,
      onProgress: (e) => {
        if (e.type === "round-started" && e.round === 1) marks.started1 = performance.now();
        if (e.type === "round-finished") marks.finished[e.round] = performance.now();
      },
    });
    const samples: E2eSample[] = [];
    const pids = [process.pid, stack.servicePid, stack.gateway.pid];
    const budget = { seconds: QUIET_WAIT_S };
    const cpu = pids.map(() => 0);
    for (let k = 0; k < WARMUP + N; k++) {
      if (k >= WARMUP) await waitQuiet(pids, budget);
      const digest = globalThis.crypto.getRandomValues(new Uint8Array(32));
      marks = { finished: [] };
      const cpu0 = pids.map(cpuSeconds);
      const load = otherLoad(pids);
      const start = performance.now();
      await client.signTx(digest, ACCOUNT, { signal: AbortSignal.timeout(120_000) });
      const end = performance.now();
      const otherCores = load.cores();
      const f = marks.finished;
      if (marks.started1 === undefined || f.length !== 6) {
        throw new Error("the client did not report every round of signing");
      }
      const edges = [start, marks.started1, f[1], f[2], f[3], f[4], f[5], end];
      const spans = edges.slice(1).map((e, i) => e - edges[i]);
      if (k >= WARMUP) {
        samples.push({ totalMs: end - start, spans, otherCores });
        pids.forEach((pid, i) => (cpu[i] += ((cpuSeconds(pid) - cpu0[i]) * 1000) / N));
      }
      if ((k + 1) % 5 === 0) say(`${runtime} stack: ${k + 1}/${WARMUP + N} signatures`);
    }
    return { samples, cpu: { client: cpu[0], service: cpu[1], gateway: cpu[2] } };
  } finally {
    await stack.stop();
  }
}

/**
 * Critical path of each pair (client sample j, service sample j): per slot the slower party, in
 * CPU time (`steps`) or wall time (`wallSteps`).
 */
function criticalPaths(
  client: ComputeSample[],
  service: ComputeSample[],
  key: "steps" | "wallSteps" = "steps",
): number[] {
  const n = Math.min(client.length, service.length);
  return Array.from({ length: n }, (_, j) =>
    SLOTS.reduce(
      (a, _s, k) => a + Math.max(client[j][key][0][k], service[j][key][1][k]),
      0,
    ));
}

/** p50 of one party's total compute (sum of its steps). */
function partyCompute(xs: ComputeSample[], i: 0 | 1): number {
  return pct(xs.map((x) => x.steps[i].reduce((a, b) => a + b, 0)), 50);
}

function cpuModel(): string {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) =>
      l.startsWith("model name")
    );
    return line ? line.split(":")[1].trim() : "unknown";
  } catch {
    return "unknown";
  }
}

function report(compute: Map<Runtime, ComputeSample[]>, e2e: Map<Runtime, E2eRun>): string {
  const be = getModPowBackends();
  const lines: string[] = [];
  const emit = (s = "") => lines.push(s);
  const mine = compute.get(OWN)!;
  emit(
    `Machine: ${availableParallelism()} CPUs (nproc), ${cpuModel()}, ` +
      `${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; run ${
        new Date().toISOString().slice(0, 16)
      }Z.`,
  );
  emit(
    `Client: ${runtimeLabel()} in the benchmark process (backends ${be.public.name} / ` +
      `${be.secret.name}), protocol ${PROTOCOL}; ${N} timed signatures per stack after ${WARMUP} ` +
      `warm-up; compute: ${COMPUTE_RUNS} in-process signatures per runtime` +
      (QUIET_WAIT_S > 0 ? `; waited up to ${QUIET_WAIT_S} s per phase for a quiet machine.` : "."),
  );
  emit();
  emit(
    "| client | gateway + service | e2e p50 | e2e p95 | compute p50 (critical path, CPU) | " +
      "overhead (e2e p50 - compute p50) | compute p50 (critical path, wall) | " +
      "in-process, one thread, p50 | other load, cores (e2e / compute) | p50 target | " +
      "overhead <= 50 ms |",
  );
  emit("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
  for (const rt of STACKS) {
    const { samples } = e2e.get(rt)!;
    const theirs = compute.get(rt)!;
    const totals = samples.map((s) => s.totalMs);
    const crit = pct(criticalPaths(mine, theirs), 50);
    const p50 = pct(totals, 50);
    const overhead = p50 - crit;
    const target = TARGET_P50_MS[rt];
    const computeLoad = mean([...mine, ...theirs].map((s) => s.otherCores));
    emit(
      `| ${OWN} | ${rt} | ${ms(p50)} | ${ms(pct(totals, 95))} | ${ms(crit)} | ${ms(overhead)} | ` +
        `${ms(pct(criticalPaths(mine, theirs, "wallSteps"), 50))} | ` +
        `${ms(pct(theirs.map((s) => s.wallMs), 50))} (${rt}) | ` +
        `${cores(mean(samples.map((s) => s.otherCores)))} / ${cores(computeLoad)} | ` +
        `<= ${ms(target)}: ${p50 <= target ? "met" : "not met"} | ` +
        `${overhead <= TARGET_OVERHEAD_MS ? "met" : "not met"} |`,
    );
  }
  emit();
  emit(
    "CPU per signature (user + system of every thread, from /proc) against each party's " +
      "protocol compute (CPU of its steps in process, summed, p50):",
  );
  emit();
  emit(
    "| client | gateway + service | client CPU | client compute | service CPU | " +
      "service compute | gateway CPU | CPU beyond compute (all three) |",
  );
  emit("|---|---|---:|---:|---:|---:|---:|---:|");
  for (const rt of STACKS) {
    const { cpu } = e2e.get(rt)!;
    const c = partyCompute(mine, 0);
    const s = partyCompute(compute.get(rt)!, 1);
    emit(
      `| ${OWN} | ${rt} | ${ms(cpu.client)} | ${ms(c)} | ${ms(cpu.service)} | ${ms(s)} | ` +
        `${ms(cpu.gateway)} | ${ms(cpu.client + cpu.service + cpu.gateway - c - s)} |`,
    );
  }
  for (const rt of STACKS) {
    const { samples } = e2e.get(rt)!;
    const theirs = compute.get(rt)!;
    emit();
    emit(
      `Per phase, ${OWN} client with the ${rt} stack (p50 of each column on its own; steps in ` +
        `CPU time; a phase of ` +
        `the client's view ends when the client finishes that step, so it holds the peer's ` +
        `previous step when the peer is slower):`,
    );
    emit();
    emit("| phase | e2e, client's view | client step | service step | slower step |");
    emit("|---|---:|---:|---:|---:|");
    SPANS.forEach((name, k) => {
      const span = pct(samples.map((x) => x.spans[k]), 50);
      if (k >= SLOTS.length) {
        emit(`| ${name} | ${ms(span)} | - | - | - |`);
        return;
      }
      const a = pct(mine.map((x) => x.steps[0][k]), 50);
      const b = pct(theirs.map((x) => x.steps[1][k]), 50);
      emit(`| ${name} | ${ms(span)} | ${ms(a)} | ${ms(b)} | ${ms(Math.max(a, b))} |`);
    });
  }
  emit();
  return lines.join("\n");
}

async function main(): Promise<void> {
  installPlatformBackends();
  say(`client in this process: ${runtimeLabel()}; stacks: ${STACKS.join(", ")}`);
  say("generating the development account offline with fixture primes");
  const parties = await fixtureAccounts();
  const dir = mkdtempSync(join(tmpdir(), "wallet-mpc-e2e-bench-"));
  const compute = new Map<Runtime, ComputeSample[]>();
  const e2e = new Map<Runtime, E2eRun>();
  try {
    for (const rt of new Set<Runtime>([OWN, ...STACKS])) {
      say(`in-process compute under ${rt} (${COMPUTE_RUNS} signatures)`);
      compute.set(rt, await computeIn(rt, parties, dir));
    }
    for (const rt of STACKS) e2e.set(rt, await e2eIn(rt, parties));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const text = report(compute, e2e);
  console.log(text);
  if (OUT) writeFileSync(OUT, text);
}

main().then(() => process.exit(0), (e) => {
  console.error(`e2e bench failed: ${(e as Error)?.stack ?? e}`);
  process.exit(1);
});
