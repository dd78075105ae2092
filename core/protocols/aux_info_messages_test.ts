import "../../testing/setup.ts";
import { test } from "node:test";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import { auxInfo } from "./aux_info.ts";
import * as msg from "./aux_info_messages.ts";
import {
  assertMalformedRefused,
  assertRoundTrips,
  recordedRun,
} from "../../testing/protocol_messages.ts";
import { testSid } from "../../testing/adversary.ts";

const n = 2;
const sid = testSid(61);
const primes = (k: number) => ({ p: fixturePaillier(k).p, q: fixturePaillier(k).q });
const logs = recordedRun(auxInfo, [0, 1].map((i) => ({ sid, i, n, primes: primes(i) })));

test("aux info messages: every honest payload decodes and encodes back to the same wire form", () => {
  assertRoundTrips(logs, {
    1: (v) => msg.encodeRound1(msg.decodeRound1(v)),
    2: (v) => msg.encodeRound2(msg.decodeRound2(v, n)),
    3: (v) => msg.encodeRound3(msg.decodeRound3(v)),
  });
});

test("aux info rounds 1-3 refuse a missing or wrong-typed field as malformed, blaming the sender", () => {
  assertMalformedRefused(auxInfo, logs, 1, [
    [1, /missing field "V"/, (p) => delete p.V],
    [1, /field "V": expected 32 bytes/, (p) => (p.V = 7)],
    [2, /missing field "rho"/, (p) => delete p.rho],
    [2, /field "N": expected a hex string/, (p) => (p.N = 5)],
    [2, /field "u": expected 48 bytes/, (p) => (p.u = [])],
    [2, /pi-prm: expected an object/, (p) => (p.prm = "00")],
    [3, /missing field "fac"/, (p) => delete p.fac],
    [3, /pi-mod: expected an object/, (p) => (p.mod = 7)],
  ]);
});
