import { test } from "node:test";
import assert from "node:assert/strict";
import { ProtocolAbort } from "../core/errors.ts";
import type { Message } from "../core/protocols/types.ts";
import { decodeStatement } from "./lifecycle.ts";

const D = "ab".repeat(32);
const msg = (payload: unknown): Message => ({
  sid: "00",
  protocol: "lifecycle",
  round: 1,
  from: 1,
  to: null,
  payload,
});

test("a peer's epoch statement decodes when exact", () => {
  assert.deepEqual(decodeStatement(msg({ held: [{ counter: 3, digest: D, state: "pending" }] })), [
    { counter: 3, digest: D, state: "pending" },
  ]);
  assert.deepEqual(decodeStatement(msg({ held: [] })), []);
});

test("a hostile epoch statement is malformed-message blaming the sender", () => {
  const e = { counter: 0, digest: D, state: "current" };
  const cases: [string, unknown][] = [
    ["null", null],
    ["a string", "held"],
    ["no held", {}],
    ["an extra field", { held: [], more: 1 }],
    ["held not an array", { held: { 0: e } }],
    ["five epochs", { held: Array(5).fill(e) }],
    ["an epoch not an object", { held: [7] }],
    ["an extra epoch field", { held: [{ ...e, kind: "keygen" }] }],
    ["a negative counter", { held: [{ ...e, counter: -1 }] }],
    ["a fractional counter", { held: [{ ...e, counter: 1.5 }] }],
    ["a counter above 2^32-1", { held: [{ ...e, counter: 2 ** 32 }] }],
    ["a counter as a string", { held: [{ ...e, counter: "0" }] }],
    ["an unknown state", { held: [{ ...e, state: "retired" }] }],
    ["a short digest", { held: [{ ...e, digest: "ab" }] }],
    ["an uppercase digest", { held: [{ ...e, digest: D.toUpperCase() }] }],
    ["a 1 MB digest", { held: [{ ...e, digest: "a".repeat(1 << 20) }] }],
  ];
  for (const [name, payload] of cases) {
    assert.throws(
      () => decodeStatement(msg(payload)),
      (err: unknown) =>
        err instanceof ProtocolAbort && err.code === "malformed-message" &&
        err.culprits.length === 1 && err.culprits[0] === 1,
      name,
    );
  }
});
