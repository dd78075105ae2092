/**
 * The round messages of auxiliary info (`aux_info.ts`; CGGMP21, ePrint 2021/060, Figure 6
 * without the re-sharing): for each round its decoded type, its wire shape, and the one encoder
 * and decoder that know its field names. The two parts the key refresh sends too, the public aux
 * material (round 2) and the proofs of round 3, have codecs of their own here, which
 * `refresh_messages.ts` builds on.
 *
 * | round | kind      | decoded  | content                                                  |
 * |-------|-----------|----------|----------------------------------------------------------|
 * | 1     | broadcast | `Round1` | V_i (the commitment broadcast of `commitment.ts`)        |
 * | 2     | broadcast | `Round2` | the decommitment (N_i, s_i, t_i, psi-hat_i, rho_i, u_i), echo |
 * | 3     | p2p       | `Round3` | psi_i (Pi-mod) and phi_i^j (Pi-fac)                      |
 *
 * A decoder checks the shape, the encodings and the sizes; the values (N_j's size, s_j and t_j
 * units) are checked afterwards as "invalid-value". Its errors (TypeError, SyntaxError,
 * RangeError, ProofError) are the sender's fault: the machine calls it once per sender inside
 * `RoundFaults.check(j, "malformed-message", ...)`.
 *
 * @example
 * ```ts
 * import { decodeRound2 } from "./aux_info_messages.ts";
 * let refused = false;
 * try {
 *   decodeRound2({ N: "0f" }, 2);
 * } catch (e) {
 *   refused = e instanceof TypeError; // missing fields
 * }
 * console.assert(refused);
 * ```
 * @module
 */
import {
  decodeBytes,
  expectFields,
  parseHexInt,
  toHex,
  toHexInt,
  type Unchecked,
} from "../bytes.ts";
import { KAPPA_BYTES } from "../params.ts";
import * as piFac from "../zk/pi_fac.ts";
import * as piMod from "../zk/pi_mod.ts";
import * as piPrm from "../zk/pi_prm.ts";
import { decodeEcho } from "./echo.ts";

// Round 1 is the commitment broadcast of `commitment.ts`, the same message as in key generation.
export { decodeRound1, encodeRound1, type Round1, type Round1Wire } from "./keygen_messages.ts";

/** Largest N, s or t accepted on the wire (bytes); the exact size is checked afterwards. */
const WIRE_INT_BYTES = 512;

// ---- the public aux material (aux info round 2, refresh round 2) ----

/** What a party reveals of its aux material in round 2 (decoded). */
export interface AuxPublic {
  /** N_i, the Paillier and ring-Pedersen modulus. */
  readonly N: bigint;
  /** s_i = t_i^lambda_i mod N_i. */
  readonly s: bigint;
  /** t_i = r_i^2 mod N_i. */
  readonly t: bigint;
  /** psi-hat_i: the Pi-prm proof that s_i is in <t_i>. */
  readonly prm: piPrm.Proof;
  /** rho_i: kappa random bytes. */
  readonly rho: Uint8Array;
}

/** Wire shape of `AuxPublic`: integers and bytes as lowercase hex. */
export interface AuxPublicWire {
  readonly N: string;
  readonly s: string;
  readonly t: string;
  readonly prm: piPrm.EncodedProof;
  readonly rho: string;
}

/** Wire field names of `AuxPublic`, in the order they are checked. */
export const AUX_FIELDS = ["N", "s", "t", "prm", "rho"] as const satisfies readonly (
  keyof AuxPublicWire
)[];

/**
 * Wire form of the public aux material.
 * @param pub the material.
 * @returns its wire fields.
 */
export function encodeAuxPublic(pub: AuxPublic): AuxPublicWire {
  return {
    N: toHexInt(pub.N),
    s: toHexInt(pub.s),
    t: toHexInt(pub.t),
    prm: piPrm.encode(pub.prm),
    rho: toHex(pub.rho),
  };
}

/**
 * Decodes the aux fields of a received object whose shape the caller checked (its other fields
 * are the caller's).
 * @param o the received object.
 * @returns the decoded material (sizes capped; values not yet checked).
 * @throws {TypeError} / {SyntaxError} / {RangeError} / {ProofError} on a bad field.
 */
export function decodeAuxPublic(o: Unchecked<AuxPublicWire>): AuxPublic {
  return {
    N: parseHexInt(o.N, WIRE_INT_BYTES, 'field "N"'),
    s: parseHexInt(o.s, WIRE_INT_BYTES, 'field "s"'),
    t: parseHexInt(o.t, WIRE_INT_BYTES, 'field "t"'),
    prm: piPrm.decode(o.prm),
    rho: decodeBytes(o.rho, 'field "rho"', KAPPA_BYTES),
  };
}

// ---- the round-3 proofs (aux info round 3, refresh round 3) ----

/** The round-3 proofs of party i to one receiver: one Pi-mod, and the receiver's Pi-fac. */
export interface AuxProofs {
  /** psi_i: Pi-mod of N_i (the same for every receiver). */
  readonly mod: piMod.Proof;
  /** phi_i^j: Pi-fac of N_i under the receiver's ring-Pedersen parameters. */
  readonly fac: piFac.Proof;
}

/** Wire shape of `AuxProofs`. */
export interface AuxProofsWire {
  readonly mod: piMod.EncodedProof;
  readonly fac: piFac.EncodedProof;
}

/**
 * Wire form of the round-3 proofs.
 * @param pr the proofs.
 * @returns their wire fields.
 */
export function encodeAuxProofs(pr: AuxProofs): AuxProofsWire {
  return { mod: piMod.encode(pr.mod), fac: piFac.encode(pr.fac) };
}

/**
 * Decodes the round-3 proofs of a received object whose shape the caller checked.
 * @param o the received object.
 * @returns the decoded proofs.
 * @throws {ProofError} on a malformed proof.
 */
export function decodeAuxProofs(o: Unchecked<AuxProofsWire>): AuxProofs {
  return { mod: piMod.decode(o.mod), fac: piFac.decode(o.fac) };
}

// ---- the rounds ----

/** Round 2 (Figure 6, round 2): the decommitment of round 1 and the echo. */
export interface Round2 {
  /** N_i, s_i, t_i, psi-hat_i, rho_i. */
  readonly pub: AuxPublic;
  /** u_i: the opening randomness of V_i. */
  readonly u: Uint8Array;
  /** Digest of every party's round-1 broadcast as the sender received it (`echo.ts`). */
  readonly echo: readonly string[];
}

/** Wire shape of `Round2`: the aux fields, u and echo side by side. */
export interface Round2Wire extends AuxPublicWire {
  readonly u: string;
  readonly echo: readonly string[];
}

/**
 * Wire form of round 2.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound2(m: Round2): Round2Wire {
  return { ...encodeAuxPublic(m.pub), u: toHex(m.u), echo: [...m.echo] };
}

/**
 * Decodes a received round-2 message.
 * @param v the received payload.
 * @param n the number of parties (entries of the echo).
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} / {RangeError} / {ProofError} for any other shape.
 */
export function decodeRound2(v: unknown, n: number): Round2 {
  const o = expectFields<Round2Wire>(v, [...AUX_FIELDS, "u", "echo"]);
  return {
    pub: decodeAuxPublic(o),
    u: decodeBytes(o.u, 'field "u"', KAPPA_BYTES),
    echo: decodeEcho(o.echo, n),
  };
}

/** Round 3 (Figure 6, round 3), to one receiver. */
export type Round3 = AuxProofs;
/** Wire shape of `Round3`. */
export type Round3Wire = AuxProofsWire;

/**
 * Wire form of round 3.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound3(m: Round3): Round3Wire {
  return encodeAuxProofs(m);
}

/**
 * Decodes a received round-3 message.
 * @param v the received payload.
 * @returns the checked message.
 * @throws {TypeError} / {ProofError} for any other shape.
 */
export function decodeRound3(v: unknown): Round3 {
  return decodeAuxProofs(expectFields<Round3Wire>(v, ["mod", "fac"]));
}
