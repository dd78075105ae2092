/**
 * Helpers of the end-to-end tests, also used by the browser, enclave and package tests: the
 * account every file uses (generated once, see `testing/accounts.ts`), bounded waits, the
 * service's audit file, and the runtime under test.
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { toHex } from "../../core/bytes.ts";
import { detectRuntime } from "../../platform/mod.ts";
import type { LocalStack } from "../../tools/local_stack.ts";
import { until } from "../../testing/processes.ts";
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
