/**
 * The few domain error classes of the project. Misuse of an API throws the built-in
 * `TypeError` / `RangeError` / `SyntaxError`; everything else is one of these, each with a
 * string-union `code`. Messages say what was expected and what was got, never a secret.
 * @module
 */

/** Codes of a verification failure of a zero-knowledge proof or of received data. */
export type ProofErrorCode =
  | "malformed" // wrong shape, length or encoding
  | "out-of-range" // a value outside its allowed interval or group
  | "bad-modulus" // modulus of the wrong size, even, prime or with a small factor
  | "verification-failed"; // an equation of the proof does not hold

/** A received proof or value failed validation or verification. */
export class ProofError extends Error {
  override readonly name = "ProofError";
  /** Which proof (e.g. "pi-mod"). */
  readonly proof: string;
  readonly code: ProofErrorCode;
  constructor(proof: string, code: ProofErrorCode, message: string) {
    super(`${proof}: ${message}`);
    this.proof = proof;
    this.code = code;
  }
}

/** An internal invariant broke: a bug in this library, never the other party's fault. */
export class InternalError extends Error {
  override readonly name = "InternalError";
  readonly code = "bug" as const;
}
