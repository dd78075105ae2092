/**
 * Key refresh, n-of-n: new auxiliary info and a zero-sum re-sharing of the secret key, so every
 * share changes and the public key does not (CGGMP21, ePrint 2021/060, Figure 6 "Auxiliary
 * Info. & Key Refresh"; the Rust reference's `spec/main.tex`, "(Non-Threshold) Key Refresh",
 * and its `key_refresh/non_threshold.rs`; the paper's El-Gamal keys Y_i are left out, as the
 * reference does).
 *
 * | round | kind      | party i sends                                                        |
 * |-------|-----------|----------------------------------------------------------------------|
 * | 1     | broadcast | V_i = H("refresh", sid, i, n, key, X_i^*, A_i^*, N_i, s_i, t_i,       |
 * |       |           | psi-hat_i, rho_i, u_i) and the digest of the refreshed key's data    |
 * | 2     | broadcast | the decommitment and the echo of round 1                             |
 * | 3     | p2p       | to P_j: psi_i (Pi-mod), phi_i^j (Pi-fac under P_j's parameters),     |
 * |       |           | C_i^j = Enc_{N_j}(x_i^j), psi_i^k (Pi-sch of x_i^k) for every k      |
 *
 * Each round's message, decoded and on the wire, with its codec: `refresh_messages.ts`.
 *
 * Round 1: x_i^k <- Z_q for k != 0 and x_i^0 = -sum x_i^k, so sum_k x_i^k = 0; X_i^k = x_i^k G;
 * a Schnorr commitment A_i^k per k. Output: x_i* = x_i + sum_j x_j^i and X_k* = X_k + sum_j
 * X_j^k. Checks on every other party j: the key data it refreshes equals ours; the echo; the
 * decommitment; sum_k X_j^k = 0; the aux checks (N_j, s_j, t_j, Pi-prm; Pi-mod and Pi-fac in
 * round 3, then every N_j distinct, blaming a copier and never the owner of an N); C_j^i a unit
 * mod N_i^2 decrypting to x_j^i in [1, q) with x_j^i G = X_j^i; every psi_j^k against (sid, j,
 * rho, k, X_j^k, A_j^k).
 *
 * Blame: all checks are local. A mismatch between C_j^i and X_j^i is detected and blamed by the
 * receiver alone; it cannot prove it to others without revealing its decryption key.
 *
 * Constant time: every scalar this module multiplies onto G is secret (x_i, x_i^k, the decrypted
 * x_j^i, x_i*), so every such product goes through `secretTimesG` (noble's constant-time
 * `multiply`); `multiplyUnsafe` is not used here (SECURITY.md, constant-time policy).
 * @module
 */
import { toHex } from "../bytes.ts";
import { InternalError, ProtocolAbort } from "../errors.ts";
import { mod, randomBelow, type RandomSource } from "../math/mod.ts";
import { PaillierPublicKey, PaillierSecretKey } from "../paillier.ts";
import { Point, Q } from "../params.ts";
import { Transcript } from "../transcript.ts";
import * as sch from "../zk/pi_sch.ts";
import {
  acceptAuxPublic,
  auxItems,
  type AuxOwn,
  auxProofs,
  type AuxPublic,
  auxPublic,
  checkDistinctModuli,
  type PaillierPrimes,
  prepareAux,
  rhoContext,
  verifyAuxProofs,
} from "./aux_info.ts";
import { collectInbox, envelope } from "./inbox.ts";
import {
  checkDecommitments,
  commit,
  type CommitItems,
  type CommitmentsReceived,
} from "./commitment.ts";
import { assertSession, echoVector, RoundFaults } from "./echo.ts";
import * as msg from "./refresh_messages.ts";
import {
  type KeyShare,
  type KeyShareCore,
  type Message,
  type PartyAux,
  type Protocol,
  type ProtocolState,
  type RoundSpec,
  stepByRound,
  type Transition,
} from "./types.ts";

const NAME = "refresh";

/** Input of a key refresh. */
export interface RefreshInput {
  /** Session id agreed by all parties (16-1024 bytes, fresh for every run). */
  readonly sid: Uint8Array;
  /** The key share to refresh (its aux info, if any, is replaced). */
  readonly keyShare: KeyShareCore;
  /** This party's new pregenerated safe primes (secret). */
  readonly primes: PaillierPrimes;
}

/**
 * x G for a secret scalar x in [1, q), by noble's constant-time `multiply`: the one way this
 * module multiplies a scalar onto the generator (every such scalar here is secret).
 * @throws {RangeError} when x is not in [1, q) (callers check the range first).
 */
function secretTimesG(x: bigint): Point {
  return Point.BASE.multiply(x);
}

/**
 * Checks the key share to refresh (misuse, not blame): indices, x in [1, q) with x G = X_i,
 * n valid non-identity public shares summing to the public key.
 * @throws {TypeError} / {RangeError}.
 */
function assertKeyShare(k: KeyShareCore): void {
  if (typeof k !== "object" || k === null) throw new TypeError("expected a key share");
  if (k.curve !== "secp256k1") throw new RangeError("expected a secp256k1 key share");
  if (typeof k.x !== "bigint" || k.x <= 0n || k.x >= Q) throw new RangeError("bad secret share");
  const shares = k.publicShares;
  if (!Array.isArray(shares) || shares.length !== k.n) {
    throw new RangeError(`expected ${k.n} public shares`);
  }
  for (const P of [...shares, k.publicKey]) {
    if (!(P instanceof Point) || P.is0()) throw new TypeError("expected non-identity points");
    P.assertValidity();
  }
  if (!secretTimesG(k.x).equals(shares[k.i])) {
    throw new RangeError("the secret share does not match its public share");
  }
  if (!shares.reduce((a, b) => a.add(b)).equals(k.publicKey)) {
    throw new RangeError("the public shares do not sum to the public key");
  }
  if (!(k.rid instanceof Uint8Array) || !(k.chainCode instanceof Uint8Array)) {
    throw new TypeError("expected rid and chain code bytes");
  }
}

/** Digest of the public data of the key being refreshed (all parties must agree on it). */
function keyDigest(sid: Uint8Array, k: KeyShareCore): Uint8Array {
  const t = Transcript.create("refresh/key", sid, 0);
  t.appendString("curve", k.curve).appendUint("n", BigInt(k.n));
  t.appendBytes("publicKey", k.publicKey.toBytes(true));
  k.publicShares.forEach((P, j) => t.appendBytes(`X[${j}]`, P.toBytes(true)));
  t.appendBytes("rid", k.rid).appendBytes("chainCode", k.chainCode);
  return t.challengeBytes("digest", msg.KEY_DIGEST_BYTES);
}

/** Figure 6, round 1: what party i commits to (sid, i and u are added by the commitment). */
export function refreshCommitmentItems(
  n: number,
  key: Uint8Array,
  X: readonly Point[],
  A: readonly Point[],
  pub: AuxPublic,
): CommitItems {
  return [["n", BigInt(n)], ["key", key], ["X", X], ["A", A], ...auxItems(pub)];
}

/** The bytes the Schnorr proof of x_i^k is bound to besides (sid, i): rho and k. */
function schRid(rho: Uint8Array, k: number): Uint8Array {
  const out = new Uint8Array(rho.length + 4);
  out.set(rho);
  new DataView(out.buffer).setUint32(rho.length, k);
  return out;
}

interface Own {
  readonly key: KeyShareCore;
  readonly keyDigest: Uint8Array;
  readonly aux: AuxOwn;
  /** x_i^k for every k (secret), summing to 0 mod q. */
  readonly shares: readonly bigint[];
  /** X_i^k = x_i^k G. */
  readonly X: readonly Point[];
  /** The Schnorr nonces behind A_i^k (secret, each used once in round 2). */
  readonly nonces: readonly sch.Nonce[];
  readonly u: Uint8Array;
}

/** Waiting for the round-1 commitments. */
export interface RefreshRound1 extends ProtocolState, Own {
  readonly round: 1;
  readonly sent: msg.Round1Wire;
}

/** Waiting for the round-2 decommitments. */
export interface RefreshRound2 extends ProtocolState, Own, CommitmentsReceived {
  readonly round: 2;
}

/** Waiting for the round-3 shares and proofs. */
export interface RefreshRound3 extends ProtocolState {
  readonly round: 3;
  readonly key: KeyShareCore;
  readonly p: bigint;
  readonly q: bigint;
  readonly parties: readonly PartyAux[];
  readonly rho: Uint8Array;
  /** x_i^i, the part of this party's own re-sharing that it keeps. */
  readonly ownShare: bigint;
  /** X_j^k for every j, k. */
  readonly X: readonly (readonly Point[])[];
  /** A_j^k for every j, k. */
  readonly A: readonly (readonly Point[])[];
}

/** State of a refresh run. */
export type RefreshState = RefreshRound1 | RefreshRound2 | RefreshRound3;

const ROUNDS: readonly RoundSpec[] = [
  { round: 1, kind: "broadcast" },
  { round: 2, kind: "broadcast" },
  { round: 3, kind: "p2p" },
];

/** Figure 6, round 1: zero-sum shares, Schnorr commitments, aux material; broadcast V_i. */
function start(input: RefreshInput, rng: RandomSource): Transition<RefreshState, KeyShare> {
  const key = input.keyShare;
  assertSession(input.sid, key?.i, key?.n);
  assertKeyShare(key);
  const sid = Uint8Array.from(input.sid);
  const { i, n } = key;
  const aux = prepareAux(NAME, sid, i, input.primes, rng);
  let shares: bigint[];
  do {
    shares = [0n];
    for (let k = 1; k < n; k++) shares.push(randomBelow(Q, rng));
    shares[0] = mod(-shares.reduce((a, b) => a + b, 0n), Q);
  } while (shares.some((x) => x === 0n));
  const X = shares.map(secretTimesG);
  const nonces = shares.map(() => sch.commit(rng));
  const digest = keyDigest(sid, key);
  const items = refreshCommitmentItems(n, digest, X, nonces.map((r) => r.A), auxPublic(aux));
  const { V, u } = commit(NAME, sid, i, items, rng);
  const sent = msg.encodeRound1({ V, key: digest });
  const state: RefreshRound1 = {
    sid,
    i,
    n,
    round: 1,
    key,
    keyDigest: digest,
    aux,
    shares,
    X,
    nonces,
    u,
    sent,
  };
  return { state, outgoing: [envelope(NAME, state, 1, null, sent)] };
}

/** Figure 6, round 2: check every party refreshes the same key; broadcast the decommitment. */
function round1(s: RefreshRound1, inbox: readonly Message[]): Transition<RefreshState, KeyShare> {
  const payloads = collectInbox(NAME, s, "broadcast", inbox);
  const faults = new RoundFaults(NAME, 1);
  const got: msg.Round1[] = new Array(s.n);
  got[s.i] = msg.decodeRound1(s.sent);
  for (const [j, p] of payloads) {
    faults.check(j, "malformed-message", () => {
      got[j] = msg.decodeRound1(p);
    });
  }
  got.forEach(({ key }, j) => {
    if (j !== s.i && toHex(key) !== s.sent.key) {
      faults.add(j, "invalid-value", "it refreshes a key with other public data than ours");
    }
  });
  faults.throwIfAny();
  const V = got.map((m) => m.V);
  const echo = echoVector(s.sid, NAME, 1, got.map(msg.encodeRound1));
  const payload = msg.encodeRound2({
    X: s.X,
    A: s.nonces.map((r) => r.A),
    pub: auxPublic(s.aux),
    u: s.u,
    echo,
  });
  const { sent: _sent, ...rest } = s;
  const state: RefreshRound2 = { ...rest, round: 2, V, echo };
  return { state, outgoing: [envelope(NAME, state, 2, null, payload)] };
}

/**
 * Figure 6, round 3: check the echo, the decommitments, sum_k X_j^k = 0, N_j, s_j, t_j and
 * Pi-prm; rho = XOR rho_j; send Pi-mod, Pi-fac, Enc_{N_j}(x_i^j) and the Pi-sch proofs.
 */
function round2(
  s: RefreshRound2,
  inbox: readonly Message[],
  rng: RandomSource,
): Transition<RefreshState, KeyShare> {
  const payloads = collectInbox(NAME, s, "broadcast", inbox);
  const faults = new RoundFaults(NAME, 2);
  const got = new Map<number, msg.Round2>();
  for (const [j, p] of payloads) {
    faults.check(j, "malformed-message", () => void got.set(j, msg.decodeRound2(p, s.n)));
  }
  checkDecommitments(
    faults,
    NAME,
    s,
    got,
    (d) => refreshCommitmentItems(s.n, s.keyDigest, d.X, d.A, d.pub),
  );
  for (const [j, d] of got) {
    faults.check(j, "invalid-value", () => {
      if ([...d.X, ...d.A].some((P) => P.is0())) throw new RangeError("X_j^k or A_j^k is zero");
      if (!d.X.reduce((a, b) => a.add(b)).is0()) {
        throw new RangeError("the re-sharing X_j^k does not sum to zero");
      }
    });
  }
  const pubs = new Map([...got].map(([j, d]) => [j, d.pub]));
  const { parties, rho } = acceptAuxPublic(faults, NAME, s, auxPublic(s.aux), pubs);

  const proofs = auxProofs(NAME, s.sid, s.i, rho, s.aux, parties, rng);
  const ctx = rhoContext(NAME, s.sid, s.i, rho);
  const psi = s.shares.map((x, k) =>
    sch.prove(ctx, { X: s.X[k], rid: schRid(rho, k) }, s.nonces[k], { x })
  );
  const X = parties.map((_, j) => (j === s.i ? s.X : got.get(j)!.X));
  const A = parties.map((_, j) => (j === s.i ? s.nonces.map((r) => r.A) : got.get(j)!.A));
  const state: RefreshRound3 = {
    sid: s.sid,
    i: s.i,
    n: s.n,
    round: 3,
    key: s.key,
    p: s.aux.p,
    q: s.aux.q,
    parties,
    rho,
    ownShare: s.shares[s.i],
    X,
    A,
  };
  const outgoing = [...proofs].map(([j, pr]) => {
    const [C] = new PaillierPublicKey(parties[j].N).encrypt(s.shares[j], rng);
    return envelope(NAME, state, 3, j, msg.encodeRound3({ proofs: pr, C, psi }));
  });
  return { state, outgoing };
}

/**
 * Figure 6, output: decrypt and check x_j^i, verify every Pi-sch, Pi-fac and Pi-mod; x_i* =
 * x_i + sum_j x_j^i, X_k* = X_k + sum_j X_j^k.
 */
function round3(s: RefreshRound3, inbox: readonly Message[]): Transition<RefreshState, KeyShare> {
  const payloads = collectInbox(NAME, s, "p2p", inbox);
  const faults = new RoundFaults(NAME, 3);
  const got = new Map<number, msg.Round3>();
  for (const [j, p] of payloads) {
    faults.check(j, "malformed-message", () => void got.set(j, msg.decodeRound3(p, s.n)));
  }
  const sk = new PaillierSecretKey(s.p, s.q);
  const received = new Map<number, bigint>();
  for (const [j, d] of got) {
    faults.check(j, "invalid-value", () => {
      if (!sk.publicKey.isCiphertext(d.C)) throw new RangeError("C_j^i is not a unit mod N_i^2");
      const x = sk.decrypt(d.C);
      // x_j^i is secret: constant-time multiplication (X_j^i is not the identity, so 0 fails).
      if (x <= 0n || x >= Q || !secretTimesG(x).equals(s.X[j][s.i])) {
        throw new RangeError("the encrypted share does not match X_j^i");
      }
      received.set(j, x);
    });
  }
  for (const [j, d] of got) {
    faults.check(j, "proof-failed", () => {
      const ctx = rhoContext(NAME, s.sid, j, s.rho);
      d.psi.forEach((psi, k) => {
        if (!psi.A.equals(s.A[j][k])) throw new RangeError("pi-sch: A differs from A_j^k");
        sch.verify(ctx, { X: s.X[j][k], rid: schRid(s.rho, k) }, psi);
      });
    });
  }
  verifyAuxProofs(
    faults,
    NAME,
    s.sid,
    s.i,
    s.rho,
    s.parties,
    new Map([...got].filter(([j]) => !faults.has(j)).map(([j, d]) => [j, d.proofs])),
  );
  checkDistinctModuli(faults, s.i, s.parties);
  faults.throwIfAny();

  let x = s.key.x + s.ownShare;
  for (const v of received.values()) x += v;
  x = mod(x, Q);
  const publicShares = s.key.publicShares.map((P, k) =>
    s.X.reduce((acc, row) => acc.add(row[k]), P)
  );
  if (x === 0n || publicShares.some((P) => P.is0())) {
    throw new ProtocolAbort(NAME, 3, "invalid-value", [], "a refreshed share is zero");
  }
  if (!secretTimesG(x).equals(publicShares[s.i])) {
    throw new InternalError("refresh: the new share does not match its public share");
  }
  const output: KeyShare = {
    curve: "secp256k1",
    i: s.i,
    n: s.n,
    x,
    publicKey: s.key.publicKey,
    publicShares,
    rid: s.key.rid,
    chainCode: s.key.chainCode,
    aux: { i: s.i, n: s.n, p: s.p, q: s.q, parties: s.parties },
  };
  return { outgoing: [], output };
}

/**
 * Key refresh as a pure state machine (`start`, then `step` once per round). Costs as aux info
 * plus n Paillier encryptions and Schnorr proofs per party.
 * @throws {TypeError} / {RangeError} from `start` on a bad input; {ProtocolAbort} from `step`.
 */
export const refresh: Protocol<RefreshInput, RefreshState, KeyShare> = {
  name: NAME,
  rounds: ROUNDS,
  start,
  step: stepByRound(NAME, { 1: round1, 2: round2, 3: round3 }),
};
