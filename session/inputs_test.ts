import { test } from "node:test";
import assert from "node:assert/strict";
import { Point } from "../core/params.ts";
import {
  ethereumAddress,
  formatPath,
  newRoomId,
  parseAccountId,
  parseDerivationPath,
  parseDigest,
  parseIdentityKey,
  parseRoomId,
} from "./inputs.ts";

test("inputs parseDigest accepts 64 hex digits in either case, with or without 0x", () => {
  const lower = "ab".repeat(32);
  assert.deepEqual(parseDigest(lower), parseDigest("0x" + lower.toUpperCase()));
  assert.equal(parseDigest(lower).length, 32);
});

const DIGEST_HOSTILE: [string, unknown, ErrorConstructor][] = [
  ["a number", 42, TypeError],
  ["null", null, TypeError],
  ["odd length", "abc", RangeError],
  ["31 bytes", "ab".repeat(31), RangeError],
  ["33 bytes", "ab".repeat(33), RangeError],
  ["1 MB of hex", "ab".repeat(500_000), RangeError],
  ["a non-hex digit", "zz" + "ab".repeat(31), SyntaxError],
  ["inner whitespace", "ab ".repeat(21) + "a", SyntaxError],
  ["empty", "", RangeError],
  ["0x only", "0x", RangeError],
];
for (const [name, v, E] of DIGEST_HOSTILE) {
  test(`inputs parseDigest rejects ${name} with ${E.name}`, () => {
    assert.throws(
      () => parseDigest(v),
      (e: unknown) => e instanceof E && /digest/.test((e as Error).message),
    );
  });
}

test("inputs room ids: fresh ones parse; anything but 32 lowercase hex digits is refused", () => {
  const a = newRoomId();
  assert.equal(parseRoomId(a), a);
  assert.notEqual(newRoomId(), a);
  for (const bad of ["", a.toUpperCase(), a + "0", a.slice(1), "../" + a.slice(3), 7]) {
    assert.throws(
      () => parseRoomId(bad),
      (e: unknown) => e instanceof SyntaxError || e instanceof TypeError,
    );
  }
});

test("inputs derivation paths: root forms, m/ and bare forms; hardened and malformed refused", () => {
  assert.deepEqual(parseDerivationPath(""), []);
  assert.deepEqual(parseDerivationPath("m"), []);
  assert.deepEqual(parseDerivationPath("m/0/7"), [0, 7]);
  assert.deepEqual(parseDerivationPath("0/7"), [0, 7]);
  assert.equal(formatPath([0, 7]), "m/0/7");
  assert.equal(formatPath([]), "m");
  assert.throws(() => parseDerivationPath("m/44'/0"), RangeError);
  assert.throws(() => parseDerivationPath("m/2147483648"), RangeError);
  assert.throws(() => parseDerivationPath("m/01"), SyntaxError);
  assert.throws(() => parseDerivationPath("m//1"), SyntaxError);
  assert.throws(() => parseDerivationPath("m/" + "1/".repeat(300) + "1"), RangeError);
  assert.throws(() => parseDerivationPath(["1"]), TypeError);
});

test("inputs account ids and identity keys", () => {
  assert.equal(parseAccountId("alice-1.eth_main"), "alice-1.eth_main");
  for (const bad of ["", "a b", "a/b", "x".repeat(129), "ü"]) {
    assert.throws(() => parseAccountId(bad), SyntaxError);
  }
  assert.equal(parseIdentityKey("11".repeat(32)).length, 32);
  assert.throws(() => parseIdentityKey("11".repeat(31)), RangeError);
});

test("inputs ethereumAddress matches the published address of the secret key 1 (EIP-55)", () => {
  // Secret key 1 -> public key G; its address is widely published (e.g. in web3 test suites).
  assert.equal(ethereumAddress(Point.BASE), "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
});
