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

/** Why a protocol session was aborted. */
export type AbortCode =
  | "malformed-message" // a message could not be decoded or has the wrong shape
  | "unexpected-message" // wrong session, protocol, round, sender or receiver; a reflection
  | "equivocation" // two different messages from one party for one round
  | "bad-commitment" // a decommitment does not open the commitment
  | "inconsistent-broadcast" // the echo round shows parties saw different broadcasts
  | "proof-failed" // a zero-knowledge proof did not verify
  | "invalid-value" // a value out of range, a bad modulus, an identity point
  | "bad-signature-share" // a partial signature does not yield a valid signature
  | "presignature-used" // a presignature was offered a second time
  | "key-locked"; // signing refused: an earlier invalid signature locked this key

/**
 * A protocol session was aborted because of what other parties sent. Names the round and every
 * culprit found after checking all parties' messages of that round.
 */
export class ProtocolAbort extends Error {
  override readonly name = "ProtocolAbort";
  readonly code: AbortCode;
  /** Protocol name ("keygen", "aux-info", "refresh", "presign", "sign"). */
  readonly protocol: string;
  /** Round in which the fault was detected (1-based). */
  readonly round: number;
  /** Indices of the parties to blame (sorted, distinct; empty when no party can be named). */
  readonly culprits: readonly number[];
  constructor(
    protocol: string,
    round: number,
    code: AbortCode,
    culprits: readonly number[],
    message: string,
    options?: { cause?: unknown },
  ) {
    const blamed = culprits.length ? ` (culprits: ${[...culprits].sort().join(", ")})` : "";
    super(`${protocol} round ${round}: ${message}${blamed}`, options);
    this.code = code;
    this.protocol = protocol;
    this.round = round;
    this.culprits = [...new Set(culprits)].sort((a, b) => a - b);
  }
}

/** Why sending or receiving failed. */
export type TransportErrorCode =
  | "timeout" // a round or the handshake took too long
  | "aborted" // cancelled by the caller's signal
  | "closed" // the transport was closed
  | "io" // network failure, or the gateway unreachable beyond the retry budget
  | "gone" // the gateway no longer has the room's history (410, room reset)
  | "rejected" // the gateway refused a request (4xx: bad token, bad room, ...)
  | "limit" // a size or count bound was exceeded (body, message, queue)
  | "handshake" // a hello that cannot belong to this session (party count, key confirmation)
  | "identity-mismatch" // a peer's identity key differs from the pinned one
  | "context-mismatch" // the peer is in a session for another operation
  | "malformed" // a frame or envelope that does not parse or has the wrong shape
  | "tampered" // a signature or AEAD tag that does not verify (altered or forged)
  | "replayed" // a frame of another session, or a different frame with an old sequence number
  | "out-of-order" // a sequence number ahead of the next expected one (dropped or reordered)
  | "injected"; // a frame claiming to come from this party that it never sent

/** Sending or receiving failed (network, gateway, timeout, cancellation, a hostile relay). */
export class TransportError extends Error {
  override readonly name = "TransportError";
  readonly code: TransportErrorCode;
  constructor(
    code: TransportErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
  }
}

/** A key share file or object failed validation. */
export class InvalidKeyShare extends Error {
  override readonly name = "InvalidKeyShare";
  readonly code:
    | "malformed"
    | "unsupported-version"
    | "wrong-curve"
    | "inconsistent"
    | "weak-aux-info"
    | "tampered" // a version-3 accounts file's record MAC is missing or wrong
    | "legacy-format"; // a file of version 1 or 2 (no MACs) where MACs are required
  constructor(code: InvalidKeyShare["code"], message: string) {
    super(message);
    this.code = code;
  }
}

/** Why a key lifecycle step (docs/key-lifecycle.md) was refused. */
export type KeyEpochErrorCode =
  | "conflict" // the step does not fit the account's state (keygen of a committed account, ...)
  | "unknown-epoch" // an epoch this party does not hold
  | "no-common-epoch" // the parties hold no epoch in common (the message says what to run)
  | "commit-mismatch" // the peer confirmed another epoch than this party made
  | "uncommitted"; // the account's key generation never committed (resume or discard it)

/** A key lifecycle step was refused; the message says what to do and never holds a secret. */
export class KeyEpochError extends Error {
  override readonly name = "KeyEpochError";
  readonly code: KeyEpochErrorCode;
  constructor(code: KeyEpochErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
