/**
 * Collecting a round's inbox: duplicates from one sender are compared without recursion, so a
 * payload of any depth ends in a `ProtocolAbort` naming the sender (issue 15, finding 1), and
 * `samePayload`'s table of equal, different and uncomparable payloads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { samePayload } from "../bytes.ts";
import { ProtocolAbort } from "../errors.ts";
import { keygen } from "./keygen.ts";
import { MAX_COMPARED_VALUES, MAX_PAYLOAD_DEPTH } from "../params.ts";
import type { Message } from "./types.ts";

/** `{"a":{"a":...inner...}}`, `depth` objects deep, built without recursion. */
function nested(depth: number, inner: unknown = null): unknown {
  let p = inner;
  for (let k = 0; k < depth; k++) p = { a: p };
  return p;
}

test("keygen round 2 blames the sender of two envelopes whose payloads nest 10,000 deep (equivocation, not a RangeError)", () => {
  const sid = crypto.getRandomValues(new Uint8Array(32));
  const rng = (b: Uint8Array) => void crypto.getRandomValues(b);
  const t0 = keygen.start({ sid, i: 0, n: 2 }, rng);
  const t1 = keygen.start({ sid, i: 1, n: 2 }, rng);
  const [m] = t1.outgoing;
  // Two distinct objects of the same shape, each 60 KB of JSON: what a first campaign sent.
  const inbox: Message[] = [
    { ...m, payload: nested(10_000) },
    { ...m, payload: nested(10_000) },
  ];
  assert.throws(
    () => keygen.step(t0.state!, inbox, rng),
    (e: unknown) => {
      assert.ok(e instanceof ProtocolAbort, `expected a ProtocolAbort, got ${String(e)}`);
      assert.equal(e.code, "equivocation");
      assert.deepEqual(e.culprits, [1]);
      return true;
    },
  );
  // The same duplicate at an honest depth is no equivocation: the round goes on.
  assert.equal(keygen.step(t0.state!, [m, structuredClone(m)], rng).state?.round, 2);
});

test("samePayload: canonical equality, iterative, bounded in depth and size", () => {
  const SAME: [string, unknown, unknown][] = [
    ["scalars", "x", "x"],
    ["null", null, null],
    ["key order", { a: 1, b: [true, null] }, { b: [true, null], a: 1 }],
    ["undefined fields are absent", { a: 1, b: undefined }, { a: 1 }],
    ["0 and -0 (both JSON 0)", [0], [-0]],
    ["at the depth bound", nested(MAX_PAYLOAD_DEPTH), nested(MAX_PAYLOAD_DEPTH)],
  ];
  for (const [what, a, b] of SAME) assert.equal(samePayload(a, b), true, what);
  const NOT_SAME: [string, unknown, unknown][] = [
    ["strings", "x", "y"],
    ["number vs string", 1, "1"],
    ["array vs object", [], {}],
    ["lengths", [1], [1, 1]],
    ["extra key", { a: 1 }, { a: 1, b: 2 }],
    ["deep difference", nested(50, 1), nested(50, 2)],
    ["past the depth bound", nested(MAX_PAYLOAD_DEPTH + 1), nested(MAX_PAYLOAD_DEPTH + 1)],
    ["1,000,000 deep", nested(1_000_000), nested(1_000_000)],
    ["NaN", NaN, NaN],
    ["Infinity", [Infinity], [Infinity]],
    ["bigint", 1n, 1n],
    ["undefined entry", [undefined], [undefined]],
    ["a Uint8Array", new Uint8Array(1), new Uint8Array(1)],
    ["a function", { f: samePayload }, { f: samePayload }],
    [
      "too many values",
      new Array(MAX_COMPARED_VALUES).fill(0),
      new Array(MAX_COMPARED_VALUES).fill(0),
    ],
  ];
  for (const [what, a, b] of NOT_SAME) assert.equal(samePayload(a, b), false, what);
  // A cycle is caught by the depth bound.
  const cyc: Record<string, unknown> = {};
  cyc.self = cyc;
  assert.equal(samePayload(cyc, cyc), false);
});
