import "../../testing/setup.ts";
import { test } from "node:test";
import { dealKeyShares } from "../../testing/fixtures/protocol_fixtures.ts";
import { presignProtocol } from "./presign.ts";
import * as msg from "./presign_messages.ts";
import {
  assertMalformedRefused,
  assertRoundTrips,
  recordedRun,
} from "../../testing/protocol_messages.ts";
import { testSid } from "../../testing/adversary.ts";

const n = 2;
const shares = dealKeyShares(n);
/** N_j of every party. */
const N = shares[0].aux.parties.map((P) => P.N);
const sid = testSid(64);
const epoch = "e1".repeat(32);
const logs = recordedRun(
  presignProtocol,
  shares.map((share) => ({ share, sid, keyId: "k", epoch, hash: "sha256" as const })),
);

test("presign messages: every honest payload decodes and encodes back to the same wire form", () => {
  // K and G are under the sender's modulus; D and D-hat under the receiver's, F and F-hat the
  // sender's.
  assertRoundTrips(logs, {
    1: (v, m) => msg.encodeRound1(msg.decodeRound1(v, N[m.from])),
    2: (v) => msg.encodeRound2(msg.decodeRound2(v, n)),
    3: (v, m) => msg.encodeRound3(msg.decodeRound3(v, N[m.to!], N[m.from])),
    4: (v) => msg.encodeRound4(msg.decodeRound4(v, n)),
  });
});

test("presign rounds 1-4 refuse a missing or wrong-typed field as malformed, blaming the sender", () => {
  assertMalformedRefused(presignProtocol, logs, 1, [
    [1, /missing field "G"/, (p) => delete p.G],
    [1, /field "K": expected a hex string/, (p) => (p.K = 5)],
    [1, /pi-enc: expected an object/, (p) => (p.psi0 = 7)],
    [2, /missing field "echo"/, (p) => delete p.echo],
    [2, /field "echo": expected an array/, (p) => (p.echo = "00")],
    [3, /missing field "psiHat"/, (p) => delete p.psiHat],
    [3, /field "Gamma": expected a 33-byte compressed point/, (p) => (p.Gamma = 7)],
    [3, /field "F": expected a hex string/, (p) => (p.F = 5)],
    [3, /pi-log\*: expected an object/, (p) => (p.psiPrime = "00")],
    [4, /missing field "S"/, (p) => delete p.S],
    [4, /field "delta": expected a 32-byte scalar/, (p) => (p.delta = 5)],
    [4, /field "Delta": the identity is not allowed/, (p) => (p.Delta = "00")],
  ]);
});
