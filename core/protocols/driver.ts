/**
 * The one async driver: runs a pure protocol machine over any transport, with cancellation and
 * per-round timeouts through `AbortSignal`, progress events, and a yield to the event loop after
 * each (heavy) step.
 *
 * The machine's `start` and `step` run on this thread, or wherever `RunOptions.compute` puts
 * them (the sign-service hands them to a pool of worker threads, platform/compute_pool.ts):
 * the driver keeps the waiting, the routing and the timeouts, and a step in flight is
 * cancelled by the run's signal.
 * @module
 */
import { ProtocolAbort, TransportError } from "../errors.ts";
import { type RandomSource, webCryptoRandom } from "../math/random.ts";
import { toHex } from "../bytes.ts";
import type { Message, Protocol, ProtocolState, Transition } from "./types.ts";

/** Moves envelopes for one party. */
export interface Transport {
  /** Sends one envelope (broadcast when `to` is null). */
  send(msg: Message): Promise<void>;
  /** The next envelope addressed to this party (or broadcast). Rejects on abort or close. */
  receive(signal: AbortSignal): Promise<Message>;
}

/** Progress of a run, for user interfaces. */
export type ProgressEvent =
  | { readonly type: "round-started"; readonly protocol: string; readonly round: number }
  | { readonly type: "round-finished"; readonly protocol: string; readonly round: number }
  | { readonly type: "dropped-message"; readonly protocol: string; readonly reason: string };

/** One call of a machine: its `start` with the input, or a `step` with a state and an inbox. */
export type ComputeCall<I, S> =
  | { readonly op: "start"; readonly input: I }
  | { readonly op: "step"; readonly state: S; readonly inbox: readonly Message[] };

/**
 * Runs a machine's `start` / `step` somewhere else (another thread). The state it returns may
 * be an opaque form of the machine's state: the driver reads only its routing fields (`sid`,
 * `i`, `n`, `round`) and hands it back to the next call.
 */
export interface StepCompute {
  /**
   * Runs one call of `protocol`.
   * @param signal aborts the call: a queued call is dropped, a running one stopped.
   * @returns the transition, as the machine's own call would.
   * @throws what the machine throws; {TransportError} "aborted" when `signal` aborts.
   */
  run<I, S extends ProtocolState, O>(
    protocol: Protocol<I, S, O>,
    call: ComputeCall<I, S>,
    signal: AbortSignal | undefined,
  ): Promise<Transition<S, O>>;
}

/** Options of `runProtocol`. */
export interface RunOptions {
  /** Cancels the run. */
  signal?: AbortSignal;
  /** Time allowed for the messages of one round to arrive (default 120 s). */
  roundTimeoutMs?: number;
  /** Randomness for the machine (default Web Crypto); used by inline runs only. */
  rng?: RandomSource;
  /**
   * Where `start` and `step` run (default: inline, on this thread, with `rng`). A compute of
   * its own uses its own randomness (Web Crypto).
   */
  compute?: StepCompute;
  onProgress?: (e: ProgressEvent) => void;
  /** Envelopes of later rounds kept while waiting (default 64); more is a protocol abuse. */
  maxBuffered?: number;
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Runs `protocol` for this party until it outputs.
 * @throws {ProtocolAbort} when the machine aborts; {TransportError} on timeout, cancellation or
 * a closed transport.
 */
export async function runProtocol<I, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O>,
  input: I,
  transport: Transport,
  options: RunOptions = {},
): Promise<O> {
  const rng = options.rng ?? webCryptoRandom;
  const emit = options.onProgress ?? (() => {});
  const maxBuffered = options.maxBuffered ?? 64;
  const name = protocol.name;
  const compute = options.compute;
  let t: Transition<S, O> = compute
    ? await compute.run(protocol, { op: "start", input }, options.signal)
    : protocol.start(input, rng);
  const buffered: Message[] = [];
  for (;;) {
    for (const m of t.outgoing) await transport.send(m);
    if (t.output !== undefined) return t.output;
    const state = t.state as S;
    const spec = protocol.rounds.find((r) => r.round === state.round);
    if (!spec) throw new Error(`${name}: state waits for undeclared round ${state.round}`);
    emit({ type: "round-started", protocol: name, round: state.round });
    const sid = toHex(state.sid);
    const inbox: Message[] = [];
    const senders = new Set<number>();
    const accept = (m: Message): boolean => {
      if (m.sid !== sid || m.protocol !== name) {
        emit({ type: "dropped-message", protocol: name, reason: "other session or protocol" });
        return false;
      }
      if (m.round < state.round) {
        emit({ type: "dropped-message", protocol: name, reason: "earlier round" });
        return false;
      }
      if (m.round > state.round) {
        if (buffered.length >= maxBuffered) {
          throw new ProtocolAbort(
            name,
            state.round,
            "unexpected-message",
            [m.from],
            "too many early messages",
          );
        }
        buffered.push(m);
        return false;
      }
      inbox.push(m);
      if (m.from !== state.i) senders.add(m.from);
      return true;
    };
    for (const m of buffered.splice(0)) accept(m);
    const deadline = AbortSignal.timeout(options.roundTimeoutMs ?? 120_000);
    const signal = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
    // A reflected or equivocating message is handed to the machine, which aborts with blame.
    while (!inbox.some((m) => m.from === state.i) && senders.size < state.n - 1) {
      let m: Message;
      try {
        m = await transport.receive(signal);
      } catch (e) {
        if (e instanceof TransportError) throw e;
        if (options.signal?.aborted) {
          throw new TransportError("aborted", `${name}: cancelled`, { cause: e });
        }
        if (deadline.aborted) {
          throw new TransportError("timeout", `${name} round ${state.round}: timed out`, {
            cause: e,
          });
        }
        throw new TransportError("io", `${name}: receive failed`, { cause: e });
      }
      accept(m);
    }
    if (compute) {
      t = await compute.run(protocol, { op: "step", state, inbox }, options.signal);
    } else {
      t = protocol.step(state, inbox, rng);
    }
    emit({ type: "round-finished", protocol: name, round: state.round });
    if (!compute) await tick();
  }
}
