import "../../testing/setup.ts";
import { test } from "node:test";
import { dealKeyShares } from "../../testing/fixtures/protocol_fixtures.ts";
import { fullSignProtocol } from "./sign.ts";
import * as msg from "./sign_messages.ts";
import {
  assertMalformedRefused,
  assertRoundTrips,
  recordedRun,
} from "../../testing/protocol_messages.ts";
import { testSid } from "../../testing/adversary.ts";

const n = 2;
const sid = testSid(65);
const digest = new Uint8Array(32).fill(0x42);
const logs = recordedRun(
  fullSignProtocol,
  dealKeyShares(n).map((share) => ({ share, sid, keyId: "k", digest })),
);

test("sign messages: every honest payload decodes and encodes back to the same wire form", () => {
  // The signing round is round 5 of full signing (rounds 1-4 are presigning).
  assertRoundTrips(logs, { 5: (v) => msg.encodeSignRound(msg.decodeSignRound(v, n)) });
});

test("the signing round refuses a missing or wrong-typed field as malformed, blaming the sender", () => {
  assertMalformedRefused(fullSignProtocol, logs, 1, [
    [5, /missing field "digest"/, (p) => delete p.digest],
    [5, /field "sigma": expected a 32-byte scalar/, (p) => (p.sigma = 5)],
    [5, /field "digest": expected 32 bytes/, (p) => (p.digest = "AB".repeat(32))],
    [5, /field "echo": expected an array/, (p) => (p.echo = null)],
  ]);
});
