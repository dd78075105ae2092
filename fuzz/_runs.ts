/**
 * Recorded two-party runs of every protocol, made once per process by the project's own machines
 * (`runMachines` of the test fixtures, fixture safe primes, a seeded RNG): every party's state
 * before each round and every message sent. The protocol harnesses replay one round for party 0
 * with a hostile inbox; the proof-decoder harnesses take their seed proofs from the messages.
 *
 * Costs under Deno on one core: keygen 0.1 s, presign 5 s, sign 7 s, aux info 19 s, refresh 22 s
 * (proof generation with 3072-bit moduli).
 * @module
 */
import "../testing/setup.ts";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "../core/bytes.ts";
import { auxInfo } from "../core/protocols/aux_info.ts";
import { keygen } from "../core/protocols/keygen.ts";
import { presignProtocol } from "../core/protocols/presign.ts";
import { refresh } from "../core/protocols/refresh.ts";
import { fullSignProtocol } from "../core/protocols/sign.ts";
import type { KeyShareCore, Message, Protocol, ProtocolState } from "../core/protocols/types.ts";
import { dealKeyShares, runMachines } from "../testing/fixtures/protocol_fixtures.ts";
import { FIXTURE_SAFE_PRIMES, fixturePaillier } from "../testing/fixtures/keys.ts";
import { Rng } from "./_engine.ts";

/** The protocols the harnesses replay. */
export type RunName = "keygen" | "aux-info" | "refresh" | "presign" | "sign";

/** One recorded run: the machine, each party's state before each round, every message sent. */
export interface RecordedRun {
  // deno-lint-ignore no-explicit-any
  readonly protocol: Protocol<any, ProtocolState, unknown>;
  /** states.get(r)[j]: party j's state waiting for the messages of round r. */
  readonly states: Map<number, ProtocolState[]>;
  /** Every message sent for round r. */
  readonly sent: Map<number, Message[]>;
  /** The rounds a party waits in, in order. */
  readonly rounds: readonly number[];
  /** Each party's input. */
  readonly inputs: readonly unknown[];
  /**
   * A fresh copy of party i's random stream: with it, party i started again from its input and
   * fed the same messages makes the same messages (each party draws from its own stream).
   */
  rngFor(i: number): (b: Uint8Array) => void;
}

const SID = new Uint8Array(32).fill(0x5a);
const PARTIES = [0, 1];
const cache = new Map<RunName, Promise<RecordedRun>>();

/** A seeded `RandomSource`: the same run every time in this process. */
export function seededRandom(seed: number): (b: Uint8Array) => void {
  const rng = new Rng(seed);
  return (b) => rng.fill(b);
}

const primes = (k: number) => {
  const key = fixturePaillier(k);
  return { p: key.p, q: key.q };
};

function recordRun<I extends { i?: number; sid: Uint8Array }, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O>,
  inputs: readonly I[],
): RecordedRun {
  const rngFor = (i: number) => seededRandom(0x1500 + i);
  const streams = inputs.map((_, i) => rngFor(i));
  const partyOf = (input: I) => input.i ?? inputs.indexOf(input);
  // Each party draws from its own stream, whatever order the runner steps them in.
  const perParty: Protocol<I, S, O> = {
    ...protocol,
    start: (input) => protocol.start(input, streams[partyOf(input)]),
    step: (state, inbox) => protocol.step(state, inbox, streams[state.i]),
  };
  const run = runMachines(perParty, inputs);
  const failed = run.errors.find((e) => e !== undefined);
  if (failed !== undefined) throw new Error(`recording ${protocol.name} failed`, { cause: failed });
  return {
    // deno-lint-ignore no-explicit-any
    protocol: protocol as unknown as Protocol<any, ProtocolState, unknown>,
    states: run.states as Map<number, ProtocolState[]>,
    sent: run.sent,
    rounds: [...run.states.keys()].sort((a, b) => a - b),
    inputs,
    rngFor,
  };
}

function keygenShares(): KeyShareCore[] {
  const run = runMachines(keygen, PARTIES.map((i) => ({ sid: SID, i, n: 2 })), {
    rng: seededRandom(0x16),
  });
  return run.outputs as KeyShareCore[];
}

function make(name: RunName): RecordedRun {
  switch (name) {
    case "keygen":
      return recordRun(keygen, PARTIES.map((i) => ({ sid: SID, i, n: 2 })));
    case "aux-info":
      return recordRun(auxInfo, PARTIES.map((i) => ({ sid: SID, i, n: 2, primes: primes(i) })));
    case "refresh": {
      const shares = keygenShares();
      return recordRun(
        refresh,
        PARTIES.map((i) => ({ sid: SID, keyShare: shares[i], primes: primes(i + 2) })),
      );
    }
    case "presign": {
      const shares = dealKeyShares(2);
      return recordRun(
        presignProtocol,
        PARTIES.map((i) => ({
          share: shares[i],
          sid: SID,
          keyId: "fuzz",
          epoch: "ab".repeat(32),
          hash: "sha256" as const,
        })),
      );
    }
    case "sign": {
      const shares = dealKeyShares(2);
      const digest = new Uint8Array(32).fill(0x42);
      return recordRun(
        fullSignProtocol,
        PARTIES.map((i) => ({ share: shares[i], sid: SID, keyId: "fuzz", digest })),
      );
    }
  }
}

/** The recorded run of `name` (made on first use, then shared in this process). */
export function recordedRun(name: RunName): Promise<RecordedRun> {
  let p = cache.get(name);
  if (!p) {
    p = Promise.resolve().then(() => make(name));
    cache.set(name, p);
  }
  return p;
}

/** The messages party 0 receives in round r of a run (from every other party). */
export function inboxOf(run: RecordedRun, round: number): Message[] {
  return (run.sent.get(round) ?? []).filter((m) => m.from !== 0 && (m.to === null || m.to === 0));
}

/**
 * Every message of a recorded run, as JSON values: from a cache file in the temporary directory
 * (named after the run, the fixture primes and this format) when a harness of an earlier process
 * made it, else recorded now and cached. Harnesses that only need seed messages (the proof
 * decoders) then skip the cost of the run.
 */
export async function recordedMessages(name: RunName): Promise<Message[]> {
  const key = toHex(
    sha256(new TextEncoder().encode(JSON.stringify({
      format: 1,
      name,
      primes: FIXTURE_SAFE_PRIMES.map((p) => p.toString(16)),
    }))),
  ).slice(0, 24);
  const path = join(tmpdir(), `wallet-mpc-fuzz-messages-${key}.json`);
  try {
    const cached = JSON.parse(readFileSync(path, "utf8"));
    if (Array.isArray(cached) && cached.length > 0) return cached as Message[];
  } catch {
    // missing or unusable: record
  }
  const run = await recordedRun(name);
  const messages = [...run.sent.values()].flat();
  const tmp = `${path}.${Date.now()}.${Math.random().toString(16).slice(2)}.tmp`;
  writeFileSync(tmp, JSON.stringify(messages));
  renameSync(tmp, path); // atomic: a parallel worker reads the old or the new file
  return messages;
}
