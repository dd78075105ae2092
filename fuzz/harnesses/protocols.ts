/**
 * Harnesses of the protocol machines on recorded two-party runs (`../_runs.ts`): party 0 replays
 * one round (`step`) of key generation, aux info, refresh, presigning or full signing with a
 * hostile inbox from party 1, and party 0 runs key generation through the real driver
 * (`runProtocol`) fed a hostile sequence of messages (early, duplicated, dropped, reflected).
 *
 * An input is a recipe (JSON) applied to the honest messages: `{ "round": index of the round,
 * "ops": [...] }` with ops `set` / `del` (a payload field by path), `deep` (a value wrapped
 * `depth` deep), `large` (a value replaced by `size` characters or entries), `env` (an envelope
 * field), `dup`, `drop`, `early` (a message of the next round), `reflect` (party 0's own
 * message), `move` (reorder, driver only). Recipes name structure, not values, so a saved one
 * still means the same attack on a new recording.
 *
 * Oracle: the step returns, or throws `ProtocolAbort` for this round naming party 1 (no culprit
 * only for a reflected message); never another error. And a message whose only change is one
 * proof that still decodes to a different proof must abort naming its sender: every proof of
 * every round is checked for soundness this way (the verification runs).
 * @module
 */
import { samePayload } from "../../core/bytes.ts";
import { ProofError, ProtocolAbort, TransportError } from "../../core/errors.ts";
import { runProtocol } from "../../core/protocols/driver.ts";
import type { Message } from "../../core/protocols/types.ts";
import * as affg from "../../core/zk/pi_aff_g.ts";
import * as enc from "../../core/zk/pi_enc.ts";
import * as fac from "../../core/zk/pi_fac.ts";
import * as logstar from "../../core/zk/pi_log_star.ts";
import * as mod from "../../core/zk/pi_mod.ts";
import * as prm from "../../core/zk/pi_prm.ts";
import * as sch from "../../core/zk/pi_sch.ts";
import {
  bytesOf,
  type Harness,
  jsonText,
  mutateValue,
  nest,
  OracleFailure,
  type Rng,
  textOf,
} from "../_engine.ts";
import { inboxOf, type RecordedRun, recordedRun, type RunName } from "../_runs.ts";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Op {
  op?: unknown;
  msg?: unknown;
  path?: unknown;
  value?: unknown;
  depth?: unknown;
  size?: unknown;
  field?: unknown;
  to?: unknown;
}
interface Recipe {
  round?: unknown;
  ops?: unknown;
}

interface Codec {
  decode(json: unknown): unknown;
  // deno-lint-ignore no-explicit-any
  encode(proof: any): unknown;
}

/** The proof fields of each round's payload (an array field holds one proof per entry). */
const PROOF_FIELDS: Record<RunName, Record<number, Record<string, Codec>>> = {
  "keygen": { 3: { psi: sch } },
  "aux-info": { 2: { prm }, 3: { mod, fac } },
  "refresh": { 2: { prm }, 3: { mod, fac, psi: sch } },
  "presign": {
    1: { psi0: enc },
    3: { psi: affg, psiHat: affg, psiPrime: logstar },
    4: { psiPrimePrime: logstar },
  },
  "sign": {
    1: { psi0: enc },
    3: { psi: affg, psiHat: affg, psiPrime: logstar },
    4: { psiPrimePrime: logstar },
  },
};

const OPS = [
  "set",
  "set",
  "set",
  "set",
  "del",
  "deep",
  "large",
  "env",
  "dup",
  "drop",
  "early",
  "reflect",
];
const DEPTHS = [64, 65, 1000, 10_000, 100_000];
const SIZES = [0, 1, 1000, 100_000, 1_000_000];

const int = (v: unknown, n: number) =>
  typeof v === "number" && Number.isFinite(v) && n > 0 ? Math.abs(Math.trunc(v)) % n : 0;

/** The value at `path` in `root`, and a setter; null when the path does not exist. */
function at(
  root: { v: Json },
  path: unknown,
): { get(): Json; set(v: Json | undefined): void } | null {
  if (!Array.isArray(path)) return null;
  let parent: { [k: string]: Json } | Json[] | null = null;
  let key: string | number = "";
  let node: Json = root.v;
  for (const k of path.slice(0, 64)) {
    if (node === null || typeof node !== "object") return null;
    if (Array.isArray(node)) {
      if (typeof k !== "number" || !(k in node)) return null;
    } else if (typeof k !== "string" || !Object.hasOwn(node, k)) return null;
    parent = node;
    key = k;
    node = (node as Record<string | number, Json>)[k];
  }
  if (parent === null) {
    return { get: () => root.v, set: (v) => (root.v = v ?? null) };
  }
  const p = parent as Record<string | number, Json>;
  return {
    get: () => p[key],
    set: (v) => {
      if (v !== undefined) p[key] = v;
      else if (Array.isArray(p)) p.splice(key as number, 1);
      else delete p[key];
    },
  };
}

/** A random path into a payload, usually down to a leaf. */
function randomPath(v: Json, rng: Rng): (string | number)[] {
  const path: (string | number)[] = [];
  for (let node = v; node !== null && typeof node === "object";) {
    const keys: (string | number)[] = Array.isArray(node)
      ? node.map((_, k) => k)
      : Object.keys(node);
    if (keys.length === 0 || rng.chance(0.25)) break;
    const k = rng.pick(keys);
    path.push(k);
    node = (node as Record<string | number, Json>)[k];
  }
  return path;
}

/** The honest messages party 0 gets in the recipe's round, and what the recipe makes of them. */
function apply(run: RecordedRun, round: number, ops: readonly Op[]): Message[] {
  const honest = inboxOf(run, round);
  const inbox: Message[] = honest.map((m) => structuredClone(m));
  for (const o of ops.slice(0, 8)) {
    if (o === null || typeof o !== "object") continue;
    const k = int(o.msg, inbox.length);
    const m = inbox[k];
    switch (o.op) {
      case "set":
      case "del":
      case "deep":
      case "large": {
        if (!m) break;
        const root = { v: m.payload as Json };
        const slot = at(root, o.path);
        if (!slot) break;
        if (o.op === "set") slot.set((o.value ?? null) as Json);
        else if (o.op === "del") slot.set(undefined);
        else if (o.op === "deep") slot.set(nest(DEPTHS[int(o.depth, DEPTHS.length)], slot.get()));
        else {
          const size = SIZES[int(o.size, SIZES.length)];
          slot.set(o.value === "array" ? new Array(size).fill("00") : "0".repeat(size));
        }
        inbox[k] = { ...m, payload: root.v };
        break;
      }
      case "env":
        if (m && typeof o.field === "string") {
          inbox[k] = { ...m, [o.field]: o.value } as Message;
        }
        break;
      case "dup":
        if (m) inbox.push({ ...m }); // the payload is shared: machines only read their inbox
        break;
      case "drop":
        if (m) inbox.splice(k, 1);
        break;
      case "early": {
        const next = inboxOf(run, round + 1);
        if (next.length > 0) inbox.push(structuredClone(next[int(o.msg, next.length)]));
        break;
      }
      case "reflect": {
        const own = (run.sent.get(round) ?? []).filter((x) => x.from === 0);
        if (own.length > 0) inbox.push(structuredClone(own[int(o.msg, own.length)]));
        break;
      }
    }
  }
  return inbox;
}

/**
 * The messages whose only change from the honest ones is proofs that decode to other proofs
 * (their senders must be blamed), or null when the inbox differs in any other way.
 */
function changedProofsOnly(
  fields: Record<string, Codec> | undefined,
  honest: readonly Message[],
  inbox: readonly Message[],
): number[] | null {
  if (!fields || honest.length !== inbox.length) return null;
  const senders: number[] = [];
  for (let k = 0; k < inbox.length; k++) {
    const a = honest[k];
    const b = inbox[k];
    if (!samePayload({ ...a, payload: null }, { ...b, payload: null })) return null;
    const pa = a.payload as Record<string, unknown>;
    const pb = b.payload as Record<string, unknown>;
    if (typeof pb !== "object" || pb === null || Array.isArray(pb)) return null;
    const rest = (p: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(p).filter(([f]) => !(f in fields)));
    if (!samePayload(rest(pa), rest(pb))) return null;
    let changed = false;
    for (const [f, codec] of Object.entries(fields)) {
      if (samePayload(pa[f], pb[f])) continue;
      const canonical = (v: unknown) =>
        Array.isArray(v)
          ? v.map((x) => codec.encode(codec.decode(x)))
          : codec.encode(codec.decode(v));
      let x: unknown;
      try {
        x = canonical(pb[f]);
      } catch (e) {
        if (e instanceof ProofError) return null; // refused while decoding: not a soundness case
        throw e;
      }
      if (samePayload(x, canonical(pa[f]))) return null;
      changed = true;
    }
    if (changed) senders.push(b.from);
  }
  return senders.length > 0 ? senders : null;
}

/**
 * A copy of a recorded state for one more replay: its plain objects (and arrays of them) are new
 * objects, so a one-time nonce (`pi_sch.ts` refuses a nonce object used before) is fresh again.
 */
function replayable<S extends object>(state: S): S {
  const fresh = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(fresh)
      : v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype
      ? { ...v }
      : v;
  return Object.fromEntries(Object.entries(state).map(([k, v]) => [k, fresh(v)])) as S;
}

function recipeOf(input: Uint8Array): Recipe {
  try {
    return JSON.parse(textOf(input));
  } catch {
    throw new SyntaxError("not a recipe");
  }
}

/** The recipe an input holds, or an empty one (a generic mutant that is no recipe). */
function recipeOrEmpty(input: Uint8Array): Recipe {
  try {
    const r = recipeOf(input);
    return r !== null && typeof r === "object" ? r : {};
  } catch {
    return {};
  }
}

/** Checks an abort against the oracle (party 1 named; none only for a reflection). */
function checkAbort(e: unknown, round: number | null, inbox: readonly Message[]): string {
  if (!(e instanceof ProtocolAbort)) throw e;
  if (round !== null && e.round !== round) {
    throw new OracleFailure(`aborted naming round ${e.round} in round ${round}`);
  }
  const reflected = inbox.some((m) => m.from === 0);
  if (e.culprits.some((j) => j !== 1) || (e.culprits.length === 0 && !reflected)) {
    throw new OracleFailure(
      `aborted blaming [${e.culprits}] (${e.code}): ${e.message.slice(0, 200)}`,
    );
  }
  return `abort ${e.code}`;
}

/** A generated recipe: one to three ops on the messages of a random round. */
function newRecipe(run: RecordedRun, rng: Rng, base: Recipe): Recipe {
  const round = typeof base.round === "number" ? base.round : rng.below(run.rounds.length);
  const r = run.rounds[int(round, run.rounds.length)];
  const honest = inboxOf(run, r);
  const ops: Op[] = Array.isArray(base.ops) && rng.chance(0.5) ? base.ops.slice(0, 6) : [];
  for (let n = 1 + rng.below(rng.chance(0.8) ? 1 : 3); n > 0; n--) {
    const op = rng.pick(OPS);
    const msg = rng.below(Math.max(1, honest.length));
    const payload = (honest[msg]?.payload ?? null) as Json;
    const path = randomPath(payload, rng);
    const current = at({ v: payload }, path)?.get() ?? null;
    switch (op) {
      case "set":
        ops.push({ op, msg, path, value: mutateValue(current, rng, () => payload) as Json });
        break;
      case "deep":
        ops.push({ op, msg, path, depth: rng.below(DEPTHS.length) });
        break;
      case "large":
        ops.push({
          op,
          msg,
          path,
          size: rng.below(SIZES.length),
          value: rng.chance(0.3) ? "array" : "string",
        });
        break;
      case "env":
        ops.push({
          op,
          msg,
          field: rng.pick(["sid", "protocol", "round", "from", "to"]),
          value: rng.pick<Json>([0, 1, 2, -1, null, "1", 0.5, r + 1, "00", "keygen", 1e300]),
        });
        break;
      default:
        ops.push({ op, msg, path });
    }
  }
  return { round, ops };
}

function stepHarness(name: RunName, seconds: number): Harness {
  return {
    name: `protocol-${name}`,
    oracle: "the round returns, or a ProtocolAbort of this round naming party 1 (none only for " +
      "a reflection); a message changed only in a proof that decodes must abort naming its sender",
    kind: "json",
    fast: false,
    seconds,
    timeoutMs: 60_000,
    maxBytes: 64 * 1024,
    async setup() {
      const run = await recordedRun(name);
      // The attacks refused before any proof is verified first, then the honest rounds (whose
      // verification takes seconds with 3072-bit moduli).
      const rounds = run.rounds.map((_, round) => round);
      const seeds: Recipe[] = [
        ...rounds.map((round) => ({
          round,
          ops: [{ op: "deep", msg: 0, path: [], depth: 3 }, { op: "dup", msg: 0 }],
        })),
        ...rounds.map((round) => ({ round, ops: [{ op: "early", msg: 0 }] })),
        ...rounds.map((round) => ({ round, ops: [] })),
        ...rounds.map((round) => ({ round, ops: [{ op: "dup", msg: 0 }] })),
      ];
      return {
        seeds: seeds.map((s) => bytesOf(JSON.stringify(s))),
        allowed: (e) => e instanceof SyntaxError,
        mutate(input, rng) {
          return bytesOf(jsonText(newRecipe(run, rng, recipeOrEmpty(input))));
        },
        run(input) {
          const recipe = recipeOf(input);
          const index = int(recipe?.round, run.rounds.length);
          const round = run.rounds[index];
          const state = replayable(run.states.get(round)![0]);
          const ops = (Array.isArray(recipe?.ops) ? recipe.ops : []) as Op[];
          const inbox = apply(run, round, ops);
          const mustBlame = changedProofsOnly(
            PROOF_FIELDS[name][round],
            inboxOf(run, round),
            inbox,
          );
          try {
            run.protocol.step(state, inbox, run.rngFor(0));
          } catch (e) {
            const outcome = checkAbort(e, round, inbox);
            if (mustBlame && !mustBlame.every((j) => (e as ProtocolAbort).culprits.includes(j))) {
              throw new OracleFailure(`a changed proof of party ${mustBlame} was not blamed on it`);
            }
            return `round ${round}: ${outcome}`;
          }
          if (mustBlame) throw new OracleFailure(`round ${round} accepted a changed proof`);
          return `round ${round}: accepted`;
        },
      };
    },
  };
}

/** One round of each protocol, replayed with a hostile inbox. */
export const stepHarnesses: Harness[] = [
  stepHarness("keygen", 15),
  stepHarness("aux-info", 15),
  stepHarness("refresh", 15),
  stepHarness("presign", 15),
  stepHarness("sign", 15),
];

/** Key generation through the real driver with a hostile, reordered sequence of messages. */
export const driverKeygen: Harness = {
  name: "driver-keygen",
  oracle: "the run outputs, or ends with a ProtocolAbort naming party 1 (none only for a " +
    "reflection) or a TransportError (messages missing); never another error",
  kind: "json",
  fast: false,
  seconds: 15,
  timeoutMs: 20_000,
  maxBytes: 64 * 1024,
  async setup() {
    const run = await recordedRun("keygen");
    const script = (): Message[] => run.rounds.flatMap((r) => inboxOf(run, r));
    const seeds: Recipe[] = [
      { ops: [] },
      { ops: [{ op: "move", msg: 2, to: 0 }, { op: "move", msg: 2, to: 0 }] },
      { ops: [{ op: "dup", msg: 1 }, { op: "deep", msg: 1, depth: 3 }] },
    ];
    return {
      seeds: seeds.map((s) => bytesOf(JSON.stringify(s))),
      allowed: (e) => e instanceof SyntaxError,
      mutate(input, rng) {
        const base = recipeOrEmpty(input);
        const ops: Op[] = Array.isArray(base.ops) && rng.chance(0.5) ? base.ops.slice(0, 6) : [];
        const n = script().length;
        for (let k = 1 + rng.below(3); k > 0; k--) {
          const op = rng.pick(["move", "move", "dup", "drop", "deep", "large", "reflect", "env"]);
          ops.push({
            op,
            msg: rng.below(n + 1),
            to: rng.below(n + 1),
            depth: rng.below(DEPTHS.length),
            size: rng.below(SIZES.length),
            field: rng.pick(["round", "from", "to", "sid"]),
            value: rng.pick<Json>([1, 2, 3, 4, 0, null, "ab"]),
          });
        }
        return bytesOf(jsonText({ ops }));
      },
      async run(input) {
        const recipe = recipeOf(input);
        const ops = (Array.isArray(recipe?.ops) ? recipe.ops.slice(0, 8) : []) as Op[];
        const msgs = script();
        for (const o of ops) {
          if (o === null || typeof o !== "object") continue;
          const k = int(o.msg, msgs.length);
          const m = msgs[k];
          if (!m) continue;
          if (o.op === "move") msgs.splice(int(o.to, msgs.length), 0, ...msgs.splice(k, 1));
          else if (o.op === "dup") msgs.splice(k, 0, { ...m });
          else if (o.op === "drop") msgs.splice(k, 1);
          else if (o.op === "deep") {
            msgs[k] = {
              ...m,
              payload: nest(DEPTHS[int(o.depth, DEPTHS.length)], m.payload as Json),
            };
          } else if (o.op === "large") {
            msgs[k] = { ...m, payload: "0".repeat(SIZES[int(o.size, SIZES.length)]) };
          } else if (o.op === "reflect") msgs.splice(k, 0, { ...m, from: 0 });
          else if (o.op === "env" && typeof o.field === "string") {
            msgs[k] = { ...m, [o.field]: o.value } as Message;
          }
        }
        const queue = [...msgs];
        const transport = {
          send: () => Promise.resolve(),
          receive: () => {
            const m = queue.shift();
            return m
              ? Promise.resolve(m)
              : Promise.reject(new TransportError("closed", "script ended"));
          },
        };
        try {
          await runProtocol(run.protocol, run.inputs[0], transport, {
            rng: run.rngFor(0),
            roundTimeoutMs: 5000,
          });
          return "output";
        } catch (e) {
          if (e instanceof TransportError) return `transport ${e.code}`;
          return checkAbort(e, null, msgs);
        }
      },
    };
  },
};
