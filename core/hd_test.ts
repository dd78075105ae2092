import { test } from "node:test";
import assert from "node:assert/strict";
import { HDKey } from "@scure/bip32";
import { hmac } from "@noble/hashes/hmac.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { fromHex, toHex } from "./bytes.ts";
import {
  applyShiftToShare,
  ckdPub,
  deriveChildShare,
  deriveShift,
  deriveXpub,
  fingerprint,
  fromXpub,
  HARDENED_OFFSET,
  keyShareXpub,
  parsePath,
  toXpub,
  TPUB_VERSION,
} from "./hd.ts";
import { fromBytesBE, randomBelow, randomBytes, toBytesBE } from "./math/mod.ts";
import { Point, Q } from "./params.ts";
import type { KeyShareCore } from "./protocols/types.ts";

// BIP-32 "Test Vectors" (bitcoin/bips, bip-0032.mediawiki), test vectors 1 and 2: the
// non-hardened steps, as (parent xpub, child index, child xpub).
const BIP32_PUBLIC_STEPS: readonly [string, number, string][] = [
  // Test vector 1: m/0H -> m/0H/1
  [
    "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
    1,
    "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
  ],
  // Test vector 1: m/0H/1/2H -> m/0H/1/2H/2
  [
    "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
    2,
    "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
  ],
  // Test vector 1: m/0H/1/2H/2 -> m/0H/1/2H/2/1000000000
  [
    "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
    1000000000,
    "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
  ],
  // Test vector 2: m -> m/0
  [
    "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB",
    0,
    "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH",
  ],
  // Test vector 2: m/0/2147483647H -> m/0/2147483647H/1
  [
    "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a",
    1,
    "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon",
  ],
  // Test vector 2: m/0/2147483647H/1/2147483646H -> .../2
  [
    "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL",
    2,
    "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt",
  ],
];

// SLIP-0010 (satoshilabs/slips, slip-0010.md), "Test vector 1 for secp256k1" and "Test vector 2
// for secp256k1", non-hardened steps in the table form of the SLIP (parent fingerprint, chain
// code, public key in hex): [parent chain code, parent public key, index, child fpr, child
// chain code, child public key].
const SLIP10_PUBLIC_STEPS: readonly [string, string, number, string, string, string][] = [
  [
    "47fdacbd0f1097043b78c63c20c34ef4ed9a111d980047ad16282c7ae6236141",
    "035a784662a4a20a65bf6aab9ae98a6c068a81c52e4b032c0fb5400c706cfccc56",
    1,
    "5c1bd648",
    "2a7857631386ba23dacac34180dd1983734e444fdbf774041578e9b6adb37c19",
    "03501e454bf00751f24b1b489aa925215d66af2234e3891c3b21a52bedb3cd711c",
  ],
  [
    "04466b9cc8e161e966409ca52986c584f07e9dc81f735db683c3ff6ec7b1503f",
    "0357bfe1e341d01c69fe5654309956cbea516822fba8a601743a012a7896ee8dc2",
    2,
    "ee7ab90c",
    "cfb71883f01676f587d023cc53a35bc7f88f724b1f8c2892ac1275ac822a3edd",
    "02e8445082a72f29b75ca48748a914df60622a609cacfce8ed0e35804560741d29",
  ],
  [
    "cfb71883f01676f587d023cc53a35bc7f88f724b1f8c2892ac1275ac822a3edd",
    "02e8445082a72f29b75ca48748a914df60622a609cacfce8ed0e35804560741d29",
    1000000000,
    "d880d7d8",
    "c783e67b921d2beb8f6b389cc646d7263b4145701dadd2161548a8b078e65e9e",
    "022a471424da5e657499d1ff51cb43c47481a03b1e77f951fe64cec9f5a48f7011",
  ],
  [
    "60499f801b896d83179a4374aeb7822aaeaceaa0db1f85ee3e904c4defbd9689",
    "03cbcaa9c98c877a26977d00825c956a238e8dddfbd322cce4f74b0b5bd6ace4a7",
    0,
    "bd16bee5",
    "f0909affaa7ee7abe5dd4e100598d4dc53cd709d5a5c2cac40e7412f232f7c9c",
    "02fc9e5af0ac8d9b3cecfe2a888e2117ba3d089d8585886c9c826b6b22a98d12ea",
  ],
  [
    "be17a268474a6bb9c61e1d720cf6215e2a88c5406c4aee7b38547f585c9a37d9",
    "03c01e7425647bdefa82b12d9bad5e3e6865bee0502694b94ca58b666abc0a5c3b",
    1,
    "d8ab4937",
    "f366f48f1ea9f2d1d3fe958c95ca84ea18e4c4ddb9366c336c927eb246fb38cb",
    "03a7d1d856deb74c508e05031f9895dab54626251b3806e16b4bd12e781a7df5b9",
  ],
  [
    "637807030d55d01f9a0cb3a7839515d796bd07706386a6eddf06cc29a65a0e29",
    "02d2b36900396c9282fa14628566582f206a5dd0bcc8d5e892611806cafb0301f0",
    2,
    "31a507b8",
    "9452b549be8cea3ecb7a84bec10dcfd94afe4d129ebfd3b3cb58eedf394ed271",
    "024d902e1a2fc7a8755ab5b694c575fce742c48d9ff192e63df5193e4c7afe1f9c",
  ],
];

// BIP-32 "Test vector 5": invalid extended keys. Every one must be refused by fromXpub (the
// private ones too: this module never parses private keys).
const BIP32_INVALID_KEYS: readonly string[] = [
  "xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6LBpB85b3D2yc8sfvZU521AAwdZafEz7mnzBBsz4wKY5fTtTQBm",
  "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzFGTQQD3dC4H2D5GBj7vWvSQaaBv5cxi9gafk7NF3pnBju6dwKvH",
  "xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Txnt3siSujt9RCVYsx4qHZGc62TG4McvMGcAUjeuwZdduYEvFn",
  "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzFGpWnsj83BHtEy5Zt8CcDr1UiRXuWCmTQLxEK9vbz5gPstX92JQ",
  "xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6N8ZMMXctdiCjxTNq964yKkwrkBJJwpzZS4HS2fxvyYUA4q2Xe4",
  "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzFAzHGBP2UuGCqWLTAPLcMtD9y5gkZ6Eq3Rjuahrv17fEQ3Qen6J",
  "xprv9s2SPatNQ9Vc6GTbVMFPFo7jsaZySyzk7L8n2uqKXJen3KUmvQNTuLh3fhZMBoG3G4ZW1N2kZuHEPY53qmbZzCHshoQnNf4GvELZfqTUrcv",
  "xpub661no6RGEX3uJkY4bNnPcw4URcQTrSibUZ4NqJEw5eBkv7ovTwgiT91XX27VbEXGENhYRCf7hyEbWrR3FewATdCEebj6znwMfQkhRYHRLpJ",
  "xprv9s21ZrQH4r4TsiLvyLXqM9P7k1K3EYhA1kkD6xuquB5i39AU8KF42acDyL3qsDbU9NmZn6MsGSUYZEsuoePmjzsB3eFKSUEh3Gu1N3cqVUN",
  "xpub661MyMwAuDcm6CRQ5N4qiHKrJ39Xe1R1NyfouMKTTWcguwVcfrZJaNvhpebzGerh7gucBvzEQWRugZDuDXjNDRmXzSZe4c7mnTK97pTvGS8",
  "DMwo58pR1QLEFihHiXPVykYB6fJmsTeHvyTp7hRThAtCX8CvYzgPcn8XnmdfHGMQzT7ayAmfo4z3gY5KfbrZWZ6St24UVf2Qgo6oujFktLHdHY4",
  "DMwo58pR1QLEFihHiXPVykYB6fJmsTeHvyTp7hRThAtCX8CvYzgPcn8XnmdfHPmHJiEDXkTiJTVV9rHEBUem2mwVbbNfvT2MTcAqj3nesx8uBf9",
  "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzF93Y5wvzdUayhgkkFoicQZcP3y52uPPxFnfoLZB21Teqt1VvEHx",
  "xprv9s21ZrQH143K24Mfq5zL5MhWK9hUhhGbd45hLXo2Pq2oqzMMo63oStZzFAzHGBP2UuGCqWLTAPLcMtD5SDKr24z3aiUvKr9bJpdrcLg1y3G",
  "xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Q5JXayek4PRsn35jii4veMimro1xefsM58PgBMrvdYre8QyULY",
  "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHL",
];

function randomIndex(): number {
  const r = Math.random();
  if (r < 0.1) return 0;
  if (r < 0.2) return HARDENED_OFFSET - 1;
  return Math.floor(Math.random() * HARDENED_OFFSET);
}

function randomPath(maxLen: number): number[] {
  const len = Math.floor(Math.random() * (maxLen + 1));
  return Array.from({ length: len }, randomIndex);
}

/** A random extended key of @scure/bip32, at depth 0 or below some hardened steps. */
function randomScureKey(): HDKey {
  const master = HDKey.fromMasterSeed(randomBytes(32));
  const hardenedDepth = Math.floor(Math.random() * 3);
  let k = master;
  for (let d = 0; d < hardenedDepth; d++) k = k.deriveChild(HARDENED_OFFSET + randomIndex());
  return k;
}

function pathString(path: readonly number[]): string {
  return ["m", ...path].join("/");
}

test("hd public steps of BIP-32 test vectors 1 and 2 give the published child xpubs", () => {
  for (const [parent, index, child] of BIP32_PUBLIC_STEPS) {
    assert.equal(deriveXpub(parent, [index]), child);
    assert.equal(deriveXpub(parent, `m/${index}`), child);
    const p = fromXpub(parent);
    const c = fromXpub(child);
    const d = deriveShift(p.publicKey, p.chainCode, [index]);
    assert.ok(d.childPublicKey.equals(c.publicKey));
    assert.deepEqual(d.childChainCode, c.chainCode);
    assert.equal(d.parentFingerprint, c.parentFingerprint);
    assert.equal(d.index, c.index);
    assert.equal(p.depth + d.depth, c.depth);
  }
});

test("hd two public steps at once (vector 1, m/0H/1/2H -> /2/1000000000) give the published xpub", () => {
  assert.equal(
    deriveXpub(BIP32_PUBLIC_STEPS[1][0], "m/2/1000000000"),
    BIP32_PUBLIC_STEPS[2][2],
  );
});

test("hd public steps of SLIP-10 secp256k1 vectors 1 and 2 match fingerprint, chain code and key", () => {
  for (const [cc, pub, index, fpr, childCc, childPub] of SLIP10_PUBLIC_STEPS) {
    const parent = Point.fromHex(pub);
    const d = deriveShift(parent, fromHex(cc), [index]);
    assert.equal(d.childPublicKey.toHex(true), childPub);
    assert.equal(toHex(d.childChainCode), childCc);
    assert.equal(d.parentFingerprint.toString(16).padStart(8, "0"), fpr);
    assert.equal(fingerprint(parent).toString(16).padStart(8, "0"), fpr);
    const step = ckdPub(parent, fromHex(cc), index);
    assert.ok(step.publicKey.equals(d.childPublicKey));
    assert.equal(step.tweak, d.shift);
  }
});

test("hd derived public keys equal @scure/bip32's for random xpubs and random non-hardened paths", () => {
  for (let trial = 0; trial < 60; trial++) {
    const key = randomScureKey();
    const path = randomPath(6);
    const ps = pathString(path);
    const expected = key.derive(ps);
    const parent = fromXpub(key.publicExtendedKey);
    const d = deriveShift(parent.publicKey, parent.chainCode, path);
    assert.equal(d.childPublicKey.toHex(true), toHex(expected.publicKey!), ps);
    assert.deepEqual(d.childChainCode, expected.chainCode);
    assert.equal(deriveXpub(key.publicExtendedKey, ps), expected.publicExtendedKey, ps);
    // The shift is the difference of the private keys: child = parent + shift (mod q).
    const kPar = fromBytesBE(key.privateKey!);
    assert.equal((kPar + d.shift) % Q, fromBytesBE(expected.privateKey!));
  }
});

test("hd toXpub / fromXpub round-trip and agree with @scure/bip32's encoding", () => {
  for (let trial = 0; trial < 20; trial++) {
    const key = randomScureKey().derive(pathString(randomPath(2)));
    const parsed = fromXpub(key.publicExtendedKey);
    assert.equal(parsed.depth, key.depth);
    assert.equal(parsed.index, key.index);
    assert.equal(parsed.parentFingerprint, key.parentFingerprint);
    assert.equal(toXpub(parsed), key.publicExtendedKey);
    assert.equal(fingerprint(parsed.publicKey), key.fingerprint);
  }
  const tpub = toXpub({
    publicKey: Point.BASE,
    chainCode: new Uint8Array(32),
    version: TPUB_VERSION,
  });
  assert.ok(tpub.startsWith("tpub"));
  assert.equal(fromXpub(tpub).version, TPUB_VERSION);
});

test("hd keyShareXpub exports the threshold key as a depth-0 xpub that @scure/bip32 derives from", () => {
  const x = randomBelow(Q - 1n) + 1n;
  const share = { publicKey: Point.BASE.multiply(x), chainCode: randomBytes(32) };
  const xpub = keyShareXpub(share);
  const viaScure = HDKey.fromExtendedKey(xpub);
  assert.equal(viaScure.depth, 0);
  assert.equal(toHex(viaScure.publicKey!), share.publicKey.toHex(true));
  const d = deriveShift(share.publicKey, share.chainCode, "m/7/8");
  assert.equal(toHex(viaScure.derive("m/7/8").publicKey!), d.childPublicKey.toHex(true));
});

test("hd fromXpub rejects every invalid key of BIP-32 test vector 5 with a SyntaxError", () => {
  for (const bad of BIP32_INVALID_KEYS) {
    assert.throws(() => fromXpub(bad), SyntaxError, bad);
  }
});

test("hd fromXpub rejects hostile strings quickly: oversized, non-Base58, empty, truncated", () => {
  const good = BIP32_PUBLIC_STEPS[0][0];
  for (
    const bad of ["", "x".repeat(1 << 20), good + "1", good.slice(0, -1), good.replace("x", "0")]
  ) {
    assert.throws(() => fromXpub(bad), SyntaxError);
  }
  assert.throws(() => fromXpub(42 as unknown as string), TypeError);
});

test("hd parsePath accepts non-hardened paths as strings and arrays", () => {
  assert.deepEqual(parsePath("m"), []);
  assert.deepEqual(parsePath([]), []);
  assert.deepEqual(parsePath("m/0/1/2"), [0, 1, 2]);
  assert.deepEqual(parsePath("m/2147483647"), [HARDENED_OFFSET - 1]);
  assert.deepEqual(parsePath([0, 1, HARDENED_OFFSET - 1]), [0, 1, HARDENED_OFFSET - 1]);
  assert.equal(parsePath(Array(255).fill(1)).length, 255);
  assert.equal(parsePath("m" + "/3".repeat(255)).length, 255);
});

test("hd parsePath rejects hardened indices with a RangeError naming the index and position", () => {
  const cases: [string | number[], RegExp][] = [
    ["m/0'", /index 0' at position 1 is hardened/],
    ["m/44h", /index 44h at position 1 is hardened/],
    ["m/1/7H/2", /index 7H at position 2 is hardened/],
    ["m/2147483648", /index 2147483648 at position 1 is hardened/],
    ["m/0/99999999999", /index 99999999999 at position 2 is hardened/],
    [[0, HARDENED_OFFSET], /index 2147483648 at position 2 is hardened/],
    [[2 ** 32], /index 4294967296 at position 1 is hardened/],
  ];
  for (const [path, message] of cases) {
    assert.throws(() => parsePath(path), (e: unknown) => {
      assert.ok(e instanceof RangeError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
  const X = Point.BASE.multiply(5n);
  assert.throws(() => deriveShift(X, new Uint8Array(32), "m/0'"), RangeError);
  assert.throws(() => ckdPub(X, new Uint8Array(32), HARDENED_OFFSET), RangeError);
});

test("hd parsePath rejects malformed paths and depths above 255", () => {
  for (
    const bad of [
      "",
      "0/1",
      "M/1",
      "m/",
      "m//1",
      "m/1/",
      "m/-1",
      "m/01",
      "m/1.5",
      " m/1",
      "m/1 ",
      "m/0x1",
    ]
  ) {
    assert.throws(() => parsePath(bad), SyntaxError, JSON.stringify(bad));
  }
  assert.throws(() => parsePath("m" + "/1".repeat(256)), RangeError);
  assert.throws(() => parsePath(Array(256).fill(0)), RangeError);
  assert.throws(() => parsePath("m/" + "1".repeat(100_000)), RangeError);
  for (const bad of [[-1], [1.5], [NaN], [Infinity]]) {
    assert.throws(() => parsePath(bad), RangeError, String(bad));
  }
  assert.throws(() => parsePath(["1"] as unknown as number[]), TypeError);
  assert.throws(() => parsePath(7 as unknown as string), TypeError);
  assert.throws(() => deriveShift(Point.BASE, new Uint8Array(31), "m/1"), TypeError);
});

test("hd ckdPub follows SLIP-10 when I_L >= q: retries with HMAC(c, 0x01 || I_R || ser32(i))", () => {
  const P = Point.BASE.multiply(77n);
  const c = randomBytes(32);
  const index = 5;
  const IR = randomBytes(32);
  const calls: Uint8Array[] = [];
  const real = (k: Uint8Array, d: Uint8Array) => hmac(sha512, k, d);
  const mac = (k: Uint8Array, d: Uint8Array): Uint8Array => {
    calls.push(d);
    if (calls.length === 1) {
      const I = new Uint8Array(64);
      I.set(toBytesBE(Q, 32), 0); // I_L = q: not a valid scalar
      I.set(IR, 32);
      return I;
    }
    return real(k, d);
  };
  const step = ckdPub(P, c, index, mac);
  assert.equal(calls.length, 2);
  const retryData = new Uint8Array([1, ...IR, 0, 0, 0, 5]);
  assert.deepEqual(calls[1], retryData);
  const I2 = real(c, retryData);
  assert.equal(step.tweak, fromBytesBE(I2.subarray(0, 32)));
  assert.deepEqual(step.chainCode, I2.slice(32));
  assert.ok(step.publicKey.equals(P.add(Point.BASE.multiply(step.tweak))));
});

test("hd ckdPub follows SLIP-10 when the child is the identity, and accepts I_L = 0", () => {
  const p = 1000n;
  const P = Point.BASE.multiply(p);
  const c = randomBytes(32);
  let n = 0;
  const IR = randomBytes(32);
  const toIdentity = (_k: Uint8Array, d: Uint8Array): Uint8Array => {
    n++;
    const I = new Uint8Array(64);
    I.set(toBytesBE(n === 1 ? Q - p : 0n, 32), 0); // first: P + (q - p) G = O; then I_L = 0
    I.set(n === 1 ? IR : d.subarray(1, 33), 32);
    return I;
  };
  const step = ckdPub(P, c, 9, toIdentity);
  assert.equal(n, 2);
  assert.equal(step.tweak, 0n);
  assert.ok(step.publicKey.equals(P));
  assert.deepEqual(step.chainCode, IR);
});

/** An n-party additive split of a random key with a random chain code (test only). */
function split(n: number): { x: bigint; shares: KeyShareCore[] } {
  const xs = Array.from({ length: n }, () => randomBelow(Q - 1n) + 1n);
  const x = xs.reduce((a, b) => a + b, 0n) % Q;
  const publicShares = xs.map((v) => Point.BASE.multiply(v));
  const publicKey = publicShares.reduce((a, b) => a.add(b));
  const rid = randomBytes(48);
  const chainCode = randomBytes(32);
  const shares = xs.map((xi, i) => ({
    curve: "secp256k1" as const,
    i,
    n,
    x: xi,
    publicKey,
    publicShares,
    rid,
    chainCode,
  }));
  return { x, shares };
}

for (const n of [2, 3]) {
  test(`hd shift on party 0 of a ${n}-party split gives shares of the child key that @scure/bip32 derives`, () => {
    for (let trial = 0; trial < 8; trial++) {
      const { x, shares } = split(n);
      const path = randomPath(5);
      const d = deriveShift(shares[0].publicKey, shares[0].chainCode, path);
      const derived = shares.map((s) => applyShiftToShare(s, d.shift, d.childChainCode));
      // Only party 0's secret changed.
      for (let j = 1; j < n; j++) assert.equal(derived[j].x, shares[j].x);
      const childSecret = derived.reduce((a, s) => a + s.x, 0n) % Q;
      assert.equal(childSecret, (x + d.shift) % Q);
      assert.ok(Point.BASE.multiply(childSecret).equals(d.childPublicKey));
      // Every party holds the same, consistent public view.
      for (const s of derived) {
        assert.ok(s.publicKey.equals(d.childPublicKey));
        assert.ok(s.publicShares.reduce((a, b) => a.add(b)).equals(d.childPublicKey));
        assert.ok(s.publicShares[s.i].equals(Point.BASE.multiply(s.x)));
        assert.deepEqual(s.chainCode, d.childChainCode);
      }
      // Independent check: BIP-32 private derivation by @scure/bip32 from the whole key.
      const whole = new HDKey({ privateKey: toBytesBE(x, 32), chainCode: shares[0].chainCode });
      const child = whole.derive(pathString(path));
      assert.equal(fromBytesBE(child.privateKey!), childSecret);
      assert.equal(toHex(child.publicKey!), d.childPublicKey.toHex(true));
      // deriveChildShare is the same two steps.
      const viaHelper = deriveChildShare(shares[0], path);
      assert.equal(viaHelper.x, derived[0].x);
      assert.ok(viaHelper.publicKey.equals(derived[0].publicKey));
    }
  });
}

test("hd applyShiftToShare leaves the input unchanged and refuses a shift outside [0, q)", () => {
  const { shares } = split(2);
  const before = { ...shares[0], publicShares: [...shares[0].publicShares] };
  const d = deriveShift(shares[0].publicKey, shares[0].chainCode, "m/1/2");
  applyShiftToShare(shares[0], d.shift, d.childChainCode);
  assert.equal(shares[0].x, before.x);
  assert.ok(shares[0].publicKey.equals(before.publicKey));
  assert.ok(shares[0].publicShares[0].equals(before.publicShares[0]));
  assert.throws(() => applyShiftToShare(shares[0], Q), RangeError);
  assert.throws(() => applyShiftToShare(shares[0], -1n), RangeError);
  const same = applyShiftToShare(shares[0], 0n);
  assert.equal(same.x, shares[0].x);
  // The empty path is the key itself: shift 0, same key and chain code.
  const root = deriveShift(shares[0].publicKey, shares[0].chainCode, "m");
  assert.equal(root.shift, 0n);
  assert.equal(root.depth, 0);
  assert.ok(root.childPublicKey.equals(shares[0].publicKey));
});
