/**
 * Load benchmark of the sign-service (`deno task bench:load`): N concurrent signing clients
 * (1, 4, 16, 64 by default) against one sign-gateway and one sign-service (tools/local_stack.ts,
 * port 0), with the service under Deno and then under Node. The clients are the client library
 * in processes of their own (bench/load/client_main.ts; Deno by default, whose processes start
 * on cached code), each one session at a time, a deadline per call, no automatic retry: a
 * refusal for load is waited out for its hint, then retried.
 *
 * Per level it prints: goodput (signatures per minute over the measured window), p50 / p95
 * latency of a successful call, the share of refused calls and their latency (p50 / max, as
 * the clients saw it, and the largest as the service audited it: request to refusal), the
 * service's CPU use (of all cores, over the window, and over the samples during which compute
 * jobs were queued), the latency of `GET /metrics` on the service (the I/O loop's
 * responsiveness), and what the service did after every client was killed (SIGKILL): its CPU
 * from 1 s to 3 s after, and how long until it was idle.
 *
 * The service's per-caller and global session limits are raised (every client uses one
 * caller), so that admission control (service/admission.ts) is what answers overload.
 *
 * ```sh
 * deno task bench:load
 * node --import tsx bench/load_bench.ts --runtimes=deno --levels=1,16 --seconds=40
 * ```
 * Flags: `--runtimes=deno,node`, `--levels=1,4,16,64`, `--seconds=60` (measured, per level),
 * `--warmup=15` (plus half a second per client, for the client processes to start),
 * `--timeout-ms=30000` (deadline of a call), `--procs=64` (client processes at most: by
 * default one per client, as clients on machines of their own), `--client-nice=10` (the clients' nice level: they share the service's two cores, and
 * run at a lower priority to stand for clients on machines of their own; 0 for none),
 * `--client-runtime=deno|node`, `--quiet-wait=S` (wait up to S seconds for a quiet machine
 * before each level).
 * @module
 */
import "../testing/setup.ts";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import process from "node:process";
import { fixtureAccounts } from "../testing/accounts.ts";
import { DENO, NODE, ROOT } from "../testing/processes.ts";
import { type LocalStack, startLocalStack } from "../tools/local_stack.ts";
import { cpuSeconds, machineBusySeconds, otherLoad, waitQuiet } from "./e2e/_load.ts";

const ACCOUNT = "alice";

function flag(name: string, fallback: string): string {
  const f = process.argv.find((a) => a.startsWith(`--${name}=`));
  return f ? f.slice(name.length + 3) : fallback;
}

const RUNTIMES = flag("runtimes", "deno,node").split(",") as ("deno" | "node")[];
const LEVELS = flag("levels", "1,4,16,64").split(",").map(Number);
const SECONDS = Number(flag("seconds", "60"));
const WARMUP = Number(flag("warmup", "15"));
const TIMEOUT_MS = Number(flag("timeout-ms", "30000"));
const PROCS = Number(flag("procs", "64"));
const NICE = Number(flag("client-nice", "10"));
const CLIENT_RUNTIME = flag("client-runtime", "deno") as "deno" | "node";
const QUIET = Number(flag("quiet-wait", "0"));
const CORES = availableParallelism();

/** One attempt a client reported. */
interface Attempt {
  readonly t: number;
  readonly ev: "ok" | "refused" | "error";
  readonly ms: number;
  readonly code?: string;
  readonly msg?: string;
}

/** One sample of the service. */
interface Sample {
  readonly t: number;
  readonly cpu: number;
  readonly machine: number;
  readonly queued: number;
  readonly busy: number;
  readonly active: number;
  /** Latency of the `/metrics` answer, ms. */
  readonly metricsMs: number;
}

/** What one level measured. */
interface Level {
  readonly n: number;
  readonly ok: number;
  readonly goodput: number;
  readonly p50: number;
  readonly p95: number;
  readonly refused: number;
  readonly attempts: number;
  readonly refusedP50: number;
  readonly refusedMax: number;
  /** Largest duration of a refusal in the service's audit log, ms. */
  readonly auditedRefusalMax: number;
  readonly errors: Record<string, number>;
  readonly cpu: number;
  readonly cpuQueued: number;
  readonly queuedSamples: number;
  readonly machineQueued: number;
  readonly metricsP50: number;
  readonly metricsP99: number;
  readonly afterCpuMs: number;
  readonly idleAfterMs: number;
  readonly otherCores: number;
}

/** The service's audit lines (the stack's audit file). */
function auditLines(stack: LocalStack): Record<string, unknown>[] {
  try {
    return readFileSync(stack.auditFile, "utf8").split("\n").filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** The value of an unlabelled metric in a Prometheus page. */
function metric(page: string, name: string): number {
  const m = page.match(new RegExp(`^${name} ([0-9.eE+-]+)$`, "m"));
  return m ? Number(m[1]) : NaN;
}

async function sample(stack: LocalStack): Promise<Sample> {
  const t0 = performance.now();
  const page = await (await fetch(`${stack.serviceWebUrl}/metrics`)).text();
  const metricsMs = performance.now() - t0;
  return {
    t: Date.now(),
    cpu: cpuSeconds(stack.servicePid),
    machine: machineBusySeconds(),
    queued: metric(page, "sign_service_queue_length"),
    busy: metric(page, "sign_service_workers_busy"),
    active: metric(page, "sign_service_sessions_active"),
    metricsMs,
  };
}

/** Starts the client processes of one level; their attempts go to `attempts`. */
function startClients(stack: LocalStack, n: number, attempts: Attempt[]): ChildProcess[] {
  const procs = Math.min(n, PROCS);
  return Array.from({ length: procs }, (_, k) => {
    const clients = Math.floor(n / procs) + (k < n % procs ? 1 : 0);
    const args = JSON.stringify({
      serviceUrl: stack.serviceWebUrl,
      gatewayUrl: stack.gatewayUrl,
      token: stack.token,
      account: ACCOUNT,
      clients,
      timeoutMs: TIMEOUT_MS,
    });
    const argv = CLIENT_RUNTIME === "deno"
      ? [DENO, "run", "-A", "--no-check", "bench/load/client_main.ts", args]
      : [NODE, "--import", "tsx", "bench/load/client_main.ts", args];
    const [cmd, ...rest] = NICE > 0 ? ["nice", "-n", String(NICE), ...argv] : argv;
    const p = spawn(cmd, rest, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let partial = "";
    p.stdout!.on("data", (b: Buffer) => {
      partial += b.toString();
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const l of lines) {
        try {
          const a = JSON.parse(l);
          if (a.ev !== "ready") attempts.push(a);
        } catch {
          // not ours
        }
      }
    });
    return p;
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runLevel(stack: LocalStack, n: number): Promise<Level> {
  const attempts: Attempt[] = [];
  const samples: Sample[] = [];
  const clients = startClients(stack, n, attempts);
  const tStart = Date.now();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      samples.push(await sample(stack));
      await sleep(250);
    }
  })();
  await sleep((WARMUP + n / 2) * 1000);
  const w0 = Date.now();
  const other = otherLoad([stack.servicePid, stack.gateway.pid, ...clients.map((c) => c.pid!)]);
  await sleep(SECONDS * 1000);
  const w1 = Date.now();
  const otherCores = other.cores();
  // Every client departs at once.
  for (const c of clients) c.kill("SIGKILL");
  await Promise.all(
    clients.map((c) => new Promise((r) => c.exitCode !== null ? r(0) : c.once("exit", r))),
  );
  const tEnd = Date.now();
  await sleep(3000);
  sampling = false;
  await sampler;
  // Wait until the service has let every session go (bounded), before the next level.
  for (let k = 0; k < 120; k++) {
    const s = await sample(stack);
    if (s.active === 0 && s.queued === 0) break;
    await sleep(500);
  }
  void tStart;

  const inWindow = attempts.filter((a) => a.t >= w0 && a.t < w1);
  const refusals = auditLines(stack).filter((l) => {
    const t = Date.parse(String(l.ts));
    return l.outcome === "rate-limited" && t >= w0 && t < w1;
  });
  const ok = inWindow.filter((a) => a.ev === "ok");
  const refused = inWindow.filter((a) => a.ev === "refused");
  const errors: Record<string, number> = {};
  for (const a of inWindow.filter((a) => a.ev === "error")) {
    const key = `${a.code}: ${(a.msg ?? "").slice(0, 60)}`;
    errors[key] = (errors[key] ?? 0) + 1;
  }
  const win = samples.filter((s) => s.t >= w0 && s.t <= w1);
  const cpu = win.length > 1
    ? (win.at(-1)!.cpu - win[0].cpu) / ((win.at(-1)!.t - win[0].t) / 1000) / CORES
    : NaN;
  // CPU over the sample intervals during which jobs were queued at both ends.
  let qCpu = 0, qMachine = 0, qWall = 0, qCount = 0;
  for (let k = 1; k < win.length; k++) {
    if (win[k - 1].queued > 0 && win[k].queued > 0) {
      qCpu += win[k].cpu - win[k - 1].cpu;
      qMachine += win[k].machine - win[k - 1].machine;
      qWall += (win[k].t - win[k - 1].t) / 1000;
      qCount++;
    }
  }
  const after = samples.filter((s) => s.t >= tEnd);
  const at = (ms: number) => after.find((s) => s.t >= tEnd + ms);
  const a1 = at(1000);
  const a3 = at(3000) ?? after.at(-1);
  const afterCpuMs = a1 && a3 ? (a3.cpu - a1.cpu) * 1000 : NaN;
  // Idle: the first sample interval after the departure with under 5% of one core.
  let idleAfterMs = NaN;
  for (let k = 1; k < after.length; k++) {
    const dt = (after[k].t - after[k - 1].t) / 1000;
    if ((after[k].cpu - after[k - 1].cpu) / dt < 0.05) {
      idleAfterMs = after[k - 1].t - tEnd;
      break;
    }
  }
  return {
    n,
    ok: ok.length,
    goodput: ok.length / (SECONDS / 60),
    p50: quantile(ok.map((a) => a.ms), 0.5),
    p95: quantile(ok.map((a) => a.ms), 0.95),
    refused: refused.length,
    attempts: inWindow.length,
    refusedP50: quantile(refused.map((a) => a.ms), 0.5),
    refusedMax: refused.length ? Math.max(...refused.map((a) => a.ms)) : NaN,
    auditedRefusalMax: refusals.length
      ? Math.max(...refusals.map((l) => Number(l.duration_ms)))
      : NaN,
    errors,
    cpu,
    cpuQueued: qWall > 0 ? qCpu / qWall / CORES : NaN,
    queuedSamples: qCount,
    machineQueued: qWall > 0 ? qMachine / qWall / CORES : NaN,
    metricsP50: quantile(win.map((s) => s.metricsMs), 0.5),
    metricsP99: quantile(win.map((s) => s.metricsMs), 0.99),
    afterCpuMs,
    idleAfterMs: Math.max(0, idleAfterMs),
    otherCores,
  };
}

const ms = (v: number) =>
  !Number.isFinite(v) ? "-" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`;
const pct = (v: number) => !Number.isFinite(v) ? "-" : `${(v * 100).toFixed(0)}%`;

async function main(): Promise<void> {
  const preset = await fixtureAccounts([ACCOUNT]);
  console.log(
    `Machine: ${CORES} cores; bench process ${process.release.name} ${process.version}; ` +
      `${SECONDS} s measured after ${WARMUP} s per level; call deadline ${TIMEOUT_MS} ms; ` +
      `client processes: ${CLIENT_RUNTIME}, at most ${PROCS}, nice ${NICE}`,
  );
  for (const runtime of RUNTIMES) {
    const stack = await startLocalStack({
      runtime,
      preset,
      accounts: [ACCOUNT],
      serviceEnv: {
        WALLET_MPC_SERVICE__RATE_LIMIT__PER_CALLER_PER_MINUTE: "1000000",
        WALLET_MPC_SERVICE__RATE_LIMIT__BURST: "100000",
        WALLET_MPC_SERVICE__RATE_LIMIT__MAX_CONCURRENT_SESSIONS: "1000",
        WALLET_MPC_SERVICE__RATE_LIMIT__MAX_SESSIONS_PER_CALLER: "1000",
      },
    });
    const rows: Level[] = [];
    try {
      for (const n of LEVELS) {
        if (QUIET > 0) await waitQuiet([stack.servicePid, stack.gateway.pid], { seconds: QUIET });
        const r = await runLevel(stack, n);
        rows.push(r);
        console.error(`${runtime} N=${n}: ${JSON.stringify(r)}`);
      }
    } finally {
      await stack.stop();
    }
    const peak = Math.max(...rows.map((r) => r.goodput));
    console.log(`\n#### service under ${runtime}\n`);
    console.log(
      "| N | goodput (sig/min) | of peak | p50 | p95 | refused | refusal p50 / max (clients) | " +
        "refusal max (service) | other errors | " +
        "service CPU (of all cores) | while queued: service / machine (samples) | /metrics p50 / p99 | " +
        "CPU 1-3 s after the clients left | idle after | other load (cores) |",
    );
    console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for (const r of rows) {
      const errs = Object.entries(r.errors).map(([k, v]) => `${v}x ${k}`).join("; ") || "0";
      console.log(
        `| ${r.n} | ${r.goodput.toFixed(1)} | ${pct(r.goodput / peak)} | ${ms(r.p50)} | ` +
          `${ms(r.p95)} | ${r.refused}/${r.attempts} (${pct(r.refused / r.attempts)}) | ` +
          `${ms(r.refusedP50)} / ${ms(r.refusedMax)} | ${ms(r.auditedRefusalMax)} | ${errs} | ` +
          `${pct(r.cpu)} | ` +
          `${pct(r.cpuQueued)} / ${pct(r.machineQueued)} (${r.queuedSamples}) | ` +
          `${ms(r.metricsP50)} / ${ms(r.metricsP99)} | ${ms(r.afterCpuMs)} | ` +
          `${ms(r.idleAfterMs)} | ${r.otherCores.toFixed(2)} |`,
      );
    }
  }
}

await main();
