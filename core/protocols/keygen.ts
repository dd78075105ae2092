/**
 * Key generation without a dealer, n-of-n (CGGMP21, ePrint 2021/060, Figure 5 "ECDSA key
 * generation"; the Rust reference's `spec/main.tex`, "Non-Threshold Key Generation", with the
 * reliability check and the HD chain code).
 *
 * | round | kind      | party i sends                                                       |
 * |-------|-----------|---------------------------------------------------------------------|
 * | 1     | broadcast | V_i = H("keygen", sid, i, n, rid_i, X_i, A_i, c_i, u_i)             |
 * | 2     | broadcast | the decommitment (rid_i, X_i, A_i, c_i, u_i) and the echo of round 1 |
 * | 3     | broadcast | psi_i, the Schnorr proof of x_i bound to (sid, i, rid = XOR rid_j)  |
 *
 * Each round's message, decoded and on the wire, with its codec: `keygen_messages.ts`.
 *
 * Output: the `KeyShareCore` with X = sum X_j, rid = XOR rid_j and chain code = XOR c_j.
 * Aborts (`ProtocolAbort`, every culprit of the round named): malformed data, an echo that
 * shows different round-1 broadcasts, a decommitment that does not open V_j, an identity X_j or
 * A_j, a Schnorr proof that does not verify.
 *
 * @example
 * ```ts
 * import { keygen } from "./keygen.ts";
 * import { runProtocol } from "./driver.ts";
 * import { createMemoryNetwork } from "./memory_transport.ts";
 * const sid = crypto.getRandomValues(new Uint8Array(32));
 * const net = createMemoryNetwork(2);
 * const [a, b] = await Promise.all(
 *   [0, 1].map((i) => runProtocol(keygen, { sid, i, n: 2 }, net[i])),
 * );
 * console.assert(a.publicKey.equals(b.publicKey));
 * ```
 * @module
 */
import { ProtocolAbort } from "../errors.ts";
import { randomBelow, randomBytes, type RandomSource } from "../math/mod.ts";
import { KAPPA_BYTES, Point, Q } from "../params.ts";
import * as sch from "../zk/pi_sch.ts";
import { collectInbox, envelope } from "./inbox.ts";
import {
  checkDecommitments,
  commit,
  type CommitItems,
  type CommitmentsReceived,
  receiveCommitments,
  xorBytes,
} from "./commitment.ts";
import { assertSession, RoundFaults } from "./echo.ts";
import * as msg from "./keygen_messages.ts";
import {
  type KeyShareCore,
  type Message,
  type Protocol,
  type ProtocolState,
  type RoundSpec,
  stepByRound,
  type Transition,
} from "./types.ts";

export { CHAIN_CODE_BYTES, type Decommitment } from "./keygen_messages.ts";

const NAME = "keygen";

/** Input of key generation. */
export interface KeygenInput {
  /** Session id agreed by all parties (16-1024 bytes, fresh for every run). */
  readonly sid: Uint8Array;
  /** This party's index, 0 <= i < n. */
  readonly i: number;
  /** Number of parties, n >= 2. */
  readonly n: number;
}

interface Secret {
  /** x_i (secret share). */
  readonly x: bigint;
  /** The Schnorr nonce behind A_i (secret, used once in round 2). */
  readonly nonce: sch.Nonce;
  readonly mine: msg.Decommitment;
}

/** Waiting for the round-1 commitments. */
export interface KeygenRound1 extends ProtocolState, Secret {
  readonly round: 1;
  /** The payload this party broadcast in round 1. */
  readonly sent: msg.Round1Wire;
}

/** Waiting for the round-2 decommitments. */
export interface KeygenRound2 extends ProtocolState, Secret, CommitmentsReceived {
  readonly round: 2;
}

/** Waiting for the round-3 Schnorr proofs. */
export interface KeygenRound3 extends ProtocolState {
  readonly round: 3;
  readonly x: bigint;
  /** X_j by party. */
  readonly X: readonly Point[];
  /** A_j by party (what each proof must use). */
  readonly A: readonly Point[];
  readonly rid: Uint8Array;
  readonly chainCode: Uint8Array;
}

/** State of a key generation run. */
export type KeygenState = KeygenRound1 | KeygenRound2 | KeygenRound3;

/**
 * Figure 5, round 1: the tuple party j commits to (sid, j and u are added by the commitment).
 * Exported for audits and tests that build a deviating party.
 */
export function commitmentItems(n: number, d: Omit<msg.Decommitment, "u">): CommitItems {
  return [["n", BigInt(n)], ["rid", d.rid], ["X", d.X], ["A", d.A], ["c", d.c]];
}

const ROUNDS: readonly RoundSpec[] = [
  { round: 1, kind: "broadcast" },
  { round: 2, kind: "broadcast" },
  { round: 3, kind: "broadcast" },
];

/**
 * Figure 5, round 1: x_i <- Z_q, X_i = x_i G, rid_i <- {0,1}^kappa, (A_i, tau_i) = commit of
 * Pi-sch, c_i <- {0,1}^256, u_i <- {0,1}^kappa; broadcast V_i.
 */
function start(input: KeygenInput, rng: RandomSource): Transition<KeygenState, KeyShareCore> {
  assertSession(input.sid, input.i, input.n);
  const sid = Uint8Array.from(input.sid);
  const { i, n } = input;
  const x = randomBelow(Q - 1n, rng) + 1n;
  const nonce = sch.commit(rng);
  const d = {
    rid: randomBytes(KAPPA_BYTES, rng),
    X: Point.BASE.multiply(x),
    A: nonce.A,
    c: randomBytes(msg.CHAIN_CODE_BYTES, rng),
  };
  const { V, u } = commit(NAME, sid, i, commitmentItems(n, d), rng);
  const sent = msg.encodeRound1({ V });
  const state: KeygenRound1 = { sid, i, n, round: 1, x, nonce, mine: { ...d, u }, sent };
  return { state, outgoing: [envelope(NAME, state, 1, null, sent)] };
}

/** Figure 5, round 2: receive every V_j; broadcast the decommitment and the echo of round 1. */
function round1(s: KeygenRound1, inbox: readonly Message[]): Transition<KeygenState, KeyShareCore> {
  const { V, echo } = receiveCommitments(NAME, s, inbox);
  const { mine } = s;
  const state: KeygenRound2 = {
    sid: s.sid,
    i: s.i,
    n: s.n,
    round: 2,
    x: s.x,
    nonce: s.nonce,
    mine,
    V,
    echo,
  };
  return { state, outgoing: [envelope(NAME, state, 2, null, msg.encodeRound2({ ...mine, echo }))] };
}

/**
 * Figure 5, round 3: check the echo, that every decommitment opens V_j and that X_j, A_j are
 * not the identity; rid = XOR rid_j, c = XOR c_j; broadcast psi_i = Pi-sch proof of x_i with
 * the nonce of A_i, bound to (sid, i, rid).
 */
function round2(s: KeygenRound2, inbox: readonly Message[]): Transition<KeygenState, KeyShareCore> {
  const payloads = collectInbox(NAME, s, "broadcast", inbox);
  const faults = new RoundFaults(NAME, 2);
  const D = new Map<number, msg.Round2>();
  for (const [j, p] of payloads) {
    faults.check(j, "malformed-message", () => void D.set(j, msg.decodeRound2(p, s.n)));
  }
  checkDecommitments(faults, NAME, s, D, (d) => commitmentItems(s.n, d));
  for (const [j, d] of D) {
    faults.check(j, "invalid-value", () => {
      if (d.X.is0()) throw new RangeError("X_j is the identity");
      if (d.A.is0()) throw new RangeError("A_j is the identity");
    });
  }
  faults.throwIfAny();
  const all = (j: number): msg.Decommitment => (j === s.i ? s.mine : D.get(j)!);
  let rid: Uint8Array = new Uint8Array(KAPPA_BYTES);
  let chainCode: Uint8Array = new Uint8Array(msg.CHAIN_CODE_BYTES);
  const X: Point[] = [];
  const A: Point[] = [];
  for (let j = 0; j < s.n; j++) {
    const d = all(j);
    rid = xorBytes(rid, d.rid);
    chainCode = xorBytes(chainCode, d.c);
    X.push(d.X);
    A.push(d.A);
  }
  const psi = sch.prove({ sid: s.sid, prover: s.i }, { X: X[s.i], rid }, s.nonce, { x: s.x });
  const state: KeygenRound3 = {
    sid: s.sid,
    i: s.i,
    n: s.n,
    round: 3,
    x: s.x,
    X,
    A,
    rid,
    chainCode,
  };
  return { state, outgoing: [envelope(NAME, state, 3, null, msg.encodeRound3({ psi }))] };
}

/** Figure 5, output: verify every psi_j against (sid, j, rid, X_j, A_j); X = sum X_j. */
function round3(s: KeygenRound3, inbox: readonly Message[]): Transition<KeygenState, KeyShareCore> {
  const payloads = collectInbox(NAME, s, "broadcast", inbox);
  const faults = new RoundFaults(NAME, 3);
  const proofs = new Map<number, sch.Proof>();
  for (const [j, p] of payloads) {
    faults.check(j, "malformed-message", () => void proofs.set(j, msg.decodeRound3(p).psi));
  }
  for (const [j, psi] of proofs) {
    faults.check(j, "proof-failed", () => {
      if (!psi.A.equals(s.A[j])) throw new RangeError("pi-sch: A differs from the committed A_j");
      sch.verify({ sid: s.sid, prover: j }, { X: s.X[j], rid: s.rid }, psi);
    });
  }
  faults.throwIfAny();
  const publicKey = s.X.reduce((acc, P) => acc.add(P));
  if (publicKey.is0()) {
    throw new ProtocolAbort(NAME, 3, "invalid-value", [], "the public key is the identity");
  }
  const output: KeyShareCore = {
    curve: "secp256k1",
    i: s.i,
    n: s.n,
    x: s.x,
    publicKey,
    publicShares: s.X,
    rid: s.rid,
    chainCode: s.chainCode,
  };
  return { outgoing: [], output };
}

/**
 * Key generation as a pure state machine (`start`, then `step` once per round).
 * @throws {TypeError} / {RangeError} from `start` on a bad input; {ProtocolAbort} from `step`.
 */
export const keygen: Protocol<KeygenInput, KeygenState, KeyShareCore> = {
  name: NAME,
  rounds: ROUNDS,
  start,
  step: stepByRound(NAME, { 1: round1, 2: round2, 3: round3 }),
};
