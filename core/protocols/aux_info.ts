/**
 * Auxiliary info: every party's Paillier key and ring-Pedersen parameters, with proofs (CGGMP21,
 * ePrint 2021/060, Figure 6 "Auxiliary Info. & Key Refresh" without the re-sharing of x; the
 * Rust reference's `spec/main.tex`, "Provisioning Protocol", and its `key_refresh/aux_only.rs`).
 *
 * | round | kind      | party i sends                                                          |
 * |-------|-----------|------------------------------------------------------------------------|
 * | 1     | broadcast | V_i = H("aux-info", sid, i, n, N_i, s_i, t_i, psi-hat_i, rho_i, u_i)   |
 * | 2     | broadcast | the decommitment (N_i, s_i, t_i, psi-hat_i, rho_i, u_i) and the echo   |
 * | 3     | p2p       | to each P_j: psi_i (Pi-mod) and phi_i^j (Pi-fac under P_j's (N, s, t)) |
 *
 * Each round's message, decoded and on the wire, with its codec: `aux_info_messages.ts`.
 *
 * psi-hat_i is the Pi-prm proof that s_i is in <t_i> mod N_i, bound to (sid, i). psi_i and
 * phi_i^j are bound to (sid, i, rho) with rho = XOR rho_j, so no party can prepare them before
 * everybody's rho_j is fixed. Checks on a received N_j before any proof: odd, 3071-3072 bits, no
 * factor below 2^16, not prime, not our own N; s_j, t_j distinct units other than 1. Pi-fac is
 * verified under this party's own ring-Pedersen parameters, never the prover's. After the proofs,
 * every N_j must be distinct (a copier of an honest party's N is the one blamed, never the owner).
 *
 * The Paillier primes are an input: the caller generates them (`generatePaillierPrimes` with the
 * platform's safe-prime generator) or takes pregenerated ones, as the reference does.
 *
 * The building blocks (`prepareAux`, `checkAuxValues`, `auxProofs`, ...) are exported for the
 * key refresh (`refresh.ts`), which is this protocol plus a re-sharing of the secret key.
 * @module
 */
import { bitLength, isDefinitelyComposite, randomBytes, type RandomSource } from "../math/mod.ts";
import { assertPaillierModulus } from "../paillier.ts";
import { KAPPA_BYTES, MODULUS_MAX_BITS, MODULUS_MIN_BITS, PRIME_BITS } from "../params.ts";
import {
  checkRingPedersenShape,
  generateRingPedersen,
  type RingPedersenSecret,
} from "../ring_pedersen.ts";
import type { ProofContext } from "../zk/mod.ts";
import * as piFac from "../zk/pi_fac.ts";
import * as piMod from "../zk/pi_mod.ts";
import * as piPrm from "../zk/pi_prm.ts";
import { collectInbox, envelope } from "./inbox.ts";
import {
  checkDecommitments,
  commit,
  type CommitItems,
  type CommitmentsReceived,
  deriveSid,
  receiveCommitments,
  xorBytes,
} from "./commitment.ts";
import { assertSession, RoundFaults } from "./echo.ts";
import type { AuxProofs, AuxPublic } from "./aux_info_messages.ts";
import * as msg from "./aux_info_messages.ts";
import {
  type AuxInfo,
  type Message,
  type PartyAux,
  type Protocol,
  type ProtocolName,
  type ProtocolState,
  type RoundSpec,
  stepByRound,
  type Transition,
} from "./types.ts";

export {
  AUX_FIELDS,
  type AuxProofs,
  type AuxPublic,
  decodeAuxProofs,
  decodeAuxPublic,
  encodeAuxProofs,
  encodeAuxPublic,
} from "./aux_info_messages.ts";

const NAME = "aux-info";

/** The two safe primes of a party's Paillier / ring-Pedersen modulus (secret). */
export interface PaillierPrimes {
  readonly p: bigint;
  readonly q: bigint;
}

/**
 * Generates the Paillier primes of one party with the given safe-prime generator (for example
 * `platformSafePrime` of `platform/mod.ts`, the fastest of the runtime).
 * @param safePrime returns a safe prime of exactly `bits` bits with its top two bits set.
 * @returns two distinct safe primes of `PRIME_BITS` bits.
 */
export async function generatePaillierPrimes(
  safePrime: (bits: number) => Promise<bigint>,
): Promise<PaillierPrimes> {
  const [p, q] = await Promise.all([safePrime(PRIME_BITS), safePrime(PRIME_BITS)]);
  const primes = { p, q };
  assertPaillierPrimes(primes);
  return primes;
}

/**
 * Checks this party's own primes (misuse, not blame): bigints of `PRIME_BITS` bits, distinct,
 * = 3 mod 4, p and (p-1)/2 passing a base-2 Fermat test, N of 3071-3072 bits.
 * @throws {TypeError} / {RangeError}.
 */
export function assertPaillierPrimes(primes: PaillierPrimes): void {
  if (typeof primes !== "object" || primes === null) throw new TypeError("expected { p, q }");
  const { p, q } = primes;
  if (typeof p !== "bigint" || typeof q !== "bigint") throw new TypeError("expected bigint primes");
  if (bitLength(p) !== PRIME_BITS || bitLength(q) !== PRIME_BITS) {
    throw new RangeError(`expected primes of ${PRIME_BITS} bits`);
  }
  if (p === q) throw new RangeError("expected two distinct primes");
  for (const r of [p, q]) {
    if ((r & 3n) !== 3n) throw new RangeError("expected primes = 3 mod 4");
    if (isDefinitelyComposite(r) || isDefinitelyComposite(r >> 1n)) {
      throw new RangeError("expected safe primes");
    }
  }
  const bits = bitLength(p * q);
  if (bits < MODULUS_MIN_BITS || bits > MODULUS_MAX_BITS) {
    throw new RangeError(`expected N of ${MODULUS_MIN_BITS}-${MODULUS_MAX_BITS} bits`);
  }
}

/** Input of the auxiliary-info protocol. */
export interface AuxInfoInput {
  /** Session id agreed by all parties (16-1024 bytes, fresh for every run). */
  readonly sid: Uint8Array;
  readonly i: number;
  readonly n: number;
  /** This party's pregenerated safe primes (secret). */
  readonly primes: PaillierPrimes;
}

/** This party's own aux material, made in round 1 (secret parts included). */
export interface AuxOwn {
  readonly p: bigint;
  readonly q: bigint;
  /** (N_i, s_i, t_i) with lambda_i and phi(N_i). */
  readonly rp: RingPedersenSecret;
  /** psi-hat_i: the Pi-prm proof of (N_i, s_i, t_i). */
  readonly prm: piPrm.Proof;
  /** rho_i: kappa random bytes. */
  readonly rho: Uint8Array;
}

/** The proof context of Pi-prm: (sid, j), separated per protocol (Figure 6, round 1). */
export function prmContext(protocol: ProtocolName, sid: Uint8Array, j: number): ProofContext {
  return { sid: deriveSid(sid, `${protocol}/pi-prm`, new Uint8Array(0)), prover: j };
}

/** The proof context bound to (sid, j, rho) (Figure 6, round 3: Pi-mod, Pi-fac, Pi-sch). */
export function rhoContext(
  protocol: ProtocolName,
  sid: Uint8Array,
  j: number,
  rho: Uint8Array,
): ProofContext {
  return { sid: deriveSid(sid, `${protocol}/rho`, rho), prover: j };
}

/**
 * Figure 6, round 1 (aux part): ring-Pedersen (N_i, s_i, t_i) over the given primes, the Pi-prm
 * proof psi-hat_i, and rho_i.
 */
export function prepareAux(
  protocol: ProtocolName,
  sid: Uint8Array,
  i: number,
  primes: PaillierPrimes,
  rng: RandomSource,
): AuxOwn {
  assertPaillierPrimes(primes);
  const { p, q } = primes;
  const rp = generateRingPedersen(p, q, rng);
  const prm = piPrm.prove(prmContext(protocol, sid, i), rp, rp, rng);
  return { p, q, rp, prm, rho: randomBytes(KAPPA_BYTES, rng) };
}

/** The public part of this party's material. */
export function auxPublic(own: AuxOwn): AuxPublic {
  return { N: own.rp.N, s: own.rp.s, t: own.rp.t, prm: own.prm, rho: own.rho };
}

/** The committed items of the aux part (Figure 6, round 1: N_i, s_i, t_i, psi-hat_i, rho_i). */
export function auxItems(pub: AuxPublic): CommitItems {
  return [
    ["N", pub.N],
    ["s", pub.s],
    ["t", pub.t],
    ["prm.A", pub.prm.A],
    ["prm.z", pub.prm.z],
    ["rho", pub.rho],
  ];
}

/**
 * Figure 6, round 3 (checks before any proof): N_j odd, of 3071-3072 bits, no factor below
 * 2^16, not prime (`assertPaillierModulus`); different from our own N; s_j, t_j distinct units other
 * than 1. Faults: "invalid-value".
 *
 * Duplicate moduli: a party that presents our own N copied it (we made ours from fresh primes),
 * so it alone is blamed. Two OTHER parties with one N are not blamed here: one of them may be the
 * honest owner whose N the other copied, and the values do not tell which. The proofs do: a copier
 * fails Pi-prm if it copied psi-hat (bound to the prover's index) or, lacking the factors, Pi-mod
 * and Pi-fac in round 3, after which `checkDistinctModuli` refuses any N still shared.
 */
export function checkAuxValues(
  faults: RoundFaults,
  me: number,
  mine: AuxPublic,
  received: ReadonlyMap<number, AuxPublic>,
): void {
  for (const [j, a] of received) {
    faults.check(j, "invalid-value", () => {
      assertPaillierModulus(a.N);
      if (!checkRingPedersenShape(a)) {
        throw new RangeError("expected s_j, t_j distinct units modulo N_j, neither 1");
      }
    });
  }
  for (const [j, a] of received) {
    if (j !== me && a.N === mine.N) faults.add(j, "invalid-value", "N_j equals our own modulus");
  }
}

/**
 * Figure 6, output (after `verifyAuxProofs`): every N_j distinct. A modulus still shared by
 * parties with no fault this round was proved Paillier-Blum (Pi-mod) and free of small factors
 * (Pi-fac) by each of them under its own index: each knows its factors, which an honest party
 * never shares, so all of them are blamed. A copier without the factors has failed a proof by
 * then and the owner, alone left, is not blamed. Faults: "invalid-value".
 */
export function checkDistinctModuli(
  faults: RoundFaults,
  me: number,
  parties: readonly PartyAux[],
): void {
  const owners = new Map<bigint, number[]>();
  parties.forEach(({ N }, j) => {
    if (j !== me && !faults.has(j)) owners.set(N, [...(owners.get(N) ?? []), j]);
  });
  for (const js of owners.values()) {
    if (js.length < 2) continue;
    for (const j of js) {
      faults.add(j, "invalid-value", "N_j is shared with another party that proved it too");
    }
  }
}

/** Figure 6, round 3: verifies every received Pi-prm (psi-hat_j). Faults: "proof-failed". */
export function checkAuxPrm(
  faults: RoundFaults,
  protocol: ProtocolName,
  sid: Uint8Array,
  received: ReadonlyMap<number, AuxPublic>,
): void {
  for (const [j, a] of received) {
    faults.check(j, "proof-failed", () => piPrm.verify(prmContext(protocol, sid, j), a, a.prm));
  }
}

/**
 * Figure 6, round 3, the checks of the revealed aux material of every party not yet at fault:
 * its values (`checkAuxValues`), then its Pi-prm (`checkAuxPrm`). Then the round's abort, if any
 * party is at fault; else everybody's public parameters and rho.
 * @param faults the round's faults (decoding, echo and decommitments checked before).
 * @param protocol the protocol ("aux-info" or "refresh"; Pi-prm is bound to it).
 * @param s this party's session id, index and the number of parties.
 * @param mine this party's own material.
 * @param got the decoded material of every other party.
 * @returns (N_j, s_j, t_j) of every party, own included, and rho = XOR rho_j.
 * @throws {ProtocolAbort} naming every party at fault in the round.
 */
export function acceptAuxPublic(
  faults: RoundFaults,
  protocol: ProtocolName,
  s: { readonly sid: Uint8Array; readonly i: number; readonly n: number },
  mine: AuxPublic,
  got: ReadonlyMap<number, AuxPublic>,
): { readonly parties: PartyAux[]; readonly rho: Uint8Array } {
  const pubs = new Map([...got].filter(([j]) => !faults.has(j)));
  checkAuxValues(faults, s.i, mine, pubs);
  checkAuxPrm(faults, protocol, s.sid, new Map([...pubs].filter(([j]) => !faults.has(j))));
  faults.throwIfAny();
  const all = (j: number) => (j === s.i ? mine : pubs.get(j)!);
  const parties: PartyAux[] = [];
  for (let j = 0; j < s.n; j++) {
    const { N, s: sj, t } = all(j);
    parties.push({ N, s: sj, t });
  }
  return { parties, rho: xorAll(parties.map((_, j) => all(j).rho)) };
}

/** XOR of every party's rho_j. */
export function xorAll(values: readonly Uint8Array[]): Uint8Array {
  return values.reduce((acc, v) => xorBytes(acc, v), new Uint8Array(values[0].length));
}

/**
 * Figure 6, round 3: psi_i = Pi-mod of N_i and, for each j != i, phi_i^j = Pi-fac of N_i under
 * P_j's (N_j, s_j, t_j), both bound to (sid, i, rho).
 * @returns the message parts by receiver.
 */
export function auxProofs(
  protocol: ProtocolName,
  sid: Uint8Array,
  i: number,
  rho: Uint8Array,
  own: AuxOwn,
  parties: readonly PartyAux[],
  rng: RandomSource,
): Map<number, AuxProofs> {
  const ctx = rhoContext(protocol, sid, i, rho);
  const witness = { p: own.p, q: own.q };
  const mod = piMod.prove(ctx, { N: own.rp.N }, witness, rng);
  const out = new Map<number, AuxProofs>();
  for (let j = 0; j < parties.length; j++) {
    if (j === i) continue;
    const { N, s, t } = parties[j];
    out.set(j, { mod, fac: piFac.prove(ctx, { N0: own.rp.N, aux: { N, s, t } }, witness, rng) });
  }
  return out;
}

/**
 * Figure 6, output: verifies psi_j (Pi-mod of N_j) and phi_j^i (Pi-fac of N_j under this
 * party's own parameters), bound to (sid, j, rho). Faults: "proof-failed".
 */
export function verifyAuxProofs(
  faults: RoundFaults,
  protocol: ProtocolName,
  sid: Uint8Array,
  me: number,
  rho: Uint8Array,
  parties: readonly PartyAux[],
  received: ReadonlyMap<number, AuxProofs>,
): void {
  const { N, s, t } = parties[me];
  for (const [j, pr] of received) {
    faults.check(j, "proof-failed", () => {
      const ctx = rhoContext(protocol, sid, j, rho);
      // Pi-fac first: it is about twenty times cheaper than Pi-mod to verify.
      piFac.verify(ctx, { N0: parties[j].N, aux: { N, s, t } }, pr.fac);
      piMod.verify(ctx, { N: parties[j].N }, pr.mod);
    });
  }
}

// ---------------------------------- the aux-info machine ----------------------------------

interface Own {
  readonly own: AuxOwn;
  /** u_i, the opening randomness of V_i. */
  readonly u: Uint8Array;
}

/** Waiting for the round-1 commitments. */
export interface AuxRound1 extends ProtocolState, Own {
  readonly round: 1;
  readonly sent: msg.Round1Wire;
}

/** Waiting for the round-2 decommitments. */
export interface AuxRound2 extends ProtocolState, Own, CommitmentsReceived {
  readonly round: 2;
}

/** Waiting for the round-3 proofs. */
export interface AuxRound3 extends ProtocolState {
  readonly round: 3;
  readonly p: bigint;
  readonly q: bigint;
  readonly parties: readonly PartyAux[];
  readonly rho: Uint8Array;
}

/** State of an aux-info run. */
export type AuxInfoState = AuxRound1 | AuxRound2 | AuxRound3;

/** The tuple party j commits to in round 1 (exported for audits and deviating-party tests). */
export function auxCommitmentItems(n: number, pub: AuxPublic): CommitItems {
  return [["n", BigInt(n)], ...auxItems(pub)];
}

const ROUNDS: readonly RoundSpec[] = [
  { round: 1, kind: "broadcast" },
  { round: 2, kind: "broadcast" },
  { round: 3, kind: "p2p" },
];

/** Figure 6, round 1: parameters, Pi-prm, rho_i, u_i; broadcast V_i. */
function start(input: AuxInfoInput, rng: RandomSource): Transition<AuxInfoState, AuxInfo> {
  assertSession(input.sid, input.i, input.n);
  const sid = Uint8Array.from(input.sid);
  const { i, n } = input;
  const own = prepareAux(NAME, sid, i, input.primes, rng);
  const { V, u } = commit(NAME, sid, i, auxCommitmentItems(n, auxPublic(own)), rng);
  const sent = msg.encodeRound1({ V });
  const state: AuxRound1 = { sid, i, n, round: 1, own, u, sent };
  return { state, outgoing: [envelope(NAME, state, 1, null, sent)] };
}

/** Figure 6, round 2: receive every V_j; broadcast the decommitment and the echo. */
function round1(s: AuxRound1, inbox: readonly Message[]): Transition<AuxInfoState, AuxInfo> {
  const { V, echo } = receiveCommitments(NAME, s, inbox);
  const payload = msg.encodeRound2({ pub: auxPublic(s.own), u: s.u, echo });
  const state: AuxRound2 = {
    sid: s.sid,
    i: s.i,
    n: s.n,
    round: 2,
    own: s.own,
    u: s.u,
    V,
    echo,
  };
  return { state, outgoing: [envelope(NAME, state, 2, null, payload)] };
}

/**
 * Figure 6, round 3: check the echo, the decommitments, N_j, s_j, t_j and Pi-prm; rho = XOR
 * rho_j; send psi_i and phi_i^j to each P_j.
 */
function round2(
  s: AuxRound2,
  inbox: readonly Message[],
  rng: RandomSource,
): Transition<AuxInfoState, AuxInfo> {
  const payloads = collectInbox(NAME, s, "broadcast", inbox);
  const faults = new RoundFaults(NAME, 2);
  const got = new Map<number, msg.Round2>();
  for (const [j, p] of payloads) {
    faults.check(j, "malformed-message", () => void got.set(j, msg.decodeRound2(p, s.n)));
  }
  checkDecommitments(faults, NAME, s, got, (d) => auxCommitmentItems(s.n, d.pub));
  const pubs = new Map([...got].map(([j, d]) => [j, d.pub]));
  const { parties, rho } = acceptAuxPublic(faults, NAME, s, auxPublic(s.own), pubs);
  const proofs = auxProofs(NAME, s.sid, s.i, rho, s.own, parties, rng);
  const state: AuxRound3 = {
    sid: s.sid,
    i: s.i,
    n: s.n,
    round: 3,
    p: s.own.p,
    q: s.own.q,
    parties,
    rho,
  };
  const outgoing = [...proofs].map(([j, pr]) => envelope(NAME, state, 3, j, msg.encodeRound3(pr)));
  return { state, outgoing };
}

/** Figure 6, output: verify psi_j and phi_j^i of every other party; output the aux info. */
function round3(s: AuxRound3, inbox: readonly Message[]): Transition<AuxInfoState, AuxInfo> {
  const payloads = collectInbox(NAME, s, "p2p", inbox);
  const faults = new RoundFaults(NAME, 3);
  const got = new Map<number, AuxProofs>();
  for (const [j, p] of payloads) {
    faults.check(j, "malformed-message", () => void got.set(j, msg.decodeRound3(p)));
  }
  verifyAuxProofs(faults, NAME, s.sid, s.i, s.rho, s.parties, got);
  checkDistinctModuli(faults, s.i, s.parties);
  faults.throwIfAny();
  const output: AuxInfo = { i: s.i, n: s.n, p: s.p, q: s.q, parties: s.parties };
  return { outgoing: [], output };
}

/**
 * Auxiliary info as a pure state machine (`start`, then `step` once per round). `start` proves
 * Pi-prm and round 2 proves Pi-mod and n-1 Pi-fac: seconds of work at real size.
 * @throws {TypeError} / {RangeError} from `start` on a bad input; {ProtocolAbort} from `step`.
 */
export const auxInfo: Protocol<AuxInfoInput, AuxInfoState, AuxInfo> = {
  name: NAME,
  rounds: ROUNDS,
  start,
  step: stepByRound(NAME, { 1: round1, 2: round2, 3: round3 }),
};
