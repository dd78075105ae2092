import { test } from "node:test";
import assert from "node:assert/strict";
import {
  canonicalJson,
  decodeArray,
  decodeBytes,
  decodePoint,
  encodePoint,
  expectFields,
  fromHex,
  parseHexInt,
  parseHexSigned,
  scalarHex,
  toHex,
  toHexInt,
  toHexSigned,
} from "./bytes.ts";
import { Point } from "./params.ts";

test("hex round trips", () => {
  const x = 0x0102030405060708090an;
  assert.equal(parseHexInt(toHexInt(x), 64), x);
  assert.equal(parseHexSigned(toHexSigned(-x), 64), -x);
  assert.equal(toHexInt(0n), "00");
  assert.equal(parseHexInt("00", 1), 0n);
});

test("hex parsing rejects hostile encodings", () => {
  const bad: Array<[string, unknown]> = [
    ["empty", ""],
    ["odd length", "abc"],
    ["uppercase", "AB"],
    ["prefix", "0x01"],
    ["leading zero byte", "0001"],
    ["sign in unsigned", "-01"],
    ["whitespace", " 01"],
    ["not a string", 5],
  ];
  for (const [name, v] of bad) {
    assert.throws(() => parseHexInt(v as string, 8), (e: Error) => e instanceof Error, name);
  }
  assert.throws(() => parseHexSigned("-00", 8), SyntaxError);
  assert.throws(() => parseHexSigned("--01", 8), SyntaxError);
});

test("hex parsing refuses a 1 MB integer by length, before parsing it", () => {
  const huge = "ab".repeat(1 << 20);
  const t0 = performance.now();
  assert.throws(() => parseHexInt(huge, 1024), RangeError);
  assert.ok(performance.now() - t0 < 20_000, "bounded time (a hang guard, not a benchmark)");
});

test("hex of bytes round trips; fromHex refuses anything but lowercase even-length hex", () => {
  const b = new Uint8Array([0, 1, 0xab, 0xff]);
  assert.equal(toHex(b), "0001abff");
  assert.deepEqual(fromHex("0001abff"), b);
  for (const bad of ["abc", "AB", "0x01", " 01", 5]) {
    assert.throws(() => fromHex(bad as string), SyntaxError, String(bad));
  }
});

test("scalars are 64 hex digits, points compressed with the identity as 00", () => {
  assert.equal(scalarHex(5n), "0".repeat(63) + "5");
  assert.equal(encodePoint(Point.BASE), Point.BASE.toHex(true));
  assert.equal(encodePoint(Point.ZERO), "00");
});

test("canonical JSON sorts object keys and drops undefined fields", () => {
  assert.equal(
    canonicalJson({ b: [1, { d: null, c: "x" }], a: undefined }),
    '{"b":[1,{"c":"x","d":null}]}',
  );
  assert.throws(() => canonicalJson({ a: 1n }), TypeError);
  assert.throws(() => canonicalJson([NaN]), TypeError);
});

test("wire decoders refuse hostile values", () => {
  const G = Point.BASE.toHex(true);
  const pointBad = [
    null,
    7,
    G.toUpperCase(),
    Point.BASE.toHex(false),
    "04" + G.slice(2),
    "02" + "05".padStart(64, "0"),
    "03" + "ff".repeat(32),
    G + "00",
    G.slice(2),
    "",
  ];
  for (const v of pointBad) assert.throws(() => decodePoint(v, "X"), SyntaxError, String(v));
  assert.ok(decodePoint(G, "X").equals(Point.BASE));
  assert.ok(decodePoint("00", "X").is0());
  assert.equal(encodePoint(Point.ZERO), "00");
  assert.throws(() => decodeArray([G], "X", 2, (P) => decodePoint(P, "X[k]")), RangeError);
  assert.throws(() => decodeArray(G, "X", 1, (P) => decodePoint(P, "X[k]")), TypeError);
  for (const v of ["", "0", "0g", "AA", "aa".repeat(3), 1, null]) {
    assert.throws(() => decodeBytes(v, "u", 2), SyntaxError, String(v));
  }
  for (const v of ["", "0", "00ff", "FF", "-01", 5, "ff".repeat(9)]) {
    assert.throws(() => parseHexInt(v, 8, "N"), (e: unknown) => e instanceof Error, String(v));
  }
  assert.equal(parseHexInt("ff", 8, "N"), 255n);
  for (const v of [null, [], "x", { a: 1 }, { a: 1, b: 2, c: 3 }]) {
    assert.throws(() => expectFields(v, ["a", "b"]), TypeError);
  }
});
