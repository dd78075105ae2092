import { test } from "node:test";
import assert from "node:assert/strict";
import { sessionContext, type SessionPurpose } from "./context.ts";

const pk = new Uint8Array(33).fill(2);
const digest = new Uint8Array(32).fill(7);
const base: SessionPurpose = {
  op: "sign",
  accountId: "alice",
  publicKey: pk,
  digest,
  path: [0, 7],
};

test("session context is 32 bytes and deterministic", () => {
  assert.equal(sessionContext(base).length, 32);
  assert.deepEqual(sessionContext(base), sessionContext({ ...base, path: [0, 7] }));
});

test("session context differs whenever the operation or any field differs", () => {
  const variants: SessionPurpose[] = [
    base,
    { ...base, accountId: "alice2" },
    { ...base, digest: new Uint8Array(32).fill(8) },
    { ...base, path: [0, 8] },
    { ...base, path: [7] },
    { ...base, path: [] },
    { ...base, path: [0, 7, 0] },
    { ...base, publicKey: new Uint8Array(33).fill(3) },
    { op: "refresh", accountId: "alice", publicKey: pk },
    { op: "keygen", accountId: "alice", n: 2 },
    { op: "keygen", accountId: "alice", n: 3 },
  ];
  const seen = new Set(variants.map((v) => Buffer.from(sessionContext(v)).toString("hex")));
  assert.equal(seen.size, variants.length);
});

test("session context fields are length-prefixed: moving bytes between fields changes it", () => {
  // "ab" + "c" vs "a" + "bc" in neighbouring fields must not collide.
  const a = sessionContext({ op: "refresh", accountId: "ab", publicKey: new Uint8Array([99]) });
  const b = sessionContext({ op: "refresh", accountId: "a", publicKey: new Uint8Array([98, 99]) });
  assert.notDeepEqual(a, b);
});

test("session context refuses a path index outside u32", () => {
  assert.throws(() => sessionContext({ ...base, path: [2 ** 32] }), RangeError);
  assert.throws(() => sessionContext({ ...base, path: [-1] }), RangeError);
});
