/**
 * The round messages of key generation (`keygen.ts`; CGGMP21, ePrint 2021/060, Figure 5): for
 * each round its decoded type, its wire shape, and the one encoder and decoder that know its
 * field names.
 *
 * | round | kind      | decoded  | content                                              |
 * |-------|-----------|----------|------------------------------------------------------|
 * | 1     | broadcast | `Round1` | V_i (the commitment broadcast of `commitment.ts`)    |
 * | 2     | broadcast | `Round2` | the decommitment (rid_i, X_i, A_i, c_i, u_i), echo   |
 * | 3     | broadcast | `Round3` | psi_i, the Schnorr proof of x_i                      |
 *
 * A decoder checks the shape, the encodings and the sizes, never a value against the protocol
 * (an identity X_j is decoded and refused afterwards as "invalid-value"). Its errors
 * (TypeError, SyntaxError, RangeError, ProofError) are the sender's fault: the machine calls it
 * once per sender inside `RoundFaults.check(j, "malformed-message", ...)`.
 *
 * @example
 * ```ts
 * import { Point } from "../params.ts";
 * import { decodeRound2, encodeRound2 } from "./keygen_messages.ts";
 * const bytes = (n: number) => new Uint8Array(n).fill(7);
 * const m = { rid: bytes(48), X: Point.BASE, A: Point.BASE, c: bytes(32), u: bytes(48), echo: [] };
 * const wire = encodeRound2(m);
 * console.assert(decodeRound2(JSON.parse(JSON.stringify(wire)), 0).X.equals(Point.BASE));
 * ```
 * @module
 */
import { decodeBytes, decodePoint, encodePoint, expectFields, toHex } from "../bytes.ts";
import { KAPPA_BYTES, type Point } from "../params.ts";
import * as sch from "../zk/pi_sch.ts";
import { decodeEcho } from "./echo.ts";

export {
  type CommitmentMessage as Round1,
  type CommitmentMessageWire as Round1Wire,
  decodeCommitmentMessage as decodeRound1,
  encodeCommitmentMessage as encodeRound1,
} from "./commitment.ts";

/** Bytes of a chain-code contribution c_i (BIP-32 chain code). */
export const CHAIN_CODE_BYTES = 32;

/** What party i decommits to in round 2 (Figure 5, round 1). */
export interface Decommitment {
  /** rid_i: kappa random bytes. */
  readonly rid: Uint8Array;
  /** X_i = x_i G. */
  readonly X: Point;
  /** A_i: the Schnorr commitment alpha_i G, made before rid is known. */
  readonly A: Point;
  /** c_i: this party's chain-code contribution. */
  readonly c: Uint8Array;
  /** u_i: the commitment's opening randomness. */
  readonly u: Uint8Array;
}

/** Round 2 (Figure 5, round 2): the decommitment and the echo of round 1. */
export interface Round2 extends Decommitment {
  /** Digest of every party's round-1 broadcast as the sender received it (`echo.ts`). */
  readonly echo: readonly string[];
}

/** Wire shape of `Round2`: byte strings and compressed points as lowercase hex. */
export interface Round2Wire {
  readonly rid: string;
  readonly X: string;
  readonly A: string;
  readonly c: string;
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
    rid: toHex(m.rid),
    X: encodePoint(m.X),
    A: encodePoint(m.A),
    c: toHex(m.c),
    u: toHex(m.u),
    echo: [...m.echo],
  };
}

/**
 * Decodes a received round-2 message.
 * @param v the received payload.
 * @param n the number of parties (entries of the echo).
 * @returns the checked message (X and A may be the identity: the machine refuses it).
 * @throws {TypeError} / {SyntaxError} / {RangeError} for any other shape.
 */
export function decodeRound2(v: unknown, n: number): Round2 {
  const o = expectFields<Round2Wire>(v, ["rid", "X", "A", "c", "u", "echo"]);
  return {
    rid: decodeBytes(o.rid, 'field "rid"', KAPPA_BYTES),
    X: decodePoint(o.X, 'field "X"'),
    A: decodePoint(o.A, 'field "A"'),
    c: decodeBytes(o.c, 'field "c"', CHAIN_CODE_BYTES),
    u: decodeBytes(o.u, 'field "u"', KAPPA_BYTES),
    echo: decodeEcho(o.echo, n),
  };
}

/** Round 3 (Figure 5, round 3). */
export interface Round3 {
  /** psi_i: the Pi-sch proof of x_i bound to (sid, i, rid). */
  readonly psi: sch.Proof;
}

/** Wire shape of `Round3`. */
export interface Round3Wire {
  readonly psi: sch.EncodedProof;
}

/**
 * Wire form of round 3.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeRound3(m: Round3): Round3Wire {
  return { psi: sch.encode(m.psi) };
}

/**
 * Decodes a received round-3 message.
 * @param v the received payload.
 * @returns the checked message.
 * @throws {TypeError} / {ProofError} for any other shape.
 */
export function decodeRound3(v: unknown): Round3 {
  return { psi: sch.decode(expectFields<Round3Wire>(v, ["psi"]).psi) };
}
