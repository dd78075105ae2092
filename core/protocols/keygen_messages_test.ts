import "../../testing/setup.ts";
import { test } from "node:test";
import { keygen } from "./keygen.ts";
import * as msg from "./keygen_messages.ts";
import {
  assertMalformedRefused,
  assertRoundTrips,
  recordedRun,
} from "../../testing/protocol_messages.ts";
import { testSid } from "../../testing/adversary.ts";

const n = 3;
const sid = testSid(60);
const logs = recordedRun(keygen, [0, 1, 2].map((i) => ({ sid, i, n })));

test("keygen messages: every honest payload decodes and encodes back to the same wire form", () => {
  assertRoundTrips(logs, {
    1: (v) => msg.encodeRound1(msg.decodeRound1(v)),
    2: (v) => msg.encodeRound2(msg.decodeRound2(v, n)),
    3: (v) => msg.encodeRound3(msg.decodeRound3(v)),
  });
});

test("keygen rounds 1-3 refuse a missing or wrong-typed field as malformed, blaming the sender", () => {
  // Party 2's payload is edited; party 1's is honest and not blamed.
  assertMalformedRefused(keygen, logs, 2, [
    [1, /missing field "V"/, (p) => delete p.V],
    [1, /field "V": expected 32 bytes/, (p) => (p.V = 7)],
    [2, /missing field "A"/, (p) => delete p.A],
    [2, /field "rid": expected 48 bytes/, (p) => (p.rid = 7)],
    [2, /field "echo": expected an array/, (p) => (p.echo = "00")],
    [3, /missing field "psi"/, (p) => delete p.psi],
    [3, /pi-sch: expected an object/, (p) => (p.psi = "00")],
  ]);
});
