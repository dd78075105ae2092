/**
 * Shared shapes of the CGGMP21 protocols: the message envelope, the pure state-machine
 * interface every protocol module implements, round declarations, and the key material the
 * protocols produce (key share, auxiliary info).
 *
 * A protocol is `start(input, rng) -> Transition` then `step(state, inbox, rng) -> Transition`
 * until a transition carries `output`. No I/O, timers or globals; the RNG is injected. The
 * async driver (`driver.ts`) moves messages; the machine re-checks every inbox itself.
 * @module
 */
import type { RandomSource } from "../math/random.ts";
import type { Point } from "../params.ts";

/** Names of the protocols (the `protocol` field of every envelope). */
export type ProtocolName = "keygen" | "aux-info" | "refresh" | "presign" | "sign" | "lifecycle";

/**
 * Envelope of every protocol message. `to: null` is a broadcast. The payload is JSON-able
 * (integers as lowercase hex, points as compressed hex) so an envelope goes on the wire as is.
 */
export interface Message {
  /** Session id, lowercase hex (agreed by all parties before the protocol starts). */
  readonly sid: string;
  readonly protocol: ProtocolName;
  /** 1-based round number. */
  readonly round: number;
  /** Sender's party index (0-based). */
  readonly from: number;
  /** Receiver's party index, or null for a broadcast. */
  readonly to: number | null;
  readonly payload: unknown;
}

/** Declares how the messages of a round travel. */
export interface RoundSpec {
  readonly round: number;
  readonly kind: "broadcast" | "p2p";
}

/** What every protocol state carries so the driver can route messages. */
export interface ProtocolState {
  readonly sid: Uint8Array;
  /** This party's index. */
  readonly i: number;
  /** Number of parties. */
  readonly n: number;
  /** The round whose messages the state waits for. */
  readonly round: number;
}

/** Result of a step: the next state, or the final output; plus the messages to send. */
export type Transition<S, O> =
  | { readonly state: S; readonly outgoing: readonly Message[]; readonly output?: undefined }
  | { readonly state?: undefined; readonly outgoing: readonly Message[]; readonly output: O };

/** A protocol as a pure state machine. */
export interface Protocol<I, S extends ProtocolState, O> {
  readonly name: ProtocolName;
  readonly rounds: readonly RoundSpec[];
  start(input: I, rng: RandomSource): Transition<S, O>;
  step(state: S, inbox: readonly Message[], rng: RandomSource): Transition<S, O>;
}

/**
 * The `step` of a machine with one function per round: the one of `state.round`.
 * @param name the protocol's name, for the error.
 * @param steps per round, the function that takes that round's messages.
 * @returns a `step` for `Protocol`.
 * @throws {TypeError} (from the returned step) "<name>: unknown state" for any other round.
 * @example
 * ```ts
 * import { stepByRound, type Transition } from "./types.ts";
 * type S = { sid: Uint8Array; i: number; n: number; round: 1 };
 * const step = stepByRound<S, string>("keygen", {
 *   1: (): Transition<S, string> => ({ outgoing: [], output: "done" }),
 * });
 * const state: S = { sid: new Uint8Array(16), i: 0, n: 2, round: 1 };
 * console.assert(step(state, [], () => {}).output === "done");
 * ```
 */
export function stepByRound<S extends ProtocolState, O>(
  name: ProtocolName,
  steps: {
    readonly [R in S["round"]]: (
      state: Extract<S, { readonly round: R }>,
      inbox: readonly Message[],
      rng: RandomSource,
    ) => Transition<S, O>;
  },
): (state: S, inbox: readonly Message[], rng: RandomSource) => Transition<S, O> {
  return (state, inbox, rng) => {
    if (!Object.hasOwn(steps, state.round)) throw new TypeError(`${name}: unknown state`);
    const step = steps[state.round as S["round"]] as (
      state: S,
      inbox: readonly Message[],
      rng: RandomSource,
    ) => Transition<S, O>;
    return step(state, inbox, rng);
  };
}

/**
 * The threshold key share of one party after key generation (n-of-n): its secret share x_i,
 * everybody's public shares X_j = x_j G, the public key X = sum X_j, the joint randomness rid and
 * the joint BIP-32 chain code.
 */
export interface KeyShareCore {
  readonly curve: "secp256k1";
  readonly i: number;
  readonly n: number;
  /** x_i, this party's secret share (mod q). */
  readonly x: bigint;
  /** X = sum_j X_j. */
  readonly publicKey: Point;
  /** X_j = x_j G for every party j. */
  readonly publicShares: readonly Point[];
  /** rid = XOR of every party's rid_j (kappa bytes). */
  readonly rid: Uint8Array;
  /** Chain code = XOR of every party's chain-code contribution (32 bytes). */
  readonly chainCode: Uint8Array;
}

/** Public Paillier / ring-Pedersen parameters of one party. */
export interface PartyAux {
  /** N_j = p_j q_j (Paillier and ring-Pedersen modulus). */
  readonly N: bigint;
  /** s_j = t_j^lambda_j mod N_j. */
  readonly s: bigint;
  /** t_j = r_j^2 mod N_j. */
  readonly t: bigint;
}

/** Auxiliary info of one party: its own Paillier primes and everybody's public parameters. */
export interface AuxInfo {
  readonly i: number;
  readonly n: number;
  /** This party's safe primes (secret). */
  readonly p: bigint;
  readonly q: bigint;
  /** Public parameters of every party, indexed by party. */
  readonly parties: readonly PartyAux[];
}

/** A complete key share: key generation output plus aux info. */
export interface KeyShare extends KeyShareCore {
  readonly aux: AuxInfo;
}

/**
 * Hex of bytes lives in `core/bytes.ts`; this re-export only keeps `toHex` in the public
 * `wallet-mpc/core/protocols` subpath, where it was before (nothing in the repository imports
 * it from here).
 * @deprecated import `toHex` from `core/bytes.ts`.
 */
export { toHex } from "../bytes.ts";
