/**
 * CGGMP21 presigning for n parties (n-of-n, additive shares), as a pure state machine: three
 * rounds of the paper plus an echo round, then a presignature (R, k_i, chi_i) and the public
 * data that lets the signing round identify a bad partial signature.
 *
 * Sources: CGGMP21 (ePrint 2021/060), Figure 7 "ECDSA Pre-Signing" (3 rounds); the Rust
 * reference's `spec/main.tex`, "Non-Threshold Presigning" (which fixes the paper's typos: the
 * MtA masks enter D and F as -beta, and delta_i adds +beta) and "Threshold Presigning" step 2
 * (HD: party 0 adds the shift to x_0, everybody adds shift * G to X_0).
 *
 * Rounds of this machine (the paper's round r is noted "paper round r"):
 *
 * | round | kind      | content                                                              |
 * |-------|-----------|----------------------------------------------------------------------|
 * | 1     | p2p       | paper round 1: K_i, G_i and psi0_{j,i} (Pi-enc under j's parameters) |
 * | 2     | broadcast | echo: digest of every (K_j, G_j) received, and of the signing inputs |
 * | 3     | p2p       | paper round 2: Gamma_i, D, F, D-hat, F-hat, psi, psi-hat, psi'       |
 * | 4     | p2p       | paper round 3: delta_i, Delta_i, psi'', S_i = chi_i Gamma, echo of Gamma |
 *
 * Each round's message, decoded and on the wire, with its codec: `presign_messages.ts`.
 *
 * Additions to the paper, each for blame (see SECURITY.md):
 * - The round-1 values travel point to point, so an echo round (the reference's "reliability
 *   check") makes every party compare what it received; the echo also covers the signing
 *   inputs (key and key epoch, HD path and shift, hash, everybody's public shares and aux
 *   parameters).
 * - Round 4 carries the echo of the Gamma_j received in round 3, so an equivocated Gamma_j is
 *   caught before any Pi-log* proof is blamed on an honest party.
 * - Round 4 carries S_i = chi_i * Gamma, a group element (not in Figure 7; this project's
 *   addition, equivalent to publishing chi_i * R since R = delta^-1 Gamma with delta public).
 *   Checked sum_j S_j = delta * X at the output, it lets the signing round check each sigma_j
 *   against public data, sigma_j Gamma = m Delta_j + r S_j, instead of the paper's Pi-mul* /
 *   Pi-dec identification of Figure 8 (see sign.ts for why this names exactly the cheaters).
 *   S_i reveals nothing sigma_i does not: sigma_i Gamma - m Delta_i = r S_i.
 *
 * How it computes (nothing sent changes):
 * - Every Paillier randomizer rho^N mod N^2 (K_i, G_i, the MtA masks under the peer's N_j and
 *   F, F-hat under one's own N_i, the first messages of Pi-enc, Pi-aff-g, Pi-log*) comes from
 *   the thread's randomizer source (core/paillier.ts `getRandomizerSource`): precomputed and
 *   handed out once when a `RandomizerRegistry` is installed (the compute workers keep one and
 *   fill it when idle), computed on the spot otherwise. Per run a party takes 2 + 7 (n - 1)
 *   under its own N and 4 under each peer's. The source is never part of a state.
 * - Each proof is verified with this party's Paillier key (`verifierKey`): its equations under
 *   one's own N_i^2 and ring-Pedersen N-hat_i are computed by CRT with p_i, q_i.
 *
 * @module
 */
import { encodePoint, toHex } from "../bytes.ts";
import { InternalError, InvalidKeyShare, ProtocolAbort } from "../errors.ts";
import { applyShiftToShare, deriveShift, MAX_DEPTH } from "../hd.ts";
import {
  bitLength,
  mod,
  modInv,
  randomBelow,
  randomSigned,
  type RandomSource,
} from "../math/mod.ts";
import { getRandomizerSource, PaillierPublicKey, PaillierSecretKey } from "../paillier.ts";
import { ELL_PRIME, MODULUS_MAX_BITS, MODULUS_MIN_BITS, Point, Q } from "../params.ts";
import type { PresignatureStore } from "../presignature_store.ts";
import { checkRingPedersenShape, type RingPedersenParams } from "../ring_pedersen.ts";
import { assertHashName, type HashName } from "../signature.ts";
import { Transcript } from "../transcript.ts";
import type { ProofContext } from "../zk/mod.ts";
import * as piAffG from "../zk/pi_aff_g.ts";
import * as piEnc from "../zk/pi_enc.ts";
import * as piLogStar from "../zk/pi_log_star.ts";
import { type RunOptions, runProtocol, type Transport } from "./driver.ts";
import { assertSession, checkEcho, RoundFaults } from "./echo.ts";
import { collectInbox, envelope } from "./inbox.ts";
import * as msg from "./presign_messages.ts";
import type {
  KeyShare,
  Message,
  Protocol,
  ProtocolName,
  ProtocolState,
  RoundSpec,
  Transition,
} from "./types.ts";

// ---------------------------------------------------------------------------------------------
// Inputs and outputs.

/** Largest HD index accepted: non-hardened indices are below 2^31 (BIP-32). */
const HARDENED = 0x80000000;

/**
 * What a presignature is bound to when it is made (CVE-2025-66017, fixed in cggmp24; Groth and
 * Shoup, Eurocrypt 2022): the key and its epoch, the HD path with its additive shift, and the
 * hash function the signer will apply to the message. None of these can change afterwards.
 */
export interface PresignatureBinding {
  /** Identifier of the key (the account id of the key share file). */
  readonly keyId: string;
  /**
   * The key epoch the presignature was made with: the 64-hex-digit digest naming the set of
   * shares (the key store computes it; both parties hold the same). A refresh starts a new
   * epoch, and the store refuses a presignature of another epoch. Null only inside full
   * signing, whose presignature never leaves the machine.
   */
  readonly epoch: string | null;
  /** Non-hardened BIP-32 indices below the key (empty: the key itself). */
  readonly hdPath: readonly number[];
  /** The additive shift of `hdPath` (public scalar in [0, q); 0 for an empty path). */
  readonly shift: bigint;
  /** The hash the fast path applies to the message; null inside full signing (raw digest). */
  readonly hash: HashName | null;
}

/** Input of presigning for one party. */
export interface PresignInput {
  /** This party's key share (key generation output plus aux info). */
  readonly share: KeyShare;
  /** Session id agreed by all parties (fresh for each run). */
  readonly sid: Uint8Array;
  /** Identifier of the key, bound into the presignature. */
  readonly keyId: string;
  /** The key epoch of `share` (64 lowercase hex digits, from the key store), bound too. */
  readonly epoch: string;
  /** HD path (non-hardened indices); default: none. */
  readonly hdPath?: readonly number[];
  /**
   * Additive shift of `hdPath` (`core/hd.ts` `deriveShift(X, chainCode, hdPath).shift`);
   * checked against the path, derived from it when omitted.
   */
  readonly shift?: bigint;
  /** Hash the fast path will apply; null only inside full signing. */
  readonly hash: HashName | null;
}

/** Input of the presigning rounds inside full signing: no epoch and no hash are bound. */
export type InSessionPresignInput = Omit<PresignInput, "epoch" | "hash"> & {
  readonly epoch: null;
  readonly hash: null;
};

/**
 * Checks a key epoch: the 32-byte digest naming a set of shares, as 64 lowercase hex digits.
 * @param epoch the value to check.
 * @param what what it is, for the message.
 * @returns `epoch`.
 * @throws {TypeError} for anything else.
 * @example
 * ```ts
 * import { assertKeyEpoch } from "./presign.ts";
 * console.assert(assertKeyEpoch("ab".repeat(32)) === "ab".repeat(32));
 * ```
 */
export function assertKeyEpoch(epoch: unknown, what = "key epoch"): string {
  if (typeof epoch !== "string" || !/^[0-9a-f]{64}$/.test(epoch)) {
    throw new TypeError(`expected the ${what} as 64 lowercase hex digits`);
  }
  return epoch;
}

/**
 * One party's presignature (Figure 7, Output: (R, k_i, chi_i)) with its binding and the public
 * data of the run that the signing round uses to identify a bad partial signature. `k` and
 * `chi` are secret; the rest is public. A presignature must be used at most once.
 */
export interface Presignature {
  /** Identifier: lowercase hex of the presigning session id (equal for all parties). */
  readonly id: string;
  readonly i: number;
  readonly n: number;
  readonly binding: PresignatureBinding;
  /** The public key the signature verifies under: X + shift * G. */
  readonly publicKey: Point;
  /** R = delta^-1 * Gamma (Figure 7, Output step 2). */
  readonly R: Point;
  /** k_i (secret). */
  readonly k: bigint;
  /** chi_i (secret), with sum_j chi_j = k x. */
  readonly chi: bigint;
  /** Gamma = sum_j Gamma_j (Figure 7, Round 3 step 2). */
  readonly Gamma: Point;
  /** delta = sum_j delta_j = k gamma (Figure 7, Output step 2; public). */
  readonly delta: bigint;
  /** Delta_j = k_j * Gamma for every party j (Figure 7, Round 3 step 2). */
  readonly Delta: readonly Point[];
  /** S_j = chi_j * Gamma for every party j (blame data, see the module doc). */
  readonly S: readonly Point[];
  /** Echo digests of (delta_j, Delta_j, S_j) as this party received them, one per party. */
  readonly view: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Internal state.

/** Fixed data of a run (public except `x` and `sk`). */
interface Setup {
  readonly protocol: ProtocolName;
  readonly sid: Uint8Array;
  readonly i: number;
  readonly n: number;
  /** x_i after the HD shift (secret). */
  readonly x: bigint;
  /** X_j after the HD shift. */
  readonly X: readonly Point[];
  /** X after the HD shift. */
  readonly publicKey: Point;
  readonly sk: PaillierSecretKey;
  /** N_j of every party. */
  readonly N: readonly bigint[];
  /** Ring-Pedersen (N-hat_j, s_j, t_j) of every party. */
  readonly aux: readonly RingPedersenParams[];
  readonly binding: PresignatureBinding;
  /** Digest of the signing inputs, compared in the echo round. */
  readonly inputs: string;
  /** Proof-context session ids, one per use of a proof (domain separation). */
  readonly ctx: Readonly<Record<ProofUse, Uint8Array>>;
}

type ProofUse = "psi0" | "psi" | "psi-hat" | "psi-prime" | "psi-prime-prime";
const PROOF_USES: readonly ProofUse[] = ["psi0", "psi", "psi-hat", "psi-prime", "psi-prime-prime"];

interface Round1Secrets {
  /** k_i, gamma_i in Z_q; rho_i, nu_i in Z*_{N_i} (Figure 7, Round 1). */
  readonly k: bigint;
  readonly gamma: bigint;
  readonly rho: bigint;
  readonly nu: bigint;
}

/** Waiting for round-1 messages. */
interface State1 extends ProtocolState {
  readonly round: 1;
  readonly setup: Setup;
  readonly sec: Round1Secrets;
  /** K_i = Enc_i(k_i; rho_i), G_i = Enc_i(gamma_i; nu_i). */
  readonly Ki: bigint;
  readonly Gi: bigint;
}

/** Waiting for the echo. */
interface State2 extends Omit<State1, "round"> {
  readonly round: 2;
  /** K_j, G_j of every party (own included). */
  readonly K: readonly bigint[];
  readonly G: readonly bigint[];
  readonly echo: readonly string[];
}

/** Waiting for paper round 2 (MtA). */
interface State3 extends Omit<State2, "round"> {
  readonly round: 3;
  readonly Gammai: Point;
  /** beta_{i,j} and beta-hat_{i,j} for each j (0 at j = i). */
  readonly beta: readonly bigint[];
  readonly betaHat: readonly bigint[];
}

/** Waiting for paper round 3. */
interface State4 extends Omit<State3, "round"> {
  readonly round: 4;
  readonly Gammas: readonly Point[];
  readonly Gamma: Point;
  readonly gammaEcho: readonly string[];
  readonly deltai: bigint;
  readonly chii: bigint;
  readonly Deltai: Point;
  readonly Si: Point;
}

/** A state of the presigning machine. */
export type PresignState = State1 | State2 | State3 | State4;

/** Rounds of the presigning machine. */
export const PRESIGN_ROUNDS: readonly RoundSpec[] = [
  { round: 1, kind: "p2p" },
  { round: 2, kind: "broadcast" },
  { round: 3, kind: "p2p" },
  { round: 4, kind: "p2p" },
];

// ---------------------------------------------------------------------------------------------
// Helpers.

/** Digest (hex) of labelled values, bound to the session and one party index. */
function digest(domain: string, sid: Uint8Array, party: number, fill: (t: Transcript) => void) {
  const t = Transcript.create(domain, sid, party);
  fill(t);
  return toHex(t.challengeBytes("digest", 32));
}

function proofCtx(setup: Setup, use: ProofUse, prover: number): ProofContext {
  return { sid: setup.ctx[use], prover };
}

function peers(s: { i: number; n: number }): number[] {
  const out: number[] = [];
  for (let j = 0; j < s.n; j++) if (j !== s.i) out.push(j);
  return out;
}

/** The same point with Z = 1. */
function affine(P: Point): Point {
  return Point.fromAffine(P.toAffine());
}

function sumPoints(points: readonly Point[]): Point {
  return points.reduce((a, b) => a.add(b), Point.ZERO);
}

/**
 * Checks a key share given by the caller (not by a peer) and the binding, and applies the HD
 * shift (spec "Threshold Presigning" step 2, via `core/hd.ts`).
 * @throws {InvalidKeyShare} for an inconsistent share; {TypeError} / {RangeError} for bad
 *   binding arguments.
 */
function makeSetup(input: PresignInput | InSessionPresignInput, protocol: ProtocolName): Setup {
  const { share, sid } = input;
  if (typeof share !== "object" || share === null) throw new TypeError("expected a key share");
  assertSession(sid, share.i, share.n);
  const { i, n } = share;
  const keyId = input.keyId;
  if (typeof keyId !== "string" || keyId.length === 0 || keyId.length > 256) {
    throw new TypeError("expected a key id of 1-256 characters");
  }
  const hdPath = input.hdPath ?? [];
  if (!Array.isArray(hdPath) || hdPath.length > MAX_DEPTH) {
    throw new TypeError(`expected the HD path as an array of at most ${MAX_DEPTH} indices`);
  }
  for (const idx of hdPath) {
    if (!Number.isInteger(idx) || idx < 0) throw new RangeError("expected HD indices >= 0");
    if (idx >= HARDENED) throw new RangeError("hardened HD indices cannot be derived by MPC");
  }
  // The shift is the caller's (core/hd.ts); it must be the one of this path below this key.
  const derived = hdPath.length ? deriveShift(share.publicKey, share.chainCode, hdPath).shift : 0n;
  const shift = input.shift ?? derived;
  if (typeof shift !== "bigint" || shift < 0n || shift >= Q) {
    throw new RangeError("expected an HD shift in [0, q)");
  }
  if (shift !== derived) throw new RangeError("the HD shift is not the shift of the HD path");
  const hash = input.hash === null ? null : assertHashName(input.hash);
  // Only full signing (hash null, digest chosen in the same session) goes without an epoch.
  const epoch = input.epoch === null && hash === null ? null : assertKeyEpoch(input.epoch);
  if (
    !Array.isArray(share.publicShares) || share.publicShares.length !== n ||
    typeof share.x !== "bigint" || share.x <= 0n || share.x >= Q
  ) {
    throw new InvalidKeyShare("inconsistent", "key share: bad secret share or public shares");
  }
  if (!Point.BASE.multiply(share.x).equals(share.publicShares[i])) {
    throw new InvalidKeyShare("inconsistent", "key share: x_i * G differs from X_i");
  }
  if (!sumPoints(share.publicShares).equals(share.publicKey)) {
    throw new InvalidKeyShare("inconsistent", "key share: public shares do not sum to the key");
  }
  const aux = share.aux;
  if (!aux || aux.i !== i || aux.n !== n || aux.parties?.length !== n) {
    throw new InvalidKeyShare("inconsistent", "key share: aux info of another party or size");
  }
  for (const P of aux.parties) {
    const bits = bitLength(P.N);
    if (bits < MODULUS_MIN_BITS || bits > MODULUS_MAX_BITS || !checkRingPedersenShape(P)) {
      throw new InvalidKeyShare("weak-aux-info", "key share: a modulus or s, t is malformed");
    }
  }
  if (aux.p * aux.q !== aux.parties[i].N) {
    throw new InvalidKeyShare("inconsistent", "key share: p q differs from N_i");
  }
  // Spec "Threshold Presigning" step 2: X_0 += shift G, x_0 += shift (party 0 only).
  const shifted = applyShiftToShare(share, shift);
  const binding: PresignatureBinding = { keyId, epoch, hdPath: [...hdPath], shift, hash };
  const N = aux.parties.map((P) => P.N);
  const rp = aux.parties.map(({ N, s, t }) => ({ N, s, t }));
  const inputs = digest(`${protocol}/inputs`, sid, 0, (t) => {
    t.appendString("key", keyId);
    // Labelled items: the epoch item is absent in full signing, whose transcript is unchanged.
    if (epoch !== null) t.appendString("epoch", epoch);
    t.appendUint("path-length", BigInt(hdPath.length));
    for (const idx of hdPath) t.appendUint("index", BigInt(idx));
    t.appendUint("shift", shift).appendString("hash", hash ?? "raw-digest");
    for (let j = 0; j < n; j++) {
      t.appendBytes("X", shifted.publicShares[j].toBytes(true));
      t.appendUint("N", rp[j].N).appendUint("s", rp[j].s).appendUint("t", rp[j].t);
    }
  });
  const ctx = {} as Record<ProofUse, Uint8Array>;
  for (const use of PROOF_USES) {
    const t = Transcript.create(`${protocol}/proof-context`, sid, 0).appendString("use", use);
    ctx[use] = t.challengeBytes("sid", 32);
  }
  return {
    protocol,
    sid: Uint8Array.from(sid),
    i,
    n,
    x: shifted.x,
    X: shifted.publicShares,
    publicKey: shifted.publicKey,
    sk: new PaillierSecretKey(aux.p, aux.q),
    N,
    aux: rp,
    binding,
    inputs,
    ctx,
  };
}

// ---------------------------------------------------------------------------------------------
// Round 1 (Figure 7, Round 1).

/**
 * Starts presigning: samples k_i, gamma_i, encrypts them and proves K_i in range to each peer.
 * Exported for the full-signing machine of sign.ts, which runs these rounds under its own name.
 * @throws {TypeError} / {RangeError} / {InvalidKeyShare} on bad input.
 */
export function startPresign(
  input: PresignInput | InSessionPresignInput,
  rng: RandomSource,
  protocol: ProtocolName,
): { readonly state: PresignState; readonly outgoing: readonly Message[] } {
  const setup = makeSetup(input, protocol);
  const { i, n, sk } = setup;
  const Ni = setup.N[i];
  const randomizers = getRandomizerSource();
  // Figure 7, Round 1: k_i, gamma_i <- F_q; rho_i, nu_i <- Z*_{N_i};
  // K_i = Enc_i(k_i; rho_i), G_i = Enc_i(gamma_i; nu_i) (spec: enc^crt with sk_i). rho_i and nu_i
  // come with their N_i-th powers from the thread's randomizer source (precomputed when it has
  // them); both stay in the state for the proofs that use them (psi0, psi', psi'').
  const k = randomBelow(Q - 1n, rng) + 1n;
  const gamma = randomBelow(Q - 1n, rng) + 1n;
  const [rho, rhoN] = randomizers.take(sk, rng);
  const [nu, nuN] = randomizers.take(sk, rng);
  const sec: Round1Secrets = { k, gamma, rho, nu };
  const Ki = sk.publicKey.encryptWithRandomizer(k, rhoN);
  const Gi = sk.publicKey.encryptWithRandomizer(gamma, nuN);
  const state: State1 = { sid: setup.sid, i, n, round: 1, setup, sec, Ki, Gi };
  const outgoing: Message[] = [];
  for (const j of peers(state)) {
    // Figure 7, Round 1: psi0_{j,i} = Pi-enc((sid, i), R_j, (N_i, K_i); (k_i, rho_i)).
    const psi0 = piEnc.prove(
      proofCtx(setup, "psi0", i),
      { N0: Ni, K: Ki, aux: setup.aux[j] },
      { k: sec.k, rho: sec.rho, sk },
      rng,
      { randomizers },
    );
    outgoing.push(envelope(protocol, state, 1, j, msg.encodeRound1({ K: Ki, G: Gi, psi0 })));
  }
  return { state, outgoing };
}

function echoEntry(setup: Setup, j: number, K: bigint, G: bigint): string {
  return digest(`${setup.protocol}/echo-round-1`, setup.sid, j, (t) => {
    t.appendUint("K", K).appendUint("G", G);
  });
}

/** Round 1 received: check K_j, G_j and psi0 from every peer; send the echo. */
function step1(state: State1, inbox: readonly Message[]): Transition<PresignState, never> {
  const { setup, i } = state;
  const payloads = collectInbox(setup.protocol, state, "p2p", inbox);
  const faults = new RoundFaults(setup.protocol, 1);
  const K: bigint[] = [];
  const G: bigint[] = [];
  K[i] = state.Ki;
  G[i] = state.Gi;
  for (const j of peers(state)) {
    let m: msg.Round1 | undefined;
    faults.check(j, "malformed-message", () => {
      m = msg.decodeRound1(payloads.get(j), setup.N[j]);
    });
    if (!m) continue;
    const { psi0 } = m;
    K[j] = m.K;
    G[j] = m.G;
    // Figure 7, Round 2 step 1: verify psi0_{i,j} = Pi-enc((sid, j), R_i, (N_j, K_j)); the
    // equation under R_i's N-hat = N_i by CRT with this party's primes.
    faults.check(j, "proof-failed", () => {
      piEnc.verify(
        proofCtx(setup, "psi0", j),
        { N0: setup.N[j], K: K[j], aux: setup.aux[i] },
        psi0,
        { verifierKey: setup.sk },
      );
    });
  }
  faults.throwIfAny();
  // Echo (spec "Reliability check"): H(K_j, G_j) for every j, and the digest of the inputs.
  const echo = K.map((Kj, j) => echoEntry(setup, j, Kj, G[j]));
  echo.push(setup.inputs);
  const next: State2 = { ...state, round: 2, K, G, echo };
  const payload = msg.encodeRound2({ echo });
  return { state: next, outgoing: [envelope(setup.protocol, next, 2, null, payload)] };
}

// ---------------------------------------------------------------------------------------------
// Round 2: the echo, then Figure 7, Round 2 (MtA with Pi-aff-g, Gamma_i with Pi-log*).

function step2(
  state: State2,
  inbox: readonly Message[],
  rng: RandomSource,
): Transition<PresignState, never> {
  const { setup, i, n, sec } = state;
  const payloads = collectInbox(setup.protocol, state, "broadcast", inbox);
  const faults = new RoundFaults(setup.protocol, 2);
  const echoes = new Map<number, readonly string[]>();
  for (const j of peers(state)) {
    faults.check(j, "malformed-message", () => {
      echoes.set(j, msg.decodeRound2(payloads.get(j), n).echo);
    });
  }
  // Entry n: the signing inputs; a party that disagrees has another key, path, hash or aux.
  for (const [j, e] of echoes) {
    if (e[n] !== state.echo[n]) {
      faults.add(j, "invalid-value", "it signs with other inputs (key, HD path, hash or aux)");
    }
  }
  checkEcho(
    faults,
    i,
    state.echo.slice(0, n),
    new Map([...echoes].map(([j, e]) => [j, e.slice(0, n)])),
  );
  faults.throwIfAny();

  // Figure 7, Round 2: Gamma_i = gamma_i * G.
  const Gammai = Point.BASE.multiply(sec.gamma);
  const Ni = setup.N[i];
  const beta: bigint[] = new Array(n).fill(0n);
  const betaHat: bigint[] = new Array(n).fill(0n);
  const outgoing: Message[] = [];
  const next: State3 = { ...state, round: 3, Gammai, beta, betaHat };
  const randomizers = getRandomizerSource();
  const pki = setup.sk.publicKey;
  for (const j of peers(state)) {
    const Nj = setup.N[j];
    const pkj = new PaillierPublicKey(Nj);
    const Kj = state.K[j];
    // Spec Round 2: beta, beta-hat <- +-2^l'; s, s-hat <- Z*_{N_j}; r, r-hat <- Z*_{N_i}, each
    // with its N-th power from the randomizer source (s, s-hat under the peer's N_j).
    beta[j] = randomSigned(ELL_PRIME, rng);
    betaHat[j] = randomSigned(ELL_PRIME, rng);
    const [s, sN] = randomizers.take(pkj, rng);
    const [sHat, sHatN] = randomizers.take(pkj, rng);
    const [r, rN] = randomizers.take(setup.sk, rng);
    const [rHat, rHatN] = randomizers.take(setup.sk, rng);
    // D_{j,i} = (gamma_i (.) K_j) (+) Enc_j(-beta_{i,j}; s_{i,j}); F_{j,i} = Enc_i(-beta; r).
    const D = pkj.add(pkj.mul(Kj, sec.gamma), pkj.encryptWithRandomizer(-beta[j], sN));
    const F = pki.encryptWithRandomizer(-beta[j], rN);
    // D-hat_{j,i} = (x_i (.) K_j) (+) Enc_j(-beta-hat; s-hat); F-hat = Enc_i(-beta-hat; r-hat).
    const DHat = pkj.add(pkj.mul(Kj, setup.x), pkj.encryptWithRandomizer(-betaHat[j], sHatN));
    const FHat = pki.encryptWithRandomizer(-betaHat[j], rHatN);
    // psi_{j,i} = Pi-aff-g((sid, i), R_j, (N_j, N_i, K_j, D, F, Gamma_i); (gamma_i, -beta, s, r)).
    const psi = piAffG.prove(
      proofCtx(setup, "psi", i),
      { N0: Nj, N1: Ni, C: Kj, D, Y: F, X: Gammai, aux: setup.aux[j] },
      { x: sec.gamma, y: -beta[j], rho: s, rhoY: r, sk: setup.sk },
      rng,
      { randomizers },
    );
    // psi-hat_{j,i}: the same for (x_i, X_i) (X_i after the HD shift).
    const psiHat = piAffG.prove(
      proofCtx(setup, "psi-hat", i),
      { N0: Nj, N1: Ni, C: Kj, D: DHat, Y: FHat, X: setup.X[i], aux: setup.aux[j] },
      { x: setup.x, y: -betaHat[j], rho: sHat, rhoY: rHat, sk: setup.sk },
      rng,
      { randomizers },
    );
    // psi'_{j,i} = Pi-log*((sid, i), R_j, (N_i, G_i, Gamma_i, G); (gamma_i, nu_i)).
    const psiPrime = piLogStar.prove(
      proofCtx(setup, "psi-prime", i),
      { N0: Ni, C: state.Gi, X: Gammai, B: Point.BASE, aux: setup.aux[j] },
      { x: sec.gamma, rho: sec.nu, sk: setup.sk },
      rng,
      { randomizers },
    );
    const m = { Gamma: Gammai, D, F, DHat, FHat, psi, psiHat, psiPrime };
    outgoing.push(envelope(setup.protocol, next, 3, j, msg.encodeRound3(m)));
  }
  return { state: next, outgoing };
}

// ---------------------------------------------------------------------------------------------
// Round 3 (Figure 7, Round 3).

function gammaEntry(setup: Setup, j: number, Gamma: Point): string {
  return digest(`${setup.protocol}/echo-round-3`, setup.sid, j, (t) => {
    t.appendBytes("Gamma", Gamma.toBytes(true));
  });
}

function step3(
  state: State3,
  inbox: readonly Message[],
  rng: RandomSource,
): Transition<PresignState, never> {
  const { setup, i, sec } = state;
  const payloads = collectInbox(setup.protocol, state, "p2p", inbox);
  const faults = new RoundFaults(setup.protocol, 3);
  const Ni = setup.N[i];
  const Gammas: Point[] = [];
  Gammas[i] = state.Gammai;
  const D: bigint[] = [];
  const DHat: bigint[] = [];
  for (const j of peers(state)) {
    const Nj = setup.N[j];
    let decoded: msg.Round3 | undefined;
    faults.check(j, "malformed-message", () => {
      decoded = msg.decodeRound3(payloads.get(j), Ni, Nj);
    });
    if (!decoded) continue;
    const m = decoded;
    Gammas[j] = m.Gamma;
    D[j] = m.D;
    DHat[j] = m.DHat;
    // Figure 7, Round 3 step 1 (spec): verify psi, psi-hat (Pi-aff-g) and psi' (Pi-log*). The
    // equations under this party's own N_i^2 (D, K_i) and N-hat_i are computed by CRT.
    const own = { verifierKey: setup.sk };
    faults.check(j, "proof-failed", () => {
      piAffG.verify(
        proofCtx(setup, "psi", j),
        { N0: Ni, N1: Nj, C: state.K[i], D: D[j], Y: m.F, X: Gammas[j], aux: setup.aux[i] },
        m.psi,
        own,
      );
    });
    faults.check(j, "proof-failed", () => {
      piAffG.verify(
        proofCtx(setup, "psi-hat", j),
        { N0: Ni, N1: Nj, C: state.K[i], D: DHat[j], Y: m.FHat, X: setup.X[j], aux: setup.aux[i] },
        m.psiHat,
        own,
      );
    });
    faults.check(j, "proof-failed", () => {
      piLogStar.verify(
        proofCtx(setup, "psi-prime", j),
        { N0: Nj, C: state.G[j], X: Gammas[j], B: Point.BASE, aux: setup.aux[i] },
        m.psiPrime,
        own,
      );
    });
  }
  faults.throwIfAny();

  // Figure 7, Round 3 step 2: Gamma = sum_j Gamma_j, Delta_i = k_i * Gamma.
  const Gamma = sumPoints(Gammas);
  if (Gamma.is0()) {
    throw new ProtocolAbort(setup.protocol, 3, "invalid-value", [], "Gamma is the identity");
  }
  const Deltai = Gamma.multiply(sec.k);
  // Figure 7, Round 3 step 3 (spec signs): alpha_{i,j} = dec_i(D_{i,j}), alpha-hat likewise;
  // delta_i = gamma_i k_i + sum_j (alpha_{i,j} + beta_{i,j}) mod q,
  // chi_i = x_i k_i + sum_j (alpha-hat_{i,j} + beta-hat_{i,j}) mod q.
  let deltai = sec.gamma * sec.k;
  let chii = setup.x * sec.k;
  for (const j of peers(state)) {
    deltai += setup.sk.decrypt(D[j]) + state.beta[j];
    chii += setup.sk.decrypt(DHat[j]) + state.betaHat[j];
  }
  deltai = mod(deltai, Q);
  chii = mod(chii, Q);
  // Blame data: S_i = chi_i * Gamma (module doc).
  const Si = chii === 0n ? Point.ZERO : Gamma.multiply(chii);
  const gammaEcho = Gammas.map((G, j) => gammaEntry(setup, j, G));
  const next: State4 = { ...state, round: 4, Gammas, Gamma, gammaEcho, deltai, chii, Deltai, Si };
  const outgoing: Message[] = [];
  for (const j of peers(state)) {
    // psi''_{j,i} = Pi-log*((sid, i), R_j, (N_i, K_i, Delta_i, Gamma); (k_i, rho_i)).
    const psiPP = piLogStar.prove(
      proofCtx(setup, "psi-prime-prime", i),
      { N0: Ni, C: state.Ki, X: Deltai, B: Gamma, aux: setup.aux[j] },
      { x: sec.k, rho: sec.rho, sk: setup.sk },
      rng,
      { randomizers: getRandomizerSource() },
    );
    const m = { echo: gammaEcho, delta: deltai, Delta: Deltai, S: Si, psiPrimePrime: psiPP };
    outgoing.push(envelope(setup.protocol, next, 4, j, msg.encodeRound4(m)));
  }
  return { state: next, outgoing };
}

// ---------------------------------------------------------------------------------------------
// Round 4 (Figure 7, Output).

/** Digest of the public round-4 values of party j, compared again in the signing round. */
function viewEntry(setup: Setup, j: number, delta: bigint, Delta: Point, S: Point): string {
  return digest(`${setup.protocol}/echo-round-4`, setup.sid, j, (t) => {
    t.appendUint("delta", delta).appendString("Delta", encodePoint(Delta));
    t.appendString("S", encodePoint(S));
  });
}

function step4(state: State4, inbox: readonly Message[]): Transition<PresignState, Presignature> {
  const { setup, i, n } = state;
  const payloads = collectInbox(setup.protocol, state, "p2p", inbox);
  const faults = new RoundFaults(setup.protocol, 4);
  const delta: bigint[] = [];
  const Delta: Point[] = [];
  const S: Point[] = [];
  delta[i] = state.deltai;
  Delta[i] = state.Deltai;
  S[i] = state.Si;
  const echoes = new Map<number, readonly string[]>();
  const proofs = new Map<number, piLogStar.Proof>();
  for (const j of peers(state)) {
    faults.check(j, "malformed-message", () => {
      const m = msg.decodeRound4(payloads.get(j), n);
      echoes.set(j, m.echo);
      delta[j] = m.delta;
      Delta[j] = m.Delta;
      S[j] = m.S;
      proofs.set(j, m.psiPrimePrime);
    });
  }
  // The Gamma_j of round 3 must be the same for everybody before psi'' is judged.
  checkEcho(faults, i, state.gammaEcho, echoes);
  faults.throwIfAny();
  for (const [j, proof] of proofs) {
    // Figure 7, Output step 1: verify psi''_{i,j} = Pi-log*((sid, j), R_i, (N_j, K_j, Delta_j,
    // Gamma)).
    faults.check(j, "proof-failed", () => {
      piLogStar.verify(
        proofCtx(setup, "psi-prime-prime", j),
        { N0: setup.N[j], C: state.K[j], X: Delta[j], B: state.Gamma, aux: setup.aux[i] },
        proof,
        { verifierKey: setup.sk },
      );
    });
  }
  faults.throwIfAny();
  // Figure 7, Output step 2: delta = sum_j delta_j; check delta * G = sum_j Delta_j.
  const d = mod(delta.reduce((a, b) => a + b, 0n), Q);
  const deltaOk = d !== 0n && Point.BASE.multiplyUnsafe(d).equals(sumPoints(Delta));
  // Blame data: sum_j S_j = chi Gamma = x k gamma G = delta X.
  const sOk = deltaOk && setup.publicKey.multiplyUnsafe(d).equals(sumPoints(S));
  if (!deltaOk || !sOk) {
    // Every Delta_j is proven (psi''); an unproven delta_j or S_j is wrong. With n = 2 it can only
    // be the peer's (this party computed its own); with n >= 3 the paper's identification needs
    // Pi-mul / Pi-dec, which this implementation does not run: no culprit is named.
    const culprits = n === 2 ? peers(state) : [];
    const what = !deltaOk
      ? "delta * G differs from sum of Delta_j"
      : "sum of S_j differs from delta X";
    throw new ProtocolAbort(setup.protocol, 4, "invalid-value", culprits, what);
  }
  // Figure 7, Output step 2: R = delta^-1 * Gamma.
  const R = state.Gamma.multiplyUnsafe(modInv(d, Q));
  if (R.is0()) throw new InternalError("presign: R is the identity");
  const view = Delta.map((Dj, j) => viewEntry(setup, j, delta[j], Dj, S[j]));
  const output: Presignature = {
    id: toHex(setup.sid),
    i,
    n,
    binding: setup.binding,
    // Both in affine form (Z = 1): the signing round reads x(R), y(R) and encodes the key
    // without a field inversion (noble's toAffine is not cached).
    publicKey: affine(setup.publicKey),
    R: affine(R),
    k: state.sec.k,
    chi: state.chii,
    Gamma: state.Gamma,
    delta: d,
    Delta,
    S,
    view,
  };
  return { outgoing: [], output };
}

/**
 * One step of presigning (rounds 1-4). Exported for the full-signing machine of sign.ts.
 * @throws {ProtocolAbort} naming every culprit of the round.
 */
export function stepPresign(
  state: PresignState,
  inbox: readonly Message[],
  rng: RandomSource,
): Transition<PresignState, Presignature> {
  switch (state.round) {
    case 1:
      return step1(state, inbox);
    case 2:
      return step2(state, inbox, rng);
    case 3:
      return step3(state, inbox, rng);
    case 4:
      return step4(state, inbox);
  }
  throw new InternalError("presign: unknown round");
}

/**
 * The presigning protocol (CGGMP21 Figure 7 plus echo) as a pure machine, named "presign".
 * Its output is this party's `Presignature`; store it with a `PresignatureStore` and use it at
 * most once (sign.ts `signMessageWithPresignature`).
 * @example
 * ```ts
 * import { presignProtocol } from "./presign.ts";
 * import { runProtocol, type Transport } from "./driver.ts";
 * import type { KeyShare } from "./types.ts";
 * // Needs the peer and seconds of Paillier work: a function, type-checked, not run here.
 * export function presign(share: KeyShare, sid: Uint8Array, epoch: string, transport: Transport) {
 *   const input = { share, sid, keyId: "alice", epoch, hash: "sha256" } as const;
 *   return runProtocol(presignProtocol, input, transport); // this party's Presignature
 * }
 * ```
 */
export const presignProtocol: Protocol<PresignInput, PresignState, Presignature> = {
  name: "presign",
  rounds: PRESIGN_ROUNDS,
  start: (input, rng) => startPresign(input, rng, "presign"),
  step: (state, inbox, rng) => stepPresign(state, inbox, rng),
};

/**
 * Runs presigning for this party over `transport` and puts the presignature into `store`
 * (refused first when the key is locked for signing).
 * @param input share, session id, key id and key epoch, hash, optional HD path and shift.
 * @param transport this party's transport.
 * @param options driver options and the store.
 * @returns the presignature id (the same for every party), for `signMessageWithPresignature`.
 * @throws {ProtocolAbort} "key-locked", or an abort of the protocol with blame;
 *   {TransportError} on timeout or cancellation.
 * @example
 * ```ts
 * import { generatePresignature } from "./presign.ts";
 * import type { Transport } from "./driver.ts";
 * import type { KeyShare } from "./types.ts";
 * import type { PresignatureStore } from "../presignature_store.ts";
 * // Needs the peer and seconds of Paillier work: a function, type-checked, not run here.
 * export function refill(
 *   share: KeyShare,
 *   sid: Uint8Array, // fresh, agreed with the peer
 *   epoch: string, // the key's current epoch, from the key store
 *   transport: Transport,
 *   store: PresignatureStore,
 * ): Promise<string> {
 *   const input = { share, sid, keyId: "alice", epoch, hash: "sha256" } as const;
 *   return generatePresignature(input, transport, { store }); // for signMessageWithPresignature
 * }
 * ```
 */
export async function generatePresignature(
  input: PresignInput,
  transport: Transport,
  options: RunOptions & { readonly store: PresignatureStore },
): Promise<string> {
  if (await options.store.keyLock(input.keyId)) {
    throw new ProtocolAbort(
      "presign",
      1,
      "key-locked",
      [],
      "presigning refused: the key is locked",
    );
  }
  const presignature = await runProtocol(presignProtocol, input, transport, options);
  await options.store.put(presignature);
  return presignature.id;
}
