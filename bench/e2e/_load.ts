/**
 * CPU accounting of the end-to-end benchmark on a shared Linux machine (`/proc`): CPU seconds of
 * given processes, busy CPU seconds of the whole machine, the CPU other processes used during a
 * measurement, and a bounded wait for the machine to go quiet. Everything returns NaN (and the
 * wait returns at once) where `/proc` is missing.
 * @module
 */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc (USER_HZ, 100 on Linux). */
const TICK = 100;

/** CPU seconds (user + system, every thread) a process has used so far. */
export function cpuSeconds(pid: number): number {
  try {
    // The fields after the command name (which may hold spaces): utime and stime are the 12th
    // and 13th of them.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return NaN;
  }
}

/** Busy CPU seconds of the whole machine so far (all cores; idle and iowait excluded). */
export function machineBusySeconds(): number {
  try {
    const v = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1)
      .map(Number);
    return (v.slice(0, 8).reduce((a, b) => a + b, 0) - v[3] - v[4]) / TICK;
  } catch {
    return NaN;
  }
}

/** A running measurement of the CPU used by processes other than `pids`. */
export interface OtherLoad {
  /** Cores other processes used on average since the start (0.5 = half a core). */
  cores(): number;
}

/**
 * Starts measuring the CPU other processes use.
 * @param pids our processes (their CPU is not "other").
 * @returns the measurement; read it with `cores()`.
 */
export function otherLoad(pids: readonly number[]): OtherLoad {
  const t0 = performance.now();
  const m0 = machineBusySeconds();
  const own0 = pids.reduce((a, p) => a + cpuSeconds(p), 0);
  return {
    cores() {
      const wall = (performance.now() - t0) / 1000;
      const own = pids.reduce((a, p) => a + cpuSeconds(p), 0) - own0;
      return Math.max(0, (machineBusySeconds() - m0 - own) / wall);
    },
  };
}

/**
 * Waits until other processes use less than `maxCores` over a one-second window, spending at
 * most `budget.seconds` (decremented: one budget serves a whole phase).
 * @param pids our processes.
 * @param budget remaining seconds this phase may wait.
 * @param maxCores quiet threshold.
 */
export async function waitQuiet(
  pids: readonly number[],
  budget: { seconds: number },
  maxCores = 0.3,
): Promise<void> {
  while (budget.seconds > 0) {
    const load = otherLoad(pids);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    budget.seconds -= (performance.now() - t0) / 1000;
    const c = load.cores();
    if (!(c >= maxCores)) return; // quiet, or no /proc (NaN)
  }
}
