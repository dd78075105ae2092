// TEST DATA ONLY. Writes testing/fixtures/keyshare_v1.json: a key share file of format version 1
// with two accounts of a 2-party key, made from the fixture safe primes and random secrets.
// The product never deals keys (key generation is distributed); this script splits random
// secrets in one process only to pin today's file format, so that later versions of
// core/keyshare.ts prove they still load it. The fixture is committed and must not be
// regenerated casually: core/keyshare_test.ts pins its public keys.
//
// Account "TEST-ONLY-fixture-a" holds party 0's share of one key (aux from fixture keys 0, 1),
// "TEST-ONLY-fixture-b" holds party 1's share of another key (fixture keys 2, 3), so that both
// indices appear in the fixture.
//
// Run: node --import tsx tools/make_keyshare_fixture.ts [output path]
import { writeFileSync } from "node:fs";
import { decodeKeyShareFile, encodeKeyShareFile, validateKeyShare } from "../core/keyshare.ts";
import { randomBelow, randomBytes } from "../core/math/mod.ts";
import { Point, Q } from "../core/params.ts";
import type { KeyShare } from "../core/protocols/types.ts";
import { fixturePaillier, fixtureRingPedersen } from "../testing/fixtures/keys.ts";

/** Both parties' shares of a fresh random key (test data only). */
function testOnlySplit(fixtureKeys: readonly number[]): KeyShare[] {
  const n = fixtureKeys.length;
  const xs = fixtureKeys.map(() => randomBelow(Q - 1n) + 1n);
  const publicShares = xs.map((x) => Point.BASE.multiply(x));
  const publicKey = publicShares.reduce((a, b) => a.add(b));
  const rid = randomBytes(48);
  const chainCode = randomBytes(32);
  const parties = fixtureKeys.map((k) => {
    const rp = fixtureRingPedersen(k);
    return { N: rp.N, s: rp.s, t: rp.t };
  });
  return fixtureKeys.map((k, i) => {
    const sk = fixturePaillier(k);
    return validateKeyShare({
      curve: "secp256k1",
      i,
      n,
      x: xs[i],
      publicKey,
      publicShares,
      rid,
      chainCode,
      aux: { p: sk.p, q: sk.q, parties },
    });
  });
}

const out = process.argv[2] ?? new URL("../testing/fixtures/keyshare_v1.json", import.meta.url);
const a = testOnlySplit([0, 1]);
const b = testOnlySplit([2, 3]);
const text = encodeKeyShareFile(
  new Map([
    ["TEST-ONLY-fixture-a", a[0]],
    ["TEST-ONLY-fixture-b", b[1]],
  ]),
);
decodeKeyShareFile(text); // must load
writeFileSync(out, text);
console.error(`wrote ${String(out)}`);
for (const [id, s] of [["TEST-ONLY-fixture-a", a[0]], ["TEST-ONLY-fixture-b", b[1]]] as const) {
  console.error(`${id}: i=${s.i} public key ${s.publicKey.toHex(true)}`);
}
