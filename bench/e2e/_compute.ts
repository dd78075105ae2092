/**
 * The protocol compute of one 2-of-2 signature, without any transport: both parties run full
 * signing (`fullSignProtocol`, the machine `signDigest` runs; presigning and signing in one
 * session) through the session-less driver `runProtocol` over the in-memory network, in this
 * process. Every `start` / `step` call of each party is timed on its own, in CPU time and in wall
 * time (they are synchronous, so the other party's work never falls inside one), which gives per
 * party and per round the time a party spends computing, and so the critical path of a
 * deployment where the two parties compute in parallel on two machines: the sum over rounds of
 * the slower party's step. CPU time is the figure used: it does not grow when other processes of
 * a shared machine take the core, where wall time does.
 *
 * The inputs are the accounts a networked signature uses (same share, same HD shift at the root
 * path), so the work is the work of `signAsParty` minus the secure session.
 * @module
 */
import process from "node:process";
import { deriveShift } from "../../core/hd.ts";
import type { AccountEntry } from "../../core/keyshare.ts";
import { runProtocol } from "../../core/protocols/driver.ts";
import { createMemoryNetwork } from "../../core/protocols/memory_transport.ts";
import { fullSignProtocol } from "../../core/protocols/sign.ts";
import type { Protocol, ProtocolState } from "../../core/protocols/types.ts";
import { otherLoad, waitQuiet } from "./_load.ts";

/** Compute slots of full signing: `start` (makes round 1's messages), then rounds 1 to 5. */
export const SLOTS: readonly string[] = [
  "start",
  "round 1",
  "round 2",
  "round 3",
  "round 4",
  "round 5",
];

/** One in-process signature. */
export interface ComputeSample {
  /**
   * `steps[i][k]`: CPU time (user + system of the process, every thread) of party i's work in
   * slot k (`SLOTS`), milliseconds. CPU, not wall time, so that other processes of a shared
   * machine do not inflate it.
   */
  readonly steps: readonly [number[], number[]];
  /** The same in wall time, milliseconds. */
  readonly wallSteps: readonly [number[], number[]];
  /** Wall time of the whole signature with both parties in one thread, milliseconds. */
  readonly wallMs: number;
  /** Cores other processes of the machine used meanwhile (NaN without /proc). */
  readonly otherCores: number;
}

/** Runs `f` and adds its CPU and wall milliseconds to `cpu[k]` and `wall[k]`. */
function account<T>(cpu: number[], wall: number[], k: number, f: () => T): T {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    return f();
  } finally {
    wall[k] += performance.now() - t0;
    const c = process.cpuUsage(c0);
    cpu[k] += (c.user + c.system) / 1000;
  }
}

/** A protocol whose `start` and `step` calls record their CPU and wall time per slot. */
function timed<I, S extends ProtocolState, O>(
  p: Protocol<I, S, O>,
  cpu: number[],
  wall: number[],
): Protocol<I, S, O> {
  return {
    name: p.name,
    rounds: p.rounds,
    start: (input, rng) => account(cpu, wall, 0, () => p.start(input, rng)),
    step: (state, inbox, rng) => account(cpu, wall, state.round, () => p.step(state, inbox, rng)),
  };
}

/**
 * Signs `runs` random digests in process with both parties' shares of `accountId`.
 * @param parties the client's (index 0) and the service's (index 1) accounts.
 * @param accountId the account to sign with.
 * @param runs timed signatures; `warmup` untimed ones run first.
 * @param quietWaitS seconds this run may spend in all waiting for the machine to go quiet before
 *   each signature (0: never waits).
 * @returns one sample per timed signature.
 * @throws {Error} when the parties disagree on the signature (a bug).
 */
export async function measureSigningCompute(
  parties: readonly [ReadonlyMap<string, AccountEntry>, ReadonlyMap<string, AccountEntry>],
  accountId: string,
  runs: number,
  warmup = 1,
  quietWaitS = 0,
): Promise<ComputeSample[]> {
  const budget = { seconds: quietWaitS };
  const pids = [process.pid];
  const shares = parties.map((m) => {
    const e = m.get(accountId);
    if (!e) throw new RangeError(`no account "${accountId}" for a party`);
    return e.keyShare;
  });
  const { shift } = deriveShift(shares[0].publicKey, shares[0].chainCode, []);
  const out: ComputeSample[] = [];
  for (let k = 0; k < warmup + runs; k++) {
    const sid = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const digest = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const net = createMemoryNetwork(2);
    const steps: [number[], number[]] = [SLOTS.map(() => 0), SLOTS.map(() => 0)];
    const wallSteps: [number[], number[]] = [SLOTS.map(() => 0), SLOTS.map(() => 0)];
    if (k >= warmup) await waitQuiet(pids, budget);
    const load = otherLoad(pids);
    const t0 = performance.now();
    const sigs = await Promise.all(
      shares.map((share, i) =>
        runProtocol(
          timed(fullSignProtocol, steps[i], wallSteps[i]),
          { share, sid, keyId: accountId, digest, hdPath: [], shift },
          net[i],
          { roundTimeoutMs: 600_000 },
        )
      ),
    );
    const wallMs = performance.now() - t0;
    if (sigs[0].der !== sigs[1].der) throw new Error("the parties made different signatures");
    if (k >= warmup) out.push({ steps, wallSteps, wallMs, otherCores: load.cores() });
  }
  return out;
}
