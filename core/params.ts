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

// ---------------------------------------------------------------------------------------------
// Limits on what is received or loaded (one home: every decoder imports them from here).

/**
 * Bytes of the largest accepted modulus N, and the wire cap of any integer modulo N (an element
 * of Z*_N, a ring-Pedersen s or t, a secret prime p or q).
 */
export const MODULUS_BYTES: number = MODULUS_MAX_BITS / 8;
/** Wire cap of an integer modulo N^2: a Paillier ciphertext, an element of Z*_{N^2}. */
export const CIPHERTEXT_BYTES: number = 2 * MODULUS_BYTES;

/**
 * Largest number of parties a protocol session, a transport frame or a stored presignature may
 * name (a party index fits one byte). It bounds every per-party loop and list a peer can make
 * this party run or decode.
 */
export const MAX_PARTIES = 255;
/**
 * Largest number of parties of a key share kept in a key share file: a file is validated at every
 * load, with one 3072-bit exponentiation and a pairwise comparison of moduli per other party, so
 * its own, lower cap (a 2-of-2 wallet stores n = 2). A session of more parties than this runs,
 * but its shares cannot be stored.
 */
export const MAX_KEY_SHARE_PARTIES = 64;

/** Smallest accepted session id (bytes): a fresh random id of 128 bits or more. */
export const MIN_SID_BYTES = 16;
/** Largest accepted session id (bytes). */
export const MAX_SID_BYTES = 1024;

/**
 * Deepest nesting of arrays and objects accepted in a received payload (the envelope's own
 * object not counted). Honest payloads nest a few levels; the transport refuses deeper ones
 * when it decodes an envelope, and `samePayload` never finds them equal.
 */
export const MAX_PAYLOAD_DEPTH = 64;
/** Most values (array entries, object fields, scalars) `samePayload` visits. */
export const MAX_COMPARED_VALUES: number = 1 << 22;
