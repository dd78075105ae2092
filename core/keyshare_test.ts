import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { toHex, toHexInt } from "./bytes.ts";
import { InvalidKeyShare } from "./errors.ts";
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  decodeAccountsFile,
  decodeKeyShare,
  decodeKeyShareFile,
  decodeKeyShareUnchecked,
  encodeAccountsFile,
  encodeKeyShare,
  encodeKeyShareFile,
  validateKeyShare,
} from "./keyshare.ts";
import { deriveChildShare, keyShareXpub } from "./hd.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { bitLength, hasSmallFactor, isDefinitelyComposite, modInv } from "./math/mod.ts";
import { MODULUS_MIN_BITS, Point } from "./params.ts";
import { FIXTURE_SAFE_PRIMES } from "../testing/fixtures/keys.ts";

const FIXTURE_URL = new URL("../testing/fixtures/keyshare_v1.json", import.meta.url);
/** The committed version-1 fixture (TEST DATA ONLY, made by tools/make_keyshare_fixture.ts). */
const TEXT = readFileSync(FIXTURE_URL, "utf8");
const A = "TEST-ONLY-fixture-a";
const B = "TEST-ONLY-fixture-b";

// deno-lint-ignore no-explicit-any
type Json = any;

/** A fresh copy of the fixture file as parsed JSON. */
function fixtureJson(): Json {
  return JSON.parse(TEXT);
}

/** The fixture with account A's key share changed by `f`, as text. */
function mutated(f: (ks: Json, entry: Json, file: Json) => void): string {
  const file = fixtureJson();
  f(file[A].key_share, file[A], file);
  return JSON.stringify(file);
}

const SECRETS_A = (() => {
  const ks = fixtureJson()[A].key_share;
  return [ks.x, ks.aux.p, ks.aux.q];
})();

/** Asserts an InvalidKeyShare with `code`, whose message matches `re` and holds no secret. */
function rejects(f: () => unknown, code: InvalidKeyShare["code"], re?: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof InvalidKeyShare, `expected InvalidKeyShare, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    for (const secret of SECRETS_A) {
      assert.ok(!e.message.includes(secret.slice(0, 16)), "error message leaks a secret");
    }
    assert.ok(e.message.length < 300, "error message is short");
    return true;
  });
}

test("keyshare v1 fixture loads: two accounts, party indices 0 and 1, pinned public keys", () => {
  const accounts = decodeKeyShareFile(TEXT);
  assert.deepEqual([...accounts.keys()], [A, B]);
  const a = accounts.get(A)!;
  const b = accounts.get(B)!;
  assert.equal(a.i, 0);
  assert.equal(b.i, 1);
  for (const s of [a, b]) {
    assert.equal(s.n, 2);
    assert.equal(s.curve, "secp256k1");
    assert.equal(s.aux.i, s.i);
    assert.equal(s.aux.n, 2);
    assert.equal(s.aux.parties.length, 2);
    assert.equal(s.rid.length, 48);
    assert.ok(Point.BASE.multiply(s.x).equals(s.publicShares[s.i]));
  }
  // Pinned when the fixture was made; a later format must still load these values.
  assert.equal(
    a.publicKey.toHex(true),
    "031adaf195cabe1035ce81784785c534bfec7a1e4a3ef874b211686c22a4520b7d",
  );
  assert.equal(
    toHex(a.chainCode),
    "117a828f1cea4bb037f07c4d9969054bbd5f50f53e314f00f0067ad392acd859",
  );
  assert.equal(
    b.publicKey.toHex(true),
    "028fdfd146446226e2ce1b94dfd49e3a2dd3f26b0eb4bda35a49307189ae32e11c",
  );
  assert.equal(
    toHex(b.chainCode),
    "e86a36d340f37dafda0c706538f784b14c4602c82e723c2369192b274ccbd88b",
  );
  // Own primes: fixture key 0 for party 0 of A, fixture key 3 for party 1 of B.
  assert.equal(a.aux.p, FIXTURE_SAFE_PRIMES[0]);
  assert.equal(b.aux.q, FIXTURE_SAFE_PRIMES[7]);
});

test("keyshare v1 fixture re-encodes byte for byte (the writer is deterministic)", () => {
  assert.equal(encodeKeyShareFile(decodeKeyShareFile(TEXT)), TEXT);
  assert.equal(encodeKeyShareFile(decodeKeyShareFile(new TextEncoder().encode(TEXT))), TEXT);
});

test("keyshare single share round-trips through encodeKeyShare / decodeKeyShare", () => {
  const b = decodeKeyShareFile(TEXT).get(B)!;
  const json = JSON.stringify(encodeKeyShare(b));
  const again = decodeKeyShare(json);
  assert.equal(again.x, b.x);
  assert.ok(again.publicKey.equals(b.publicKey));
  assert.deepEqual(again.aux, b.aux);
  assert.deepEqual(decodeKeyShare(JSON.parse(json)).aux, b.aux);
  // validateKeyShare accepts a checked share again (protocol outputs are validated this way).
  assert.equal(validateKeyShare(again).x, b.x);
});

test("keyshare a derived (HD-shifted) share still validates, and the xpub is the same for both parties", () => {
  const a = decodeKeyShareFile(TEXT).get(A)!;
  const child = deriveChildShare(a, "m/0/5");
  assert.equal(validateKeyShare(child).i, 0);
  assert.ok(keyShareXpub(a).startsWith("xpub661MyMwAqRbc"));
});

test("keyshare file encoding sorts accounts and accepts a record; odd but valid ids round-trip", () => {
  const accounts = decodeKeyShareFile(TEXT);
  const a = accounts.get(A)!;
  const text = encodeKeyShareFile({ "z.last": a, "0": a, "A-b_c.9": a });
  assert.deepEqual([...decodeKeyShareFile(text).keys()], ["0", "A-b_c.9", "z.last"]);
  // "__proto__" matches the id pattern: it must stay an ordinary key, never a prototype.
  const proto = decodeKeyShareFile(encodeKeyShareFile(new Map([["__proto__", a]])));
  assert.deepEqual([...proto.keys()], ["__proto__"]);
  assert.equal(proto.get("__proto__")!.x, a.x);
  assert.equal(Object.getPrototypeOf({}), Object.prototype);
  assert.equal(decodeKeyShareFile(encodeKeyShareFile(new Map())).size, 0);
});

const FIXED_3070_N = (() => {
  const N = BigInt("0x" + fixtureJson()[A].key_share.aux.parties[1].N);
  const small = (N >> 2n) | 1n;
  assert.equal(bitLength(small), MODULUS_MIN_BITS - 1);
  return small;
})();

/**
 * The first p + 4k (k >= 1; same residue mod 4 as p) with no factor below 2^16 that is
 * `wantPrime` (base-2 Fermat), so that N = p' q passes the small-factor check.
 */
function nextCandidate(p: bigint, wantComposite: boolean): bigint {
  for (let k = 1n;; k++) {
    const c = p + 4n * k;
    if (!hasSmallFactor(c) && (!wantComposite || isDefinitelyComposite(c))) return c;
  }
}

/** The first p + 4k (k >= 1) that passes trial division and a base-2 Fermat test. */
function nextFermatPrime(p: bigint): bigint {
  for (let c = p + 4n;; c += 4n) {
    if (!hasSmallFactor(c) && !isDefinitelyComposite(c)) return c;
  }
}

const HUGE_HEX = "ab".repeat(1 << 19); // 1 MiB of hex

/** Own (party 0 of account A) N, s, t, p, q of the fixture as bigints. */
function ownAux(ks: Json): { N: bigint; s: bigint; t: bigint; p: bigint; q: bigint } {
  const h = (v: string) => BigInt("0x" + v);
  const { N, s, t } = ks.aux.parties[ks.i];
  return { N: h(N), s: h(s), t: h(t), p: h(ks.aux.p), q: h(ks.aux.q) };
}

/** Bytes of a fixed "random" value (SHA-256 chain from a label): deterministic across runs. */
function pseudoRandomHex(label: string, bytes: number): string {
  let out = "";
  for (let k = 0; out.length < 2 * bytes; k++) {
    out += toHex(sha256(new TextEncoder().encode(`${label}/${k}`)));
  }
  return out.slice(0, 2 * bytes).replace(/^00/, "01");
}

/** The fixture with account A's own s and / or t replaced by `f` of its own aux values. */
function ownRp(f: (own: ReturnType<typeof ownAux>) => { s?: bigint; t?: bigint }): string {
  return mutated((ks) => {
    for (const [k, v] of Object.entries(f(ownAux(ks)))) ks.aux.parties[ks.i][k] = toHexInt(v);
  });
}

/** The value = 1 mod p and = v mod q (CRT): full size, a residue modulo p of order 1. */
function oneModP(v: bigint, p: bigint, q: bigint): bigint {
  return 1n + p * (((v - 1n) * modInv(p % q, q)) % q);
}

// The hostile key share files of issue 4 and the threat model ("malformed wire data"), each a
// mutation of account A of the fixture: [name, file text, code, message pattern].
const HOSTILE: [string, () => string, InvalidKeyShare["code"], RegExp][] = [
  ["truncated JSON", () => TEXT.slice(0, TEXT.length >> 1), "malformed", /not valid JSON/],
  ["truncated by one byte", () => TEXT.slice(0, -3), "malformed", /not valid JSON/],
  ["empty file", () => "", "malformed", /not valid JSON/],
  ["an array instead of an object", () => "[]", "malformed", /object of accounts/],
  ["wrong curve", () => mutated((ks) => (ks.curve = "ed25519")), "wrong-curve", /"ed25519"/],
  [
    "wrong curve with a strange name",
    () => mutated((ks) => (ks.curve = "p256\u0000<script>")),
    "wrong-curve",
    /another curve/,
  ],
  [
    "public share not matching the secret",
    () => mutated((ks) => (ks.public_shares[0] = Point.BASE.multiply(12345n).toHex(true))),
    "inconsistent",
    /public share of party 0 does not match the secret share/,
  ],
  [
    "public shares not adding up to the public key",
    () => mutated((ks) => (ks.public_shares[1] = Point.BASE.multiply(777n).toHex(true))),
    "inconsistent",
    /do not add up/,
  ],
  [
    "entry public_key differing from the key share's",
    () => mutated((_ks, e) => (e.public_key = Point.BASE.toHex(true))),
    "inconsistent",
    /entry's public_key/,
  ],
  [
    "N too small (3070 bits)",
    () => mutated((ks) => (ks.aux.parties[1].N = toHexInt(FIXED_3070_N))),
    "weak-aux-info",
    /party 1: expected N of 3071-3072 bits, got 3070/,
  ],
  [
    "own N too small (3070 bits)",
    () => mutated((ks) => (ks.aux.parties[0].N = toHexInt(FIXED_3070_N))),
    "weak-aux-info",
    /party 0: expected N of 3071-3072 bits, got 3070/,
  ],
  [
    "even N",
    () =>
      mutated((ks) => (ks.aux.parties[1].N = toHexInt(BigInt("0x" + ks.aux.parties[1].N) + 1n))),
    "weak-aux-info",
    /party 1: N is even/,
  ],
  [
    "two parties with the same N",
    () => mutated((ks) => (ks.aux.parties[1] = { ...ks.aux.parties[0] })),
    "weak-aux-info",
    /share a modulus/,
  ],
  [
    "prime N_i mismatch (another prime in aux.p)",
    () => mutated((ks) => (ks.aux.p = toHexInt(FIXTURE_SAFE_PRIMES[4]))),
    "inconsistent",
    /aux\.p \* aux\.q does not equal the modulus N of party 0/,
  ],
  [
    "composite secret prime with a consistent N",
    () =>
      mutated((ks) => {
        const p = nextCandidate(BigInt("0x" + ks.aux.p), true);
        ks.aux.p = toHexInt(p);
        ks.aux.parties[0].N = toHexInt(p * BigInt("0x" + ks.aux.q));
      }),
    "weak-aux-info",
    /secret prime p is not prime/,
  ],
  [
    "secret prime not 3 mod 4",
    () =>
      mutated((ks) => {
        const p = nextCandidate(BigInt("0x" + ks.aux.p) + 2n, false); // 1 mod 4
        ks.aux.p = toHexInt(p);
        ks.aux.parties[0].N = toHexInt(p * BigInt("0x" + ks.aux.q));
      }),
    "weak-aux-info",
    /secret prime p is not 3 mod 4/,
  ],
  [
    "p == q",
    () =>
      mutated((ks) => {
        ks.aux.q = ks.aux.p;
        ks.aux.parties[0].N = toHexInt(BigInt("0x" + ks.aux.p) ** 2n);
      }),
    "weak-aux-info",
    /equal/,
  ],
  // Issue 15, finding 2: one's own s, t, checked with the factors the file holds.
  [
    "own ring-Pedersen s, t = 2, 3",
    () => mutated((ks) => Object.assign(ks.aux.parties[0], { s: "02", t: "03" })),
    "weak-aux-info",
    /party 0 \(own\): ring-Pedersen s has 2 bits, expected at least 29[0-9]{2}/,
  ],
  [
    "own ring-Pedersen t truncated to 28 bytes",
    () => mutated((ks) => (ks.aux.parties[0].t = ks.aux.parties[0].t.slice(0, 56))),
    "weak-aux-info",
    /party 0 \(own\): ring-Pedersen t has 2[0-9]{2} bits, expected at least/,
  ],
  [
    "own ring-Pedersen s a random 30-byte value",
    () => mutated((ks) => (ks.aux.parties[0].s = pseudoRandomHex("issue-15/s", 30))),
    "weak-aux-info",
    /party 0 \(own\): ring-Pedersen s has 2[0-9]{2} bits, expected at least/,
  ],
  [
    "own ring-Pedersen t = N - t (full size, Jacobi symbol +1, a non-residue modulo p and q)",
    () => ownRp(({ N, t }) => ({ t: N - t })),
    "weak-aux-info",
    /party 0 \(own\): ring-Pedersen t is not a quadratic residue modulo p/,
  ],
  [
    "own ring-Pedersen t of order q' only (t = 1 mod p, a residue mod q)",
    () => ownRp(({ t, p, q }) => ({ t: oneModP(t, p, q) })),
    "weak-aux-info",
    /party 0 \(own\): ring-Pedersen t is 1 modulo p \(not of full order\)/,
  ],
  [
    "own ring-Pedersen s = N - s (not in <t>)",
    () => ownRp(({ N, s }) => ({ s: N - s })),
    "weak-aux-info",
    /party 0 \(own\): ring-Pedersen s is not in <t> \(not a residue modulo p\)/,
  ],
  [
    "own secret prime p a prime but not a safe prime (N = p q consistent)",
    () =>
      mutated((ks) => {
        const { p, q } = ownAux(ks);
        const p2 = nextFermatPrime(p); // p + 4k: 3 mod 4, prime; (p2 - 1) / 2 is not
        ks.aux.p = toHexInt(p2);
        ks.aux.parties[0].N = toHexInt(p2 * q);
      }),
    "weak-aux-info",
    /secret prime p is not a safe prime/,
  ],
  [
    "ring-Pedersen s not a unit (s = p)",
    () => mutated((ks) => (ks.aux.parties[0].s = ks.aux.p)),
    "weak-aux-info",
    /units modulo N/,
  ],
  [
    "ring-Pedersen s = t",
    () => mutated((ks) => (ks.aux.parties[1].s = ks.aux.parties[1].t)),
    "weak-aux-info",
    /distinct/,
  ],
  [
    "ring-Pedersen t = 1",
    () => mutated((ks) => (ks.aux.parties[1].t = "01")),
    "weak-aux-info",
    /distinct, in \(1, N\)/,
  ],
  [
    "wrong party count: three aux entries for n = 2",
    () => mutated((ks) => ks.aux.parties.push({ ...ks.aux.parties[1] })),
    "inconsistent",
    /one aux entry per party \(2\), got 3/,
  ],
  [
    "wrong party count: one aux entry for n = 2",
    () => mutated((ks) => ks.aux.parties.pop()),
    "inconsistent",
    /one aux entry per party \(2\), got 1/,
  ],
  [
    "wrong party count: three public shares for n = 2",
    () => mutated((ks) => ks.public_shares.push(ks.public_shares[0])),
    "inconsistent",
    /expected 2 public shares, got 3/,
  ],
  ["n = 1", () => mutated((ks) => (ks.n = 1)), "inconsistent", /expected 2 to 64 parties/],
  ["i >= n", () => mutated((ks) => (ks.i = 2)), "inconsistent", /0 <= i < 2, got i = 2/],
  ["i negative", () => mutated((ks) => (ks.i = -1)), "malformed", /i: expected an integer/],
  ["n huge", () => mutated((ks) => (ks.n = 1e9)), "malformed", /n: expected an integer/],
  ["i fractional", () => mutated((ks) => (ks.i = 0.5)), "malformed", /i: expected an integer/],
  [
    "a 1 MB hex field (N)",
    () => mutated((ks) => (ks.aux.parties[1].N = HUGE_HEX)),
    "malformed",
    /aux\.parties\[1\]\.N: expected at most 768 characters/,
  ],
  [
    "a 1 MB hex field (x)",
    () => mutated((ks) => (ks.x = HUGE_HEX)),
    "malformed",
    /x: expected at most 64 characters/,
  ],
  [
    "a 1 MB hex field (public key)",
    () => mutated((ks) => (ks.public_key = HUGE_HEX)),
    "malformed",
    /public_key: expected at most 66 characters/,
  ],
  [
    "a 1 MB curve name",
    () => mutated((ks) => (ks.curve = "k".repeat(1 << 20))),
    "malformed",
    /curve: expected at most 32/,
  ],
  [
    "100 000 public shares",
    () => mutated((ks) => (ks.public_shares = Array(100_000).fill(ks.public_shares[0]))),
    "malformed",
    /public_shares: expected at most 64 entries/,
  ],
  [
    "unknown field in the key share",
    () => mutated((ks) => (ks.threshold = 2)),
    "malformed",
    /unexpected field "threshold"/,
  ],
  [
    "unknown field in the account entry",
    () => mutated((_ks, e) => (e.label = "hot wallet")),
    "malformed",
    /unexpected field "label"/,
  ],
  [
    "unknown field in aux",
    () => mutated((ks) => (ks.aux.lambda = "01")),
    "malformed",
    /unexpected field "lambda"/,
  ],
  [
    "unknown field in a party's aux entry",
    () => mutated((ks) => (ks.aux.parties[0].phi = "01")),
    "malformed",
    /unexpected field "phi"/,
  ],
  ["missing field", () => mutated((ks) => delete ks.rid), "malformed", /missing field "rid"/],
  [
    "bad account id (space and !)",
    () => mutated((_ks, e, f) => (f["bad id!"] = e)),
    "malformed",
    /account id \(7 characters\) does not match/,
  ],
  [
    "bad account id (129 characters)",
    () => mutated((_ks, e, f) => (f["a".repeat(129)] = e)),
    "malformed",
    /account id \(129 characters\)/,
  ],
  [
    "bad account id (empty)",
    () => mutated((_ks, e, f) => (f[""] = e)),
    "malformed",
    /account id \(0 characters\)/,
  ],
  [
    "bad account id (path traversal)",
    () => mutated((_ks, e, f) => (f["../etc"] = e)),
    "malformed",
    /account id/,
  ],
  [
    "version 2",
    () => mutated((ks) => (ks.version = 2)),
    "unsupported-version",
    /expected version 1, got 2/,
  ],
  ["version 0", () => mutated((ks) => (ks.version = 0)), "unsupported-version", /got 0/],
  ["version as a string", () => mutated((ks) => (ks.version = "1")), "malformed", /version/],
  ["no version", () => mutated((ks) => delete ks.version), "malformed", /missing field "version"/],
  [
    "off-curve public share",
    () => mutated((ks) => (ks.public_shares[1] = "02" + "05".padStart(64, "0"))),
    "malformed",
    /public_shares\[1\]: not a point/,
  ],
  [
    "uncompressed public key",
    () => mutated((ks) => (ks.public_key = Point.BASE.toHex(false))),
    "malformed",
    /public_key: expected at most 66/,
  ],
  [
    "x = 0",
    () => mutated((ks) => (ks.x = "00".repeat(32))),
    "malformed",
    /x: expected a scalar in \[1, q\)/,
  ],
  [
    "x = q",
    () =>
      mutated((ks) => (ks.x = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")),
    "malformed",
    /x: expected a scalar/,
  ],
  [
    "uppercase hex",
    () => mutated((ks) => (ks.chain_code = ks.chain_code.toUpperCase())),
    "malformed",
    /chain_code: expected 32 bytes of lowercase hex/,
  ],
  [
    "rid of 32 bytes",
    () => mutated((ks) => (ks.rid = ks.rid.slice(0, 64))),
    "malformed",
    /rid: expected 48 bytes/,
  ],
  [
    "integer with a leading zero byte",
    () => mutated((ks) => (ks.aux.parties[1].s = "0005")),
    "malformed",
    /leading zero/,
  ],
  [
    "integer as a JSON number",
    () => mutated((ks) => (ks.aux.parties[1].t = 5)),
    "malformed",
    /expected a string, got number/,
  ],
  ["key share is null", () => mutated((_ks, e) => (e.key_share = null)), "malformed", /null/],
  [
    "key share as a nested JSON string",
    () => mutated((ks, e) => (e.key_share = JSON.stringify(ks))),
    "malformed",
    /key share: expected an object, got string/,
  ],
];

for (const [name, make, code, re] of HOSTILE) {
  test(`keyshare file load rejects a hostile file: ${name} -> ${code}`, () => {
    const text = make();
    rejects(() => decodeKeyShareFile(text), code, re);
  });
}

test("keyshare errors inside a file name the account", () => {
  rejects(
    () => decodeKeyShareFile(mutated((ks) => (ks.i = 2))),
    "inconsistent",
    /^account "TEST-ONLY-fixture-a": /,
  );
});

test("keyshare file load refuses a file above maxBytes before parsing, and bytes that are not UTF-8", () => {
  rejects(() => decodeKeyShareFile(TEXT, { maxBytes: 1000 }), "malformed", /at most 1000 bytes/);
  rejects(() => decodeKeyShareFile(new Uint8Array([0x7b, 0xff, 0x7d])), "malformed", /UTF-8/);
  rejects(() => decodeKeyShareFile(42 as unknown as string), "malformed", /text or bytes/);
});

test("keyshare decodeKeyShareUnchecked checks syntax only; validateKeyShare checks the meaning", () => {
  const ks = fixtureJson()[A].key_share;
  ks.i = 2; // semantically wrong, syntactically fine
  const u = decodeKeyShareUnchecked(ks);
  assert.equal(u.i, 2);
  rejects(() => validateKeyShare(u), "inconsistent", /i = 2/);
  rejects(() => decodeKeyShare(ks), "inconsistent");
  rejects(() => decodeKeyShareUnchecked("{"), "malformed");
  rejects(() => decodeKeyShareUnchecked(null), "malformed", /null/);
  rejects(() => decodeKeyShareUnchecked([]), "malformed", /an array/);
  // A share built in memory with the wrong curve or a bad point is refused too.
  const good = decodeKeyShareFile(TEXT).get(A)!;
  rejects(() => validateKeyShare({ ...good, curve: "p256" }), "wrong-curve");
  rejects(() => validateKeyShare({ ...good, publicKey: Point.ZERO }), "malformed", /infinity/);
  rejects(
    () => validateKeyShare({ ...good, chainCode: new Uint8Array(31) }),
    "malformed",
    /chain_code: expected 32 bytes/,
  );
});

test("keyshare encodeKeyShare refuses shares it cannot encode", () => {
  const good = decodeKeyShareFile(TEXT).get(A)!;
  assert.throws(() => encodeKeyShare({ ...good, rid: new Uint8Array(3) }), RangeError);
  assert.throws(() => encodeKeyShare({ ...good, x: 0n }), RangeError);
  assert.throws(() => encodeKeyShareFile({ "no spaces": good }), InvalidKeyShare);
});

/** The fixture with pinned identities on account A (party 0 of a 2-party key). */
function withIdentity(f: (id: Json) => void = () => {}): string {
  const file = fixtureJson();
  const own = new Uint8Array(32).fill(7);
  const other = ed25519.getPublicKey(new Uint8Array(32).fill(9));
  const i = file[A].key_share.i;
  const keys = [toHex(other), toHex(other)];
  keys[i] = toHex(ed25519.getPublicKey(own));
  const id = { secret_key: toHex(own), public_keys: keys };
  f(id);
  file[A].identity = id;
  return JSON.stringify(file);
}

test("keyshare file entries carry pinned identities that round-trip byte for byte", () => {
  const text = withIdentity();
  const accounts = decodeAccountsFile(text);
  const a = accounts.get(A)!;
  assert.ok(a.identity);
  assert.equal(a.identity.publicKeys.length, 2);
  assert.equal(accounts.get(B)!.identity, undefined);
  const again = encodeAccountsFile(accounts);
  assert.deepEqual(JSON.parse(again), JSON.parse(text));
  assert.deepEqual(decodeAccountsFile(again), accounts);
  // the share-only view drops the identity but still validates it
  assert.equal(decodeKeyShareFile(text).size, 2);
});

const IDENTITY_HOSTILE: [string, (id: Json) => void, InvalidKeyShare["code"], RegExp][] = [
  ["short secret key", (id) => (id.secret_key = "00"), "malformed", /secret_key/],
  [
    "uppercase hex",
    (id) => (id.secret_key = id.secret_key.toUpperCase().replace(/^0/, "A")),
    "malformed",
    /hex/,
  ],
  ["public keys not an array", (id) => (id.public_keys = "x"), "malformed", /public_keys/],
  ["one public key", (id) => id.public_keys.pop(), "inconsistent", /expected 2 public keys/],
  [
    "three public keys",
    (id) => id.public_keys.push(id.public_keys[0]),
    "inconsistent",
    /expected 2/,
  ],
  [
    "repeated public key",
    (id) => (id.public_keys = [id.public_keys[0], id.public_keys[0]]),
    "inconsistent",
    /repeated|not this party/,
  ],
  [
    "own key not the secret's",
    (id) => (id.secret_key = "08".repeat(32)),
    "inconsistent",
    /not this party's key/,
  ],
  ["unknown field", (id) => (id.extra = 1), "malformed", /unexpected field/],
  ["missing field", (id) => delete id.public_keys, "malformed", /missing field/],
  ["bad key length", (id) => (id.public_keys[1] = "ab".repeat(33)), "malformed", /64 hex digits/],
];
for (const [name, f, code, re] of IDENTITY_HOSTILE) {
  test(`keyshare file rejects a pinned identity with ${name}`, () => {
    rejects(() => decodeAccountsFile(withIdentity(f)), code, re);
  });
}
