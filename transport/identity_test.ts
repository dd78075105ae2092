import { test } from "node:test";
import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  generateIdentity,
  identityFromHex,
  identityFromSecret,
  publicKeyFromHex,
  publicKeyToHex,
} from "./identity.ts";
import { fromHex, toHex } from "../core/bytes.ts";

// RFC 8032 section 7.1, TEST 1.
const SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const SIG = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065" +
  "224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

test("identityFromSecret matches RFC 8032 test 1 and signs its vector", () => {
  const id = identityFromSecret(fromHex(SECRET));
  assert.equal(toHex(id.publicKey), PUBLIC);
  assert.equal(toHex(ed25519.sign(new Uint8Array(0), id.secretKey)), SIG);
  assert.equal(toHex(identityFromHex(SECRET).publicKey), PUBLIC);
});

test("identityFromSecret copies the secret (a later change of the input does not leak in)", () => {
  const seed = fromHex(SECRET);
  const id = identityFromSecret(seed);
  seed.fill(0);
  assert.equal(toHex(id.secretKey), SECRET);
});

test("generateIdentity draws from the injected rng", () => {
  const id = generateIdentity((out) => out.set(fromHex(SECRET)));
  assert.equal(toHex(id.publicKey), PUBLIC);
  assert.notEqual(toHex(generateIdentity().publicKey), toHex(generateIdentity().publicKey));
});

test("public keys round-trip through hex", () => {
  const id = generateIdentity();
  assert.deepEqual(publicKeyFromHex(publicKeyToHex(id.publicKey)), id.publicKey);
});

test("identity helpers reject a table of hostile inputs", () => {
  const notPoint = "02" + "00".repeat(31); // y = 2 is not on the curve
  const nonCanonical = "ed" + "ff".repeat(30) + "7f"; // y = p (not reduced)
  assert.ok(!ed25519.utils.isValidPublicKey(fromHex(nonCanonical), false));
  const hexCases: [string, string][] = [
    ["empty", ""],
    ["short", PUBLIC.slice(2)],
    ["long", PUBLIC + "00"],
    ["uppercase", PUBLIC.toUpperCase()],
    ["not hex", "zz" + PUBLIC.slice(2)],
    ["not a point", notPoint],
    ["non-canonical y", nonCanonical],
  ];
  for (const [what, h] of hexCases) assert.throws(() => publicKeyFromHex(h), SyntaxError, what);
  assert.throws(() => publicKeyFromHex(7 as unknown as string), SyntaxError);
  assert.throws(() => identityFromHex(SECRET.slice(1)), SyntaxError);
  assert.throws(() => identityFromSecret(new Uint8Array(31)), RangeError);
  assert.throws(() => identityFromSecret(new Uint8Array(33)), RangeError);
  assert.throws(() => identityFromSecret(SECRET as unknown as Uint8Array), TypeError);
  assert.throws(() => publicKeyToHex(new Uint8Array(31)), RangeError);
});
