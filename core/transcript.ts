/**
 * Fiat-Shamir transcript for every non-interactive proof and commitment of the project.
 *
 * Encoding (absorbed into SHAKE-256): every item is
 *   type (1 byte) || len(label) (u32 BE) || label (UTF-8) || len(payload) (u32 BE) || payload
 * so that two different sequences of items never produce the same byte string: each field is
 * typed and length-prefixed, which defeats the TSSHOCK "alpha-shuffle" collisions of naive
 * concatenation. A transcript starts with a fixed protocol tag, the proof's domain tag, the
 * session id and the prover's index, so a proof cannot be replayed in another session, by
 * another party, or as another kind of proof.
 *
 * Challenges are squeezed from a clone of the state after absorbing a challenge label and a
 * counter: each challenge (and each of Pi-prm's and Pi-mod's m repetitions) comes from its own
 * derivation, and rejection sampling keeps integers uniform.
 * @module
 */
import { shake256 } from "@noble/hashes/sha3.js";
import { u32be } from "./bytes.ts";
import { bitLength, toBytesBE } from "./math/bigint.ts";

const PROTOCOL_TAG = "wallet-mpc/cggmp21/v1";
const enc = new TextEncoder();

const T_BYTES = 1;
const T_UINT = 2;
const T_INT = 3;
const T_STRING = 4;
const T_LIST = 5;
const T_CHALLENGE = 0xff;

type Hasher = ReturnType<typeof shake256.create>;

/** A Fiat-Shamir transcript. Mutable: `append*` absorbs, `challenge*` does not change it. */
export class Transcript {
  #h: Hasher;

  private constructor(h: Hasher) {
    this.#h = h;
  }

  /**
   * A transcript bound to a proof or commitment domain, a session id and the prover's index.
   * @param domain e.g. "pi-mod", "keygen/commit".
   * @param sid the session id all parties agreed on (any length, at least 1 byte).
   * @param prover index of the party that produces the proof or commitment.
   */
  static create(domain: string, sid: Uint8Array, prover: number): Transcript {
    if (!(sid instanceof Uint8Array) || sid.length === 0) {
      throw new TypeError("transcript: expected a non-empty session id");
    }
    if (!Number.isInteger(prover) || prover < 0) throw new RangeError("transcript: bad prover");
    const t = new Transcript(shake256.create({}));
    t.appendString("protocol", PROTOCOL_TAG);
    t.appendString("domain", domain);
    t.appendBytes("sid", sid);
    t.appendUint("prover", BigInt(prover));
    return t;
  }

  /** An independent copy (to fork a transcript). */
  clone(): Transcript {
    return new Transcript(this.#h.clone());
  }

  #item(type: number, label: string, payload: Uint8Array): this {
    const l = enc.encode(label);
    this.#h.update(new Uint8Array([type]));
    this.#h.update(u32be(l.length));
    this.#h.update(l);
    this.#h.update(u32be(payload.length));
    this.#h.update(payload);
    return this;
  }

  /** Absorbs raw bytes (points: their 33-byte compressed form). */
  appendBytes(label: string, bytes: Uint8Array): this {
    return this.#item(T_BYTES, label, bytes);
  }

  /** Absorbs a UTF-8 string. */
  appendString(label: string, s: string): this {
    return this.#item(T_STRING, label, enc.encode(s));
  }

  /** Absorbs a non-negative integer (minimal big-endian; 0 is the empty payload). */
  appendUint(label: string, x: bigint): this {
    if (x < 0n) throw new RangeError("transcript: appendUint takes x >= 0");
    return this.#item(T_UINT, label, toBytesBE(x));
  }

  /** Absorbs a signed integer: a sign byte (0 or 1) then the magnitude. */
  appendInt(label: string, x: bigint): this {
    const mag = toBytesBE(x < 0n ? -x : x);
    const payload = new Uint8Array(mag.length + 1);
    payload[0] = x < 0n ? 1 : 0;
    payload.set(mag, 1);
    return this.#item(T_INT, label, payload);
  }

  /** Absorbs a list of signed integers: the count, then each as `appendInt` would. */
  appendInts(label: string, xs: readonly bigint[]): this {
    this.#item(T_LIST, label, u32be(xs.length));
    for (let i = 0; i < xs.length; i++) this.appendInt(`${label}[${i}]`, xs[i]);
    return this;
  }

  /** `n` bytes from the XOF for (label, counter), without changing the transcript. */
  challengeBytes(label: string, n: number, counter = 0): Uint8Array {
    const h = this.#h.clone();
    const l = enc.encode(label);
    h.update(new Uint8Array([T_CHALLENGE]));
    h.update(u32be(l.length));
    h.update(l);
    h.update(u32be(counter));
    return h.xof(n);
  }

  /**
   * A uniform integer in [0, n) for (label, counter), by rejection sampling over the XOF stream.
   */
  challengeBelow(label: string, n: bigint, counter = 0): bigint {
    if (n <= 0n) throw new RangeError("transcript: challenge bound must be positive");
    const bits = bitLength(n - 1n);
    const bytes = Math.max(1, Math.ceil(bits / 8));
    const mask = bits % 8 === 0 ? 0xff : (1 << (bits % 8)) - 1;
    // Enough stream for 64 attempts; the chance of needing more is below 2^-64.
    const stream = this.challengeBytes(label, bytes * 64, counter);
    for (let a = 0; a < 64; a++) {
      const chunk = stream.slice(a * bytes, (a + 1) * bytes);
      chunk[0] &= mask;
      let x = 0n;
      for (const b of chunk) x = (x << 8n) | BigInt(b);
      if (x < n) return x;
    }
    return this.challengeBelow(label, n, counter + 0x10000);
  }

  /** A uniform integer in [-q, q] (the paper's e in "+-q"). */
  challengeSigned(label: string, q: bigint): bigint {
    return this.challengeBelow(label, 2n * q + 1n) - q;
  }

  /** m challenge bits, each its own XOF derivation (counter i): 0 or 1 per entry. */
  challengeBits(label: string, m: number): Uint8Array {
    const out = new Uint8Array(m);
    for (let i = 0; i < m; i++) out[i] = this.challengeBytes(label, 1, i)[0] & 1;
    return out;
  }
}
