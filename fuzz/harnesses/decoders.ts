/**
 * Harnesses of the small wire decoders: transport frames and envelopes, BIP-32 paths and
 * extended public keys, and the values a caller hands to the client or the service.
 *
 * Fuzz harnesses are tests: like a `_test.ts` file they reach the transport's private codec
 * (`transport/_frames.ts`), the decoder every frame of a hostile gateway goes through.
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { createBase58check } from "@scure/base";
import { samePayload, toHex } from "../../core/bytes.ts";
import { deriveXpub, fromXpub, parsePath, toXpub, TPUB_VERSION } from "../../core/hd.ts";
import { ACCOUNT_ID_PATTERN } from "../../core/keyshare.ts";
import { Point } from "../../core/params.ts";
import type { Message } from "../../core/protocols/types.ts";
import {
  formatPath,
  parseAccountId,
  parseDerivationPath,
  parseDigest,
  parseIdentityKey,
  parseRoomId,
} from "../../session/inputs.ts";
import {
  decodeEnvelope,
  decodeFrame,
  encodeEnvelope,
  encodeFrame,
  type Frame,
} from "../../transport/_frames.ts";
import {
  allowOnly,
  bytesOf,
  type Harness,
  jsonText,
  nest,
  OracleFailure,
  Rng,
  textOf,
} from "../_engine.ts";
import { recordedRun } from "../_runs.ts";

const MAX_FRAME_CHARS = 1 << 20;

function frameSeeds(): Uint8Array[] {
  const rng = new Rng(1);
  const bytes = (n: number) => {
    const b = new Uint8Array(n);
    rng.fill(b);
    return b;
  };
  const frames: Frame[] = [];
  for (let k = 0; k < 4; k++) {
    frames.push({
      type: "hello",
      room: toHex(bytes(16)),
      from: k % 2,
      n: 2 + (k >> 1),
      nonce: bytes(32),
      eph: bytes(32),
      identity: bytes(32),
      sig: bytes(64),
    });
    frames.push({
      type: "data",
      tag: bytes(8),
      from: k % 2,
      to: 1 - (k % 2),
      seq: [0, 1, 7, 0xffffffff][k],
      last: k % 2 === 0,
      ct: bytes(16 + 37 * k),
    });
  }
  return frames.map((f) => bytesOf(encodeFrame(f)));
}

/** Transport frames: `decodeFrame` accepts exactly the canonical encoding of a frame. */
export const frames: Harness = {
  name: "frames",
  oracle: "SyntaxError, or a frame whose canonical encoding is exactly the input line",
  kind: "json",
  fast: true,
  seconds: 60,
  timeoutMs: 1000,
  maxBytes: 4096, // a frame line is a few hundred characters; long lines are refused first
  dictionary: ['"hello"', '"data"', '"v"', '"type"', '"ct"', '"seq"', '"last"', '"tag"', "AA=="],
  setup: () => ({
    seeds: frameSeeds(),
    allowed: allowOnly(SyntaxError),
    run(input) {
      const line = textOf(input);
      const f = decodeFrame(line, MAX_FRAME_CHARS);
      const again = encodeFrame(f);
      if (again !== line) throw new OracleFailure("accepted a frame that is not canonical");
      if (f.type === "data" && (f.from === f.to || f.ct.length < 16 || f.tag.length !== 8)) {
        throw new OracleFailure("accepted a data frame with impossible fields");
      }
      if (f.type === "hello" && (f.from >= f.n || !/^[0-9a-f]{32}$/.test(f.room))) {
        throw new OracleFailure("accepted a hello with impossible fields");
      }
      return f.type;
    },
  }),
};

/** Envelopes inside the secure session: bounded depth, every field checked, canonical re-encoding. */
export const envelopes: Harness = {
  name: "envelopes",
  oracle: "SyntaxError, or an envelope with valid fields, a payload at most 64 deep, that " +
    "round-trips through its canonical encoding",
  kind: "json",
  fast: true,
  seconds: 60,
  timeoutMs: 1000,
  maxBytes: 64 * 1024, // room for a payload 10,000 levels deep
  dictionary: ['"sid"', '"protocol"', '"round"', '"from"', '"to"', '"payload"', '"keygen"'],
  async setup() {
    const run = await recordedRun("keygen");
    const sent = [...run.sent.values()].flat();
    const deepest: Message = { ...sent[0], payload: nest(64, "x") };
    return {
      seeds: [...sent, deepest].map((m) => encodeEnvelope(m)),
      allowed: allowOnly(SyntaxError),
      run(input) {
        const m = decodeEnvelope(input, 2);
        if (!samePayload(m.payload, m.payload)) {
          throw new OracleFailure("accepted a payload that cannot be compared (too deep)");
        }
        const fieldsOk = /^[0-9a-f]+$/.test(m.sid) && /^[a-z-]{1,32}$/.test(m.protocol) &&
          Number.isInteger(m.round) && m.round >= 1 &&
          (m.from === 0 || m.from === 1) && (m.to === null || m.to === 0 || m.to === 1);
        if (!fieldsOk) throw new OracleFailure("accepted an envelope with a bad field");
        const again = decodeEnvelope(encodeEnvelope(m), 2);
        const same = samePayload(again.payload, m.payload) &&
          samePayload({ ...again, payload: null }, { ...m, payload: null });
        if (!same) throw new OracleFailure("the envelope does not round-trip");
        return m.protocol;
      },
    };
  },
};

/** BIP-32 paths: only the canonical text of non-hardened indices. */
export const hdPaths: Harness = {
  name: "hd-paths",
  oracle: "TypeError/SyntaxError/RangeError, or indices below 2^31, at most 255, whose " +
    "canonical text is exactly the input",
  kind: "text",
  fast: true,
  seconds: 60,
  timeoutMs: 1000,
  dictionary: ["m/", "/", "'", "h", "2147483647", "2147483648", "4294967296", "00"],
  setup: () => ({
    seeds: ["m", "m/0", "m/44/60/0/0/7", "m/2147483647", `m/${"1/".repeat(254)}1`].map(bytesOf),
    allowed: allowOnly(TypeError, SyntaxError, RangeError),
    run(input) {
      const text = textOf(input);
      const path = parsePath(text);
      if (path.length > 255 || path.some((i) => !Number.isInteger(i) || i < 0 || i >= 2 ** 31)) {
        throw new OracleFailure("accepted an index out of range");
      }
      if (formatPath(path) !== text) throw new OracleFailure("accepted a non-canonical path");
      return `depth ${Math.min(path.length, 3)}`;
    },
  }),
};

const base58check = createBase58check(sha256);

/** Extended public keys: exact Base58Check round trip; raw 78-byte payloads with a valid checksum. */
export const xpubs: Harness = {
  name: "xpubs",
  oracle: "TypeError/SyntaxError, or a key whose serialization is exactly the input and whose " +
    "child derives (RangeError only past depth 255)",
  kind: "bytes",
  fast: true,
  seconds: 60,
  timeoutMs: 1000,
  maxBytes: 256, // Base58 is quadratic; an extended key is 111 characters
  setup() {
    const P = Point.BASE.multiply(0x1234567n);
    const chainCode = new Uint8Array(32).fill(7);
    const root = toXpub({ publicKey: P, chainCode });
    const texts = [
      root,
      deriveXpub(root, "m/0/1"),
      toXpub({ publicKey: P, chainCode, version: TPUB_VERSION }),
      toXpub({ publicKey: P, chainCode, depth: 255, parentFingerprint: 1, index: 2 }),
    ];
    // Mode byte 0: the text; 1: the raw 78 bytes, given a valid checksum by the harness.
    const seeds = texts.flatMap((t) => [
      Uint8Array.of(0, ...bytesOf(t)),
      Uint8Array.of(1, ...base58check.decode(t)),
    ]);
    return {
      seeds,
      allowed: allowOnly(TypeError, SyntaxError),
      run(input) {
        const body = input.subarray(1);
        const text = input[0] === 1 ? base58check.encode(body) : textOf(body);
        const k = fromXpub(text);
        if (toXpub(k) !== text) throw new OracleFailure("accepted a non-canonical extended key");
        try {
          deriveXpub(text, "m/3");
        } catch (e) {
          if (!(e instanceof RangeError && k.depth === 255)) {
            throw new OracleFailure(`an accepted key does not derive: ${(e as Error).message}`);
          }
        }
        return `depth ${k.depth === 0 ? 0 : 1}`;
      },
    };
  },
};

const SESSION_INPUTS: [string, (v: unknown) => unknown, (text: string, out: unknown) => boolean][] =
  [
    ["digest", parseDigest, (t, out) => toHex(out as Uint8Array) === hexOf(t, 32)],
    ["room", parseRoomId, (t, out) => out === t && /^[0-9a-f]{32}$/.test(t)],
    ["path", parseDerivationPath, (t, out) => formatPath(out as number[]) === pathText(t)],
    ["account", parseAccountId, (t, out) => out === t && ACCOUNT_ID_PATTERN.test(t)],
    ["identity", parseIdentityKey, (t, out) => toHex(out as Uint8Array) === hexOf(t, 32)],
  ];

function hexOf(text: string, bytes: number): string | null {
  const s = text.replace(/^0[xX]/, "");
  return s.length === 2 * bytes && /^[0-9a-fA-F]*$/.test(s) ? s.toLowerCase() : null;
}

function pathText(text: string): string {
  return text === "" || text === "m" ? "m" : text.startsWith("m/") ? text : `m/${text}`;
}

/** The service's and the client's input decoders (byte 0 picks which). */
export const sessionInputs: Harness = {
  name: "session-inputs",
  oracle: "TypeError/SyntaxError/RangeError, or the value the input denotes exactly " +
    "(digest, room id, path, account id, identity key)",
  kind: "bytes",
  fast: true,
  seconds: 60,
  timeoutMs: 1000,
  dictionary: ["0x", "0X", "m/", "/", "'"],
  setup() {
    const values = [
      "0x" + "ab".repeat(32),
      "0123456789abcdef0123456789abcdef",
      "m/0/7",
      "alice.wallet-1",
      "CD".repeat(32),
    ];
    return {
      seeds: SESSION_INPUTS.flatMap((_, k) => [
        Uint8Array.of(k, ...bytesOf(values[k])),
        Uint8Array.of(k, ...bytesOf(values[(k + 1) % values.length])),
      ]),
      allowed: allowOnly(TypeError, SyntaxError, RangeError),
      run(input) {
        const [what, parse, exact] = SESSION_INPUTS[input[0] % SESSION_INPUTS.length];
        const text = textOf(input.subarray(1));
        const out = parse(text);
        if (!exact(text, out)) throw new OracleFailure(`${what}: accepted ${jsonText(text)}`);
        return what;
      },
    };
  },
};
