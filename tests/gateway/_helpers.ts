/**
 * Process helpers for the gateway's cross-process tests (and the benchmark): free ports, a
 * throw-away `redis-server`, a gateway started under Deno or Node, and skip reasons when a system
 * binary is missing. Every wait is bounded and fails with a message saying what it waited for.
 *
 * @module
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** Repository root. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Deno binary of the repository. */
export const DENO: string = join(ROOT, "node_modules/.bin/deno");

/** Node binary (from PATH: under Deno, `process.execPath` is Deno itself). */
export const NODE: string = typeof Deno === "undefined" ? process.execPath : "node";

/** Upper bound of a single wait in these tests. */
export const PROCESS_WAIT_MS = 20_000;

/**
 * Returns why a binary cannot be used (for a test's `skip`), or undefined when it runs.
 *
 * @param bin executable name or path
 * @param args arguments that make it print its version
 * @returns a skip reason or undefined
 */
export function missing(bin: string, args = ["--version"]): string | undefined {
  const r = spawnSync(bin, args, { stdio: "ignore", timeout: 10_000 });
  if (r.error || r.status !== 0) return `${bin} is not installed (CI installs it with .ci/run)`;
  return undefined;
}

/**
 * Finds a free TCP port on 127.0.0.1.
 *
 * @returns a port number that was free a moment ago
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Thrown by a wait that cannot succeed any more (the process it waits for has exited). */
export class GatewayExit extends Error {}

/**
 * Waits, bounded, until `check` returns a truthy value.
 *
 * @param what description for the failure
 * @param check polled every `everyMs`
 * @param ms bound
 * @param everyMs poll interval
 * @returns the truthy value
 */
export async function until<T>(
  what: string,
  check: () => T | Promise<T>,
  ms = PROCESS_WAIT_MS,
  everyMs = 25,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      if (e instanceof GatewayExit) throw e;
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`gave up waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function waitExit(p: ChildProcess, ms: number): Promise<void> {
  // Deno's node:child_process may report "exit" as soon as a signal is sent; the end of the
  // child's output pipes is the reliable sign that it is gone.
  const gone = Promise.all([
    p.exitCode !== null || p.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => p.once("exit", () => r())),
    ...[p.stdout, p.stderr].map((s) =>
      s && !s.closed ? new Promise<void>((r) => s.once("close", () => r())) : Promise.resolve()
    ),
  ]);
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    gone.then(() => clearTimeout(t)),
    new Promise<void>((_, reject) => {
      t = setTimeout(() => reject(new Error(`process ${p.pid} did not exit in ${ms} ms`)), ms);
    }),
  ]);
}

/** A throw-away redis-server. */
export interface RedisProcess {
  /** Port on 127.0.0.1. */
  readonly port: number;
  /** `redis://127.0.0.1:port/0`. */
  readonly url: string;
  /** Process id of the running server (0 when stopped). */
  readonly pid: number;
  /** Stops it gracefully (SIGTERM; data persisted when started with `persist`). */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

/**
 * Starts `redis-server` on a free port in a temporary directory.
 *
 * @param options `persist`: append-only file with fsync on every write, so a restart keeps data
 * @returns the running server
 */
export async function startRedis(options: { persist?: boolean } = {}): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), "gw-redis-"));
  const port = await freePort();
  let proc: ChildProcess | null = null;
  const start = async () => {
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      options.persist ? "yes" : "no",
      "--appendfsync",
      "always",
      "--logfile",
      "",
    ];
    const p = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    proc = p;
    let out = "";
    p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    p.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    await until(`redis-server on port ${port} to be ready`, () => {
      if (p.exitCode !== null) throw new Error(`redis-server exited: ${out.slice(-500)}`);
      return out.includes("Ready to accept connections");
    });
  };
  const stop = async () => {
    const p = proc;
    if (!p) return;
    proc = null;
    p.kill("SIGTERM");
    await waitExit(p, PROCESS_WAIT_MS);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    get pid() {
      return (proc as ChildProcess | null)?.pid ?? 0;
    },
    stop,
    start,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A gateway process. */
export interface GatewayProcess {
  /** Port it listens on. */
  readonly port: number;
  /** `http://127.0.0.1:port`. */
  readonly url: string;
  /** Process id. */
  readonly pid: number;
  /** Parsed JSON log lines so far. */
  readonly logs: Record<string, unknown>[];
  /** Raw stdout and stderr so far. */
  output(): string;
  /** Waits (bounded) for a log line matching `pred`. */
  waitForLog(what: string, pred: (l: Record<string, unknown>) => boolean): Promise<void>;
  /** Sends a signal and waits for the exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `gateway/main.ts` under Deno or Node on a free port and waits for its `listening` line.
 *
 * @param runtime `deno` or `node`
 * @param args extra command-line flags
 * @param env extra environment variables
 * @returns the running gateway
 */
export async function startGateway(
  runtime: "deno" | "node",
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  const main = join(ROOT, "gateway/main.ts");
  const argv = [
    "--port",
    "0",
    "--config",
    join(ROOT, "config/sign-gateway.yaml"),
    ...args,
  ];
  const [cmd, cmdArgs] = runtime === "deno"
    ? [DENO, ["run", "-A", "--no-check", main, ...argv]]
    : [NODE, ["--import", "tsx", main, ...argv]];
  const p = spawn(cmd, cmdArgs, {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let partial = "";
  const logs: Record<string, unknown>[] = [];
  p.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
    partial += b.toString();
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        // not a log line
      }
    }
  });
  p.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  let pipesOpen = 2;
  const closed = () => void pipesOpen--;
  p.stdout!.once("close", closed);
  p.stderr!.once("close", closed);
  const exitedAt = () => pipesOpen === 0;
  let listening: Record<string, unknown> | undefined;
  try {
    listening = await until(`the ${runtime} gateway to listen`, () => {
      if (exitedAt()) {
        throw new GatewayExit(`gateway exited early: ${out.slice(-800)}`);
      }
      return logs.find((l) => l.msg === "listening");
    });
  } catch (e) {
    // Never leave a half-started gateway behind.
    if (p.exitCode === null) p.kill("SIGKILL");
    throw e;
  }
  const port = Number(listening!.port);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: p.pid!,
    logs,
    output: () => out,
    async waitForLog(what, pred) {
      await until(what, () => logs.some(pred));
    },
    async stop(signal = "SIGTERM") {
      if (p.exitCode === null && p.signalCode === null) p.kill(signal);
      await waitExit(p, PROCESS_WAIT_MS);
      return p.exitCode;
    },
  };
}

/** An SSE stream read by `curl -N` (an independent client), parsed with eventsource-parser. */
export interface CurlStream {
  /** Events received so far. */
  readonly events: { event?: string; id?: string; data: string }[];
  /** Resolves with curl's exit code when it ends. */
  readonly exited: Promise<number | null>;
  /** Waits (bounded) until at least `n` events arrived. */
  waitEvents(n: number): Promise<void>;
  /** Stops curl. */
  stop(): Promise<void>;
}

/**
 * Subscribes with `curl -sN`.
 *
 * @param url subscribe URL
 * @param headers extra request headers
 * @returns the stream
 */
export async function curlStream(url: string, headers: Record<string, string> = {}): Promise<
  CurlStream
> {
  const { createParser } = await import("eventsource-parser");
  const args = ["-sN", "--no-buffer"];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  args.push(url);
  const p = spawn("curl", args, { stdio: ["ignore", "pipe", "pipe"] });
  const events: { event?: string; id?: string; data: string }[] = [];
  const parser = createParser({ onEvent: (e) => events.push(e) });
  const decoder = new TextDecoder();
  p.stdout!.on("data", (b: Buffer) => parser.feed(decoder.decode(b, { stream: true })));
  const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
  return {
    events,
    exited,
    waitEvents: (n) =>
      until(`${n} events from curl (have ${events.length})`, () => events.length >= n)
        .then(() => {}),
    async stop() {
      if (p.exitCode === null) p.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * Runs curl once and returns the status code and body.
 *
 * @param args curl arguments after `-s`
 * @param stdin data for curl's standard input (use with `--data-binary @-`)
 * @returns status and body
 */
export function curl(args: string[], stdin?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn("curl", ["-s", "-w", "\n%{http_code}", ...args], {
      stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (stdin !== undefined) p.stdin!.end(stdin);
    let out = "";
    p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    p.once("error", reject);
    p.once("exit", () => {
      const i = out.lastIndexOf("\n");
      resolve({ status: Number(out.slice(i + 1)), body: out.slice(0, i) });
    });
  });
}
