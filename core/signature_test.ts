import { test } from "node:test";
import assert from "node:assert/strict";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { toHex } from "./bytes.ts";
import { modInv, randomBelow } from "./math/mod.ts";
import { Point, Q } from "./params.ts";
import {
  assertHashName,
  digestToScalar,
  encodeCompact,
  encodeDer,
  finalizeSignature,
  hashMessage,
  normalizeLowS,
  type RecoveryId,
  recoveryIdFromR,
  verifySignature,
} from "./signature.ts";

const utf8 = new TextEncoder();
const rnd = () => randomBelow(Q - 1n) + 1n;

/** A signature made the way the protocol makes it: R = k^-1 G, s = k (m + r x). */
function protocolStyle(x: bigint, k: bigint, digest: Uint8Array) {
  const R = Point.BASE.multiply(modInv(k, Q));
  const r = R.toAffine().x % Q;
  const s = (k * (digestToScalar(digest) + r * x)) % Q;
  return { R, r, s, publicKey: Point.BASE.multiply(x) };
}

test("hashMessage matches the published sha256, double sha256 and keccak256 vectors", () => {
  assert.equal(
    toHex(hashMessage("sha256", utf8.encode("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    toHex(hashMessage("sha256d", new Uint8Array(0))),
    "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456",
  );
  assert.equal(
    toHex(hashMessage("keccak256", new Uint8Array(0))),
    "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
  );
});

test("hashMessage and assertHashName refuse unknown hashes and non-byte messages", () => {
  for (const bad of ["sha1", "SHA256", "", "keccak", undefined, null, 1]) {
    assert.throws(() => assertHashName(bad), TypeError);
    assert.throws(() => hashMessage(bad as never, new Uint8Array(1)), TypeError);
  }
  assert.throws(() => hashMessage("sha256", "abc" as never), TypeError);
  assert.throws(() => hashMessage("sha256", [1, 2] as never), TypeError);
});

test("digestToScalar takes exactly 32 bytes and reduces mod q", () => {
  for (const len of [0, 31, 33, 64]) {
    assert.throws(() => digestToScalar(new Uint8Array(len)), TypeError);
  }
  assert.throws(() => digestToScalar("00".repeat(32) as never), TypeError);
  assert.equal(digestToScalar(new Uint8Array(32).fill(0xff)), (2n ** 256n - 1n) % Q);
  assert.equal(digestToScalar(new Uint8Array(32)), 0n);
});

test("normalizeLowS keeps s <= q/2 and flips s and the recovery parity above it", () => {
  const half = Q >> 1n;
  assert.deepEqual(normalizeLowS(half, 0), { s: half, recoveryId: 0, flipped: false });
  for (const [rec, flippedRec] of [[0, 1], [1, 0], [2, 3], [3, 2]] as const) {
    const out = normalizeLowS(half + 1n, rec as RecoveryId);
    assert.equal(out.s, Q - half - 1n);
    assert.equal(out.recoveryId, flippedRec);
    assert.equal(out.flipped, true);
  }
  for (const bad of [0n, Q, Q + 1n, -1n]) assert.throws(() => normalizeLowS(bad, 0), RangeError);
});

test("recoveryIdFromR gives y parity in bit 0 and x >= q in bit 1", () => {
  for (let t = 0; t < 8; t++) {
    const R = Point.BASE.multiply(rnd());
    const { y } = R.toAffine();
    assert.equal(recoveryIdFromR(R), Number(y & 1n));
  }
  // A point with q <= x < p exists (p - q is about 2^128): find one by trying x = q + t.
  let R: Point | undefined;
  for (let t = 0n; !R; t++) {
    try {
      R = Point.fromHex("02" + (Q + t).toString(16).padStart(64, "0"));
    } catch { /* x^3 + 7 is not a square: try the next x */ }
  }
  assert.equal(recoveryIdFromR(R) & 2, 2);
  assert.equal(recoveryIdFromR(R.negate()) & 2, 2);
  assert.notEqual(recoveryIdFromR(R) & 1, recoveryIdFromR(R.negate()) & 1);
});

test("encodeDer and encodeCompact match @noble/curves for random and edge values", () => {
  const cases: [bigint, bigint][] = [[1n, 1n], [Q - 1n, Q - 1n], [0x80n, 0x7fn], [1n << 255n, 1n]];
  for (let t = 0; t < 100; t++) cases.push([rnd(), rnd()]);
  for (const [r, s] of cases) {
    const sig = new secp256k1.Signature(r, s);
    assert.deepEqual(encodeDer(r, s), sig.toBytes("der"));
    assert.deepEqual(encodeCompact(r, s), sig.toBytes("compact"));
  }
  for (const [r, s] of [[0n, 1n], [1n, 0n], [Q, 1n], [1n, Q], [-1n, 1n]]) {
    assert.throws(() => encodeDer(r, s), RangeError);
    assert.throws(() => encodeCompact(r, s), RangeError);
  }
});

test("finalizeSignature returns a low-S signature that noble verifies and recovers", () => {
  let sawHigh = false;
  let sawLow = false;
  for (let t = 0; t < 8 || !(sawHigh && sawLow); t++) {
    assert.ok(t < 256, "random s should be high about half of the time");
    const digest = hashMessage("sha256", utf8.encode(`message ${t}`));
    const { R, s, publicKey } = protocolStyle(rnd(), rnd(), digest);
    const sig = finalizeSignature({ R, s, digest, publicKey });
    assert.ok(sig);
    assert.ok(sig.s <= Q >> 1n);
    if (s > Q >> 1n) {
      sawHigh = true;
      assert.equal(sig.s, Q - s);
      assert.equal(sig.recoveryId, recoveryIdFromR(R) ^ 1);
    } else {
      sawLow = true;
      assert.equal(sig.recoveryId, recoveryIdFromR(R));
    }
    const compact = Uint8Array.from(sig.compact.match(/../g)!.map((h) => parseInt(h, 16)));
    assert.ok(secp256k1.verify(compact, digest, publicKey.toBytes(true), { prehash: false }));
    const recovered = secp256k1.Signature.fromBytes(compact).addRecoveryBit(sig.recoveryId)
      .recoverPublicKey(digest);
    assert.ok(recovered.equals(publicKey));
    const der = secp256k1.Signature.fromBytes(
      Uint8Array.from(sig.der.match(/../g)!.map((h) => parseInt(h, 16))),
      "der",
    );
    assert.equal(der.r, sig.r);
    assert.equal(der.s, sig.s);
  }
});

test("finalizeSignature returns nothing for a wrong s, key, digest, zero s or identity R", () => {
  const digest = hashMessage("sha256", utf8.encode("m"));
  const { R, s, publicKey } = protocolStyle(rnd(), rnd(), digest);
  assert.ok(finalizeSignature({ R, s, digest, publicKey }));
  const other = hashMessage("sha256", utf8.encode("other"));
  const cases = [
    { R, s: s + 1n, digest, publicKey },
    { R, s, digest, publicKey: publicKey.add(Point.BASE) },
    { R, s, digest: other, publicKey },
    { R, s: 0n, digest, publicKey },
    { R, s: Q, digest, publicKey },
    { R: Point.ZERO, s, digest, publicKey },
    { R: R.negate(), s, digest, publicKey },
  ];
  for (const c of cases) assert.equal(finalizeSignature(c), undefined);
});

test("verifySignature refuses high-S, a wrong recovery id and malformed input without throwing", () => {
  const digest = hashMessage("sha256", utf8.encode("m"));
  const { R, s, publicKey } = protocolStyle(rnd(), rnd(), digest);
  const sig = finalizeSignature({ R, s, digest, publicKey })!;
  assert.ok(verifySignature(publicKey, digest, sig.r, sig.s, sig.recoveryId));
  assert.equal(verifySignature(publicKey, digest, sig.r, Q - sig.s), false);
  assert.equal(
    verifySignature(publicKey, digest, sig.r, sig.s, (sig.recoveryId ^ 1) as never),
    false,
  );
  assert.equal(verifySignature(publicKey, new Uint8Array(5), sig.r, sig.s), false);
  assert.equal(verifySignature(publicKey, digest, 0n, sig.s), false);
});

test("verifySignature with a recovery id is noble's public-key recovery: the same answer for every id, valid or tampered", () => {
  /** The separate check it replaces: noble's verify, then recovery with the id gives the key. */
  const twoChecks = (P: Point, d: Uint8Array, r: bigint, s: bigint, id: RecoveryId) => {
    try {
      const compact = encodeCompact(r, s);
      if (!secp256k1.verify(compact, d, P.toBytes(true), { prehash: false, lowS: true })) {
        return false;
      }
      const back = secp256k1.Signature.fromBytes(compact).addRecoveryBit(id).recoverPublicKey(d);
      return back.equals(P);
    } catch {
      return false;
    }
  };
  for (let t = 0; t < 6; t++) {
    const digest = hashMessage("sha256", utf8.encode(`recovery ${t}`));
    const { R, s, publicKey } = protocolStyle(rnd(), rnd(), digest);
    const sig = finalizeSignature({ R, s, digest, publicKey })!;
    const variants: [Point, Uint8Array, bigint, bigint][] = [
      [publicKey, digest, sig.r, sig.s],
      [publicKey, digest, sig.r, Q - sig.s], // high S
      [publicKey, digest, sig.r, sig.s + 1n],
      [publicKey.negate(), digest, sig.r, sig.s],
      [publicKey, hashMessage("sha256", utf8.encode("other")), sig.r, sig.s],
    ];
    for (const [P, d, r, sv] of variants) {
      for (const id of [0, 1, 2, 3] as const) {
        assert.equal(verifySignature(P, d, r, sv, id), twoChecks(P, d, r, sv, id), `${t} ${id}`);
      }
    }
    assert.ok(verifySignature(publicKey, digest, sig.r, sig.s, sig.recoveryId));
  }
});
