import { test } from "node:test";
import assert from "node:assert/strict";
import { x25519 } from "@noble/curves/ed25519.js";
import type { HelloFrame } from "./_frames.ts";
import {
  checkConfirm,
  confirmPlaintext,
  contextHash,
  directionKey,
  protocolSessionId,
  sessionId,
  sessionTag,
  sharedSecret,
  transcriptHash,
} from "./_keys.ts";
import { fromHex, toHex } from "../core/bytes.ts";

// RFC 7748 section 6.1.
const A_SECRET = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const A_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
const B_SECRET = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
const B_PUBLIC = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

test("sharedSecret matches RFC 7748 section 6.1 from both sides", () => {
  assert.equal(toHex(x25519.getPublicKey(fromHex(A_SECRET))), A_PUBLIC);
  assert.equal(toHex(sharedSecret(fromHex(A_SECRET), fromHex(B_PUBLIC))), SHARED);
  assert.equal(toHex(sharedSecret(fromHex(B_SECRET), fromHex(A_PUBLIC))), SHARED);
});

test("sharedSecret rejects low-order peer keys (all-zero shared secret, RFC 7748 section 6.1)", () => {
  for (const u of ["00".repeat(32), "01" + "00".repeat(31)]) {
    assert.throws(() => sharedSecret(fromHex(A_SECRET), fromHex(u)));
  }
});

const hello = (from: number, fill: number): HelloFrame => ({
  type: "hello",
  room: "0123456789abcdef0123456789abcdef",
  from,
  n: 2,
  nonce: new Uint8Array(32).fill(fill),
  eph: new Uint8Array(32).fill(fill + 1),
  identity: new Uint8Array(32).fill(fill + 2),
  sig: new Uint8Array(64).fill(fill + 3),
});

test("the transcript depends on every hello and on their order", () => {
  const T = transcriptHash([hello(0, 1), hello(1, 10)]);
  assert.notDeepEqual(transcriptHash([hello(0, 1), hello(1, 11)]), T);
  assert.notDeepEqual(transcriptHash([hello(1, 10), hello(0, 1)]), T);
  assert.notDeepEqual(
    transcriptHash([hello(0, 1), { ...hello(1, 10), sig: new Uint8Array(64) }]),
    T,
  );
});

test("directional keys: both ends derive k_{a->b}, and k_{a->b} != k_{b->a}", () => {
  const T = new Uint8Array(32).fill(7);
  const s = fromHex(SHARED);
  const ab = directionKey(s, T, 0, 1);
  assert.equal(ab.length, 32);
  assert.deepEqual(directionKey(sharedSecret(fromHex(B_SECRET), fromHex(A_PUBLIC)), T, 0, 1), ab);
  assert.notDeepEqual(directionKey(s, T, 1, 0), ab);
  assert.notDeepEqual(directionKey(s, new Uint8Array(32), 0, 1), ab);
});

test("session id binds transcript and context; protocol ids are distinct per label", () => {
  const T = new Uint8Array(32).fill(7);
  const ctx = contextHash(new TextEncoder().encode("sign alice"));
  const sid = sessionId(T, ctx);
  assert.equal(sid.length, 32);
  assert.notDeepEqual(sessionId(T, contextHash(new TextEncoder().encode("sign bob"))), sid);
  assert.notDeepEqual(sessionId(new Uint8Array(32), ctx), sid);
  const labels = ["keygen", "aux-info", "presign", "sign"].map((l) =>
    toHex(protocolSessionId(sid, l))
  );
  assert.equal(new Set(labels).size, 4);
  assert.equal(sessionTag(T).length, 8);
});

test("checkConfirm tells a confirmation, another context and garbage apart", () => {
  const ctx = contextHash(new Uint8Array([1]));
  const other = contextHash(new Uint8Array([2]));
  assert.equal(checkConfirm(confirmPlaintext(ctx), ctx), "ok");
  assert.equal(checkConfirm(confirmPlaintext(other), ctx), "context");
  assert.equal(checkConfirm(new Uint8Array(confirmPlaintext(ctx).length), ctx), "malformed");
  assert.equal(checkConfirm(confirmPlaintext(ctx).subarray(1), ctx), "malformed");
});
