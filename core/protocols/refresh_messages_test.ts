import "../../testing/setup.ts";
import { test } from "node:test";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import { keygen } from "./keygen.ts";
import { refresh } from "./refresh.ts";
import * as msg from "./refresh_messages.ts";
import {
  assertMalformedRefused,
  assertRoundTrips,
  recordedRun,
} from "../../testing/protocol_messages.ts";
import { outputs, runLockstepFrom, testSid } from "../../testing/adversary.ts";

const n = 2;
const kid = testSid(62);
const shares = outputs(runLockstepFrom([keygen, keygen], [0, 1].map((i) => ({ sid: kid, i, n }))));
const sid = testSid(63);
const primes = (k: number) => ({ p: fixturePaillier(k).p, q: fixturePaillier(k).q });
const logs = recordedRun(
  refresh,
  shares.map((keyShare, i) => ({ sid, keyShare, primes: primes(i + 2) })),
);

test("refresh messages: every honest payload decodes and encodes back to the same wire form", () => {
  assertRoundTrips(logs, {
    1: (v) => msg.encodeRound1(msg.decodeRound1(v)),
    2: (v) => msg.encodeRound2(msg.decodeRound2(v, n)),
    3: (v) => msg.encodeRound3(msg.decodeRound3(v, n)),
  });
});

test("refresh rounds 1-3 refuse a missing or wrong-typed field as malformed, blaming the sender", () => {
  assertMalformedRefused(refresh, logs, 1, [
    [1, /missing field "key"/, (p) => delete p.key],
    [1, /field "V": expected 32 bytes/, (p) => (p.V = 7)],
    [2, /missing field "X"/, (p) => delete p.X],
    [2, /field "A": expected an array/, (p) => (p.A = "00")],
    [2, /field "t": expected a hex string/, (p) => (p.t = 5)],
    [3, /missing field "C"/, (p) => delete p.C],
    [3, /field "C": expected a hex string/, (p) => (p.C = 5)],
    [3, /field "psi": expected 2 proofs/, (p) => (p.psi = "00")],
    [3, /pi-fac: expected an object/, (p) => (p.fac = null)],
  ]);
});
