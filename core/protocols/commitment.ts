/**
 * Hash commitments of the CGGMP21 protocols and session-bound derived ids, and the
 * commit-then-open steps that key generation, aux info and the key refresh share (the round-1
 * commitment broadcast and its codec, receiving it, the first checks of the decommitments).
 *
 * A commitment is V = H(domain, sid, i, items, u) with u a fresh kappa-byte string (CGGMP21,
 * ePrint 2021/060, Figure 5 round 1 and Figure 6 round 1; the Rust reference's `spec/main.tex`,
 * "hash_com"). H is the project's typed, length-prefixed SHAKE-256 transcript (`Transcript`), so
 * two different item lists never hash alike, and V binds the protocol domain, the session id and
 * the committing party's index: a commitment of one party, session or protocol opens nowhere
 * else. V is 32 bytes (128-bit collision resistance, the binding that matters).
 *
 * @example
 * ```ts
 * import { commit, opens } from "./commitment.ts";
 * const sid = new Uint8Array(16);
 * const items = [["X", 5n]] as const;
 * const { V, u } = commit("example", sid, 0, items);
 * console.assert(opens("example", sid, 0, items, u, V));
 * console.assert(!opens("example", sid, 1, items, u, V));
 * ```
 * @module
 */
import { decodeBytes, expectFields, toHex } from "../bytes.ts";
import { randomBytes, type RandomSource, webCryptoRandom } from "../math/mod.ts";
import { KAPPA_BYTES, Point } from "../params.ts";
import { Transcript } from "../transcript.ts";
import { checkEcho, echoVector, RoundFaults } from "./echo.ts";
import { collectInbox } from "./inbox.ts";
import type { Message, ProtocolName, ProtocolState } from "./types.ts";

/** Bytes of a commitment V. */
export const COMMITMENT_BYTES = 32;

/** A value a commitment can bind: bytes, a signed integer, a string, a point, or a list. */
export type CommitScalar = Uint8Array | bigint | string | Point;
export type CommitValue = CommitScalar | readonly CommitScalar[];

/** Labelled values in a fixed order (the paper's tuple inside H(...)). */
export type CommitItems = readonly (readonly [label: string, value: CommitValue])[];

/** A commitment and its opening randomness. */
export interface Commitment {
  /** V = H(domain, sid, i, items, u). */
  readonly V: Uint8Array;
  /** u: kappa fresh bytes, revealed with the decommitment. */
  readonly u: Uint8Array;
}

function appendScalar(t: Transcript, label: string, v: CommitScalar): void {
  if (v instanceof Uint8Array) t.appendBytes(label, v);
  else if (typeof v === "bigint") t.appendInt(label, v);
  else if (typeof v === "string") t.appendString(label, v);
  else if (v instanceof Point) {
    // The identity has no compressed form; it is committed to as the empty point string.
    t.appendString(`${label}:point`, v.is0() ? "" : v.toHex(true));
  } else throw new TypeError(`commitment: unsupported value for "${label}"`);
}

/**
 * V = H(domain, sid, party, items, u), 32 bytes.
 * @param domain protocol-level tag, e.g. "keygen".
 * @param sid the session id.
 * @param party index of the committing party.
 * @param items the committed values, in a fixed order.
 * @param u kappa bytes of opening randomness.
 * @returns V.
 * @throws {RangeError} when u is not kappa bytes.
 */
export function commitmentHash(
  domain: string,
  sid: Uint8Array,
  party: number,
  items: CommitItems,
  u: Uint8Array,
): Uint8Array {
  if (!(u instanceof Uint8Array) || u.length !== KAPPA_BYTES) {
    throw new RangeError(`commitment: expected u of ${KAPPA_BYTES} bytes`);
  }
  const t = Transcript.create(`commit/${domain}`, sid, party);
  t.appendUint("items", BigInt(items.length));
  for (const [label, v] of items) {
    if (Array.isArray(v)) {
      t.appendUint(`${label}:list`, BigInt(v.length));
      for (let k = 0; k < v.length; k++) appendScalar(t, `${label}[${k}]`, v[k]);
    } else appendScalar(t, label, v as CommitScalar);
  }
  t.appendBytes("u", u);
  return t.challengeBytes("V", COMMITMENT_BYTES);
}

/**
 * Commits to `items` with fresh u (Figure 5 / Figure 6, round 1: "sample u_i, V_i = H(...)").
 * @returns V and u; keep u until the decommitment round.
 */
export function commit(
  domain: string,
  sid: Uint8Array,
  party: number,
  items: CommitItems,
  rng: RandomSource = webCryptoRandom,
): Commitment {
  const u = randomBytes(KAPPA_BYTES, rng);
  return { V: commitmentHash(domain, sid, party, items, u), u };
}

/**
 * Whether (items, u) opens V for this domain, session and party (Figure 5 / Figure 6, round 3:
 * "abort if V_j != H(...)"). The comparison does not stop at the first differing byte.
 */
export function opens(
  domain: string,
  sid: Uint8Array,
  party: number,
  items: CommitItems,
  u: Uint8Array,
  V: Uint8Array,
): boolean {
  if (!(V instanceof Uint8Array) || V.length !== COMMITMENT_BYTES) return false;
  if (!(u instanceof Uint8Array) || u.length !== KAPPA_BYTES) return false;
  return bytesEqual(commitmentHash(domain, sid, party, items, u), V);
}

/**
 * The commitment broadcast: round 1 of key generation and of aux info (Figure 5 / Figure 6,
 * round 1: "broadcast V_i"), the same message in both.
 */
export interface CommitmentMessage {
  /** V_i = H(domain, sid, i, items, u_i), `COMMITMENT_BYTES` bytes. */
  readonly V: Uint8Array;
}

/** Wire shape of `CommitmentMessage`. */
export interface CommitmentMessageWire {
  /** V_i, lowercase hex. */
  readonly V: string;
}

/**
 * Wire form of a commitment broadcast.
 * @param m the message.
 * @returns its wire shape.
 */
export function encodeCommitmentMessage(m: CommitmentMessage): CommitmentMessageWire {
  return { V: toHex(m.V) };
}

/**
 * Decodes a received commitment broadcast.
 * @param v the received payload.
 * @returns the checked message.
 * @throws {TypeError} / {SyntaxError} for any other shape.
 */
export function decodeCommitmentMessage(v: unknown): CommitmentMessage {
  const o = expectFields<CommitmentMessageWire>(v, ["V"]);
  return { V: decodeBytes(o.V, 'field "V"', COMMITMENT_BYTES) };
}

/** What a commit-then-open machine keeps from round 1: every party's V_j and the echo. */
export interface CommitmentsReceived {
  /** V_j by party (own included). */
  readonly V: readonly Uint8Array[];
  /** Digests of the round-1 broadcasts as this party saw them (`echo.ts`). */
  readonly echo: readonly string[];
}

/**
 * Round 1 of key generation or aux info received (Figure 5 / Figure 6, round 2: "receive every
 * V_j"): every party's V_j, this party's own included, and the echo of the round-1 broadcasts
 * (`echo.ts`) that goes out with the decommitment.
 * @param protocol the protocol (its name is the commitment domain).
 * @param s the state waiting for round 1, with the payload it broadcast.
 * @param inbox the round's messages.
 * @returns V by party and the echo vector.
 * @throws {ProtocolAbort} naming every party whose message is missing, misaddressed or does not
 *   decode ("malformed-message").
 */
export function receiveCommitments(
  protocol: ProtocolName,
  s: ProtocolState & { readonly sent: CommitmentMessageWire },
  inbox: readonly Message[],
): { readonly V: Uint8Array[]; readonly echo: string[] } {
  const payloads = collectInbox(protocol, s, "broadcast", inbox);
  const faults = new RoundFaults(protocol, 1);
  const V: Uint8Array[] = new Array(s.n);
  V[s.i] = decodeCommitmentMessage(s.sent).V;
  for (const [j, p] of payloads) {
    faults.check(j, "malformed-message", () => {
      V[j] = decodeCommitmentMessage(p).V;
    });
  }
  faults.throwIfAny();
  const echo = echoVector(s.sid, protocol, 1, V.map((v) => encodeCommitmentMessage({ V: v })));
  return { V, echo };
}

/**
 * Figure 5 / Figure 6, round 3, the first checks of the decommitments: the echo of round 1
 * (`checkEcho`), then that each decommitment opens its V_j (else "bad-commitment"). Records
 * faults in `faults`; throws nothing itself.
 * @param faults the round's faults.
 * @param protocol the protocol (its name is the commitment domain).
 * @param s this party's session, index, V_j of every party and echo of round 1.
 * @param got the decoded decommitment of every other party, with its u_j and echo.
 * @param items the tuple a decommitment opens (its u_j apart).
 */
export function checkDecommitments<
  D extends { readonly u: Uint8Array; readonly echo: readonly string[] },
>(
  faults: RoundFaults,
  protocol: ProtocolName,
  s: ProtocolState & CommitmentsReceived,
  got: ReadonlyMap<number, D>,
  items: (d: D) => CommitItems,
): void {
  checkEcho(faults, s.i, s.echo, new Map([...got].map(([j, d]) => [j, d.echo])));
  for (const [j, d] of got) {
    if (faults.has(j)) continue;
    if (!opens(protocol, s.sid, j, items(d), d.u, s.V[j])) {
      faults.add(j, "bad-commitment", "the decommitment does not open the round-1 commitment");
    }
  }
}

/** Byte equality without an early exit. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let k = 0; k < a.length; k++) d |= a[k] ^ b[k];
  return d === 0;
}

/** a XOR b for two byte strings of one length. */
export function xorBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new RangeError("xor: lengths differ");
  const out = new Uint8Array(a.length);
  for (let k = 0; k < a.length; k++) out[k] = a[k] ^ b[k];
  return out;
}

/**
 * A session id derived from `sid` for one use: H(label, sid, bytes), 32 bytes. Used where the
 * paper binds a proof to more than (sid, i), e.g. Pi-mod and Pi-fac bound to (sid, i, rho)
 * (Figure 6, round 3): the proof's context then carries this id and the prover's index.
 */
export function deriveSid(sid: Uint8Array, label: string, bytes: Uint8Array): Uint8Array {
  const t = Transcript.create(`derive-sid/${label}`, sid, 0);
  t.appendBytes("bytes", bytes);
  return t.challengeBytes("sid", 32);
}
