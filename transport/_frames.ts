/**
 * Wire encoding of the secure session (private to `transport/`): the two frame kinds, one JSON
 * object per line, with a single canonical encoding (a line that is not exactly the encoding of
 * its decoded frame is refused), the injective byte encodings that are signed or authenticated,
 * and the envelope codec.
 *
 * ```text
 * hello: {"v":1,"type":"hello","room":R,"from":i,"n":n,"nonce":hex32,"eph":hex32,"id":hex32,"sig":hex64}
 * data:  {"v":1,"type":"data","tag":hex8,"from":i,"to":j,"seq":s,"last":b,"ct":base64}
 * ```
 *
 * A gateway body is one or more frames joined by "\n" (no CR, no empty line).
 * @module
 */
import { base64 } from "@scure/base";
import { canonicalJson, decodeBytes, lengthPrefixed, samePayload, toHex } from "../core/bytes.ts";
import { MAX_PARTIES, MAX_PAYLOAD_DEPTH } from "../core/params.ts";
import type { Message } from "../core/protocols/types.ts";

/** Frame format version. */
export const VERSION = 1;
/** Domain-separation prefix of every label of the transport. */
export const LABEL = "wallet-mpc/transport/v1";
/** Largest sequence number (2^32 - 1; the AEAD nonce holds 64 bits). */
export const MAX_SEQ = 0xffffffff;
/** Bytes of the session tag carried by data frames. */
export const TAG_BYTES = 8;
/** Bytes of a Poly1305 tag (RFC 8439 section 2.8). */
export const AEAD_TAG_BYTES = 16;

/** A signed handshake hello. */
export interface HelloFrame {
  readonly type: "hello";
  /** Room id (32 lowercase hex digits). */
  readonly room: string;
  readonly from: number;
  /** Party count the sender expects. */
  readonly n: number;
  /** 32 fresh random bytes. */
  readonly nonce: Uint8Array;
  /** Ephemeral X25519 public key (RFC 7748). */
  readonly eph: Uint8Array;
  /** Identity public key (Ed25519, RFC 8032). */
  readonly identity: Uint8Array;
  /** Ed25519 signature over `helloSignedBytes`. */
  readonly sig: Uint8Array;
}

/** One encrypted fragment of an envelope (or the key confirmation at seq 0). */
export interface DataFrame {
  readonly type: "data";
  /** First bytes of a hash of the handshake transcript: names the session (not secret). */
  readonly tag: Uint8Array;
  readonly from: number;
  readonly to: number;
  /** Per-direction sequence number, from 0. */
  readonly seq: number;
  /** Whether this fragment ends its envelope. */
  readonly last: boolean;
  /** ChaCha20-Poly1305 ciphertext with its tag. */
  readonly ct: Uint8Array;
}

/** A decoded frame. */
export type Frame = HelloFrame | DataFrame;

const utf8 = new TextEncoder();

/**
 * Injective encoding: every part is a byte string prefixed by its 4-byte big-endian length, or a
 * fixed-width integer.
 */
export function encodeParts(parts: readonly (Uint8Array | string)[]): Uint8Array {
  return lengthPrefixed(parts.map((p) => (typeof p === "string" ? utf8.encode(p) : p)));
}

/** Big-endian unsigned integer of `width` bytes (width <= 4). */
export function uint(x: number, width: number): Uint8Array {
  const out = new Uint8Array(width);
  for (let k = width - 1, v = x; k >= 0; k--, v = Math.floor(v / 256)) out[k] = v & 0xff;
  return out;
}

/** The bytes a hello's signature covers. */
export function helloSignedBytes(h: Omit<HelloFrame, "sig" | "type">): Uint8Array {
  return encodeParts([
    `${LABEL}/hello`,
    uint(VERSION, 1),
    h.room,
    uint(h.from, 2),
    uint(h.n, 2),
    h.nonce,
    h.eph,
    h.identity,
  ]);
}

/** AEAD associated data of a data frame: version, room, transcript, direction, seq, last. */
export function dataAad(
  room: string,
  transcript: Uint8Array,
  f: { from: number; to: number; seq: number; last: boolean },
): Uint8Array {
  return encodeParts([
    `${LABEL}/data`,
    uint(VERSION, 1),
    room,
    transcript,
    uint(f.from, 2),
    uint(f.to, 2),
    uint(f.seq, 4),
    uint(f.last ? 1 : 0, 1),
  ]);
}

/** 96-bit AEAD nonce of a sequence number: 4 zero bytes then the 64-bit big-endian counter. */
export function seqNonce(seq: number): Uint8Array {
  const out = new Uint8Array(12);
  out.set(uint(seq, 4), 8);
  return out;
}

/** One frame as its canonical line. */
export function encodeFrame(f: Frame): string {
  if (f.type === "hello") {
    return `{"v":${VERSION},"type":"hello","room":${JSON.stringify(f.room)},"from":${f.from},` +
      `"n":${f.n},"nonce":"${toHex(f.nonce)}","eph":"${toHex(f.eph)}",` +
      `"id":"${toHex(f.identity)}","sig":"${toHex(f.sig)}"}`;
  }
  return `{"v":${VERSION},"type":"data","tag":"${toHex(f.tag)}","from":${f.from},"to":${f.to},` +
    `"seq":${f.seq},"last":${f.last},"ct":"${base64.encode(f.ct)}"}`;
}

const HELLO_KEYS = ["eph", "from", "id", "n", "nonce", "room", "sig", "type", "v"];
const DATA_KEYS = ["ct", "from", "last", "seq", "tag", "to", "type", "v"];

function int(o: Record<string, unknown>, k: string, lo: number, hi: number): number {
  const v = o[k];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < lo || v > hi) {
    throw new SyntaxError(`field ${k}: expected an integer from ${lo} to ${hi}`);
  }
  return v;
}

function hex(o: Record<string, unknown>, k: string, bytes: number): Uint8Array {
  return decodeBytes(o[k], `field ${k}`, bytes);
}

/**
 * Parses one line into a frame.
 *
 * @param line one line of a gateway body
 * @param maxChars longest acceptable line
 * @returns the frame
 * @throws {SyntaxError} for anything but the canonical encoding of a well-formed frame of this
 * version (the message names the field, never echoes the data)
 */
export function decodeFrame(line: string, maxChars: number): Frame {
  if (typeof line !== "string" || line.length === 0) throw new SyntaxError("empty frame");
  if (line.length > maxChars) {
    throw new SyntaxError(`frame of ${line.length} characters, expected at most ${maxChars}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new SyntaxError("frame is not JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new SyntaxError("frame is not a JSON object");
  }
  const o = v as Record<string, unknown>;
  if (o.v !== VERSION) throw new SyntaxError(`unsupported frame version, expected ${VERSION}`);
  const keys = Object.keys(o).sort().join(",");
  let f: Frame;
  if (o.type === "hello") {
    if (keys !== HELLO_KEYS.join(",")) {
      throw new SyntaxError(`hello fields: expected ${HELLO_KEYS}`);
    }
    if (typeof o.room !== "string" || !/^[0-9a-f]{32}$/.test(o.room)) {
      throw new SyntaxError("field room: expected 32 lowercase hex digits");
    }
    const n = int(o, "n", 2, MAX_PARTIES);
    f = {
      type: "hello",
      room: o.room,
      from: int(o, "from", 0, n - 1),
      n,
      nonce: hex(o, "nonce", 32),
      eph: hex(o, "eph", 32),
      identity: hex(o, "id", 32),
      sig: hex(o, "sig", 64),
    };
  } else if (o.type === "data") {
    if (keys !== DATA_KEYS.join(",")) throw new SyntaxError(`data fields: expected ${DATA_KEYS}`);
    const from = int(o, "from", 0, MAX_PARTIES - 1);
    const to = int(o, "to", 0, MAX_PARTIES - 1);
    if (from === to) throw new SyntaxError("fields from and to: expected different parties");
    if (typeof o.last !== "boolean") throw new SyntaxError("field last: expected a boolean");
    if (typeof o.ct !== "string") throw new SyntaxError("field ct: expected base64");
    let ct: Uint8Array;
    try {
      ct = base64.decode(o.ct);
    } catch {
      throw new SyntaxError("field ct: expected base64");
    }
    if (ct.length < AEAD_TAG_BYTES) throw new SyntaxError("field ct: shorter than an AEAD tag");
    f = {
      type: "data",
      tag: hex(o, "tag", TAG_BYTES),
      from,
      to,
      seq: int(o, "seq", 0, MAX_SEQ),
      last: o.last,
      ct,
    };
  } else {
    throw new SyntaxError('field type: expected "hello" or "data"');
  }
  if (encodeFrame(f) !== line) throw new SyntaxError("frame is not in canonical encoding");
  return f;
}

/**
 * Plaintext bytes per data fragment so that a data line stays within `maxBodyBytes`: base64
 * takes 4 characters per 3 bytes; 256 characters cover the JSON around the ciphertext.
 */
export function fragmentBytes(maxBodyBytes: number): number {
  return Math.floor((maxBodyBytes - 256) / 4) * 3 - AEAD_TAG_BYTES;
}

/**
 * Groups lines into as few bodies as possible, each at most `maxBodyBytes` (lines are ASCII, so
 * characters are bytes), keeping their order.
 *
 * @throws {RangeError} for a line longer than a body (a bug: fragments are sized to fit)
 */
export function packBodies(lines: readonly string[], maxBodyBytes: number): string[] {
  const bodies: string[] = [];
  let cur: string[] = [];
  let size = 0;
  for (const line of lines) {
    if (line.length > maxBodyBytes) throw new RangeError("frame longer than a gateway body");
    if (cur.length > 0 && size + 1 + line.length > maxBodyBytes) {
      bodies.push(cur.join("\n"));
      cur = [];
      size = 0;
    }
    size += (cur.length > 0 ? 1 : 0) + line.length;
    cur.push(line);
  }
  if (cur.length > 0) bodies.push(cur.join("\n"));
  return bodies;
}

/** UTF-8 of the canonical JSON of an envelope. */
export function encodeEnvelope(m: Message): Uint8Array {
  return utf8.encode(canonicalJson(m));
}

const ENVELOPE_KEYS = "from,payload,protocol,round,sid,to";

/**
 * Whether the arrays and objects of a JSON text nest at most `max` deep, by one pass over the
 * characters (no recursion, nothing built). Brackets inside strings do not count.
 */
export function jsonNestingWithin(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let k = 0; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (inString) {
      if (c === 0x5c) k++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return false;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return true;
}

/**
 * Parses a decrypted envelope (from an authenticated peer; still checked in full). The payload
 * may nest at most `MAX_PAYLOAD_DEPTH` deep, checked before the JSON is parsed, and must be
 * comparable JSON (`samePayload`: no number that overflows to Infinity).
 *
 * @throws {SyntaxError} for bad UTF-8, bad JSON, a payload nested too deep, a number out of
 * range or the wrong shape
 */
export function decodeEnvelope(bytes: Uint8Array, n: number): Message {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SyntaxError("envelope is not UTF-8 JSON");
  }
  // The envelope's own object is one level; its payload may add MAX_PAYLOAD_DEPTH more.
  if (!jsonNestingWithin(text, MAX_PAYLOAD_DEPTH + 1)) {
    throw new SyntaxError(`envelope payload: nested deeper than ${MAX_PAYLOAD_DEPTH} levels`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SyntaxError("envelope is not UTF-8 JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new SyntaxError("envelope is not a JSON object");
  }
  const o = v as Record<string, unknown>;
  if (Object.keys(o).sort().join(",") !== ENVELOPE_KEYS) {
    throw new SyntaxError(`envelope fields: expected ${ENVELOPE_KEYS}`);
  }
  if (typeof o.sid !== "string" || !/^[0-9a-f]{2,2048}$/.test(o.sid)) {
    throw new SyntaxError("envelope sid: expected lowercase hex");
  }
  if (typeof o.protocol !== "string" || !/^[a-z-]{1,32}$/.test(o.protocol)) {
    throw new SyntaxError("envelope protocol: expected a protocol name");
  }
  const round = int(o, "round", 1, 1000);
  const from = int(o, "from", 0, n - 1);
  const to = o.to === null ? null : int(o, "to", 0, n - 1);
  // A number beyond the doubles (1e999 parses to Infinity) has no JSON encoding to compare or
  // echo: such a payload is refused here rather than by whatever handles it later.
  if (!samePayload(o.payload, o.payload)) {
    throw new SyntaxError("envelope payload: a number out of range");
  }
  return {
    sid: o.sid,
    protocol: o.protocol as Message["protocol"],
    round,
    from,
    to,
    payload: o.payload,
  };
}
