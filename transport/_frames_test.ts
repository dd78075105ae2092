import { test } from "node:test";
import assert from "node:assert/strict";
import { base64 } from "@scure/base";
import {
  dataAad,
  type DataFrame,
  decodeEnvelope,
  decodeFrame,
  encodeEnvelope,
  encodeFrame,
  encodeParts,
  fragmentBytes,
  type HelloFrame,
  helloSignedBytes,
  jsonNestingWithin,
  packBodies,
  seqNonce,
} from "./_frames.ts";
import { MAX_PAYLOAD_DEPTH } from "../core/params.ts";

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const hello: HelloFrame = {
  type: "hello",
  room: "0123456789abcdef0123456789abcdef",
  from: 1,
  n: 2,
  nonce: bytes(32, 1),
  eph: bytes(32, 2),
  identity: bytes(32, 3),
  sig: bytes(64, 4),
};
const data: DataFrame = {
  type: "data",
  tag: bytes(8, 5),
  from: 0,
  to: 1,
  seq: 7,
  last: true,
  ct: bytes(40, 6),
};
const MAX = 1 << 20;

test("frames round-trip through their canonical line", () => {
  for (const f of [hello, data]) {
    const line = encodeFrame(f);
    assert.doesNotMatch(line, /[\r\n]/);
    assert.deepEqual(decodeFrame(line, MAX), f);
  }
  assert.equal(
    encodeFrame(data),
    `{"v":1,"type":"data","tag":"0505050505050505","from":0,"to":1,"seq":7,"last":true,"ct":"${
      base64.encode(data.ct)
    }"}`,
  );
});

/** Edits a valid line's object. */
function edit(f: HelloFrame | DataFrame, patch: (o: Record<string, unknown>) => void): string {
  const o = JSON.parse(encodeFrame(f));
  patch(o);
  return JSON.stringify(o);
}

test("decodeFrame rejects a table of hostile lines with SyntaxError", () => {
  const good = encodeFrame(data);
  const cases: [string, string][] = [
    ["empty", ""],
    ["truncated", good.slice(0, -5)],
    ["truncated hello", encodeFrame(hello).slice(0, 40)],
    ["not json", "hello"],
    ["json array", "[1,2]"],
    ["json null", "null"],
    ["json number", "1"],
    ["unknown version", edit(data, (o) => (o.v = 2))],
    ["version as string", edit(data, (o) => (o.v = "1"))],
    ["no version", edit(data, (o) => delete o.v)],
    ["unknown type", edit(data, (o) => (o.type = "ack"))],
    ["extra field", edit(data, (o) => (o.extra = 1))],
    ["missing field", edit(data, (o) => delete o.ct)],
    ["seq as string", edit(data, (o) => (o.seq = "7"))],
    ["negative seq", edit(data, (o) => (o.seq = -1))],
    ["fractional seq", edit(data, (o) => (o.seq = 1.5))],
    ["seq above 2^32 - 1", edit(data, (o) => (o.seq = 2 ** 32))],
    ["from = to", edit(data, (o) => (o.to = 0))],
    ["from as null", edit(data, (o) => (o.from = null))],
    ["party 255", edit(data, (o) => (o.to = 255))],
    ["last as 1", edit(data, (o) => (o.last = 1))],
    ["ct not base64", edit(data, (o) => (o.ct = "!!!!"))],
    ["ct unpadded", edit(data, (o) => (o.ct = (o.ct as string).replace(/=+$/, "")))],
    [
      "ct base64url",
      edit(data, (o) => (o.ct = base64.encode(bytes(40, 0xfb)).replace(/\+/g, "-"))),
    ],
    ["ct shorter than a tag", edit(data, (o) => (o.ct = base64.encode(bytes(15, 1))))],
    ["ct as array", edit(data, (o) => (o.ct = [1, 2]))],
    ["tag too short", edit(data, (o) => (o.tag = "0505"))],
    ["tag uppercase", edit(data, (o) => (o.tag = "0A0A0A0A0A0A0A0A"))],
    [
      "keys reordered",
      JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(good)).reverse())),
    ],
    ["whitespace", good.replace(":", ": ")],
    ["duplicate key", good.replace('"seq":7', '"seq":7,"seq":7')],
    ["number as 7.0", good.replace('"seq":7', '"seq":7.0')],
    ["number as 7e0", good.replace('"seq":7', '"seq":7e0')],
    ["hello room uppercase", edit(hello, (o) => (o.room = (o.room as string).toUpperCase()))],
    ["hello room of 31 bytes", edit(hello, (o) => (o.room = "0".repeat(62)))],
    ["hello n = 1", edit(hello, (o) => (o.n = 1))],
    ["hello n = 256", edit(hello, (o) => (o.n = 256))],
    ["hello from = n", edit(hello, (o) => (o.from = 2))],
    ["hello sig of 63 bytes", edit(hello, (o) => (o.sig = "00".repeat(63)))],
    ["hello eph odd hex", edit(hello, (o) => (o.eph = "0".repeat(63)))],
    ["hello id not hex", edit(hello, (o) => (o.id = "zz".repeat(32)))],
    ["hello with a data field", edit(hello, (o) => (o.ct = ""))],
    ["__proto__ field", good.replace("{", '{"__proto__":{},')],
  ];
  for (const [what, line] of cases) {
    assert.throws(() => decodeFrame(line, MAX), SyntaxError, what);
  }
});

test("decodeFrame rejects an oversized line before parsing it", () => {
  const big = encodeFrame({ ...data, ct: new Uint8Array(3000) });
  assert.throws(
    () => decodeFrame(big, 1000),
    (e) => e instanceof SyntaxError && /at most 1000/.test(e.message),
  );
  assert.ok(decodeFrame(big, big.length));
});

test("encodeParts is injective: moving a byte between parts changes the encoding", () => {
  const a = encodeParts(["ab", "c"]);
  const b = encodeParts(["a", "bc"]);
  assert.notDeepEqual(a, b);
  assert.deepEqual(encodeParts([new Uint8Array([9])]), new Uint8Array([0, 0, 0, 1, 9]));
});

test("the signed hello bytes and the AAD change with every field", () => {
  const base = helloSignedBytes(hello);
  for (
    const patch of [{ room: "f".repeat(32) }, { from: 0 }, { n: 3 }, { nonce: bytes(32, 9) }, {
      eph: bytes(32, 9),
    }, { identity: bytes(32, 9) }]
  ) {
    assert.notDeepEqual(helloSignedBytes({ ...hello, ...patch }), base);
  }
  const T = bytes(32, 1);
  const aad = dataAad(hello.room, T, data);
  for (const patch of [{ from: 2 }, { to: 2 }, { seq: 8 }, { last: false }]) {
    assert.notDeepEqual(dataAad(hello.room, T, { ...data, ...patch }), aad);
  }
  assert.notDeepEqual(dataAad(hello.room, bytes(32, 2), data), aad);
  assert.notDeepEqual(dataAad("f".repeat(32), T, data), aad);
});

test("seqNonce is 4 zero bytes then the 64-bit big-endian counter", () => {
  assert.deepEqual(seqNonce(0), new Uint8Array(12));
  assert.deepEqual(seqNonce(0x01020304), new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]));
});

test("a fragment of fragmentBytes plaintext bytes makes a line within the body limit", () => {
  for (const limit of [4096, 65536, 1 << 20]) {
    const size = fragmentBytes(limit);
    const line = encodeFrame({
      ...data,
      from: 254,
      to: 253,
      seq: 0xffffffff,
      last: false,
      ct: new Uint8Array(size + 16),
    });
    assert.ok(line.length <= limit, `${line.length} > ${limit}`);
    assert.ok(line.length > limit - 300, "fragments use most of a body");
  }
});

test("packBodies keeps order and stays within the limit", () => {
  const lines = ["a".repeat(400), "b".repeat(400), "c".repeat(300), "d".repeat(900)];
  const bodies = packBodies(lines, 1000);
  assert.deepEqual(bodies, [`${lines[0]}\n${lines[1]}`, lines[2], lines[3]]);
  assert.deepEqual(bodies.join("\n").split("\n"), lines);
  assert.throws(() => packBodies(["x".repeat(1001)], 1000), RangeError);
});

test("envelopes round-trip and hostile envelopes are rejected", () => {
  const m = {
    sid: "ab",
    protocol: "keygen" as const,
    round: 1,
    from: 1,
    to: null,
    payload: { x: [1] },
  };
  assert.deepEqual(decodeEnvelope(encodeEnvelope(m), 2), m);
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const cases: [string, Uint8Array][] = [
    ["bad utf-8", new Uint8Array([0xff, 0xfe])],
    ["not json", new TextEncoder().encode("{")],
    ["array", enc([m])],
    ["extra field", enc({ ...m, extra: 1 })],
    ["missing payload", enc({ ...m, payload: undefined })],
    ["sid not hex", enc({ ...m, sid: "xyz" })],
    ["protocol not a name", enc({ ...m, protocol: 7 })],
    ["round 0", enc({ ...m, round: 0 })],
    ["from = n", enc({ ...m, from: 2 })],
    ["to as string", enc({ ...m, to: "1" })],
  ];
  for (const [what, b] of cases) assert.throws(() => decodeEnvelope(b, 2), SyntaxError, what);
});

test("decodeEnvelope refuses a payload nested deeper than MAX_PAYLOAD_DEPTH before parsing it", () => {
  // Built as text: a payload of `depth` nested objects {"a":{"a":...null...}}.
  const envelope = (depth: number) =>
    new TextEncoder().encode(
      `{"from":1,"payload":${'{"a":'.repeat(depth)}null${"}".repeat(depth)},` +
        `"protocol":"keygen","round":1,"sid":"ab","to":null}`,
    );
  assert.equal(decodeEnvelope(envelope(MAX_PAYLOAD_DEPTH), 2).from, 1);
  for (const depth of [MAX_PAYLOAD_DEPTH + 1, 10_000, 1_000_000]) {
    assert.throws(() => decodeEnvelope(envelope(depth), 2), /nested deeper than 64/, `${depth}`);
  }
  // Brackets inside strings, escaped quotes included, are not nesting.
  const text = `{"from":1,"payload":"\\"${"[{".repeat(500)}","protocol":"keygen","round":1,` +
    `"sid":"ab","to":null}`;
  assert.equal(decodeEnvelope(new TextEncoder().encode(text), 2).payload, `"${"[{".repeat(500)}`);
  assert.equal(jsonNestingWithin("[[]]", 2), true);
  assert.equal(jsonNestingWithin("[[[]]]", 2), false);
  assert.equal(jsonNestingWithin('["[[[", {"]": "{{"}]', 2), true);
});

test("decodeEnvelope refuses a payload number that overflows to Infinity (no JSON re-encoding)", () => {
  const text = (n: string) =>
    new TextEncoder().encode(
      `{"from":1,"payload":{"a":[${n}]},"protocol":"keygen","round":1,"sid":"ab","to":null}`,
    );
  assert.deepEqual(decodeEnvelope(text("1e308"), 2).payload, { a: [1e308] });
  for (const n of ["1e999", "-1e999", "9".repeat(400)]) {
    assert.throws(() => decodeEnvelope(text(n), 2), /a number out of range/, n);
  }
});
