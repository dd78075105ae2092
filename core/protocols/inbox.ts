/**
 * Checking a round's inbox inside a pure protocol machine: every other party sent exactly one
 * message of this session, protocol and round, addressed as the round declares. Faults are
 * collected over all messages first, so the abort names every culprit.
 * @module
 */
import { samePayload, toHex } from "../bytes.ts";
import { ProtocolAbort } from "../errors.ts";
import type { Message, ProtocolName, ProtocolState } from "./types.ts";

/**
 * Returns the payloads of round `state.round` by sender (index j -> payload; none for j = i).
 * @throws {ProtocolAbort} "unexpected-message" (wrong envelope, reflection), "equivocation" (two
 * different messages from one sender; two whose payloads cannot be compared, nested deeper than
 * `MAX_PAYLOAD_DEPTH` or holding what JSON cannot carry, count as different), "malformed-message"
 * (a missing sender cannot be blamed on content, so it is reported with that sender as culprit: it
 * did not deliver).
 */
export function collectInbox(
  protocol: ProtocolName,
  state: ProtocolState,
  kind: "broadcast" | "p2p",
  inbox: readonly Message[],
): Map<number, unknown> {
  const sid = toHex(state.sid);
  const got = new Map<number, Message>();
  const culprits = new Set<number>();
  let code: "unexpected-message" | "equivocation" | "malformed-message" = "unexpected-message";
  for (const m of inbox) {
    const from = m.from;
    const validFrom = Number.isInteger(from) && from >= 0 && from < state.n;
    if (!validFrom || from === state.i) {
      // A message claiming to come from ourselves is a reflection; no other party can be named.
      if (validFrom) culprits.add(from === state.i ? -1 : from);
      continue;
    }
    const envelopeOk = m.sid === sid && m.protocol === protocol && m.round === state.round &&
      (kind === "broadcast" ? m.to === null : m.to === state.i);
    if (!envelopeOk) {
      culprits.add(from);
      continue;
    }
    const prev = got.get(from);
    // Compared without recursion: the payloads are the peer's, at any depth (issue 15).
    if (prev && !samePayload(prev.payload, m.payload)) {
      culprits.add(from);
      code = "equivocation";
      continue;
    }
    got.set(from, m);
  }
  culprits.delete(-1);
  const reflected = inbox.some((m) => m.from === state.i);
  if (culprits.size > 0 || reflected) {
    throw new ProtocolAbort(
      protocol,
      state.round,
      code,
      [...culprits],
      reflected && culprits.size === 0
        ? "received a message that claims to come from this party (reflection)"
        : "received messages that do not belong to this round",
    );
  }
  const missing: number[] = [];
  for (let j = 0; j < state.n; j++) if (j !== state.i && !got.has(j)) missing.push(j);
  if (missing.length) {
    throw new ProtocolAbort(
      protocol,
      state.round,
      "malformed-message",
      missing,
      "messages missing",
    );
  }
  const out = new Map<number, unknown>();
  for (const [j, m] of got) out.set(j, m.payload);
  return out;
}

/** Builds the outgoing envelopes of a round. */
export function envelope(
  protocol: ProtocolName,
  state: ProtocolState,
  round: number,
  to: number | null,
  payload: unknown,
): Message {
  return { sid: toHex(state.sid), protocol, round, from: state.i, to, payload };
}
