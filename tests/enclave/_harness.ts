/**
 * Processes of the isolated enclave test: a child whose JSON log lines are collected and
 * awaited (bounded, failing as soon as the child exits), a network namespace with only `lo`,
 * and the reasons to skip when the machine cannot run the test.
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import process from "node:process";
import { waitForOutput } from "../../testing/processes.ts";

/** A child process with its log lines. */
export interface LoggedProcess {
  readonly proc: ChildProcess;
  /** Its JSON log lines so far. */
  readonly lines: Record<string, unknown>[];
  /** Its whole output so far. */
  output(): string;
  /** Waits (bounded) for a line matching `pred`; fails when the child exits first. */
  waitFor(
    what: string,
    pred: (l: Record<string, unknown>) => boolean,
    ms?: number,
  ): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (null: killed). */
  readonly exited: Promise<number | null>;
  /** Sends a signal (if it still runs) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Spawns a child and collects its output and JSON lines.
 * @param cmd the program.
 * @param args its arguments.
 * @param env extra environment variables.
 * @returns the running child.
 */
export function spawnLogged(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): LoggedProcess {
  const proc = spawn(cmd, args, {
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let partial = "";
  const lines: Record<string, unknown>[] = [];
  proc.stdout!.on("data", (b: Uint8Array) => {
    const t = new TextDecoder().decode(b);
    out += t;
    partial += t;
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const l of parts) {
      try {
        lines.push(JSON.parse(l));
      } catch {
        // not a log line
      }
    }
  });
  proc.stderr!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
  const exited = new Promise<number | null>((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode);
    proc.once("exit", (code) => resolve(code));
  });
  return {
    proc,
    lines,
    output: () => out,
    waitFor: (what, pred, ms = 60_000) =>
      waitForOutput(proc, what, () => lines.find(pred), () => out, ms),
    exited,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return await exited;
    },
  };
}

/** Runs a command, returns its status and output (bounded). */
export function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/**
 * A network namespace with only `lo` (up): the enclave's isolation stand-in.
 * @param name its name.
 * @returns `remove()`.
 * @throws {Error} when it cannot be made.
 */
export function makeNetns(name: string): { name: string; remove(): void } {
  const add = run("ip", ["netns", "add", name]);
  if (add.status !== 0) throw new Error(`ip netns add ${name}: ${add.out}`);
  const up = run("ip", ["-n", name, "link", "set", "lo", "up"]);
  if (up.status !== 0) {
    run("ip", ["netns", "delete", name]);
    throw new Error(`ip -n ${name} link set lo up: ${up.out}`);
  }
  return { name, remove: () => void run("ip", ["netns", "delete", name]) };
}

/**
 * Why the isolated test cannot run here (a loud skip reason), or undefined.
 * @returns the reason or undefined.
 */
export function isolationMissing(): string | undefined {
  if (typeof Deno === "undefined") return "the enclave side runs on Deno only";
  if (process.getuid?.() !== 0) {
    return "SKIPPED LOUDLY: network namespaces need root (run deno task test:enclave as root, as CI does)";
  }
  const probe = `wmpc-probe-${process.pid}`;
  try {
    makeNetns(probe).remove();
  } catch (e) {
    return `SKIPPED LOUDLY: ip netns does not work here (${
      (e as Error).message.trim()
    }; CI installs iproute2)`;
  }
  if (run("openssl", ["version"]).status !== 0) return "SKIPPED LOUDLY: openssl is not installed";
  return undefined;
}
