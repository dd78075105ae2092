/**
 * The round messages of the key refresh (`refresh.ts`; CGGMP21, ePrint 2021/060, Figure 6): for
 * each round its decoded type, its wire shape, and the one encoder and decoder that know its
 * field names. The aux parts (N_i, s_i, t_i, psi-hat_i, rho_i in round 2; Pi-mod and Pi-fac in
 * round 3) use the codecs of `aux_info_messages.ts`.
 *
 * | round | kind      | decoded  | content                                                    |
 * |-------|-----------|----------|------------------------------------------------------------|
 * | 1     | broadcast | `Round1` | V_i and the digest of the refreshed key's public data      |
 * | 2     | broadcast | `Round2` | the decommitment (X_i^k, A_i^k, aux material, u_i), echo   |
 * | 3     | p2p       | `Round3` | Pi-mod, Pi-fac, C_i^j = Enc_{N_j}(x_i^j), psi_i^k (Pi-sch) |
 *
 * A decoder checks the shape, the encodings and the sizes; the values (identities, sums, the
 * ciphertext a unit modulo N^2) are checked afterwards as "invalid-value". Its errors
 * (TypeError, SyntaxError, RangeError, ProofError) are the sender's fault: the machine calls it
 * once per sender inside `RoundFaults.check(j, "malformed-message", ...)`.
 *
 * @example
 * ```ts
 * import { decodeRound1, encodeRound1 } from "./refresh_messages.ts";
 * const m = { V: new Uint8Array(32).fill(1), key: new Uint8Array(32).fill(2) };
 * console.assert(decodeRound1(encodeRound1(m)).key[0] === 2);
 * ```
 * @module
 */
import {
  decodeArray,
  decodeBytes,
  decodePoint,
  encodePoint,
  expectFields,
  parseHexInt,
  toHex,
  toHexInt,
} from "../bytes.ts";
import { CIPHERTEXT_BYTES, KAPPA_BYTES, type Point } from "../params.ts";
import * as sch from "../zk/pi_sch.ts";
import {
  AUX_FIELDS,
  type AuxProofs,
  type AuxProofsWire,
  type AuxPublic,
  type AuxPublicWire,
  decodeAuxProofs,
  decodeAuxPublic,
  encodeAuxProofs,
  encodeAuxPublic,
} from "./aux_info_messages.ts";
import { COMMITMENT_BYTES } from "./commitment.ts";
import { decodeEcho } from "./echo.ts";

/** Bytes of the digest of the refreshed key's public data. */
export const KEY_DIGEST_BYTES = 32;

/** Round 1 (Figure 6, round 1). */
export interface Round1 {
  /** V_i = H("refresh", sid, i, n, key, X_i^*, A_i^*, aux material, u_i). */
  readonly V: Uint8Array;
  /** Digest of the public data of the key being refreshed (every party must send ours). */
  readonly key: Uint8Array;
}

/** Wire shape of `Round1`: both as lowercase hex. */
export interface Round1Wire {
  readonly V: string;
  readonly key: string;
}

/**
 * Wire form of round 1.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound1(m: Round1): Round1Wire {
  return { V: toHex(m.V), key: toHex(m.key) };
}

/**
 * Decodes a received round-1 message.
 * @param v the received payload.
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} for any other shape.
 */
export function decodeRound1(v: unknown): Round1 {
  const o = expectFields<Round1Wire>(v, ["V", "key"]);
  return {
    V: decodeBytes(o.V, 'field "V"', COMMITMENT_BYTES),
    key: decodeBytes(o.key, 'field "key"', KEY_DIGEST_BYTES),
  };
}

/** Round 2 (Figure 6, round 2): the decommitment of round 1 and the echo. */
export interface Round2 {
  /** X_i^k = x_i^k G for every k (the re-sharing; identities are refused afterwards). */
  readonly X: readonly Point[];
  /** A_i^k: the Schnorr commitments behind psi_i^k, for every k. */
  readonly A: readonly Point[];
  /** N_i, s_i, t_i, psi-hat_i, rho_i. */
  readonly pub: AuxPublic;
  /** u_i: the opening randomness of V_i. */
  readonly u: Uint8Array;
  /** Digest of every party's round-1 broadcast as the sender received it (`echo.ts`). */
  readonly echo: readonly string[];
}

/** Wire shape of `Round2`: the points, the aux fields, u and echo side by side. */
export interface Round2Wire extends AuxPublicWire {
  readonly X: readonly string[];
  readonly A: readonly string[];
  readonly u: string;
  readonly echo: readonly string[];
}

/**
 * Wire form of round 2.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound2(m: Round2): Round2Wire {
  return {
    X: m.X.map(encodePoint),
    A: m.A.map(encodePoint),
    ...encodeAuxPublic(m.pub),
    u: toHex(m.u),
    echo: [...m.echo],
  };
}

/**
 * Decodes a received round-2 message.
 * @param v the received payload.
 * @param n the number of parties (entries of X, A and the echo).
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} / {RangeError} / {ProofError} for any other shape.
 */
export function decodeRound2(v: unknown, n: number): Round2 {
  const o = expectFields<Round2Wire>(v, ["X", "A", ...AUX_FIELDS, "u", "echo"]);
  return {
    X: decodeArray(o.X, 'field "X"', n, (P, k) => decodePoint(P, `field "X[${k}]"`)),
    A: decodeArray(o.A, 'field "A"', n, (P, k) => decodePoint(P, `field "A[${k}]"`)),
    pub: decodeAuxPublic(o),
    u: decodeBytes(o.u, 'field "u"', KAPPA_BYTES),
    echo: decodeEcho(o.echo, n),
  };
}

/** Round 3 (Figure 6, round 3), to one receiver P_j. */
export interface Round3 {
  /** psi_i (Pi-mod) and phi_i^j (Pi-fac under P_j's parameters). */
  readonly proofs: AuxProofs;
  /** C_i^j = Enc_{N_j}(x_i^j) (a unit modulo N_j^2: checked afterwards). */
  readonly C: bigint;
  /** psi_i^k: the Pi-sch proof of x_i^k, for every k. */
  readonly psi: readonly sch.Proof[];
}

/** Wire shape of `Round3`: the proofs' fields, C as lowercase hex, and the list psi. */
export interface Round3Wire extends AuxProofsWire {
  readonly C: string;
  readonly psi: readonly sch.EncodedProof[];
}

/**
 * Wire form of round 3.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound3(m: Round3): Round3Wire {
  return { ...encodeAuxProofs(m.proofs), C: toHexInt(m.C), psi: m.psi.map(sch.encode) };
}

/**
 * Decodes a received round-3 message.
 * @param v the received payload.
 * @param n the number of parties (entries of psi).
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} / {RangeError} / {ProofError} for any other shape.
 */
export function decodeRound3(v: unknown, n: number): Round3 {
  const o = expectFields<Round3Wire>(v, ["mod", "fac", "C", "psi"]);
  if (!Array.isArray(o.psi) || o.psi.length !== n) {
    throw new TypeError(`field "psi": expected ${n} proofs`);
  }
  return {
    proofs: decodeAuxProofs(o),
    C: parseHexInt(o.C, CIPHERTEXT_BYTES, 'field "C"'),
    psi: o.psi.map((p) => sch.decode(p)),
  };
}
