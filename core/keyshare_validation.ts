/**
 * The meaning of a key share (`keyshare.ts`, "Validation on load"): `validateKeyShare` turns an
 * `UncheckedKeyShare` (from `keyshare_json.ts`, or a share made in memory) into a checked
 * `KeyShare`, or throws `InvalidKeyShare`.
 *
 * @example
 * ```ts
 * import { decodeKeyShareUnchecked } from "./keyshare_json.ts";
 * import { validateKeyShare } from "./keyshare_validation.ts";
 * try {
 *   validateKeyShare(decodeKeyShareUnchecked("{"));
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed");
 * }
 * ```
 * @module
 */
import { assertBigint, assertBytes, assertPoint } from "./bytes.ts";
import { InvalidKeyShare } from "./errors.ts";
import { bitLength, gcd, hasSmallFactor, isDefinitelyComposite } from "./math/mod.ts";
import {
  KAPPA_BYTES,
  MAX_KEY_SHARE_PARTIES,
  MODULUS_MAX_BITS,
  MODULUS_MIN_BITS,
  Point,
  Q,
} from "./params.ts";
import type { KeyShare, PartyAux } from "./protocols/types.ts";
import {
  asMalformed,
  CHAIN_CODE_BYTES,
  CURVE,
  malformed,
  type UncheckedKeyShare,
} from "./keyshare_json.ts";
import { checkOwnRingPedersen, checkSafePrime } from "./keyshare_own_aux.ts";

function inconsistent(message: string): InvalidKeyShare {
  return new InvalidKeyShare("inconsistent", message);
}

function weak(message: string): InvalidKeyShare {
  return new InvalidKeyShare("weak-aux-info", message);
}

/**
 * Checks the meaning of a decoded key share (`keyshare.ts`, "Validation on load") and returns the
 * checked `KeyShare`. Also usable on a share made in memory (a protocol output) before it is
 * stored. Cost: about 46 exponentiations modulo 1536-bit primes plus one 3072-bit
 * exponentiation per other party.
 *
 * @param u the share from `decodeKeyShareUnchecked` (or any `KeyShare`).
 * @returns a fresh, validated `KeyShare` (`aux.i` / `aux.n` set from `i` / `n`).
 * @throws {InvalidKeyShare} with code `malformed`, `wrong-curve`, `inconsistent` or
 *   `weak-aux-info`; the message names the check and the party, never a secret.
 * @example
 * ```ts
 * import { decodeKeyShareUnchecked, validateKeyShare } from "./keyshare.ts";
 * const check = (json: string) => validateKeyShare(decodeKeyShareUnchecked(json));
 * try {
 *   check("{");
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed");
 * }
 * ```
 */
export function validateKeyShare(u: UncheckedKeyShare): KeyShare {
  if (u.curve !== CURVE) {
    throw new InvalidKeyShare("wrong-curve", `key share: expected curve "${CURVE}"`);
  }
  const { i, n } = u;
  if (!Number.isInteger(n) || n < 2 || n > MAX_KEY_SHARE_PARTIES) {
    throw inconsistent(`expected 2 to ${MAX_KEY_SHARE_PARTIES} parties, got n = ${n}`);
  }
  if (!Number.isInteger(i) || i < 0 || i >= n) {
    throw inconsistent(`expected a party index 0 <= i < ${n}, got i = ${i}`);
  }
  if (!Array.isArray(u.publicShares) || u.publicShares.length !== n) {
    throw inconsistent(`expected ${n} public shares, got ${u.publicShares?.length}`);
  }
  const parties = u.aux?.parties;
  if (!Array.isArray(parties) || parties.length !== n) {
    throw inconsistent(`expected one aux entry per party (${n}), got ${parties?.length}`);
  }
  const x = asMalformed(() => assertBigint(u.x, "x"));
  if (x <= 0n || x >= Q) throw malformed("x: expected a scalar in [1, q)");
  const { publicKey, publicShares, rid, chainCode } = asMalformed(() => ({
    publicKey: assertPoint(u.publicKey, "public_key"),
    publicShares: u.publicShares.map((P, j) => assertPoint(P, `public_shares[${j}]`)),
    rid: Uint8Array.from(assertBytes(u.rid, "rid", KAPPA_BYTES)),
    chainCode: Uint8Array.from(assertBytes(u.chainCode, "chain_code", CHAIN_CODE_BYTES)),
  }));

  // X_i == x_i G, then sum_j X_j == X (n-of-n).
  if (!Point.BASE.multiply(x).equals(publicShares[i])) {
    throw inconsistent(`public share of party ${i} does not match the secret share`);
  }
  const sum = publicShares.reduce((acc, P) => acc.add(P));
  if (!sum.equals(publicKey)) {
    throw inconsistent("the public shares do not add up to the public key");
  }

  // Every party's public aux info.
  const checked: PartyAux[] = parties.map((e, j) => {
    const [N, s, t] = asMalformed(() =>
      (["N", "s", "t"] as const).map((k) => assertBigint(e?.[k], `aux.parties[${j}].${k}`))
    );
    const bits = bitLength(N);
    if (bits < MODULUS_MIN_BITS || bits > MODULUS_MAX_BITS) {
      throw weak(
        `party ${j}: expected N of ${MODULUS_MIN_BITS}-${MODULUS_MAX_BITS} bits, got ${bits}`,
      );
    }
    if ((N & 1n) === 0n) throw weak(`party ${j}: N is even`);
    if (hasSmallFactor(N)) throw weak(`party ${j}: N has a prime factor below 2^16`);
    if (s <= 1n || t <= 1n || s >= N || t >= N || s === t) {
      throw weak(`party ${j}: ring-Pedersen s, t must be distinct, in (1, N)`);
    }
    if (gcd(s, N) !== 1n || gcd(t, N) !== 1n) {
      throw weak(`party ${j}: ring-Pedersen s, t must be units modulo N`);
    }
    return { N, s, t };
  });
  for (let j = 0; j < n; j++) {
    for (let k = j + 1; k < n; k++) {
      if (checked[j].N === checked[k].N) throw weak(`parties ${j} and ${k} share a modulus N`);
    }
  }
  for (let j = 0; j < n; j++) {
    // Own N is checked against p q below; the others must at least not be prime.
    if (j !== i && !isDefinitelyComposite(checked[j].N)) throw weak(`party ${j}: N is prime`);
  }

  // This party's secret primes and ring-Pedersen parameters.
  const [p, q] = asMalformed(
    () => [assertBigint(u.aux.p, "aux.p"), assertBigint(u.aux.q, "aux.q")],
  );
  if (p * q !== checked[i].N) {
    throw inconsistent(`aux.p * aux.q does not equal the modulus N of party ${i}`);
  }
  if (p === q) throw weak("the secret primes p and q are equal");
  checkSafePrime("p", p);
  checkSafePrime("q", q);
  checkOwnRingPedersen(i, checked[i], p, q);
  return {
    curve: CURVE,
    i,
    n,
    x,
    publicKey,
    publicShares,
    rid,
    chainCode,
    aux: { i, n, p, q, parties: checked },
  };
}
