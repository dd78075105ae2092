/**
 * The checks of this party's own aux info in a key share, which the file holds with its
 * factors (issue 15, finding 2; `keyshare.ts`, "Validation on load"): the secret primes are
 * safe primes of `PRIME_BITS` bits, and the own ring-Pedersen s, t are what aux info makes.
 * Every exponentiation with p or q runs on the secret slot of `math/modpow.ts`.
 * @module
 */
import { InvalidKeyShare } from "./errors.ts";
import {
  bitLength,
  hasSmallFactor,
  millerRabin,
  modPowSecret,
  webCryptoRandom,
} from "./math/mod.ts";
import { PRIME_BITS } from "./params.ts";
import type { PartyAux } from "./protocols/types.ts";

/** Miller-Rabin rounds for half of each own prime (error <= 4^-20 per prime, random bases). */
const PRIME_TEST_ROUNDS = 20;
/** Own s, t must have at least bitLength(N) minus this many bits (`keyshare.ts`). */
const RP_SIZE_SLACK_BITS = 128;

function weak(message: string): InvalidKeyShare {
  return new InvalidKeyShare("weak-aux-info", message);
}

/**
 * A secret prime of this party's modulus must be a safe prime r = 2r' + 1 of `PRIME_BITS` bits,
 * r = 3 mod 4. r' is tested by Miller-Rabin (`PRIME_TEST_ROUNDS` random bases); r then needs one
 * Fermat test only: by Pocklington's criterion (r - 1 = 2r' with r' prime and r' > sqrt(r)),
 * 2^(r-1) = 1 mod r and gcd(2^2 - 1, r) = 1 prove r prime. Every exponentiation runs on the
 * secret slot (r is secret).
 */
export function checkSafePrime(name: "p" | "q", r: bigint): void {
  if (bitLength(r) !== PRIME_BITS) throw weak(`secret prime ${name} is not of ${PRIME_BITS} bits`);
  if ((r & 3n) !== 3n) throw weak(`secret prime ${name} is not 3 mod 4`);
  if (hasSmallFactor(r) || modPowSecret(2n, r - 1n, r) !== 1n) {
    throw weak(`secret prime ${name} is not prime`);
  }
  if (!millerRabin(r >> 1n, PRIME_TEST_ROUNDS, webCryptoRandom, true)) {
    throw weak(`secret prime ${name} is not a safe prime: (${name} - 1) / 2 is not prime`);
  }
}

/**
 * This party's own ring-Pedersen (N, s, t), checked with its factors as aux info makes them
 * (t = r^2 mod N, s = t^lambda mod N): t and s at least `bitLength(N) - RP_SIZE_SLACK_BITS` bits
 * (a uniform element of the group is shorter with probability below 2^-127, so a truncated or
 * small value is refused); t a quadratic residue modulo p and modulo q (Euler's criterion:
 * t^((r-1)/2) = 1 mod r) and of full order p'q' (the residues modulo a safe prime r form a group
 * of prime order r', so t != 1 mod r suffices); s a quadratic residue modulo p and q, which is
 * <t> itself when t has full order. Cost: four exponentiations modulo the 1536-bit primes, on the
 * secret slot. The parties' (N, s, t) of other parties cannot be checked without their factors:
 * aux info checked them with Pi-prm, Pi-mod and Pi-fac, and the MAC of a version-3 accounts
 * file (account_records.ts) keeps them as they were.
 */
export function checkOwnRingPedersen(i: number, own: PartyAux, p: bigint, q: bigint): void {
  const minBits = bitLength(own.N) - RP_SIZE_SLACK_BITS;
  for (const [name, v] of [["s", own.s], ["t", own.t]] as const) {
    const bits = bitLength(v);
    if (bits < minBits) {
      throw weak(
        `party ${i} (own): ring-Pedersen ${name} has ${bits} bits, expected at least ${minBits}`,
      );
    }
  }
  for (const [name, r] of [["p", p], ["q", q]] as const) {
    const half = r >> 1n;
    if (own.t % r === 1n) {
      throw weak(`party ${i} (own): ring-Pedersen t is 1 modulo ${name} (not of full order)`);
    }
    if (modPowSecret(own.t, half, r) !== 1n) {
      throw weak(`party ${i} (own): ring-Pedersen t is not a quadratic residue modulo ${name}`);
    }
    if (modPowSecret(own.s, half, r) !== 1n) {
      throw weak(`party ${i} (own): ring-Pedersen s is not in <t> (not a residue modulo ${name})`);
    }
  }
}
