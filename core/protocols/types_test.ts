import { test } from "node:test";
import assert from "node:assert/strict";
import { type ProtocolState, stepByRound, type Transition } from "./types.ts";

type S1 = ProtocolState & { readonly round: 1 };
type S = S1 | (ProtocolState & { readonly round: 2 });

test("stepByRound calls the function of the state's round and refuses any other round", () => {
  const calls: number[] = [];
  const step = stepByRound<S, string>("keygen", {
    1: (
      state,
    ): Transition<S, string> => (calls.push(1), { state: { ...state, round: 2 }, outgoing: [] }),
    2: (): Transition<S, string> => (calls.push(2), { outgoing: [], output: "done" }),
  });
  const rng = () => {};
  const s1: S1 = { sid: new Uint8Array(16), i: 0, n: 2, round: 1 };
  const t = step(s1, [], rng);
  assert.equal(step(t.state!, [], rng).output, "done");
  assert.deepEqual(calls, [1, 2]);
  for (const round of [0, 3, "toString"]) {
    assert.throws(() => step({ ...s1, round } as unknown as S, [], rng), {
      name: "TypeError",
      message: "keygen: unknown state",
    });
  }
});
