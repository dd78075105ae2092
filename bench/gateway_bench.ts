/**
 * sign-gateway load benchmark: for each runtime (Deno, Node) and room shape, runs the runtime's
 * own limit (a minimal relay handler, `bench/gateway/baseline_server.ts`), the gateway on the
 * memory backend and the gateway on Redis, each driven by the same load generator
 * (`bench/gateway/loadgen.ts`, a separate Node process on loopback). Per server it measures:
 *
 * - a fixed-rate phase (the offered load): delivered events/s and post-to-receipt p50/p99;
 * - a saturation phase (posts as fast as the server answers): the most events/s it delivers;
 * - server CPU (utime+stime of its process) in each phase, and resident memory per subscriber.
 *
 * Prints a markdown table (and writes it with `--out file`).
 *
 * `--flood` runs the anonymous-flood comparison instead: per runtime, one gateway with room tokens
 * and anonymous requests allowed (`access.allow_anonymous`), authenticated pairs of subscribers
 * (every request with its room token, like the parties of a session) posting at a fixed rate,
 * measured without a flood, then while an anonymous client floods new rooms as fast as the
 * gateway answers from one source (`127.0.0.2`), then from 50 sources (`bench/gateway/flood.ts`).
 * Flags: `--flood-rooms 1000` (pairs), `--flood-rate 5000` (posts/s), `--seconds`.
 *
 * `--non-readers` measures the gateway's memory with subscribers that never read: per runtime,
 * `--subs 2000` raw subscriptions that never read a byte, then `--mb 80` MB of 64 KiB posts into
 * their rooms; resident memory idle, at its peak and at the end. `--gateway-root DIR` runs the
 * gateway of another checkout (e.g. the commit before a change, for a before / after table);
 * `--gw-set key=value` (repeated) sets a gateway setting, e.g. `limits.quota_exempt_sources=` to
 * make the loopback client an ordinary anonymous source.
 *
 * Usage: node --import tsx bench/gateway_bench.ts [--subs 10000] [--shapes pairs,fan10]
 *   [--runtimes deno,node] [--servers baseline,memory,redis] [--seconds 5] [--warmup 1]
 *   [--rate-pairs 10000] [--rate-fan10 5000] [--body 64] [--out docs/x.md] [--quiet-wait 120]
 * `--quick` runs a small smoke workload. On a shared machine, `--quiet-wait S` waits up to S seconds
 * before each configuration for other processes to go idle; the `other load` column reports what
 * other processes used during each saturation phase anyway.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { cpus, totalmem } from "node:os";
import process from "node:process";
import {
  DENO,
  type GatewayProcess,
  missing,
  NODE,
  ROOT,
  startGateway,
  startRedis,
  until,
} from "../testing/processes.ts";
import type { LoadOptions, LoadResult } from "./gateway/loadgen.ts";

interface Shape {
  name: string;
  subsPerRoom: number;
  /** Posts/s of the fixed-rate phase. */
  rate: number;
}

interface Row {
  runtime: string;
  server: string;
  shape: string;
  subscribers: number;
  fixed: LoadResult;
  fixedCpu: number;
  sat: LoadResult;
  satCpu: number;
  redisCpu: number;
  loadgenCpu: number[];
  /** CPU (in cores) used by other processes of the machine during the saturation phase. */
  otherCpu: number;
  kibPerSub: number;
}

function flag(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const quick = process.argv.includes("--quick");
const SUBS = Number(flag("subs", quick ? "1000" : "10000"));
const SECONDS = Number(flag("seconds", quick ? "2" : "5"));
const WARMUP = Number(flag("warmup", "1"));
const BODY = Number(flag("body", "64"));
const RUNTIMES = flag("runtimes", "deno,node").split(",") as ("deno" | "node")[];
const SERVERS = flag("servers", "baseline,memory,redis").split(",");
const SHAPES: Shape[] = flag("shapes", "pairs,fan10").split(",").map((name) => {
  const m = /^(pairs|fan(\d+))$/.exec(name);
  if (!m) throw new RangeError(`--shapes: expected pairs or fanN, got ${name}`);
  const subsPerRoom = m[1] === "pairs" ? 2 : Number(m[2]);
  const rate = Number(flag(`rate-${name}`, String(Math.round(50_000 / subsPerRoom))));
  return { name, subsPerRoom, rate: m[1] === "pairs" ? Number(flag("rate-pairs", "10000")) : rate };
});

const CLK_TCK = 100;
/** Seconds to wait, before each configuration, for the machine to be idle (0: do not wait). */
const QUIET_WAIT = Number(flag("quiet-wait", "0"));

/** Waits (bounded) until the machine's other processes use less than 0.3 core for 2 s. */
async function waitQuiet(): Promise<void> {
  const end = performance.now() + QUIET_WAIT * 1000;
  while (performance.now() < end) {
    const a = machineBusyTicks();
    await new Promise((r) => setTimeout(r, 2000));
    const busy = (machineBusyTicks() - a) / CLK_TCK / 2;
    if (busy < 0.3) return;
    console.error(`bench: machine busy (${fmt(100 * busy)}% of a core used by others); waiting`);
  }
}

function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

/** Busy CPU ticks of the whole machine (all cores). */
function machineBusyTicks(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return total - v[3] - v[4];
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

async function startBaseline(runtime: "deno" | "node") {
  const script = `${ROOT}bench/gateway/baseline_server.ts`;
  const [cmd, args] = runtime === "deno"
    ? [DENO, ["run", "-A", "--no-check", script, "0"]]
    : [NODE, ["--import", "tsx", script, "0"]];
  const p = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  const port = await until("the baseline server to listen", () => {
    const m = /"port":(\d+)/.exec(out);
    return m ? Number(m[1]) : 0;
  });
  return { port, pid: p.pid!, stop: () => stopProcess(p) };
}

async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const closed = new Promise<void>((r) => p.stdout?.once("close", () => r()));
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 15_000);
  await closed;
  clearTimeout(t);
}

async function runLoadgen(
  opts: LoadOptions,
  serverPid: number,
  redisPid: number | null,
): Promise<
  {
    results: LoadResult[];
    cpu: number[];
    redisCpu: number[];
    loadgenCpu: number[];
    otherCpu: number[];
    kibPerSub: number;
  }
> {
  const rssIdle = rssKiB(serverPid);
  const p = spawn(NODE, [
    "--import",
    "tsx",
    `${ROOT}bench/gateway/loadgen.ts`,
    JSON.stringify(opts),
  ], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const results: LoadResult[] = [];
  const cpu: number[] = [];
  const redisCpu: number[] = [];
  const loadgenCpu: number[] = [];
  const otherCpu: number[] = [];
  let kibPerSub = NaN;
  let phaseStart = { t: 0, ticks: 0, redis: 0, loadgen: 0, machine: 0 };
  let partial = "";
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on("data", (b: Buffer) => {
      partial += b.toString();
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const msg = JSON.parse(line);
        if (msg.phase === "connected") {
          // Let the server settle, then sample its memory with every subscriber connected.
          setTimeout(() => {
            kibPerSub = (rssKiB(serverPid) - rssIdle) / msg.subscribers;
            p.stdin!.write("go\n");
          }, 1000);
        } else if (msg.phase === "phase-start") {
          phaseStart = {
            t: performance.now(),
            ticks: cpuTicks(serverPid),
            redis: redisPid ? cpuTicks(redisPid) : 0,
            loadgen: cpuTicks(p.pid!),
            machine: machineBusyTicks(),
          };
        } else if (msg.phase === "phase-result") {
          const secs = (performance.now() - phaseStart.t) / 1000;
          cpu.push((cpuTicks(serverPid) - phaseStart.ticks) / CLK_TCK / secs);
          redisCpu.push(redisPid ? (cpuTicks(redisPid) - phaseStart.redis) / CLK_TCK / secs : 0);
          loadgenCpu.push((cpuTicks(p.pid!) - phaseStart.loadgen) / CLK_TCK / secs);
          const machine = (machineBusyTicks() - phaseStart.machine) / CLK_TCK / secs;
          otherCpu.push(machine - cpu.at(-1)! - redisCpu.at(-1)! - loadgenCpu.at(-1)!);
          results.push(msg);
        } else if (msg.phase === "error") {
          reject(new Error(msg.error));
        } else if (msg.phase === "done") {
          resolve();
        }
      }
    });
    p.once("exit", () => resolve());
  });
  return { results, cpu, redisCpu, loadgenCpu, otherCpu, kibPerSub };
}

function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "n/a";
  return n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const redisSkip = SERVERS.includes("redis") ? missing("redis-server") : "not requested";
  if (SERVERS.includes("redis") && redisSkip) console.error(`skipping redis: ${redisSkip}`);
  const redis = redisSkip ? null : await startRedis();
  try {
    for (const runtime of RUNTIMES) {
      for (const shape of SHAPES) {
        for (const server of SERVERS) {
          if (server === "redis" && !redis) continue;
          if (QUIET_WAIT > 0) await waitQuiet();
          const rooms = Math.round(SUBS / shape.subsPerRoom);
          let stop: () => Promise<unknown>;
          let port: number;
          let pid: number;
          if (server === "baseline") {
            const b = await startBaseline(runtime);
            ({ port, pid } = b);
            stop = b.stop;
          } else {
            const args = [
              "--log-level",
              "info",
              "--set",
              `limits.max_subscribers=${SUBS + 1000}`,
              "--set",
              `limits.max_subscribers_per_room=${shape.subsPerRoom + 10}`,
              "--set",
              `limits.max_rooms=${rooms + 1000}`,
            ];
            if (server === "redis") {
              args.push(
                "--backend",
                "redis",
                "--redis-url",
                redis!.url,
                "--set",
                `backend.redis.key_prefix=b${Date.now()}:`,
              );
            }
            const g: GatewayProcess = await startGateway(runtime, args);
            ({ port, pid } = g);
            stop = () => g.stop("SIGTERM");
          }
          await new Promise((r) => setTimeout(r, 500));
          const label = `${runtime} ${server} ${shape.name}`;
          console.error(`bench: ${label}: ${SUBS} subscribers in ${rooms} rooms`);
          const redisServerPid = server === "redis" ? redis!.pid : null;
          const out = await runLoadgen(
            {
              port,
              rooms,
              subsPerRoom: shape.subsPerRoom,
              postConns: 8,
              inflight: 64,
              bodyBytes: BODY,
              roomPrefix: `${server}-${shape.name}`,
              pauseAfterConnect: true,
              phases: [
                { rate: shape.rate, durationS: SECONDS, warmupS: WARMUP },
                { rate: 0, durationS: SECONDS, warmupS: WARMUP },
              ],
            },
            pid,
            redisServerPid,
          );
          await stop();
          if (out.results.length < 2) throw new Error(`${label}: the load generator failed`);
          rows.push({
            runtime,
            server,
            shape: `${rooms} x ${shape.subsPerRoom}`,
            subscribers: out.results[0].subscribers,
            fixed: out.results[0],
            fixedCpu: out.cpu[0],
            sat: out.results[1],
            satCpu: out.cpu[1],
            redisCpu: out.redisCpu[1],
            loadgenCpu: out.loadgenCpu,
            otherCpu: Math.max(...out.otherCpu),
            kibPerSub: out.kibPerSub,
          });
          console.error(
            `bench: ${label}: fixed ${fmt(out.results[0].deliveredPerS)} ev/s p99 ${
              fmt(out.results[0].p99Ms, 1)
            } ms; saturation ${fmt(out.results[1].deliveredPerS)} ev/s`,
          );
        }
      }
    }
  } finally {
    await redis?.dispose();
  }
  const table = render(rows);
  console.log(table);
  const outFile = flag("out", "");
  if (outFile) writeFileSync(outFile, table + "\n");
}

function render(rows: Row[]): string {
  const lines = [
    `Machine: ${cpus().length} x ${cpus()[0]?.model ?? "?"}, ${
      fmt(totalmem() / 2 ** 30, 1)
    } GiB; Node ${process.version}; ${SUBS} subscribers; body ${BODY} B; ${SECONDS} s per phase.`,
    "",
    "| runtime | server | rooms x subs | offered ev/s | delivered ev/s | p50 ms | p99 ms | server CPU | saturation ev/s | sat. CPU | ev per CPU-s | vs baseline (ev/s, per CPU) | KiB/sub | lost | loadgen CPU | other load |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const base = rows.find((b) =>
      b.runtime === r.runtime && b.shape === r.shape && b.server === "baseline"
    );
    const perCpu = r.sat.deliveredPerS / (r.satCpu + r.redisCpu);
    const basePerCpu = base ? base.sat.deliveredPerS / base.satCpu : NaN;
    const vs = base && r !== base
      ? `${fmt((100 * r.sat.deliveredPerS) / base.sat.deliveredPerS)}%, ${
        fmt((100 * perCpu) / basePerCpu)
      }%`
      : "-";
    lines.push(
      `| ${r.runtime} | ${r.server} | ${r.shape} | ${
        fmt(r.fixed.postsPerS * Number(r.shape.split(" x ")[1]))
      } | ${fmt(r.fixed.deliveredPerS)} | ${fmt(r.fixed.p50Ms, 1)} | ${fmt(r.fixed.p99Ms, 1)} | ${
        fmt(100 * r.fixedCpu)
      }% | ${fmt(r.sat.deliveredPerS)} | ${fmt(100 * r.satCpu)}%${
        r.redisCpu > 0 ? ` (+${fmt(100 * r.redisCpu)}% redis)` : ""
      } | ${fmt(perCpu)} | ${vs} | ${fmt(r.kibPerSub, 1)} | ${r.fixed.lost + r.sat.lost} | ${
        r.loadgenCpu.map((c) => `${fmt(100 * c)}%`).join(" / ")
      } | ${fmt(100 * Math.max(0, r.otherCpu))}% |`,
    );
  }
  return lines.join("\n");
}

/** One row of the flood comparison. */
interface FloodRow {
  runtime: string;
  flood: string;
  load: LoadResult;
  cpu: number;
  attacker: { perS: number; byStatus: Record<string, number> } | null;
  rooms: number;
  health: string;
  /** CPU (in cores) used by other processes of the machine meanwhile (not the attacker). */
  otherCpu: number;
  /** CPU (in cores) the attacker's process used meanwhile. */
  attackerCpu: number;
}

const FLOOD_SECRET = "bench-token-secret-0123456789abcdef";

/** Starts `bench/gateway/flood.ts` and waits until it floods; returns its stop. */
async function startFloodProcess(opts: import("./gateway/flood.ts").FloodOptions) {
  const p = spawn(
    NODE,
    ["--import", "tsx", `${ROOT}bench/gateway/flood.ts`, JSON.stringify(opts)],
    {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  let out = "";
  p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  await until("the flood to start", () => out.includes('"flooding"'));
  const stop = async () => {
    const done = new Promise<void>((r) => p.once("exit", () => r()));
    p.stdin!.write("stop\n");
    await done;
    const line = out.split("\n").find((l) => l.includes('"done"'));
    return line ? JSON.parse(line) : null;
  };
  return { stop, pid: p.pid! };
}

async function gatewayState(url: string): Promise<{ rooms: number; health: string }> {
  const health = await (await fetch(`${url}/healthz`)).json();
  const limits = (health.saturated ?? []).map((s: { limit: string }) => s.limit).join(", ");
  return {
    rooms: Number(health.backend?.detail?.rooms ?? NaN),
    health: `${health.status}${limits ? ` (${limits})` : ""}`,
  };
}

async function floodMain(): Promise<void> {
  const rooms = Number(flag("flood-rooms", "1000"));
  const rate = Number(flag("flood-rate", "5000"));
  const floods: { name: string; sources: string[]; conns: number }[] = [
    { name: "none", sources: [], conns: 0 },
    { name: "1 source, max speed", sources: ["127.0.0.2"], conns: 4 },
    {
      name: "50 sources, max speed",
      sources: Array.from({ length: 50 }, (_, i) => `127.0.0.${i + 2}`),
      conns: 1,
    },
  ];
  const repeat = Number(flag("repeat", "1"));
  const runs: FloodRow[] = [];
  for (let round = 0; round < repeat; round++) {
    for (const runtime of RUNTIMES) {
      if (QUIET_WAIT > 0) await waitQuiet();
      const gw = await startGateway(runtime, [
        "--log-level",
        "info",
        "--set",
        "access.allow_anonymous=true",
        "--set",
        "limits.quota_exempt_sources=127.0.0.1/32",
        "--set",
        `limits.max_subscribers=${rooms * 2 + 1000}`,
      ], {
        WALLET_MPC_GATEWAY_ACCESS_ENABLED: "true",
        WALLET_MPC_GATEWAY_TOKEN_SECRET: FLOOD_SECRET,
      });
      try {
        for (const [i, f] of floods.entries()) {
          const flood = f.sources.length > 0
            ? await startFloodProcess({
              port: gw.port,
              sources: f.sources,
              connsPerSource: f.conns,
            })
            : null;
          if (flood) await new Promise((r) => setTimeout(r, 1000)); // the flood reaches its quotas
          const a0 = { t: performance.now(), ticks: flood ? cpuTicks(flood.pid) : 0 };
          console.error(`bench: ${runtime} flood ${f.name}`);
          const out = await runLoadgen(
            {
              port: gw.port,
              rooms,
              subsPerRoom: 2,
              postConns: 8,
              inflight: 64,
              bodyBytes: BODY,
              roomPrefix: `auth${i}`,
              pauseAfterConnect: true,
              tokenSecret: FLOOD_SECRET,
              phases: [{ rate, durationS: SECONDS, warmupS: WARMUP }],
            },
            gw.pid,
            null,
          );
          const attackerCpu = flood
            ? (cpuTicks(flood.pid) - a0.ticks) / CLK_TCK / ((performance.now() - a0.t) / 1000)
            : 0;
          const attacker = flood ? await flood.stop() : null;
          const state = await gatewayState(gw.url);
          if (out.results.length < 1) {
            throw new Error(`${runtime} ${f.name}: the load generator failed`);
          }
          runs.push({
            runtime,
            flood: f.name,
            load: out.results[0],
            cpu: out.cpu[0],
            otherCpu: Math.max(...out.otherCpu) - attackerCpu,
            attackerCpu,
            attacker,
            ...state,
          });
        }
      } finally {
        await gw.stop("SIGTERM");
      }
    }
  }
  // Per runtime and flood, the run with the median p99 (all p99s listed).
  const rows: (FloodRow & { p99s: number[] })[] = [];
  for (const runtime of RUNTIMES) {
    for (const f of floods) {
      const same = runs.filter((r) => r.runtime === runtime && r.flood === f.name)
        .sort((a, b) => a.load.p99Ms - b.load.p99Ms);
      if (same.length === 0) continue;
      rows.push({ ...same[(same.length - 1) >> 1], p99s: same.map((r) => r.load.p99Ms) });
    }
  }
  const lines = [
    `Machine: ${cpus().length} x ${
      cpus()[0]?.model ?? "?"
    }; Node ${process.version}; ${rooms} authenticated rooms x 2 subscribers, ${
      fmt(rate)
    } posts/s (${
      fmt(2 * rate)
    } events/s offered), body ${BODY} B, ${SECONDS} s measured, ${repeat} run(s) each (the run with the median p99 shown).`,
    "",
    "| runtime | anonymous flood | attacker answers/s | attacker answers | attacker CPU | delivered ev/s | p50 ms | p99 ms (runs) | p99 vs no flood | gateway CPU | other load | lost | rooms after | /healthz |",
    "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    const calm = rows.find((c) => c.runtime === r.runtime && c.flood === "none")!;
    const answers = r.attacker
      ? Object.entries(r.attacker.byStatus).sort().map(([k, v]) => `${k}: ${fmt(v)}`).join(", ")
      : "-";
    lines.push(
      `| ${r.runtime} | ${r.flood} | ${r.attacker ? fmt(r.attacker.perS) : "-"} | ${answers} | ${
        r.attacker ? `${fmt(100 * r.attackerCpu)}%` : "-"
      } | ${fmt(r.load.deliveredPerS)} | ${fmt(r.load.p50Ms, 1)} | ${fmt(r.load.p99Ms, 1)}${
        r.p99s.length > 1 ? ` (${r.p99s.map((v) => fmt(v, 0)).join(", ")})` : ""
      } | ${r === calm ? "-" : `${fmt((100 * r.load.p99Ms) / calm.load.p99Ms)}%`} | ${
        fmt(100 * r.cpu)
      }% | ${fmt(100 * Math.max(0, r.otherCpu))}% | ${r.load.lost} | ${
        fmt(r.rooms)
      } | ${r.health} |`,
    );
  }
  const table = lines.join("\n");
  console.log(table);
  const outFile = flag("out", "");
  if (outFile) writeFileSync(outFile, table + "\n");
}

/** A gateway of some checkout, started directly (for `--non-readers --gateway-root`). */
async function startGatewayAt(root: string, runtime: "deno" | "node", args: string[]) {
  const main = `${root}/gateway/main.ts`;
  const argv = ["--port", "0", "--config", `${root}/config/sign-gateway.yaml`, ...args];
  const [cmd, cmdArgs] = runtime === "deno"
    ? [DENO, ["run", "-A", "--no-check", main, ...argv]]
    : [NODE, ["--import", "tsx", main, ...argv]];
  const p = spawn(cmd, cmdArgs, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  const port = await until(`the gateway in ${root} to listen`, () => {
    const m = /"msg":"listening".*?"port":(\d+)/.exec(out);
    return m ? Number(m[1]) : 0;
  });
  return { port, pid: p.pid!, stop: () => stopProcess(p) };
}

async function nonReadersMain(): Promise<void> {
  const root = flag("gateway-root", ROOT.replace(/\/$/, ""));
  const subs = Number(flag("subs", "2000"));
  const mb = Number(flag("mb", "80"));
  /** The client's address (`127.0.0.2` with `--gw-set limits.quota_exempt_sources=127.0.0.1/32`). */
  const from = flag("from", "127.0.0.1");
  const lines = [
    `Machine: ${cpus().length} x ${
      cpus()[0]?.model ?? "?"
    }; Node ${process.version}; gateway of ${root}; from ${from}: ${subs} subscribers that never read (${
      subs / 2
    } rooms x 2), ${mb} MB posted in 64 KiB bodies.`,
    "",
    "| runtime | RSS idle MiB | RSS peak MiB | RSS after MiB | JS heap after MiB | history MiB | queued MiB | subscribers left | posts answered 200 |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const runtime of RUNTIMES) {
    if (QUIET_WAIT > 0) await waitQuiet();
    const extra = process.argv.flatMap((a, i) =>
      a === "--gw-set" && i + 1 < process.argv.length ? ["--set", process.argv[i + 1]] : []
    );
    const gw = await startGatewayAt(root, runtime, [
      "--log-level",
      "info",
      "--set",
      `limits.max_subscribers=${subs + 100}`,
      ...extra,
    ]);
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const idle = rssKiB(gw.pid);
      let peak = idle;
      const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(gw.pid))), 100);
      const sockets = [];
      for (let i = 0; i < subs; i++) {
        const s = connect({ port: gw.port, host: "127.0.0.1", localAddress: from });
        s.on("error", () => {});
        s.pause();
        s.write(`GET /rooms/nr-${i % (subs / 2)}/subscribe HTTP/1.1\r\nhost: gw\r\n\r\n`);
        sockets.push(s);
        if (i % 200 === 199) await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 1000));
      const body = "p".repeat(64 * 1024);
      const posts = Math.round((mb * 1e6) / body.length);
      let answered = 0;
      const agent = new Agent({ keepAlive: true, maxSockets: 8, localAddress: from });
      const post = (i: number) =>
        new Promise<void>((resolve) => {
          const url = `http://127.0.0.1:${gw.port}/rooms/nr-${i % (subs / 2)}/broadcast`;
          const r = request(url, { method: "POST", agent }, (res) => {
            res.resume();
            res.on("end", () => {
              if (res.statusCode === 200) answered++;
              resolve();
            });
          });
          r.on("error", () => resolve());
          r.end(body);
        });
      for (let i = 0; i < posts; i += 8) {
        await Promise.all(Array.from({ length: Math.min(8, posts - i) }, (_, k) => post(i + k)));
      }
      await new Promise((r) => setTimeout(r, 2000));
      clearInterval(sampler);
      const after = rssKiB(gw.pid);
      const metrics = await (await fetch(`http://127.0.0.1:${gw.port}/metrics`)).text();
      const gauge = (name: string) =>
        Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1] ?? NaN) / 2 ** 20;
      agent.destroy();
      for (const s of sockets) s.destroy();
      lines.push(
        `| ${runtime} | ${fmt(idle / 1024)} | ${fmt(peak / 1024)} | ${fmt(after / 1024)} | ${
          fmt(gauge("process_heap_used_bytes"))
        } | ${fmt(gauge("gateway_backend_history_bytes"))} | ${
          fmt(gauge("gateway_queued_bytes"), 1)
        } | ${fmt(gauge("gateway_subscribers") * 2 ** 20)} of ${fmt(subs)} | ${fmt(answered)} of ${
          fmt(posts)
        } |`,
      );
      console.error(lines.at(-1));
    } finally {
      await gw.stop();
    }
  }
  console.log(lines.join("\n"));
}

(process.argv.includes("--flood")
  ? floodMain()
  : process.argv.includes("--non-readers")
  ? nonReadersMain()
  : main()).catch((e) => {
    console.error(e);
    process.exit(1);
  });
