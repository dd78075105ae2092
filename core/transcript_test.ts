import { test } from "node:test";
import assert from "node:assert/strict";
import { Transcript } from "./transcript.ts";

const sid = new Uint8Array([1, 2, 3]);
const Q = (1n << 255n) - 19n;

function challenge(build: (t: Transcript) => void, prover = 0, s = sid): bigint {
  const t = Transcript.create("test", s, prover);
  build(t);
  return t.challengeSigned("e", Q);
}

test("transcript: tuples that collide under naive concatenation give distinct challenges", () => {
  // TSSHOCK alpha-shuffle: ("ab", "c") and ("a", "bc") concatenate to the same bytes.
  const enc = new TextEncoder();
  const a = challenge((t) =>
    t.appendBytes("x", enc.encode("ab")).appendBytes("x", enc.encode("c"))
  );
  const b = challenge((t) =>
    t.appendBytes("x", enc.encode("a")).appendBytes("x", enc.encode("bc"))
  );
  assert.notEqual(a, b);
  // Integers: 0x0102 || 0x03 vs 0x01 || 0x0203; and the list [0x01, 0x0203] vs [0x0102, 0x03].
  const c = challenge((t) => t.appendUint("v", 0x0102n).appendUint("v", 0x03n));
  const d = challenge((t) => t.appendUint("v", 0x01n).appendUint("v", 0x0203n));
  assert.notEqual(c, d);
  // A payload that embeds the header of a following item (type 01, label "x", with or without
  // the label's length prefix): without the payload length prefix, [x: 61][x: 62] and one item
  // [x: 61 || header || 62] would absorb the same bytes.
  const two = challenge((t) =>
    t.appendBytes("x", new Uint8Array([0x61])).appendBytes("x", new Uint8Array([0x62]))
  );
  for (const header of [[0x01, 0x78], [0x01, 0, 0, 0, 1, 0x78]]) {
    const one = challenge((t) => t.appendBytes("x", new Uint8Array([0x61, ...header, 0x62])));
    assert.notEqual(two, one);
  }
  const e = challenge((t) => t.appendInts("l", [0x01n, 0x0203n]));
  const f = challenge((t) => t.appendInts("l", [0x0102n, 0x03n]));
  assert.notEqual(e, f);
});

test("transcript: sign, type and label are bound", () => {
  assert.notEqual(challenge((t) => t.appendInt("v", 5n)), challenge((t) => t.appendInt("v", -5n)));
  assert.notEqual(challenge((t) => t.appendInt("v", 5n)), challenge((t) => t.appendUint("v", 5n)));
  assert.notEqual(challenge((t) => t.appendUint("a", 5n)), challenge((t) => t.appendUint("b", 5n)));
  assert.notEqual(
    challenge((t) => t.appendString("v", "5")),
    challenge((t) => t.appendBytes("v", new Uint8Array([0x35]))),
  );
});

test("transcript: session id, prover index and domain are bound", () => {
  const base = challenge((t) => t.appendUint("v", 1n));
  assert.notEqual(base, challenge((t) => t.appendUint("v", 1n), 1));
  assert.notEqual(base, challenge((t) => t.appendUint("v", 1n), 0, new Uint8Array([1, 2, 4])));
  const other = Transcript.create("test2", sid, 0).appendUint("v", 1n).challengeSigned("e", Q);
  assert.notEqual(base, other);
  assert.equal(base, challenge((t) => t.appendUint("v", 1n)), "deterministic");
  assert.throws(() => Transcript.create("x", new Uint8Array(), 0), TypeError);
});

test("transcript: challenges are in range and do not consume the transcript", () => {
  const t = Transcript.create("test", sid, 0).appendUint("v", 9n);
  const e1 = t.challengeSigned("e", 7n);
  assert.equal(t.challengeSigned("e", 7n), e1);
  const seen = new Set<bigint>();
  for (let i = 0; i < 400; i++) {
    const x = t.challengeBelow("r", 15n, i);
    assert.ok(x >= 0n && x < 15n);
    seen.add(x);
  }
  assert.equal(seen.size, 15, "every value of [0, 15) is reached");
});

test("transcript: each of the m challenge bits is derived independently (none fixed)", () => {
  // Over several transcripts, every position of the 128-bit vector takes both values: a
  // derivation that used only 32 bits (as one reference version did) would leave positions fixed.
  const ones = new Uint32Array(128);
  const runs = 64;
  for (let r = 0; r < runs; r++) {
    const bits = Transcript.create("prm", sid, 0).appendUint("run", BigInt(r)).challengeBits(
      "e",
      128,
    );
    assert.equal(bits.length, 128);
    bits.forEach((b, i) => (ones[i] += b));
  }
  for (let i = 0; i < 128; i++) assert.ok(ones[i] > 0 && ones[i] < runs, `bit ${i} varies`);
  // Bits within one vector are not copies of each other in blocks of 32.
  const v = Transcript.create("prm", sid, 0).challengeBits("e", 128);
  const blocks = [0, 1, 2, 3].map((k) => v.slice(32 * k, 32 * (k + 1)).join(""));
  assert.equal(new Set(blocks).size, 4);
});

test("transcript: clone forks the state", () => {
  const t = Transcript.create("test", sid, 0).appendUint("v", 1n);
  const c = t.clone();
  c.appendUint("w", 2n);
  assert.notEqual(t.challengeSigned("e", Q), c.challengeSigned("e", Q));
  assert.equal(t.challengeSigned("e", Q), challenge((x) => x.appendUint("v", 1n)));
});
