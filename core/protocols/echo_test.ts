import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeBytes } from "../bytes.ts";
import { ProofError, ProtocolAbort } from "../errors.ts";
import {
  assertSession,
  broadcastDigest,
  checkEcho,
  decodeEcho,
  echoVector,
  RoundFaults,
} from "./echo.ts";

const sid = new TextEncoder().encode("echo test session id");
const payloads = [{ V: "00" }, { V: "01" }, { V: "02" }];

test("broadcast digests bind the session, protocol, round, sender and payload", () => {
  const d = broadcastDigest(sid, "keygen", 1, 0, { a: 1, b: "x" });
  assert.match(d, /^[0-9a-f]{64}$/);
  // Key order does not matter (canonical JSON); everything else does.
  assert.equal(d, broadcastDigest(sid, "keygen", 1, 0, { b: "x", a: 1 }));
  const others = [
    broadcastDigest(sid.slice(1), "keygen", 1, 0, { a: 1, b: "x" }),
    broadcastDigest(sid, "aux-info", 1, 0, { a: 1, b: "x" }),
    broadcastDigest(sid, "keygen", 2, 0, { a: 1, b: "x" }),
    broadcastDigest(sid, "keygen", 1, 1, { a: 1, b: "x" }),
    broadcastDigest(sid, "keygen", 1, 0, { a: 1, b: "y" }),
  ];
  for (const o of others) assert.notEqual(o, d);
});

/** Party 0's view and the echo vectors parties 1 and 2 send it. */
function views(edit: (e1: string[], e2: string[]) => void) {
  const mine = echoVector(sid, "keygen", 1, payloads);
  const e1 = [...mine];
  const e2 = [...mine];
  edit(e1, e2);
  const faults = new RoundFaults("keygen", 2);
  checkEcho(faults, 0, mine, new Map([[1, e1], [2, e2]]));
  return () => faults.throwIfAny();
}

const digest = (j: number, p: unknown) => broadcastDigest(sid, "keygen", 1, j, p);

test("echo check passes when every party saw the same broadcasts", () => {
  views(() => {})();
});

test("echo check blames a party whose own broadcast differs from what it echoes", () => {
  const f = views((e1) => void (e1[1] = digest(1, { V: "ff" })));
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ProtocolAbort);
    assert.equal(e.code, "inconsistent-broadcast");
    assert.deepEqual(e.culprits, [1]);
    return true;
  });
});

test("echo check blames a party that misreports this party's broadcast", () => {
  const f = views((_e1, e2) => void (e2[0] = digest(0, { V: "ff" })));
  assert.throws(f, (e: unknown) => e instanceof ProtocolAbort && e.culprits.join() === "2");
});

test("echo check names no culprit when two others disagree about a third's broadcast", () => {
  const f = views((e1) => void (e1[2] = digest(2, { V: "ff" })));
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ProtocolAbort);
    assert.equal(e.code, "inconsistent-broadcast");
    assert.deepEqual(e.culprits, []);
    assert.match(e.message, /party 1 and this party received different broadcasts from party 2/);
    return true;
  });
});

test("round faults name every culprit, keep the earliest code, and never blame a bug", () => {
  const faults = new RoundFaults("aux-info", 2);
  assert.ok(faults.check(0, "malformed-message", () => {}));
  assert.ok(!faults.check(2, "malformed-message", () => decodeBytes("zz", "u", 1)));
  assert.ok(
    !faults.check(1, "proof-failed", () => {
      throw new ProofError("pi-prm", "verification-failed", "repetition 3 does not hold");
    }),
  );
  assert.ok(!faults.check(1, "proof-failed", () => {}), "a party at fault is not checked again");
  assert.throws(() => faults.throwIfAny(), (e: unknown) => {
    assert.ok(e instanceof ProtocolAbort);
    assert.equal(e.code, "malformed-message");
    assert.equal(e.round, 2);
    assert.deepEqual(e.culprits, [1, 2]);
    assert.match(e.message, /party 1: proof-failed: pi-prm/);
    return true;
  });
  const bug = new RoundFaults("keygen", 1);
  assert.throws(() =>
    bug.check(0, "invalid-value", () => {
      throw new Error("internal");
    }), /internal/);
  bug.throwIfAny();
});

test("the echo vector's decoder refuses hostile values", () => {
  const d = "ab".repeat(32);
  for (const v of [[d], [d, d, d], [d, d.toUpperCase()], [d, d.slice(2)], "x", null]) {
    assert.throws(() => decodeEcho(v, 2), (e: unknown) => e instanceof Error);
  }
  assert.deepEqual(decodeEcho([d, d], 2), [d, d]);
});

test("session parameters are checked before any work", () => {
  const ok = new Uint8Array(16);
  assertSession(ok, 0, 2);
  assertSession(ok, 254, 255);
  assert.throws(() => assertSession("sid", 0, 2), TypeError);
  assert.throws(() => assertSession(new Uint8Array(15), 0, 2), RangeError);
  assert.throws(() => assertSession(new Uint8Array(1025), 0, 2), RangeError);
  for (const [i, n] of [[0, 1], [2, 2], [-1, 2], [0.5, 2], [0, 256], ["0", 2], [0, NaN]]) {
    assert.throws(() => assertSession(ok, i, n), RangeError, `${i} ${n}`);
  }
});
