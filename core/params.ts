/**
 * Security parameters of the 128-bit level (CGGMP21 ePrint 2021/060, Section 1.2.8 / Table 1
 * and the Rust reference's `SecurityLevel128`).
 * @module
 */
import { secp256k1 } from "@noble/curves/secp256k1.js";

/** The secp256k1 group order q. */
export const Q: bigint = secp256k1.Point.Fn.ORDER;
/** The secp256k1 point class (noble). */
export const Point = secp256k1.Point;
/** A secp256k1 point. */
export type Point = InstanceType<typeof secp256k1.Point>;

/** l: bit range of k, gamma, x (the paper's ell). */
export const ELL = 256;
/** l': bit range of the MtA mask beta (the paper's ell prime). */
export const ELL_PRIME = 848;
/** epsilon: slack of the range proofs. */
export const EPSILON = 230;
/** m: repetitions of Pi-mod and Pi-prm. */
export const M_REPS = 128;
/** kappa in bytes: the size of rid, rho, u and commitment randomness. */
export const KAPPA_BYTES = 48;

/** Bits of each safe prime of a Paillier / ring-Pedersen modulus. */
export const PRIME_BITS = 1536;
/** Accepted bit lengths of N (a product of two 1536-bit primes has 3071 or 3072 bits). */
export const MODULUS_MIN_BITS = 3071;
export const MODULUS_MAX_BITS = 3072;
