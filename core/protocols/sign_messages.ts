/**
 * The round message of signing (`sign.ts`; CGGMP21, ePrint 2021/060, Figure 8): its decoded
 * type, its wire shape, and the one encoder and decoder that know its field names. Signing has
 * one round, the signing round: round 1 of signing with a stored presignature, round 5 of full
 * signing (whose rounds 1-4 are presigning, `presign_messages.ts`); its message is named after
 * it, `SignRound`, as the machine's `SignRoundState`.
 *
 * | round         | kind      | decoded     | content                                          |
 * |---------------|-----------|-------------|--------------------------------------------------|
 * | signing round | broadcast | `SignRound` | sigma_i, the digest signed, the presignature view |
 *
 * The decoder checks the shape, the encodings and the sizes (sigma_i a scalar below q, the
 * digest 32 bytes, one echo digest per party). Its errors (TypeError, SyntaxError, RangeError)
 * are the sender's fault: the machine calls it once per sender inside
 * `RoundFaults.check(j, "malformed-message", ...)`.
 *
 * @example
 * ```ts
 * import { decodeSignRound, encodeSignRound } from "./sign_messages.ts";
 * const m = { sigma: 5n, digest: new Uint8Array(32), echo: ["ab".repeat(32), "cd".repeat(32)] };
 * console.assert(decodeSignRound(encodeSignRound(m), 2).sigma === 5n);
 * ```
 * @module
 */
import { decodeBytes, decodeScalar, expectFields, scalarHex, toHex } from "../bytes.ts";
import { decodeEcho } from "./echo.ts";

/** The signing round (Figure 8, Round 1). */
export interface SignRound {
  /** sigma_i = k_i m + r chi_i mod q. */
  readonly sigma: bigint;
  /** The 32-byte digest the sender signs (every party must sign ours). */
  readonly digest: Uint8Array;
  /** The sender's view of the presignature: the digests of every (delta_j, Delta_j, S_j). */
  readonly echo: readonly string[];
}

/** Wire shape of `SignRound`: sigma as 64 hex digits, the digest as lowercase hex. */
export interface SignRoundWire {
  readonly sigma: string;
  readonly digest: string;
  readonly echo: readonly string[];
}

/**
 * Wire form of the signing round.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeSignRound(m: SignRound): SignRoundWire {
  return { sigma: scalarHex(m.sigma), digest: toHex(m.digest), echo: [...m.echo] };
}

/**
 * Decodes a received signing-round message.
 * @param v the received payload.
 * @param n the number of parties (entries of the echo).
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} / {RangeError} for any other shape.
 */
export function decodeSignRound(v: unknown, n: number): SignRound {
  const o = expectFields<SignRoundWire>(v, ["sigma", "digest", "echo"]);
  return {
    sigma: decodeScalar(o.sigma, 'field "sigma"'),
    digest: decodeBytes(o.digest, 'field "digest"', 32),
    echo: decodeEcho(o.echo, n),
  };
}
