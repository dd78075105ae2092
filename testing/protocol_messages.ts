/**
 * TEST-ONLY helpers of the round-message codec tests (`core/protocols/*_messages_test.ts`): over
 * a recorded honest run, every payload must decode and encode back to itself, and each hostile
 * edit of one sender's payload must be refused by that round's decoder (a "malformed-message"
 * abort naming the sender alone and quoting what the decoder refused; with the decode skipped,
 * the edit would surface later under another code, or not at all).
 * @module
 */
import assert from "node:assert/strict";
import {
  expectAbort,
  record,
  type Recording,
  runLockstepFrom,
  sentIn,
  stateAt,
} from "./adversary.ts";
import type { Message, Protocol, ProtocolState } from "../core/protocols/types.ts";

/**
 * Runs one honest session of `protocol` in lock step (party j gets `inputs[j]`), recorded.
 * @returns every party's recording (states and messages).
 */
export function recordedRun<I, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O>,
  inputs: readonly I[],
): Recording<S, O>[] {
  const recs = inputs.map(() => record(protocol));
  runLockstepFrom(recs.map((r) => r.protocol), inputs);
  return recs.map((r) => r.log);
}

/** A hostile edit of one round's payload and what the abort must say about it. */
export type MalformedCase = readonly [
  round: number,
  what: RegExp,
  edit: (payload: Record<string, unknown>) => void,
];

/**
 * Asserts that every payload recorded in `logs` decodes and encodes back to the same wire form.
 * @param logs the recorded parties.
 * @param reencode per round, decode then encode (given the payload and its envelope).
 */
export function assertRoundTrips<S extends ProtocolState, O>(
  logs: readonly Recording<S, O>[],
  reencode: Readonly<Record<number, (payload: unknown, m: Message) => unknown>>,
): void {
  for (const [round, codec] of Object.entries(reencode)) {
    const sent = logs.flatMap((log) => sentIn(log, Number(round)));
    assert.ok(sent.length > 0, `round ${round} was recorded`);
    for (const m of sent) {
      assert.deepEqual(codec(structuredClone(m.payload), m), m.payload, `round ${round}`);
    }
  }
}

/**
 * Asserts that party 0, given its recorded inbox of each case's round with party `from`'s
 * payload edited, aborts with "malformed-message" naming `from` alone and matching `what`.
 * @param protocol the machine.
 * @param logs the recorded parties (party 0 is the receiver).
 * @param from the sender whose payload is edited.
 * @param cases the edits.
 */
export function assertMalformedRefused<I, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O>,
  logs: readonly Recording<S, O>[],
  from: number,
  cases: readonly MalformedCase[],
): void {
  const rng = (b: Uint8Array) => void crypto.getRandomValues(b);
  for (const [round, what, edit] of cases) {
    const inbox: Message[] = logs.slice(1).flatMap((log) =>
      sentIn(log, round).filter((m) => m.to === null || m.to === 0).map((m) => {
        const payload = structuredClone(m.payload) as Record<string, unknown>;
        if (m.from === from) edit(payload);
        return { ...m, payload };
      })
    );
    const state = stateAt(logs[0], round as S["round"]);
    expectAbort(() => protocol.step(state, inbox, rng), {
      code: "malformed-message",
      round,
      culprits: [from],
      message: new RegExp(`party ${from}: malformed-message: ${what.source}`),
    });
  }
}
