/**
 * Test helpers for the protocol machines: a deviating party (a protocol wrapped so that at a
 * chosen round it alters its outgoing payloads), a recorder of transitions (to reuse honest
 * states in hostile tests), a deterministic lock-step runner with a rushing adversary that sees
 * every message of a round before its own are delivered, and a runner over `runProtocol` and
 * the in-memory network.
 * @module
 */
import assert from "node:assert/strict";
import { type AbortCode, ProtocolAbort, TransportError } from "../core/errors.ts";
import type { RandomSource } from "../core/math/mod.ts";
import { runProtocol } from "../core/protocols/driver.ts";
import { createMemoryNetwork, type Tamper } from "../core/protocols/memory_transport.ts";
import type { Message, Protocol, ProtocolState, Transition } from "../core/protocols/types.ts";

/** What a run ended with, for one party. */
export type PartyResult<O> =
  | { readonly status: "output"; readonly output: O }
  | { readonly status: "abort"; readonly error: ProtocolAbort }
  | { readonly status: "stalled" }
  | { readonly status: "error"; readonly error: unknown };

/** Context handed to a deviation. */
export interface DeviationContext<S> {
  /** Receiver of the envelope (null for a broadcast). */
  readonly to: number | null;
  /** The deviating party's state after the transition that produced the message. */
  readonly state: S | undefined;
  /** Scratch space shared by all deviations of one wrapped protocol (one party, one run). */
  readonly scratch: Record<string, unknown>;
}

/** At `round`, replace every outgoing payload by `alter(payload, ctx)`. */
export interface Deviation<S> {
  readonly round: number;
  alter(payload: unknown, ctx: DeviationContext<S>): unknown;
}

/** Applies deviations to the outgoing envelopes of one transition. */
export function alterTransition<S, O>(
  t: Transition<S, O>,
  deviations: readonly Deviation<S>[],
  scratch: Record<string, unknown> = {},
): Transition<S, O> {
  const outgoing = t.outgoing.map((m) => {
    let payload: unknown = structuredClone(m.payload);
    for (const d of deviations) {
      if (d.round === m.round) payload = d.alter(payload, { to: m.to, state: t.state, scratch });
    }
    return { ...m, payload };
  });
  return { ...t, outgoing } as Transition<S, O>;
}

/** A deviating party: `protocol` whose outgoing payloads are altered at the chosen rounds. */
export function deviate<I, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O>,
  ...deviations: Deviation<S>[]
): Protocol<I, S, O> {
  const scratch: Record<string, unknown> = {};
  return {
    name: protocol.name,
    rounds: protocol.rounds,
    start: (input, rng) => alterTransition(protocol.start(input, rng), deviations, scratch),
    step: (state, inbox, rng) =>
      alterTransition(protocol.step(state, inbox, rng), deviations, scratch),
  };
}

/** The transitions a recorded party went through. */
export interface Recording<S, O> {
  first?: Transition<S, O>;
  readonly steps: { state: S; inbox: readonly Message[]; t: Transition<S, O> }[];
}

/** Wraps `protocol` so that every transition is kept (for reuse of honest states). */
export function record<I, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O>,
): { protocol: Protocol<I, S, O>; log: Recording<S, O> } {
  const log: Recording<S, O> = { steps: [] };
  return {
    log,
    protocol: {
      name: protocol.name,
      rounds: protocol.rounds,
      start(input, rng) {
        log.first = protocol.start(input, rng);
        return log.first;
      },
      step(state, inbox, rng) {
        const t = protocol.step(state, inbox, rng);
        log.steps.push({ state, inbox: structuredClone(inbox), t });
        return t;
      },
    },
  };
}

/** The state a recorded party waited in at `round` (from the transition that entered it). */
export function stateAt<S extends ProtocolState, O, R extends S["round"]>(
  log: Recording<S, O>,
  round: R,
): Extract<S, { round: R }> {
  const all = [log.first, ...log.steps.map((s) => s.t)];
  const t = all.find((x) => x?.state?.round === round);
  if (!t?.state) throw new Error(`no recorded state for round ${round}`);
  return t.state as Extract<S, { round: R }>;
}

/** The messages a recorded party sent in `round`. */
export function sentIn<S, O>(log: Recording<S, O>, round: number): Message[] {
  const all = [log.first, ...log.steps.map((s) => s.t)];
  return all.flatMap((t) => (t ? t.outgoing.filter((m) => m.round === round) : []));
}

/**
 * Rewrites one delivery: `m` on its way to `to`, with every message sent in the same round
 * (by every party, before any rewriting) visible: the rushing adversary.
 */
export type Intercept = (m: Message, to: number, round: readonly Message[]) => Message[];

/**
 * Runs the parties' machines in lock step: all messages of a round are delivered, then every
 * live party steps. A party that aborts stops; a party that would wait on a stopped party is
 * reported as stalled (in a real run it would time out).
 */
export function runLockstep<S extends ProtocolState, O>(
  protocols: readonly Protocol<unknown, S, O>[],
  firsts: readonly Transition<S, O>[],
  opts: { rng?: RandomSource; intercept?: Intercept } = {},
): PartyResult<O>[] {
  const n = firsts.length;
  const rng = opts.rng ?? ((b: Uint8Array) => void crypto.getRandomValues(b));
  const results: (PartyResult<O> | undefined)[] = new Array(n).fill(undefined);
  let current: (Transition<S, O> | undefined)[] = [...firsts];
  for (let guard = 0; guard < 32; guard++) {
    const sent = current.flatMap((t) => (t ? t.outgoing : []));
    for (let j = 0; j < n; j++) {
      const t = current[j];
      if (t?.output !== undefined) results[j] = { status: "output", output: t.output };
    }
    const failed = results.some((r) => r && r.status !== "output");
    const next: (Transition<S, O> | undefined)[] = new Array(n).fill(undefined);
    let live = false;
    for (let j = 0; j < n; j++) {
      const state = current[j]?.state;
      if (!state || results[j]) continue;
      if (failed) {
        results[j] = { status: "stalled" };
        continue;
      }
      const inbox: Message[] = [];
      for (const m of sent) {
        const forJ = m.to === j || (m.to === null && m.from !== j);
        if (!forJ) continue;
        const copy = structuredClone(m);
        inbox.push(...(opts.intercept ? opts.intercept(copy, j, sent) : [copy]));
      }
      try {
        next[j] = protocols[j].step(state, inbox, rng);
        live = true;
      } catch (e) {
        results[j] = e instanceof ProtocolAbort
          ? { status: "abort", error: e }
          : { status: "error", error: e };
      }
    }
    current = next;
    if (!live && current.every((t) => t === undefined)) break;
  }
  return results.map((r) => r ?? { status: "stalled" });
}

/** Starts every party (input j to party j) and runs them in lock step. */
export function runLockstepFrom<I, S extends ProtocolState, O>(
  protocols: readonly Protocol<I, S, O>[],
  inputs: readonly I[],
  opts: { rng?: RandomSource; intercept?: Intercept } = {},
): PartyResult<O>[] {
  const rng = opts.rng ?? ((b: Uint8Array) => void crypto.getRandomValues(b));
  const firsts = protocols.map((p, j) => p.start(inputs[j], rng));
  return runLockstep(protocols as readonly Protocol<unknown, S, O>[], firsts, opts);
}

/**
 * Runs every party through `runProtocol` over the in-memory network (optionally hostile).
 * When one party fails, the others get `graceMs` to detect the fault themselves and are then
 * cancelled (reported as stalled).
 */
export async function runAll<I, S extends ProtocolState, O>(
  protocols: readonly Protocol<I, S, O>[],
  inputs: readonly I[],
  opts: { tamper?: Tamper; graceMs?: number; onDropped?: (reason: string) => void } = {},
): Promise<PartyResult<O>[]> {
  const net = createMemoryNetwork(inputs.length, opts.tamper);
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onFailure = () => {
    timer ??= setTimeout(() => controller.abort(), opts.graceMs ?? 300);
  };
  const runs = inputs.map((input, j) =>
    runProtocol(protocols[j], input, net[j], {
      signal: controller.signal,
      roundTimeoutMs: 60_000,
      onProgress: (e) => {
        if (e.type === "dropped-message") opts.onDropped?.(e.reason);
      },
    }).then(
      (output): PartyResult<O> => ({ status: "output", output }),
      (error): PartyResult<O> => {
        onFailure();
        if (error instanceof ProtocolAbort) return { status: "abort", error };
        if (error instanceof TransportError && error.code === "aborted") {
          return { status: "stalled" };
        }
        return { status: "error", error };
      },
    )
  );
  const results = await Promise.all(runs);
  clearTimeout(timer);
  return results;
}

/** What an abort must be: its code (or one of several), round, culprits and message. */
export interface ExpectedAbort {
  readonly code: AbortCode | readonly AbortCode[];
  readonly round: number;
  readonly culprits: readonly number[];
  readonly message?: RegExp;
}

/** Asserts that a party aborted with `code` in `round`, blaming exactly `culprits`. */
export function assertAbort<O>(r: PartyResult<O>, expected: ExpectedAbort): ProtocolAbort {
  if (r.status !== "abort") {
    const got = r.status === "error" ? String(r.error) : r.status;
    assert.fail(`expected a ProtocolAbort (${expected.code}), got ${got}`);
  }
  const e = r.error;
  const codes: readonly AbortCode[] = typeof expected.code === "string"
    ? [expected.code]
    : expected.code;
  assert.ok(codes.includes(e.code), `expected ${codes.join(" or ")}, got ${e.message}`);
  assert.equal(e.round, expected.round, e.message);
  assert.deepEqual(e.culprits, expected.culprits, e.message);
  if (expected.message) assert.match(e.message, expected.message);
  return e;
}

/** Asserts that no party (other than the deviating ones in `except`) produced an output. */
export function assertNoOutput<O>(
  results: readonly PartyResult<O>[],
  except: readonly number[] = [],
): void {
  for (const [j, r] of results.entries()) {
    if (except.includes(j)) continue;
    assert.notEqual(r.status, "output", `party ${j} produced an output`);
  }
}

/** Asserts that every party produced an output and returns the outputs. */
export function outputs<O>(results: readonly PartyResult<O>[]): O[] {
  return results.map((r, j) => {
    if (r.status !== "output") {
      const why = r.status === "abort" || r.status === "error" ? String(r.error) : r.status;
      assert.fail(`party ${j} did not finish: ${why}`);
    }
    return r.output;
  });
}

/** Expects `f` to throw a ProtocolAbort and returns it. */
export function expectAbort(f: () => unknown, expected: ExpectedAbort): ProtocolAbort {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  if (!(caught instanceof ProtocolAbort)) {
    assert.fail(`expected a ProtocolAbort, got ${String(caught)}`);
  }
  return assertAbort({ status: "abort", error: caught }, expected);
}

/** A session id for tests (32 bytes, `tag` in the first byte). */
export function testSid(tag: number): Uint8Array {
  const sid = crypto.getRandomValues(new Uint8Array(32));
  sid[0] = tag;
  return sid;
}
