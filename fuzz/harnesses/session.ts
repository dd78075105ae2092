/**
 * Harness of the secure session behind a hostile relay: two parties open a session through the
 * real gateway handler in process, then each sends the other a few envelopes (one large enough
 * to be fragmented). Every body a party posts passes a relay that follows the input, a recipe of
 * operations on the posted frame lines: drop, duplicate, flip a bit, rewrite a field, replace a
 * line, hold a line back to a later post (reorder), replay an earlier line, fail a post as a
 * network error would.
 *
 * Oracle: each party either receives exactly the envelopes sent to it, in order, or fails with
 * `TransportError` (or gives up waiting: a dropped frame is detected by the round timeout of a
 * protocol, not by the session); never a wrong, reordered or extra envelope, never another error.
 * @module
 */
import { base64 } from "@scure/base";
import { samePayload, toHex } from "../../core/bytes.ts";
import { TransportError } from "../../core/errors.ts";
import type { Message } from "../../core/protocols/types.ts";
import { createGatewayHandler, type GatewayHandler } from "../../gateway/handler.ts";
import {
  createGatewayClient,
  generateIdentity,
  openSecureSession,
  type SecureSession,
} from "../../transport/mod.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesOf, type Harness, OracleFailure, Rng, textOf } from "../_engine.ts";

interface Op {
  at?: unknown;
  op?: unknown;
  line?: unknown;
  field?: unknown;
  value?: unknown;
}

const WAIT_MS = 400;

/** What the relay does to the lines of post number `post`. */
function relay(
  lines: string[],
  post: number,
  ops: readonly Op[],
  held: string[],
  history: string[],
): string[] {
  const out = [...held.splice(0), ...lines];
  for (const o of ops) {
    if (o === null || typeof o !== "object" || o.at !== post) continue;
    const k = typeof o.line === "number" && out.length > 0
      ? Math.abs(Math.trunc(o.line)) % out.length
      : 0;
    switch (o.op) {
      case "drop":
        out.splice(k, 1);
        break;
      case "dup":
        if (out[k] !== undefined) out.splice(k, 0, out[k]);
        break;
      case "hold":
        if (out[k] !== undefined) held.push(...out.splice(k, 1));
        break;
      case "replay":
        if (history.length > 0) out.push(history[k % history.length]);
        break;
      case "raw":
        if (typeof o.value === "string") out[k] = o.value;
        break;
      case "flip":
      case "field": {
        if (out[k] === undefined) break;
        try {
          const f = JSON.parse(out[k]);
          if (o.op === "flip" && typeof f.ct === "string") {
            const ct = base64.decode(f.ct);
            const bit = typeof o.value === "number" ? Math.abs(Math.trunc(o.value)) : 0;
            ct[bit % ct.length] ^= 1 << (bit % 8);
            f.ct = base64.encode(ct);
          } else if (o.op === "field" && typeof o.field === "string") {
            f[o.field] = o.value;
          }
          out[k] = JSON.stringify(f);
        } catch {
          // not a JSON line (an earlier "raw"): left as it is
        }
        break;
      }
    }
  }
  history.push(...lines);
  return out.filter((l) => l !== "");
}

/** The secure session behind a hostile relay: exact delivery or a TransportError. */
export const secureSession: Harness = {
  name: "secure-session",
  oracle: "each party receives exactly the envelopes sent to it, in order, or a TransportError " +
    "(or nothing in time); never a wrong, extra or reordered envelope, never another error",
  kind: "json",
  fast: false,
  seconds: 20,
  timeoutMs: 10_000,
  maxBytes: 8 * 1024,
  dictionary: [
    '"drop"',
    '"dup"',
    '"hold"',
    '"replay"',
    '"raw"',
    '"flip"',
    '"field"',
    '"fail"',
    '"seq"',
    '"from"',
    '"to"',
    '"tag"',
    '"last"',
    '"type"',
  ],
  setup() {
    let handler: GatewayHandler = createGatewayHandler({ timers: false });
    let runs = 0;
    const ids = [0, 1].map((i) => generateIdentity((b) => b.fill(i + 1)));
    const peers = ids.map((id) => id.publicKey);
    const seeds = [
      { ops: [] },
      { ops: [{ at: 2, op: "dup", line: 0 }] },
      { ops: [{ at: 3, op: "flip", line: 0, value: 9 }] },
      { ops: [{ at: 3, op: "hold", line: 0 }] },
      { ops: [{ at: 4, op: "replay", line: 1 }] },
      { ops: [{ at: 1, op: "field", line: 0, field: "seq", value: 1 }] },
      { ops: [{ at: 0, op: "drop", line: 0 }] },
      { ops: [{ at: 2, op: "fail" }] },
    ];
    return {
      seeds: seeds.map((s) => bytesOf(JSON.stringify(s))),
      allowed: (e) => e instanceof SyntaxError,
      async run(input) {
        let recipe: { ops?: unknown };
        try {
          recipe = JSON.parse(textOf(input));
        } catch {
          throw new SyntaxError("not a recipe");
        }
        const ops = (Array.isArray(recipe?.ops) ? recipe.ops.slice(0, 16) : []) as Op[];
        if (++runs % 500 === 0) {
          await handler.close();
          handler = createGatewayHandler({ timers: false });
        }
        const gw = handler;
        const rng = new Rng(new DataView(sha256(input).buffer).getUint32(0));
        const roomBytes = new Uint8Array(16);
        rng.fill(roomBytes);
        const room = toHex(roomBytes);
        let post = 0;
        const held: string[] = [];
        const history: string[] = [];
        const fetch = async (url: string, init: RequestInit): Promise<Response> => {
          const req = new Request(url, init);
          if (req.method === "POST" && url.endsWith("/broadcast")) {
            const at = post;
            if (
              ops.some((o) => o !== null && typeof o === "object" && o.at === at && o.op === "fail")
            ) {
              post++;
              throw new TypeError("fetch failed: the relay dropped the connection");
            }
            const lines = relay((await req.text()).split("\n"), post++, ops, held, history);
            if (lines.length === 0) return new Response(null, { status: 200 });
            return gw(new Request(url, { method: "POST", body: lines.join("\n") }));
          }
          return gw(req);
        };
        const stop = new AbortController();
        const open = (i: number) =>
          openSecureSession({
            gateway: createGatewayClient({
              url: "http://gw",
              fetch,
              retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
            }),
            room,
            i,
            n: 2,
            identity: ids[i],
            peers,
            context: bytesOf("fuzz"),
            handshakeTimeoutMs: WAIT_MS,
            maxBodyBytes: 4096,
            rng: (b) => rng.fill(b),
            signal: stop.signal,
          });
        const sent = (from: number): Message[] =>
          [1, 2, 3].map((round) => ({
            sid: "ab",
            protocol: "keygen",
            round,
            from,
            to: round === 2 ? null : 1 - from,
            payload: { k: round, pad: "x".repeat(round === 3 ? 6000 : 10) },
          }));
        const outcome = async (i: number): Promise<string> => {
          let s: SecureSession;
          try {
            s = await open(i);
          } catch (e) {
            if (e instanceof TransportError) return `open: ${e.code}`;
            throw e;
          }
          try {
            await Promise.all(sent(i).map((m) => s.send(m))).catch((e) => {
              if (!(e instanceof TransportError)) throw e;
            });
            const expected = sent(1 - i);
            for (let k = 0; k < expected.length; k++) {
              let m: Message;
              try {
                m = await s.receive(AbortSignal.timeout(WAIT_MS));
              } catch (e) {
                if (e instanceof TransportError) return `receive ${k}: ${e.code}`;
                if (e instanceof DOMException && e.name === "TimeoutError") return `stalled ${k}`;
                throw e;
              }
              const same = samePayload(m.payload, expected[k].payload) &&
                samePayload({ ...m, payload: null }, { ...expected[k], payload: null });
              if (!same) {
                throw new OracleFailure(
                  `party ${i} received envelope ${k} altered or out of order`,
                );
              }
            }
            return "delivered";
          } finally {
            await s.close();
          }
        };
        try {
          const results = await Promise.all([outcome(0), outcome(1)]);
          return results.join(", ");
        } finally {
          stop.abort();
        }
      },
      async close() {
        await handler.close();
      },
    };
  },
};
