/**
 * Process helpers for cross-process tests, tools and benchmarks: a throw-away
 * `redis-server`, a gateway started under Deno or Node, and skip reasons when a system binary is
 * missing. Every wait is bounded and fails with a message saying what it waited for.
 *
 * ## Ports
 *
 * A port found free by binding port 0 and closing the socket is free only "a moment ago": another
 * process may take it before the child binds it (about once in a few thousand runs). So a child
 * that can bind port 0 itself does, and the port is read from its `listening` log line (the
 * gateway, the sign-service). `redis-server` cannot (`--port 0` disables TCP), so
 * {@link startRedis} picks a port and picks again, bounded, when the server fails to bind it. A
 * restart on a fixed port (clients hold the URL) retries the same port, bounded, while the bind
 * fails ({@link retryWhilePortInUse}).
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
import { bounded } from "./waits.ts";

/** Repository root. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));

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
 * Finds a TCP port on 127.0.0.1 that was free a moment ago. Not a reservation: a child given
 * this port may find it taken, so use it only with a retry on {@link PortInUse} (module doc).
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

/** Thrown by a start whose process exited because its port was taken. */
export class PortInUse extends GatewayExit {}

/** What Node (`EADDRINUSE`), Deno (`AddrInUse`) and redis-server print for a port in use. */
export const ADDRESS_IN_USE: RegExp = /EADDRINUSE|AddrInUse|address already in use/i;

/**
 * Calls `start` again while it fails with {@link PortInUse}, bounded: for a restart on a port
 * that must stay the same (another process may hold it for a moment, e.g. a bind-to-0 probe or
 * a connection's ephemeral port). Any other failure is thrown at once.
 *
 * @param what description for the failure
 * @param start one start attempt
 * @param ms bound over all attempts
 * @param everyMs pause between attempts (the port's holder must let go; nothing to wait on)
 * @returns what `start` returned
 */
export async function retryWhilePortInUse<T>(
  what: string,
  start: () => Promise<T>,
  ms = PROCESS_WAIT_MS,
  everyMs = 200,
): Promise<T> {
  const end = Date.now() + ms;
  for (let attempt = 1;; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (!(e instanceof PortInUse)) throw e;
      if (Date.now() + everyMs > end) {
        throw new Error(`${what}: the port stayed in use (${attempt} attempts in ${ms} ms)`, {
          cause: e,
        });
      }
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Waits, bounded, until `check` returns a truthy value, calling it on each chunk of the child's
 * output (the caller's own `data` listeners, added before, have seen the chunk). Fails as soon
 * as the child's output pipes close (it exited): {@link PortInUse} when its output says its port
 * was taken, else {@link GatewayExit}.
 *
 * @param p the child, spawned with piped stdout and stderr
 * @param what description for the failure
 * @param check what to wait for; also called once at the start
 * @param output the child's output so far, for the failure
 * @param ms bound
 * @returns the truthy value
 */
export function waitForOutput<T>(
  p: ChildProcess,
  what: string,
  check: () => T | undefined | null | false,
  output: () => string,
  ms = PROCESS_WAIT_MS,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const pipes = [p.stdout!, p.stderr!];
    let open = pipes.filter((s) => !s.closed).length;
    const done = (f: () => void) => {
      clearTimeout(timer);
      for (const s of pipes) {
        s.off("data", onData);
        s.off("close", onClose);
      }
      f();
    };
    const onData = () => {
      const v = check();
      if (v) done(() => resolve(v));
    };
    const onClose = () => {
      if (--open > 0) return;
      const v = check();
      if (v) return done(() => resolve(v));
      const text = output();
      const E = ADDRESS_IN_USE.test(text) ? PortInUse : GatewayExit;
      done(() => reject(new E(`${what}: the process exited first: ${text.slice(-800)}`)));
    };
    const timer = setTimeout(
      () => done(() => reject(new Error(`gave up waiting for ${what} after ${ms} ms`))),
      ms,
    );
    for (const s of pipes) {
      s.on("data", onData);
      s.on("close", onClose);
    }
    const first = check();
    if (first) done(() => resolve(first));
    else if (open === 0) {
      open = 1;
      onClose();
    }
  });
}

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
  return bounded(ms, `process ${p.pid} to exit`, gone).then(() => {});
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
  /** Starts it again on the same port and directory (retried, bounded, while the port is taken). */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

/**
 * Starts `redis-server` in a temporary directory on a port that was free a moment ago; when the
 * server cannot bind it (taken in between), on another one, at most 10 times.
 *
 * @param options `persist`: append-only file with fsync on every write, so a restart keeps data
 * @returns the running server
 */
export async function startRedis(options: { persist?: boolean } = {}): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), "gw-redis-"));
  let port = 0;
  let proc: ChildProcess | null = null;
  const startOnce = async () => {
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
    try {
      await waitForOutput(
        p,
        `redis-server on port ${port} to be ready`,
        () => out.includes("Ready to accept connections"),
        () => out,
      );
    } catch (e) {
      proc = null;
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
      throw e;
    }
  };
  const stop = async () => {
    const p = proc;
    if (!p) return;
    proc = null;
    p.kill("SIGTERM");
    await waitExit(p, PROCESS_WAIT_MS);
  };
  try {
    for (let attempt = 1;; attempt++) {
      port = await freePort();
      try {
        await startOnce();
        break;
      } catch (e) {
        if (!(e instanceof PortInUse) || attempt >= 10) throw e;
      }
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    get pid() {
      return (proc as ChildProcess | null)?.pid ?? 0;
    },
    stop,
    // A restart keeps the port (the gateways hold the URL): retried while it is taken.
    start: () => retryWhilePortInUse(`redis-server to bind port ${port} again`, startOnce),
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
 * Starts `gateway/main.ts` under Deno or Node and waits for its `listening` line, which names the
 * port it got: port 0 (any free port, chosen by the gateway's own bind) unless `args` name one
 * with `--port`. A fixed port (a restart where clients hold the URL) is retried, bounded, while
 * the bind fails because the port is taken ({@link retryWhilePortInUse}).
 *
 * @param runtime `deno` or `node`
 * @param args extra command-line flags
 * @param env extra environment variables
 * @param portRetryMs bound of the retries on a fixed port
 * @returns the running gateway
 */
export function startGateway(
  runtime: "deno" | "node",
  args: string[] = [],
  env: Record<string, string> = {},
  portRetryMs: number = PROCESS_WAIT_MS,
): Promise<GatewayProcess> {
  const at = args.lastIndexOf("--port");
  const fixed = at >= 0 && args[at + 1] !== "0" ? args[at + 1] : undefined;
  if (fixed === undefined) return startGatewayOnce(runtime, args, env);
  return retryWhilePortInUse(
    `the ${runtime} gateway to bind port ${fixed}`,
    () => startGatewayOnce(runtime, args, env),
    portRetryMs,
  );
}

async function startGatewayOnce(
  runtime: "deno" | "node",
  args: string[],
  env: Record<string, string>,
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
  let listening: Record<string, unknown> | undefined;
  try {
    listening = await waitForOutput(
      p,
      `the ${runtime} gateway to listen`,
      () => logs.find((l) => l.msg === "listening"),
      () => out,
    );
  } catch (e) {
    // Never leave a half-started gateway behind.
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    throw e;
  }
  const port = Number(listening.port);
  if (!Number.isSafeInteger(port) || port <= 0) {
    p.kill("SIGKILL");
    throw new Error(`the gateway's listening line has no port: ${JSON.stringify(listening)}`);
  }
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
