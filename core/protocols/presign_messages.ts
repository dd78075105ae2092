/**
 * The round messages of presigning (`presign.ts`; CGGMP21, ePrint 2021/060, Figure 7, with the
 * echo round and the blame data of this project): for each round its decoded type, its wire
 * shape, and the one encoder and decoder that know its field names. Full signing runs the same
 * rounds under the name "sign" (`sign.ts`).
 *
 * | round | kind      | decoded  | content                                                      |
 * |-------|-----------|----------|--------------------------------------------------------------|
 * | 1     | p2p       | `Round1` | K_i, G_i and psi0_{j,i} (Pi-enc)                             |
 * | 2     | broadcast | `Round2` | the echo of every (K_j, G_j) and the digest of the inputs    |
 * | 3     | p2p       | `Round3` | Gamma_i, D, F, D-hat, F-hat, psi, psi-hat (Pi-aff-g), psi'   |
 * | 4     | p2p       | `Round4` | echo of the Gamma_j, delta_i, Delta_i, S_i, psi'' (Pi-log*)  |
 *
 * A decoder checks the shape, the encodings and the sizes, and what it can check on the value
 * alone: every ciphertext a unit modulo the square of the modulus it is under, Gamma_i and
 * Delta_i not the identity, delta_i a scalar below q. Its errors (TypeError, SyntaxError,
 * RangeError, ProofError) are the sender's fault: the machine calls it once per sender inside
 * `RoundFaults.check(j, "malformed-message", ...)`.
 *
 * @example
 * ```ts
 * import { decodeRound2, encodeRound2 } from "./presign_messages.ts";
 * const echo = ["ab".repeat(32), "cd".repeat(32), "ef".repeat(32)];
 * console.assert(decodeRound2(encodeRound2({ echo }), 2).echo[2] === echo[2]);
 * ```
 * @module
 */
import {
  decodeNonZeroPoint,
  decodePoint,
  decodeScalar,
  encodePoint,
  expectFields,
  parseHexInt,
  scalarHex,
  toHexInt,
} from "../bytes.ts";
import { isValidCiphertext } from "../paillier.ts";
import { CIPHERTEXT_BYTES, type Point } from "../params.ts";
import * as piAffG from "../zk/pi_aff_g.ts";
import * as piEnc from "../zk/pi_enc.ts";
import * as piLogStar from "../zk/pi_log_star.ts";
import { decodeEcho } from "./echo.ts";

/** A ciphertext under N: a unit modulo N^2 (refused otherwise before any arithmetic). */
function decodeUnitCiphertext(v: unknown, field: string, N: bigint): bigint {
  const c = parseHexInt(v, CIPHERTEXT_BYTES, `field "${field}"`);
  if (!isValidCiphertext(c, N)) throw new RangeError(`field "${field}" is not a unit modulo N^2`);
  return c;
}

/** Round 1 (Figure 7, Round 1), from P_i to one receiver P_j. */
export interface Round1 {
  /** K_i = Enc_i(k_i; rho_i), a unit modulo N_i^2. */
  readonly K: bigint;
  /** G_i = Enc_i(gamma_i; nu_i), a unit modulo N_i^2. */
  readonly G: bigint;
  /** psi0_{j,i}: Pi-enc of K_i under the receiver's ring-Pedersen parameters. */
  readonly psi0: piEnc.Proof;
}

/** Wire shape of `Round1`: the ciphertexts as lowercase hex. */
export interface Round1Wire {
  readonly K: string;
  readonly G: string;
  readonly psi0: piEnc.EncodedProof;
}

/**
 * Wire form of round 1.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound1(m: Round1): Round1Wire {
  return { K: toHexInt(m.K), G: toHexInt(m.G), psi0: piEnc.encode(m.psi0) };
}

/**
 * Decodes a received round-1 message.
 * @param v the received payload.
 * @param N the sender's Paillier modulus N_j (K and G are under it).
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} / {RangeError} / {ProofError} for any other shape.
 */
export function decodeRound1(v: unknown, N: bigint): Round1 {
  const o = expectFields<Round1Wire>(v, ["K", "G", "psi0"]);
  return {
    K: decodeUnitCiphertext(o.K, "K", N),
    G: decodeUnitCiphertext(o.G, "G", N),
    psi0: piEnc.decode(o.psi0),
  };
}

/** Round 2, the echo (spec "Reliability check"). */
export interface Round2 {
  /**
   * Entry j < n: the digest of (K_j, G_j) as the sender received them (its own for j = i);
   * entry n: the digest of the signing inputs (key, epoch, HD path and shift, hash, public data).
   */
  readonly echo: readonly string[];
}

/** Wire shape of `Round2`. */
export interface Round2Wire {
  readonly echo: readonly string[];
}

/**
 * Wire form of round 2.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound2(m: Round2): Round2Wire {
  return { echo: [...m.echo] };
}

/**
 * Decodes a received round-2 message.
 * @param v the received payload.
 * @param n the number of parties (the echo has n + 1 entries).
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} / {RangeError} for any other shape.
 */
export function decodeRound2(v: unknown, n: number): Round2 {
  return { echo: decodeEcho(expectFields<Round2Wire>(v, ["echo"]).echo, n + 1) };
}

/** Round 3 (Figure 7, Round 2: the MtA), from P_i to one receiver P_j. */
export interface Round3 {
  /** Gamma_i = gamma_i G (not the identity). */
  readonly Gamma: Point;
  /** D_{j,i} = (gamma_i (.) K_j) (+) Enc_j(-beta_{i,j}), a unit modulo N_j^2. */
  readonly D: bigint;
  /** F_{j,i} = Enc_i(-beta_{i,j}), a unit modulo N_i^2. */
  readonly F: bigint;
  /** D-hat_{j,i} = (x_i (.) K_j) (+) Enc_j(-beta-hat_{i,j}), a unit modulo N_j^2. */
  readonly DHat: bigint;
  /** F-hat_{j,i} = Enc_i(-beta-hat_{i,j}), a unit modulo N_i^2. */
  readonly FHat: bigint;
  /** psi_{j,i}: Pi-aff-g of (D, F, Gamma_i). */
  readonly psi: piAffG.Proof;
  /** psi-hat_{j,i}: Pi-aff-g of (D-hat, F-hat, X_i). */
  readonly psiHat: piAffG.Proof;
  /** psi'_{j,i}: Pi-log* of (G_i, Gamma_i). */
  readonly psiPrime: piLogStar.Proof;
}

/** Wire shape of `Round3`: Gamma compressed, the ciphertexts as lowercase hex. */
export interface Round3Wire {
  readonly Gamma: string;
  readonly D: string;
  readonly F: string;
  readonly DHat: string;
  readonly FHat: string;
  readonly psi: piAffG.EncodedProof;
  readonly psiHat: piAffG.EncodedProof;
  readonly psiPrime: piLogStar.EncodedProof;
}

/**
 * Wire form of round 3.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound3(m: Round3): Round3Wire {
  return {
    Gamma: encodePoint(m.Gamma),
    D: toHexInt(m.D),
    F: toHexInt(m.F),
    DHat: toHexInt(m.DHat),
    FHat: toHexInt(m.FHat),
    psi: piAffG.encode(m.psi),
    psiHat: piAffG.encode(m.psiHat),
    psiPrime: piLogStar.encode(m.psiPrime),
  };
}

/**
 * Decodes a received round-3 message.
 * @param v the received payload.
 * @param Nr the receiver's modulus N_i (D and D-hat are under it).
 * @param Ns the sender's modulus N_j (F and F-hat are under it).
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} / {RangeError} / {ProofError} for any other shape.
 */
export function decodeRound3(v: unknown, Nr: bigint, Ns: bigint): Round3 {
  const o = expectFields<Round3Wire>(v, [
    "Gamma",
    "D",
    "F",
    "DHat",
    "FHat",
    "psi",
    "psiHat",
    "psiPrime",
  ]);
  const Gamma = decodeNonZeroPoint(o.Gamma, 'field "Gamma"');
  const D = decodeUnitCiphertext(o.D, "D", Nr);
  const DHat = decodeUnitCiphertext(o.DHat, "DHat", Nr);
  return {
    Gamma,
    D,
    F: decodeUnitCiphertext(o.F, "F", Ns),
    DHat,
    FHat: decodeUnitCiphertext(o.FHat, "FHat", Ns),
    psi: piAffG.decode(o.psi),
    psiHat: piAffG.decode(o.psiHat),
    psiPrime: piLogStar.decode(o.psiPrime),
  };
}

/** Round 4 (Figure 7, Round 3), from P_i to one receiver P_j. */
export interface Round4 {
  /** Digest of every Gamma_j of round 3 as the sender received it (its own for j = i). */
  readonly echo: readonly string[];
  /** delta_i, a scalar below q. */
  readonly delta: bigint;
  /** Delta_i = k_i Gamma (not the identity). */
  readonly Delta: Point;
  /** S_i = chi_i Gamma (the identity is legitimate, with negligible probability). */
  readonly S: Point;
  /** psi''_{j,i}: Pi-log* of (K_i, Delta_i, Gamma). */
  readonly psiPrimePrime: piLogStar.Proof;
}

/** Wire shape of `Round4`: delta as 64 hex digits, the points compressed. */
export interface Round4Wire {
  readonly echo: readonly string[];
  readonly delta: string;
  readonly Delta: string;
  readonly S: string;
  readonly psiPrimePrime: piLogStar.EncodedProof;
}

/**
 * Wire form of round 4.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound4(m: Round4): Round4Wire {
  return {
    echo: [...m.echo],
    delta: scalarHex(m.delta),
    Delta: encodePoint(m.Delta),
    S: encodePoint(m.S),
    psiPrimePrime: piLogStar.encode(m.psiPrimePrime),
  };
}

/**
 * Decodes a received round-4 message.
 * @param v the received payload.
 * @param n the number of parties (entries of the echo).
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} / {RangeError} / {ProofError} for any other shape.
 */
export function decodeRound4(v: unknown, n: number): Round4 {
  const o = expectFields<Round4Wire>(v, ["echo", "delta", "Delta", "S", "psiPrimePrime"]);
  return {
    echo: decodeEcho(o.echo, n),
    delta: decodeScalar(o.delta, 'field "delta"'),
    Delta: decodeNonZeroPoint(o.Delta, 'field "Delta"'),
    S: decodePoint(o.S, 'field "S"'),
    psiPrimePrime: piLogStar.decode(o.psiPrimePrime),
  };
}
