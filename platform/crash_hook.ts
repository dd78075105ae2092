/**
 * The crash points of the key lifecycle as a test mechanism (docs/key-lifecycle.md): an entry
 * point reads `WALLET_MPC_CRASH_AT` from ITS OWN environment and passes it here; at the named
 * point the process kills itself with SIGKILL (no cleanup, no flush), as a power cut would.
 * Nothing received from the network can enable a point: only whoever starts the process, who
 * can kill it anyway.
 *
 * Syntax: `point` or `point#k` (the k-th time the point is reached, default 1), e.g.
 * `refresh:after-pending-write` or `keystore:before-rename#2`.
 * @module
 */
import process from "node:process";
import { CRASH_POINTS, type CrashHook, type CrashPoint } from "../core/account_records.ts";

/**
 * Builds the hook of a crash point specification.
 *
 * @param spec the variable's value (undefined or empty: no hook).
 * @returns the hook, or undefined.
 * @throws {RangeError} for an unknown point or a bad count (the process must not start).
 */
export function crashHookFrom(spec: string | undefined): CrashHook | undefined {
  if (spec === undefined || spec === "") return undefined;
  const m = /^([a-z:-]+)(?:#([1-9][0-9]{0,3}))?$/.exec(spec);
  if (!m || !CRASH_POINTS.includes(m[1] as CrashPoint)) {
    throw new RangeError(
      `WALLET_MPC_CRASH_AT: expected one of ${CRASH_POINTS.join(", ")} (optionally #k)`,
    );
  }
  const point = m[1] as CrashPoint;
  let left = Number(m[2] ?? "1");
  return (p) => {
    if (p !== point || --left > 0) return;
    process.stderr.write(`crash point ${p}: SIGKILL\n`);
    process.kill(process.pid, "SIGKILL");
  };
}
