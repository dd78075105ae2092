import "../../tests/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { keygen } from "./keygen.ts";
import * as msg from "./keygen_messages.ts";
import type { Message } from "./types.ts";
import {
  expectAbort,
  record,
  runLockstepFrom,
  sentIn,
  stateAt,
  testSid,
} from "../../tests/protocols/_adversary.ts";

const rng = crypto.getRandomValues.bind(crypto);
const n = 3;

/** One honest n = 3 run, recorded: every state and message of every party. */
const logs = (() => {
  const recs = Array.from({ length: n }, () => record(keygen));
  const sid = testSid(60);
  runLockstepFrom(recs.map((r) => r.protocol), [0, 1, 2].map((i) => ({ sid, i, n })));
  return recs.map((r) => r.log);
})();

const decoders: Record<number, (v: unknown) => unknown> = {
  1: (v) => msg.encodeRound1(msg.decodeRound1(v)),
  2: (v) => msg.encodeRound2(msg.decodeRound2(v, n)),
  3: (v) => msg.encodeRound3(msg.decodeRound3(v)),
};

test("keygen messages: every honest payload decodes and encodes back to the same wire form", () => {
  for (const round of [1, 2, 3]) {
    for (const log of logs) {
      const [m] = sentIn(log, round);
      assert.deepEqual(decoders[round](structuredClone(m.payload)), m.payload, `round ${round}`);
    }
  }
});

/** Party 0's inbox of `round` with party 2's payload edited. */
function inboxWith(round: number, edit: (p: Record<string, unknown>) => void): Message[] {
  return [1, 2].map((j) => {
    const [m] = sentIn(logs[j], round);
    const payload = structuredClone(m.payload) as Record<string, unknown>;
    if (j === 2) edit(payload);
    return { ...m, payload };
  });
}

// A missing field and a wrong-typed field per round: refused by the round's decoder, so the
// abort is "malformed-message", names the sender alone, and says what the decoder refused.
const cases: [round: 1 | 2 | 3, what: RegExp, edit: (p: Record<string, unknown>) => void][] = [
  [1, /missing field "V"/, (p) => delete p.V],
  [1, /field "V": expected 32 bytes/, (p) => (p.V = 7)],
  [2, /missing field "A"/, (p) => delete p.A],
  [2, /field "rid": expected 48 bytes/, (p) => (p.rid = 7)],
  [2, /field "echo": expected an array/, (p) => (p.echo = "00")],
  [3, /missing field "psi"/, (p) => delete p.psi],
  [3, /pi-sch: expected an object/, (p) => (p.psi = "00")],
];

test("keygen rounds 1-3 refuse a missing or wrong-typed field as malformed, blaming the sender", () => {
  for (const [round, what, edit] of cases) {
    const state = stateAt(logs[0], round);
    expectAbort(() => keygen.step(state, inboxWith(round, edit), rng), {
      code: "malformed-message",
      round,
      culprits: [2],
      message: new RegExp(`party 2: malformed-message: ${what.source}`),
    });
  }
});
