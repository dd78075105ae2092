import { test } from "node:test";
import assert from "node:assert/strict";
import { toHex } from "../bytes.ts";
import { Point } from "../params.ts";
import {
  bytesEqual,
  commit,
  type CommitItems,
  commitmentHash,
  deriveSid,
  opens,
  xorBytes,
} from "./commitment.ts";

const sid = new TextEncoder().encode("commitment test session id");
const items: CommitItems = [
  ["n", 2n],
  ["rid", new Uint8Array(48).fill(7)],
  ["X", Point.BASE.multiply(5n)],
  ["list", [1n, 2n, 3n]],
  ["name", "keygen"],
];

test("commitment opens with its items and u, and only for its domain, session and party", () => {
  const { V, u } = commit("keygen", sid, 1, items);
  assert.equal(V.length, 32);
  assert.equal(u.length, 48);
  assert.ok(opens("keygen", sid, 1, items, u, V));
  assert.ok(!opens("aux-info", sid, 1, items, u, V));
  assert.ok(!opens("keygen", sid.slice(1), 1, items, u, V));
  assert.ok(!opens("keygen", sid, 0, items, u, V));
  const u2 = u.slice();
  u2[47] ^= 1;
  assert.ok(!opens("keygen", sid, 1, items, u2, V));
  assert.ok(!opens("keygen", sid, 1, items, u.slice(1), V));
  assert.ok(!opens("keygen", sid, 1, items, u, V.slice(1)));
});

test("commitment does not open with any item changed, dropped, added or reordered", () => {
  const { V, u } = commit("keygen", sid, 1, items);
  const variants: CommitItems[] = [
    items.slice(1),
    [...items, ["extra", ""]],
    [items[1], items[0], ...items.slice(2)],
    items.map(([l, v]) => (l === "n" ? [l, 3n] : [l, v])),
    items.map(([l, v]) => (l === "X" ? [l, Point.BASE.multiply(6n)] : [l, v])),
    items.map(([l, v]) => (l === "X" ? [l, Point.ZERO] : [l, v])),
    items.map(([l, v]) => (l === "list" ? [l, [1n, 2n]] : [l, v])),
    items.map(([l, v]) => (l === "list" ? [l, [1n, 2n, -3n]] : [l, v])),
    items.map(([l, v]) => (l === "rid" ? [l, new Uint8Array(47).fill(7)] : [l, v])),
  ];
  for (const [k, it] of variants.entries()) assert.ok(!opens("keygen", sid, 1, it, u, V), `${k}`);
});

test("commitment encoding is unambiguous across labels, types and list boundaries", () => {
  const u = new Uint8Array(48);
  const h = (it: CommitItems) => toHex(commitmentHash("d", sid, 0, it, u));
  const pairs: [CommitItems, CommitItems][] = [
    [[["ab", "c"]], [["a", "bc"]]],
    [[["x", 1n]], [["x", new Uint8Array([1])]]],
    [[["x", "01"]], [["x", new Uint8Array([1])]]],
    [[["x", [1n, 2n]]], [["x", [1n]], ["x", [2n]]]],
    [[["x", [1n, 2n]]], [["x[0]", 1n], ["x[1]", 2n]]],
    [[["x", []]], []],
    [[["x", -1n]], [["x", 1n]]],
  ];
  for (const [a, b] of pairs) assert.notEqual(h(a), h(b));
});

test("commitment refuses opening randomness that is not kappa bytes", () => {
  assert.throws(() => commitmentHash("d", sid, 0, items, new Uint8Array(47)), RangeError);
  assert.throws(
    () => commitmentHash("d", sid, 0, [["x", 1 as unknown as bigint]], new Uint8Array(48)),
    TypeError,
  );
});

test("derived session ids separate labels and bound bytes", () => {
  const a = deriveSid(sid, "x/rho", new Uint8Array(48));
  assert.equal(a.length, 32);
  assert.notEqual(toHex(a), toHex(deriveSid(sid, "y/rho", new Uint8Array(48))));
  assert.notEqual(toHex(a), toHex(deriveSid(sid, "x/rho", new Uint8Array(48).fill(1))));
  assert.notEqual(toHex(a), toHex(deriveSid(sid.slice(1), "x/rho", new Uint8Array(48))));
  assert.equal(toHex(a), toHex(deriveSid(sid, "x/rho", new Uint8Array(48))));
});

test("xor and byte equality helpers", () => {
  assert.deepEqual(
    xorBytes(new Uint8Array([1, 2]), new Uint8Array([3, 2])),
    new Uint8Array([2, 0]),
  );
  assert.throws(() => xorBytes(new Uint8Array(1), new Uint8Array(2)), RangeError);
  assert.ok(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assert.ok(!bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])));
  assert.ok(!bytesEqual(new Uint8Array([1]), new Uint8Array([1, 0])));
});
