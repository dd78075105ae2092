/**
 * CGGMP21 signing (one round) on top of a presignature, full signing (presigning + signing in
 * one session), the presignature rules of CVE-2025-66017, and the key lock after an invalid
 * signature.
 *
 * Sources: CGGMP21 (ePrint 2021/060), Figure 8 "ECDSA Signing" (sigma_i = k_i m + r chi_i,
 * sigma = sum sigma_j, verify, output); the Rust reference's `spec/main.tex`, "Signing" (local
 * signing and combining); cggmp24's fix of CVE-2025-66017 and Groth-Shoup (Eurocrypt 2022,
 * "On the security of ECDSA with additive key derivation and presignatures").
 *
 * The signing round's message, decoded and on the wire, with its codec: `sign_messages.ts`.
 *
 * Rules (see SECURITY.md, "Presignatures"):
 * - `signDigest` takes a raw 32-byte digest and ALWAYS runs the full protocol (a fresh nonce
 *   made in the same session); it never looks at stored presignatures. A presignature combined
 *   with a digest chosen after it was made is what CVE-2025-66017 exploits.
 * - `signMessageWithPresignature` takes the MESSAGE and hashes it with the hash bound to the
 *   presignature; the presignature is bound to its key, key epoch and HD path (shift applied
 *   when it was made) and is consumed from the store (`take`) before the partial signature
 *   leaves. It is the ONLY exported way to sign with a presignature: the one-round machine
 *   stays private to this module, so no caller can run it on a presignature the store did not
 *   hand out (and mark used, durably) first.
 * - The combined signature is verified (by @noble/curves) before it is returned. If it is
 *   invalid, each sigma_j is checked against the presignature's public data,
 *   sigma_j * Gamma = m * Delta_j + r * S_j, which names every party whose share is wrong; the
 *   key is then locked for signing until an operator unlocks it (Lindell17 abort attack: a
 *   failed signature is never silently retried).
 *
 * Why the check identifies (this party's view): the presignature guarantees
 * delta * G = sum_j Delta_j = k * Gamma (each Delta_j proven by Pi-log*) and sum_j S_j = delta X.
 * If every sigma_j passes, sum_j sigma_j * Gamma = m k Gamma + r delta X; multiplied by delta^-1,
 * s R = m G + r X: the signature is valid. So an invalid signature fails the check of at least
 * one party, and an honest party (sigma_j = k_j m + r chi_j, S_j = chi_j Gamma, Delta_j =
 * k_j Gamma) always passes it.
 * @module
 */
import { fromHex, toHex } from "../bytes.ts";
import { ProtocolAbort } from "../errors.ts";
import { mod, type RandomSource } from "../math/mod.ts";
import { Q } from "../params.ts";
import { assertBinding, type KeyLock, type PresignatureStore } from "../presignature_store.ts";
import {
  digestToScalar,
  type EcdsaSignature,
  finalizeSignature,
  hashMessage,
  type HashName,
} from "../signature.ts";
import { Transcript } from "../transcript.ts";
import { type RunOptions, runProtocol, type Transport } from "./driver.ts";
import { checkEcho, RoundFaults } from "./echo.ts";
import { collectInbox, envelope } from "./inbox.ts";
import * as msg from "./sign_messages.ts";
import {
  PRESIGN_ROUNDS,
  type Presignature,
  type PresignState,
  startPresign,
  stepPresign,
} from "./presign.ts";
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
// The signing round (Figure 8).

/** State of the signing round: waiting for every party's sigma_j. */
export interface SignRoundState extends ProtocolState {
  readonly protocol: ProtocolName;
  readonly pre: Presignature;
  readonly digest: Uint8Array;
  /** m = the digest as a scalar. */
  readonly m: bigint;
  /** r = x(R) mod q. */
  readonly r: bigint;
  readonly sigma: bigint;
}

/** Figure 8, Round 1: sigma_i = k_i m + r chi_i; broadcast it with the digest and the view. */
function signRound(
  pre: Presignature,
  digest: Uint8Array,
  protocol: ProtocolName,
  round: number,
  sid: Uint8Array,
): Transition<SignRoundState, never> {
  const m = digestToScalar(digest);
  // r = x(R) mod q (Figure 8, Round 1).
  const r = pre.R.toAffine().x % Q;
  if (r === 0n) throw new ProtocolAbort(protocol, round, "invalid-value", [], "r = 0");
  const sigma = mod(pre.k * m + r * pre.chi, Q);
  const state: SignRoundState = {
    sid,
    i: pre.i,
    n: pre.n,
    round,
    protocol,
    pre,
    digest: Uint8Array.from(digest),
    m,
    r,
    sigma,
  };
  const payload = msg.encodeSignRound({ sigma, digest, echo: pre.view });
  return { state, outgoing: [envelope(protocol, state, round, null, payload)] };
}

/**
 * Figure 8, Output: sigma = sum_j sigma_j; verify (r, sigma) before returning it. On failure,
 * every sigma_j is checked against the public data of the presignature (module doc).
 */
function combine(
  state: SignRoundState,
  inbox: readonly Message[],
): Transition<never, EcdsaSignature> {
  const { protocol, pre, round, i, n, m, r } = state;
  const payloads = collectInbox(protocol, state, "broadcast", inbox);
  const faults = new RoundFaults(protocol, round);
  const sigma: bigint[] = [];
  sigma[i] = state.sigma;
  const echoes = new Map<number, readonly string[]>();
  const digestHex = toHex(state.digest);
  for (let j = 0; j < n; j++) {
    if (j === i) continue;
    faults.check(j, "malformed-message", () => {
      const m = msg.decodeSignRound(payloads.get(j), n);
      sigma[j] = m.sigma;
      echoes.set(j, m.echo);
      if (toHex(m.digest) !== digestHex) {
        faults.add(j, "invalid-value", "it signs another message digest");
      }
    });
  }
  // The presignature's public data must be the same for everybody before sigma_j is judged.
  checkEcho(faults, i, pre.view, echoes);
  faults.throwIfAny();
  const s = mod(sigma.reduce((a, b) => a + b, 0n), Q);
  const sig = finalizeSignature({ R: pre.R, s, digest: state.digest, publicKey: pre.publicKey });
  if (sig) return { outgoing: [], output: sig };
  // Identification: sigma_j * Gamma = m * Delta_j + r * S_j for an honest j.
  const culprits: number[] = [];
  for (let j = 0; j < n; j++) {
    const lhs = pre.Gamma.multiplyUnsafe(sigma[j]);
    const rhs = pre.Delta[j].multiplyUnsafe(m).add(pre.S[j].multiplyUnsafe(r));
    if (!lhs.equals(rhs)) culprits.push(j);
  }
  const own = culprits.includes(i);
  throw new ProtocolAbort(
    protocol,
    round,
    "bad-signature-share",
    culprits.filter((j) => j !== i),
    culprits.length === 0
      ? "the combined signature is invalid and no partial signature is at fault"
      : own
      ? "the combined signature is invalid; this party's own partial signature fails its check"
      : "the combined signature is invalid: partial signatures fail their check",
  );
}

// ---------------------------------------------------------------------------------------------
// Signing with a stored presignature (the fast path).

/** Input of the one-round signing machine. */
export interface SignWithPresignatureInput {
  /** A presignature taken (consumed) from the store. */
  readonly presignature: Presignature;
  /** The message; it is hashed with the hash bound to the presignature. */
  readonly message: Uint8Array;
}

/** Session id of the signing round of a presignature: derived from its id (single use). */
export function presignatureSignSid(presignatureId: string): Uint8Array {
  const t = Transcript.create("sign/with-presignature", fromHex(presignatureId), 0);
  return t.challengeBytes("sid", 32);
}

/**
 * Signing with a presignature (Figure 8) as a pure machine named "sign" with one broadcast
 * round. It takes the message, never a digest: the signer hashes it with the hash the
 * presignature was made for. Module-private on purpose: `signMessageWithPresignature` runs it
 * only on a presignature just consumed from the store.
 */
const signWithPresignatureProtocol: Protocol<
  SignWithPresignatureInput,
  SignRoundState,
  EcdsaSignature
> = {
  name: "sign",
  rounds: [{ round: 1, kind: "broadcast" }],
  start(input) {
    const pre = input.presignature;
    if (pre.binding.hash === null) {
      throw new TypeError("this presignature was made for a raw digest and cannot be stored");
    }
    const digest = hashMessage(pre.binding.hash, input.message);
    return signRound(pre, digest, "sign", 1, presignatureSignSid(pre.id));
  },
  step: (state, inbox) => combine(state, inbox),
};

// ---------------------------------------------------------------------------------------------
// Full signing: presigning (rounds 1-4) and signing (round 5) in one session.

/** Input of full signing. */
export interface FullSignInput {
  readonly share: KeyShare;
  /** Session id agreed by all parties (fresh). */
  readonly sid: Uint8Array;
  /** Identifier of the key (for the lock after an invalid signature). */
  readonly keyId: string;
  /** The 32-byte message digest to sign, chosen now (a raw digest: CVE-2025-66017). */
  readonly digest: Uint8Array;
  /** HD path (non-hardened) and its additive shift from `core/hd.ts`; default none. */
  readonly hdPath?: readonly number[];
  readonly shift?: bigint;
}

/** State of full signing. */
export type FullSignState = (PresignState & { readonly digest: Uint8Array }) | SignRoundState;

const FULL_SIGN_ROUNDS: readonly RoundSpec[] = [...PRESIGN_ROUNDS, { round: 5, kind: "broadcast" }];

/**
 * Full signing (Figures 7 and 8 in one session) as a pure machine named "sign": rounds 1-4 are
 * presigning, round 5 is the signing round. The presignature never leaves the machine.
 */
export const fullSignProtocol: Protocol<FullSignInput, FullSignState, EcdsaSignature> = {
  name: "sign",
  rounds: FULL_SIGN_ROUNDS,
  start(input, rng) {
    const digest = input.digest;
    digestToScalar(digest); // refuses anything but 32 bytes before any work
    const t = startPresign({ ...input, epoch: null, hash: null }, rng, "sign");
    return { state: { ...t.state, digest: Uint8Array.from(digest) }, outgoing: t.outgoing };
  },
  step(state, inbox, rng: RandomSource) {
    if ("pre" in state) return combine(state, inbox);
    const digest = state.digest;
    const t = stepPresign(state, inbox, rng);
    if (t.output === undefined) {
      return { state: { ...t.state, digest }, outgoing: t.outgoing };
    }
    return signRound(t.output, digest, "sign", 5, state.sid);
  },
};

// ---------------------------------------------------------------------------------------------
// Async entry points with the store: key lock, presignature consumption.

/** Options of the signing entry points. */
export interface SigningOptions extends RunOptions {
  /** Where presignatures and key locks live: an invalid signature locks the key there. */
  readonly store: PresignatureStore;
  /** Clock for the lock record (default Date.now). */
  readonly clock?: () => number;
}

async function assertNotLocked(store: PresignatureStore, keyId: string) {
  const lock = await store.keyLock(keyId);
  if (lock) {
    throw new ProtocolAbort(
      "sign",
      1,
      "key-locked",
      [],
      "signing refused: an earlier invalid signature locked this key until an operator unlocks it",
    );
  }
}

async function lockOnBadShare(
  store: PresignatureStore,
  keyId: string,
  sid: Uint8Array,
  e: unknown,
  clock: () => number,
): Promise<void> {
  if (!(e instanceof ProtocolAbort) || e.code !== "bad-signature-share") return;
  const lock: KeyLock = {
    keyId,
    protocol: e.protocol,
    round: e.round,
    culprits: [...e.culprits],
    sid: toHex(sid),
    reason: e.message,
    at: clock(),
  };
  await store.lockKey(lock);
}

/**
 * Signs a raw 32-byte digest by running the FULL protocol (presigning and signing in one
 * session). Never uses a stored presignature (CVE-2025-66017).
 * @param input share, session id, key id, digest, optional HD path and shift.
 * @param transport this party's transport.
 * @param options driver options; `store` holds the key lock (its presignatures are not used).
 * @returns the verified signature (low-S, recovery id, DER, compact).
 * @throws {ProtocolAbort} "key-locked" before any message when the key is locked; any abort of
 *   the protocol, "bad-signature-share" naming the culprits (the key is then locked in `store`);
 *   {TypeError} for a digest that is not 32 bytes.
 * @example
 * ```ts
 * import { signDigest } from "./sign.ts";
 * import type { Transport } from "./driver.ts";
 * import type { KeyShare } from "./types.ts";
 * import type { PresignatureStore } from "../presignature_store.ts";
 * // Needs the peer and seconds of Paillier work: a function, type-checked, not run here.
 * export async function signTx(
 *   share: KeyShare,
 *   sid: Uint8Array, // fresh, agreed with the peer
 *   txHash: Uint8Array,
 *   transport: Transport,
 *   store: PresignatureStore, // holds the key lock
 * ) {
 *   const input = { share, sid, keyId: "alice", digest: txHash };
 *   const sig = await signDigest(input, transport, { store });
 *   return [sig.r, sig.s, sig.recoveryId, sig.der, sig.compact];
 * }
 * ```
 */
export async function signDigest(
  input: FullSignInput,
  transport: Transport,
  options: SigningOptions,
): Promise<EcdsaSignature> {
  await assertNotLocked(options.store, input.keyId);
  try {
    return await runProtocol(fullSignProtocol, input, transport, options);
  } catch (e) {
    await lockOnBadShare(options.store, input.keyId, input.sid, e, options.clock ?? Date.now);
    throw e;
  }
}

/** What the fast path signs with. */
export interface PresignatureSignRequest {
  /** Id of a stored presignature (equal for every party). */
  readonly presignatureId: string;
  /**
   * The key, its current epoch, the HD path and the hash the caller expects; the presignature
   * must have been made so.
   */
  readonly keyId: string;
  /** The key's current epoch (64 lowercase hex digits, from the key store). */
  readonly epoch: string;
  readonly hdPath: readonly number[];
  readonly hash: HashName;
  /** The message (not a digest): hashed here with `hash`. */
  readonly message: Uint8Array;
}

/**
 * Signs a MESSAGE with a stored presignature: checks the key lock, takes (consumes) the
 * presignature from the store with its binding checked, hashes the message with the bound
 * hash, then runs the signing round.
 * @throws {ProtocolAbort} "key-locked", "presignature-used" (before anything is sent),
 *   "bad-signature-share" (the key is then locked); {RangeError} when the presignature is bound
 *   to another key, key epoch, path or hash.
 * @example
 * ```ts
 * import { signMessageWithPresignature } from "./sign.ts";
 * import { createMemoryNetwork } from "./memory_transport.ts";
 * import type { Presignature } from "./presign.ts";
 * import { MemoryPresignatureStore } from "../presignature_store.ts";
 * import { hashMessage, verifySignature } from "../signature.ts";
 * // Each party's presignature of one presigning run (presign.ts), made for sha256.
 * export async function signBoth(presignatures: readonly Presignature[], message: Uint8Array) {
 *   const net = createMemoryNetwork(presignatures.length);
 *   const [sig] = await Promise.all(presignatures.map(async (p, i) => {
 *     const store = new MemoryPresignatureStore();
 *     await store.put(p);
 *     const { keyId, epoch } = p.binding;
 *     const request = { presignatureId: p.id, keyId, epoch: epoch!, hdPath: [], message };
 *     return signMessageWithPresignature({ ...request, hash: "sha256" }, net[i], { store });
 *   }));
 *   const digest = hashMessage("sha256", message);
 *   const { publicKey } = presignatures[0];
 *   console.assert(verifySignature(publicKey, digest, sig.r, sig.s, sig.recoveryId));
 *   return sig;
 * }
 * ```
 */
export async function signMessageWithPresignature(
  request: PresignatureSignRequest,
  transport: Transport,
  options: SigningOptions,
): Promise<EcdsaSignature> {
  const { store } = options;
  if (!(request.message instanceof Uint8Array)) {
    throw new TypeError("expected the message as bytes");
  }
  await assertNotLocked(store, request.keyId);
  const expected = {
    keyId: request.keyId,
    epoch: request.epoch,
    hdPath: request.hdPath,
    hash: request.hash,
  };
  const presignature = await store.take(request.presignatureId, expected);
  // The store checked the binding; checked again here so a faulty store cannot make this sign
  // with a presignature of another key, epoch, path or hash (it is consumed all the same).
  if (presignature?.id !== request.presignatureId) {
    throw new RangeError("presignature: the store returned another presignature");
  }
  assertBinding(presignature, expected);
  try {
    return await runProtocol(
      signWithPresignatureProtocol,
      { presignature, message: request.message },
      transport,
      options,
    );
  } catch (e) {
    const sid = presignatureSignSid(presignature.id);
    await lockOnBadShare(store, request.keyId, sid, e, options.clock ?? Date.now);
    throw e;
  }
}
