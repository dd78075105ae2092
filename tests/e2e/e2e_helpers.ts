/**
 * Helpers of the end-to-end tests, also used by the browser, enclave and package tests: the
 * account every file uses (generated once, see `testing/accounts.ts`), bounded waits, the
 * service's audit file, the client CLI run against a stack, and the runtime under test.
 * @module
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { toHex } from "../../core/bytes.ts";
import { detectRuntime } from "../../platform/mod.ts";
import type { LocalStack } from "../../tools/local_stack.ts";
import { DENO, NODE, ROOT, until } from "../../testing/processes.ts";
import { bounded } from "../../testing/waits.ts";
import { fixtureAccounts, type PartyAccounts } from "../../testing/accounts.ts";

/** The account of every end-to-end test file (one cached key, see `testing/accounts.ts`). */
export const ACCOUNT = "alice";

/** The runtime running this test file; the processes it starts run under the same one. */
export const RUNTIME: "deno" | "node" = detectRuntime() === "deno" ? "deno" : "node";

let cached: Promise<PartyAccounts> | undefined;

/** Both parties' accounts holding {@link ACCOUNT}, generated (or loaded) once per process. */
export function e2eAccounts(): Promise<PartyAccounts> {
  cached ??= fixtureAccounts([ACCOUNT]);
  return cached;
}

/**
 * Awaits a promise that must reject, bounded; returns its error.
 * @param ms the bound.
 * @param what what is awaited.
 * @param p the promise.
 * @returns the rejection reason.
 */
export async function rejection(ms: number, what: string, p: Promise<unknown>): Promise<Error> {
  const r = await bounded(ms, what, p.then(() => undefined, (e: unknown) => ({ e })));
  if (!r) throw new Error(`${what}: expected a failure, it succeeded`);
  return r.e as Error;
}

/** The service's audit lines so far, parsed. */
export function auditLines(stack: LocalStack): Record<string, unknown>[] {
  let text = "";
  try {
    text = readFileSync(stack.auditFile, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

/**
 * Waits (bounded) for an audit line matching `pred`.
 * @returns the line.
 */
export function waitAudit(
  stack: LocalStack,
  what: string,
  pred: (line: Record<string, unknown>) => boolean,
  ms = 30_000,
): Promise<Record<string, unknown>> {
  return until(
    `an audit line: ${what}`,
    () => auditLines(stack).find(pred),
    ms,
  ) as Promise<Record<string, unknown>>;
}

/** The service's age identity (the stack writes it to `service.age`). */
export function serviceAgeIdentity(stack: LocalStack): string {
  return readFileSync(join(stack.dir, "service.age"), "utf8").trim();
}

/** A fresh 32-byte digest, hex. */
export function randomDigest(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(32)));
}

/** How a run of the client CLI ended. */
export interface CliRun {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the client CLI (`client/cli.ts`, under {@link RUNTIME}) against `stack` to its end,
 * bounded: `args` then the stack's service and gateway URLs, its caller token, the client's key
 * share file, `identityFile` and `--json`.
 * @param stack the stack.
 * @param identityFile the client's age identity file.
 * @param args the command and its flags (`["sign", "--account", ...]`).
 * @param env more environment.
 * @param ms the bound (a CLI still running then is killed).
 * @returns the exit code, signal and output.
 */
export function runClientCli(
  stack: LocalStack,
  identityFile: string,
  args: string[],
  env: Record<string, string> = {},
  ms = 240_000,
): Promise<CliRun> {
  const cli = join(ROOT, "client/cli.ts");
  const [cmd, pre] = RUNTIME === "deno"
    ? [DENO, ["run", "-A", "--no-check", cli]]
    : [NODE, ["--import", "tsx", cli]];
  const p = spawn(cmd, [
    ...pre,
    ...args,
    "--service-url",
    stack.serviceWebUrl,
    "--gateway-url",
    stack.gatewayUrl,
    "--token",
    stack.token,
    "--key-share-file",
    stack.clientKeyFile,
    "--age-identity-file",
    identityFile,
    "--json",
  ], {
    cwd: ROOT,
    env: { ...process.env as Record<string, string>, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  p.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
  p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  return bounded(
    ms,
    `client ${args[0]}`,
    new Promise<CliRun>((resolve) =>
      p.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }))
    ),
  ).catch((e) => {
    p.kill("SIGKILL");
    throw e;
  });
}
