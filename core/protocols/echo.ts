/**
 * Checking a round of a CGGMP21 protocol: the echo of broadcasts, blame that names every
 * culprit, the echo vector's decoder and the session parameters' check.
 *
 * Echo broadcast (the reliability check of the Rust reference's `spec/main.tex`, key generation
 * and auxiliary info, "Reliability check"; Goldwasser-Lindell echo broadcast): the paper
 * assumes a broadcast channel for the round-1 commitments (CGGMP21, ePrint 2021/060, Figures 5
 * and 6). Over point-to-point links a party could send different commitments to different
 * parties. So in the next round every party sends, next to its own message, the digest of every
 * round-1 broadcast it received (its own included), one digest per sender. Comparing them:
 *
 * - party k's digest of its OWN message differs from what we received from k: k sent us one
 *   thing and claims another, k is blamed;
 * - party k's digest of OUR message differs from what we sent: k misreports us, k is blamed
 *   (links are authenticated, so nobody else could have altered our message);
 * - party k's digest of a third party j's message differs from ours: j equivocated or k lies.
 *   Without transferable signatures nobody can tell which, so the abort names no culprit for
 *   this case and its message names the two suspects.
 *
 * Blame: `RoundFaults` runs each check for every party, records every party-attributable
 * failure, and throws one `ProtocolAbort` naming all culprits of the round.
 * @module
 */
import { canonicalJson, decodeArray, toHex } from "../bytes.ts";
import { type AbortCode, ProofError, ProtocolAbort } from "../errors.ts";
import { MAX_PARTIES, MAX_SID_BYTES, MIN_SID_BYTES } from "../params.ts";
import { Transcript } from "../transcript.ts";
import type { ProtocolName } from "./types.ts";

/** Bytes of one echo digest. */
export const DIGEST_BYTES = 32;

/**
 * Digest of the broadcast `payload` that party `from` sent in `round` of `protocol` in session
 * `sid` (lowercase hex): H("echo", sid, from, protocol, round, canonical JSON of the payload).
 */
export function broadcastDigest(
  sid: Uint8Array,
  protocol: ProtocolName,
  round: number,
  from: number,
  payload: unknown,
): string {
  const t = Transcript.create("echo", sid, from);
  t.appendString("protocol", protocol).appendUint("round", BigInt(round));
  t.appendString("payload", canonicalJson(payload));
  return toHex(t.challengeBytes("digest", DIGEST_BYTES));
}

/**
 * The echo vector of a broadcast round: entry j is the digest of what this party received from
 * party j (for j = i, what it sent).
 * @param payloads every party's broadcast of the round, indexed by party (own included).
 */
export function echoVector(
  sid: Uint8Array,
  protocol: ProtocolName,
  round: number,
  payloads: readonly unknown[],
): string[] {
  return payloads.map((p, j) => broadcastDigest(sid, protocol, round, j, p));
}

/**
 * Decodes a received echo vector: exactly n lowercase hex digests of 32 bytes.
 * @throws {TypeError} / {SyntaxError} on any other shape.
 */
export function decodeEcho(v: unknown, n: number): string[] {
  return decodeArray(v, 'field "echo"', n, (d, j) => {
    if (typeof d !== "string" || !/^[0-9a-f]{64}$/.test(d)) {
      throw new SyntaxError(`field "echo[${j}]": expected 32 bytes of lowercase hex`);
    }
    return d;
  });
}

/**
 * Compares every received echo vector with ours (see the module doc for who is blamed).
 * Records faults in `faults` with code "inconsistent-broadcast"; throws nothing itself.
 * @param me this party's index.
 * @param mine our echo vector.
 * @param echoes the decoded echo vector of every other party whose message decoded.
 */
export function checkEcho(
  faults: RoundFaults,
  me: number,
  mine: readonly string[],
  echoes: ReadonlyMap<number, readonly string[]>,
): void {
  const disputes: string[] = [];
  for (const [k, e] of echoes) {
    if (faults.has(k)) continue;
    if (e[k] !== mine[k]) {
      faults.add(k, "inconsistent-broadcast", "its broadcast differs from what it echoes");
      continue;
    }
    if (e[me] !== mine[me]) {
      faults.add(k, "inconsistent-broadcast", "it echoes a broadcast this party did not send");
      continue;
    }
    for (let j = 0; j < mine.length; j++) {
      if (j !== k && j !== me && e[j] !== mine[j]) {
        disputes.push(`party ${k} and this party received different broadcasts from party ${j}`);
      }
    }
  }
  if (disputes.length > 0) {
    faults.addUnattributed(
      "inconsistent-broadcast",
      `${disputes.join("; ")} (the sender equivocated or the echoing party lies)`,
    );
  }
}

/** The errors of decoding and checking received data: the sender is to blame for them. */
function isSendersFault(e: unknown): e is Error {
  return e instanceof ProofError || e instanceof SyntaxError || e instanceof TypeError ||
    e instanceof RangeError;
}

/**
 * The faults found in one round, by party. Every check runs for every party not yet at fault,
 * so the abort names all culprits; the abort's code is the code of the earliest fault recorded
 * (checks run in the order decode, echo, decommitment, values, proofs).
 */
export class RoundFaults {
  readonly protocol: ProtocolName;
  readonly round: number;
  readonly #faults = new Map<number, { code: AbortCode; message: string }>();
  readonly #unattributed: { code: AbortCode; message: string }[] = [];
  #first: AbortCode | null = null;
  #cause: unknown = undefined;

  constructor(protocol: ProtocolName, round: number) {
    this.protocol = protocol;
    this.round = round;
  }

  /** Whether party j is already at fault in this round. */
  has(j: number): boolean {
    return this.#faults.has(j);
  }

  /** Records a fault of party j (the first fault of a party is kept). */
  add(j: number, code: AbortCode, message: string, cause?: unknown): void {
    if (this.#faults.has(j)) return;
    this.#faults.set(j, { code, message });
    this.#first ??= code;
    this.#cause ??= cause;
  }

  /** Records a fault that no single party can be blamed for. */
  addUnattributed(code: AbortCode, message: string): void {
    this.#unattributed.push({ code, message });
    this.#first ??= code;
  }

  /**
   * Runs `check` for party j unless j is already at fault. A decoding or verification error
   * (ProofError, SyntaxError, TypeError, RangeError) is recorded as j's fault with `code`;
   * any other error propagates (a bug here is never blamed on a party).
   * @returns whether the check passed.
   */
  check(j: number, code: AbortCode, check: () => void): boolean {
    if (this.#faults.has(j)) return false;
    try {
      check();
      return true;
    } catch (e) {
      if (!isSendersFault(e)) throw e;
      this.add(j, code, e.message, e);
      return false;
    }
  }

  /** Throws one ProtocolAbort naming every culprit when any fault was recorded. */
  throwIfAny(): void {
    if (this.#first === null) return;
    const parts = [...this.#faults].sort((a, b) => a[0] - b[0]).map(([j, f]) =>
      `party ${j}: ${f.code}: ${f.message}`
    );
    for (const f of this.#unattributed) parts.push(`${f.code}: ${f.message}`);
    throw new ProtocolAbort(
      this.protocol,
      this.round,
      this.#first,
      [...this.#faults.keys()],
      parts.join("; "),
      this.#cause === undefined ? undefined : { cause: this.#cause },
    );
  }
}

// ---- session parameters ----

/**
 * Checks the session parameters every protocol starts from.
 * @throws {TypeError} when sid is not bytes; {RangeError} when sid, i or n is out of range.
 */
export function assertSession(sid: unknown, i: unknown, n: unknown): void {
  if (!(sid instanceof Uint8Array)) throw new TypeError("expected the session id as bytes");
  if (sid.length < MIN_SID_BYTES || sid.length > MAX_SID_BYTES) {
    throw new RangeError(
      `expected a session id of ${MIN_SID_BYTES}-${MAX_SID_BYTES} bytes, got ${sid.length}`,
    );
  }
  if (typeof n !== "number" || !Number.isInteger(n) || n < 2 || n > MAX_PARTIES) {
    throw new RangeError(`expected 2 <= n <= ${MAX_PARTIES}, got ${String(n)}`);
  }
  if (typeof i !== "number" || !Number.isInteger(i) || i < 0 || i >= n) {
    throw new RangeError(`expected 0 <= i < n = ${n}, got ${String(i)}`);
  }
}
