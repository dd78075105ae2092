/**
 * An authenticated, encrypted session of n parties through the untrusted sign-gateway, usable
 * as the `Transport` of `runProtocol`. The design (handshake, key schedule, frame format,
 * ordering rules, what the gateway learns) is in `docs/transport.md`; in short:
 *
 * 1. Every party posts a hello signed with its identity key (Ed25519, RFC 8032) carrying a fresh
 *    nonce and an ephemeral X25519 key (RFC 7748), and reads the room from its start.
 * 2. With every hello checked (pinned identity, signature, room, party count, no second hello),
 *    the transcript T of all hellos gives pairwise directional keys (HKDF-SHA256, RFC 5869) and
 *    the session id.
 * 3. Every party sends each peer a key confirmation (sequence number 0) that carries a hash of
 *    its context; a peer with another context fails with "context-mismatch", a peer with another
 *    transcript fails to authenticate. The session opens when every peer confirmed.
 * 4. Envelopes are encrypted per receiver with ChaCha20-Poly1305 (RFC 8439) under the directional
 *    key, nonce = sequence number, and are accepted strictly in sequence.
 *
 * Any fault (a frame that is altered, forged, replayed, reflected, dropped, reordered, of another
 * session) fails the whole session with a `TransportError` naming the fault, the party and the
 * sequence number; `receive` and `send` then reject with it, so `runProtocol` aborts.
 *
 * @example
 * ```ts
 * import { createGatewayHandler } from "../gateway/handler.ts";
 * import { createGatewayClient } from "./gateway_client.ts";
 * import { generateIdentity } from "./identity.ts";
 * import { openSecureSession } from "./secure_session.ts";
 * const handler = createGatewayHandler({ timers: false });
 * const gateway = createGatewayClient({
 *   url: "http://gw",
 *   fetch: (input, init) => handler(new Request(input, init)),
 * });
 * const ids = [generateIdentity(), generateIdentity()];
 * const peers = ids.map((id) => id.publicKey);
 * const room = "0123456789abcdef0123456789abcdef";
 * const context = new TextEncoder().encode("example");
 * const [a, b] = await Promise.all([0, 1].map((i) =>
 *   openSecureSession({ gateway, room, i, n: 2, identity: ids[i], peers, context })
 * ));
 * await a.send({ sid: "00", protocol: "keygen", round: 1, from: 0, to: 1, payload: "hi" });
 * const m = await b.receive(AbortSignal.timeout(5000));
 * console.assert(m.payload === "hi");
 * await Promise.all([a.close(), b.close()]);
 * await handler.close();
 * ```
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "../core/bytes.ts";
import { TransportError, type TransportErrorCode } from "../core/errors.ts";
import { type RandomSource, webCryptoRandom } from "../core/math/random.ts";
import { MAX_PARTIES } from "../core/params.ts";
import type { Transport } from "../core/protocols/driver.ts";
import type { Message } from "../core/protocols/types.ts";
import {
  dataAad,
  type DataFrame,
  decodeEnvelope,
  decodeFrame,
  encodeEnvelope,
  encodeFrame,
  fragmentBytes,
  type Frame,
  type HelloFrame,
  helloSignedBytes,
  MAX_SEQ,
  packBodies,
  seqNonce,
} from "./_frames.ts";
import {
  checkConfirm,
  confirmPlaintext,
  contextHash,
  directionKey,
  ephemeralPublic,
  equalBytes,
  protocolSessionId,
  sessionId,
  sessionTag,
  sharedSecret,
  transcriptHash,
} from "./_keys.ts";
import type { GatewayClient } from "./gateway_client.ts";
import type { Identity } from "./identity.ts";

/** Options of {@link openSecureSession}. */
export interface SecureSessionOptions {
  /** The gateway client. */
  readonly gateway: GatewayClient;
  /** The room: 32 lowercase hex digits, fresh for every session. */
  readonly room: string;
  /** This party's index, 0 <= i < n. */
  readonly i: number;
  /** Number of parties, 2 <= n <= 255. */
  readonly n: number;
  /** This party's identity key pair. */
  readonly identity: Identity;
  /**
   * Identity public keys by party index; the own entry must equal `identity.publicKey`. `null`:
   * not pinned yet (key generation only): the key of the hello is accepted and returned in
   * `peerIdentities`, and the caller must confirm it out of band before trusting the result.
   */
  readonly peers: readonly (Uint8Array | null)[];
  /** Bytes every party must agree on (operation, account, digest, path); any length. */
  readonly context: Uint8Array;
  /** Cancels the handshake and the session. */
  readonly signal?: AbortSignal;
  /** Time allowed for every hello and key confirmation to arrive (default 30 s). */
  readonly handshakeTimeoutMs?: number;
  /** Randomness for the nonce and the ephemeral key (default Web Crypto). */
  readonly rng?: RandomSource;
  /** The gateway's `limits.max_body_bytes` (default 1 MiB); larger envelopes are fragmented. */
  readonly maxBodyBytes?: number;
  /** Largest envelope sent or accepted, in bytes of JSON (default 4 MiB). */
  readonly maxMessageBytes?: number;
  /** Received envelopes kept until `receive` takes them (default 1024). */
  readonly maxQueued?: number;
}

/** An open session: a `Transport` plus the agreed session id and identities. */
export interface SecureSession extends Transport {
  /** 32-byte session id, equal for every party, fresh (it hashes every party's nonce). */
  readonly sid: Uint8Array;
  /** Identity public key of every party by index (own included; learned ones filled in). */
  readonly peerIdentities: readonly Uint8Array[];
  /**
   * A distinct 32-byte session id for one protocol run in this session.
   * @param label e.g. "keygen", "aux-info", "presign", "sign"
   */
  protocolSid(label: string): Uint8Array;
  /** Ends the subscription; pending and later `receive` / `send` reject with "closed". */
  close(): Promise<void>;
  /**
   * Aborted when the session fails (the peer's fault, the gateway, a timeout) or closes, with
   * the failure as its reason: work done for the session can stop with it.
   */
  readonly failed: AbortSignal;
}

/** Longest frame line accepted (the gateway client's default event bound). */
const MAX_FRAME_CHARS = 4 * 1024 * 1024;

const utf8 = new TextEncoder();
const digest = (line: string) => toHex(sha256(utf8.encode(line)));
const short = (key: Uint8Array) => toHex(key.subarray(0, 8));

function fault(code: TransportErrorCode, message: string): TransportError {
  return new TransportError(code, message);
}

/** What this party knows about the frames from one peer. */
interface Inbound {
  /** Next expected sequence number. */
  next: number;
  /** Digest of the line accepted at each sequence number (duplicates are dropped). */
  readonly accepted: Map<number, string>;
  /** Fragments of the envelope being received. */
  parts: Uint8Array[];
  bytes: number;
}

interface Waiter {
  resolve(m: Message): void;
  reject(e: unknown): void;
  done(): void;
}

/**
 * Opens a secure session in a gateway room: handshake, key confirmation, then the transport.
 *
 * @param options gateway, room, party index and count, identity, pinned peers, context
 * @returns the open session (close it when done)
 * @throws {TypeError} / {RangeError} for bad options; {TransportError} "identity-mismatch",
 * "context-mismatch", "tampered", "replayed", "injected", "malformed", "handshake", "timeout",
 * "aborted", or a gateway failure ("io", "gone", "rejected")
 */
export async function openSecureSession(options: SecureSessionOptions): Promise<SecureSession> {
  const s = new Session(options);
  try {
    await s.open(options.handshakeTimeoutMs ?? 30_000, options.signal);
  } catch (e) {
    await s.close();
    throw e;
  }
  return s;
}

class Session implements SecureSession {
  readonly #gw: GatewayClient;
  readonly #room: string;
  readonly #i: number;
  readonly #n: number;
  readonly #pins: readonly (Uint8Array | null)[];
  readonly #ctx: Uint8Array;
  readonly #maxBody: number;
  readonly #maxMessage: number;
  readonly #maxQueued: number;
  readonly #ctl = new AbortController();
  readonly #ephSecret: Uint8Array;
  readonly #helloLine: string;
  readonly #hellos: (HelloFrame & { line: string })[] = [];
  readonly #sent = new Set<string>();
  readonly #queue: Message[] = [];
  #waiters: Waiter[] = [];
  #error: TransportError | null = null;
  #transcript: Uint8Array | null = null;
  #tag: Uint8Array = new Uint8Array(0);
  #sid: Uint8Array = new Uint8Array(0);
  #sendKeys: Uint8Array[] = [];
  #recvKeys: Uint8Array[] = [];
  readonly #sendSeq: number[];
  readonly #inbound: Inbound[];
  #confirmed = 0;
  #ready: { resolve(): void; reject(e: unknown): void } | null = null;
  #pump: Promise<void> = Promise.resolve();
  #posts: Promise<void> = Promise.resolve();
  #unlisten: () => void = () => {};

  constructor(o: SecureSessionOptions) {
    if (!o || typeof o !== "object") throw new TypeError("expected an options object");
    const gw = o.gateway;
    if (!gw || typeof gw.subscribe !== "function" || typeof gw.broadcast !== "function") {
      throw new TypeError("gateway: expected a GatewayClient");
    }
    if (typeof o.room !== "string" || !/^[0-9a-f]{32}$/.test(o.room)) {
      throw new RangeError("room: expected 32 lowercase hex digits");
    }
    if (!Number.isInteger(o.n) || o.n < 2 || o.n > MAX_PARTIES) {
      throw new RangeError(`n: expected an integer from 2 to ${MAX_PARTIES}, got ${o.n}`);
    }
    if (!Number.isInteger(o.i) || o.i < 0 || o.i >= o.n) {
      throw new RangeError(`i: expected an integer from 0 to ${o.n - 1}, got ${o.i}`);
    }
    const id = o.identity;
    for (const k of ["secretKey", "publicKey"] as const) {
      if (!(id?.[k] instanceof Uint8Array) || id[k].length !== 32) {
        throw new TypeError(`identity.${k}: expected 32 bytes`);
      }
    }
    if (!equalBytes(ed25519.getPublicKey(id.secretKey), id.publicKey)) {
      throw new RangeError("identity: publicKey is not the key of secretKey");
    }
    if (!Array.isArray(o.peers) || o.peers.length !== o.n) {
      throw new RangeError(`peers: expected an array of ${o.n} entries`);
    }
    const pins = o.peers.map((k, j) => {
      if (k === null) return null;
      if (!(k instanceof Uint8Array) || k.length !== 32) {
        throw new TypeError(`peers[${j}]: expected 32 bytes or null`);
      }
      return Uint8Array.from(k);
    });
    if (!pins[o.i] || !equalBytes(pins[o.i]!, id.publicKey)) {
      throw new RangeError(`peers[${o.i}]: expected this party's own identity public key`);
    }
    const hexes = pins.filter((k) => k !== null).map((k) => toHex(k!));
    if (new Set(hexes).size !== hexes.length) throw new RangeError("peers: pinned keys repeat");
    if (!(o.context instanceof Uint8Array)) throw new TypeError("context: expected a Uint8Array");
    const maxBody = o.maxBodyBytes ?? 1024 * 1024;
    if (!Number.isInteger(maxBody) || maxBody < 4096) {
      throw new RangeError("maxBodyBytes: expected an integer >= 4096");
    }
    this.#gw = gw;
    this.#room = o.room;
    this.#i = o.i;
    this.#n = o.n;
    this.#pins = pins;
    this.#ctx = contextHash(o.context);
    this.#maxBody = maxBody;
    this.#maxMessage = o.maxMessageBytes ?? 4 * 1024 * 1024;
    this.#maxQueued = o.maxQueued ?? 1024;
    this.#sendSeq = new Array(o.n).fill(0);
    this.#inbound = Array.from({ length: o.n }, () => ({
      next: 0,
      accepted: new Map(),
      parts: [],
      bytes: 0,
    }));
    const rng = o.rng ?? webCryptoRandom;
    const nonce = new Uint8Array(32);
    rng(nonce);
    this.#ephSecret = new Uint8Array(32);
    rng(this.#ephSecret);
    const hello = {
      room: o.room,
      from: o.i,
      n: o.n,
      nonce,
      eph: ephemeralPublic(this.#ephSecret),
      identity: Uint8Array.from(id.publicKey),
    };
    const sig = ed25519.sign(helloSignedBytes(hello), id.secretKey);
    this.#helloLine = encodeFrame({ type: "hello", ...hello, sig });
    this.#hellos[o.i] = { type: "hello", ...hello, sig, line: this.#helloLine };
  }

  get sid(): Uint8Array {
    return Uint8Array.from(this.#sid);
  }

  get failed(): AbortSignal {
    return this.#ctl.signal;
  }

  get peerIdentities(): readonly Uint8Array[] {
    return this.#hellos.map((h) => Uint8Array.from(h.identity));
  }

  protocolSid(label: string): Uint8Array {
    if (typeof label !== "string") throw new TypeError("label: expected a string");
    if (label.length === 0 || label.length > 256) {
      throw new RangeError("label: expected 1 to 256 characters");
    }
    if (this.#sid.length === 0) throw new RangeError("protocolSid: the session is not open");
    return protocolSessionId(this.#sid, label);
  }

  /** Runs the handshake; resolves when every peer confirmed. */
  async open(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    if (!(timeoutMs > 0)) throw new RangeError("handshakeTimeoutMs: expected a positive number");
    const ready = new Promise<void>((resolve, reject) => (this.#ready = { resolve, reject }));
    if (signal) {
      const onAbort = () => this.#fail(fault("aborted", `session in room ${this.#room} cancelled`));
      if (signal.aborted) onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#unlisten = () => signal.removeEventListener("abort", onAbort);
    }
    const timer = setTimeout(() => {
      this.#fail(fault("timeout", `handshake in room ${this.#room}: ${this.#missing()}`));
    }, timeoutMs);
    this.#pump = this.#runPump();
    this.#post([this.#helloLine]).catch(() => {});
    try {
      await ready;
      // Our own key confirmation must be on the wire before the caller starts heavy work (the
      // first protocol round): the peer opens only when it has it, so both start in parallel.
      await this.#posts;
      if (this.#error) throw this.#error;
    } finally {
      clearTimeout(timer);
    }
  }

  #missing(): string {
    const peers = [...Array(this.#n).keys()].filter((j) => j !== this.#i);
    const noHello = peers.filter((j) => !this.#hellos[j]);
    if (noHello.length > 0) return `no hello from party ${noHello.join(", ")}`;
    const noConfirm = peers.filter((j) => this.#inbound[j].next === 0);
    return `no key confirmation from party ${noConfirm.join(", ")}`;
  }

  send(msg: Message): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (!this.#transcript) return Promise.reject(new RangeError("send: the session is not open"));
    if (!msg || msg.from !== this.#i) {
      return Promise.reject(new RangeError(`send: expected an envelope from party ${this.#i}`));
    }
    const to = msg.to;
    if (to !== null && (!Number.isInteger(to) || to < 0 || to >= this.#n || to === this.#i)) {
      return Promise.reject(new RangeError(`send: expected to = null or a peer, got ${to}`));
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeEnvelope(msg);
    } catch (e) {
      return Promise.reject(e);
    }
    if (bytes.length > this.#maxMessage) {
      return Promise.reject(
        fault("limit", `send: an envelope of ${bytes.length} bytes, at most ${this.#maxMessage}`),
      );
    }
    const targets = to === null ? [...Array(this.#n).keys()].filter((j) => j !== this.#i) : [to];
    const size = fragmentBytes(this.#maxBody);
    const lines: string[] = [];
    try {
      for (const j of targets) {
        for (let off = 0; off < bytes.length; off += size) {
          const end = Math.min(bytes.length, off + size);
          lines.push(this.#seal(j, bytes.subarray(off, end), end === bytes.length));
        }
      }
    } catch (e) {
      this.#fail(e as TransportError);
      return Promise.reject(this.#error);
    }
    return this.#post(lines);
  }

  receive(signal: AbortSignal): Promise<Message> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift()!);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<Message>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        resolve,
        reject,
        done: () => signal.removeEventListener("abort", onAbort),
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  async close(): Promise<void> {
    this.#fail(fault("closed", `session in room ${this.#room} closed`));
    this.#unlisten();
    await this.#pump;
    await this.#posts;
  }

  /** Fails the session once: every later call sees `e`. */
  #fail(e: TransportError): void {
    if (this.#error) return;
    this.#error = e;
    this.#ctl.abort(e);
    for (const w of this.#waiters) {
      w.done();
      w.reject(e);
    }
    this.#waiters = [];
    this.#ready?.reject(e);
    this.#ephSecret.fill(0);
    for (const k of [...this.#sendKeys, ...this.#recvKeys]) k?.fill(0);
  }

  /** Posts lines in order (after earlier posts); a failure fails the session. */
  #post(lines: string[]): Promise<void> {
    for (const l of lines) this.#sent.add(digest(l));
    const bodies = packBodies(lines, this.#maxBody);
    const p = this.#posts.then(async () => {
      for (const b of bodies) {
        if (this.#error) throw this.#error;
        await this.#gw.broadcast(this.#room, b, this.#ctl.signal);
      }
    });
    this.#posts = p.catch((e) => {
      this.#fail(
        e instanceof TransportError ? e : new TransportError("io", "post failed", { cause: e }),
      );
    });
    return p.catch(() => {
      throw this.#error;
    });
  }

  async #runPump(): Promise<void> {
    try {
      const events = this.#gw.subscribe(this.#room, { signal: this.#ctl.signal });
      for await (const ev of events) {
        const lines = ev.data.split("\n");
        for (const line of lines) {
          this.#onLine(line, ev.id);
          if (this.#error) return;
        }
      }
      this.#fail(fault("closed", `room ${this.#room}: the stream ended`));
    } catch (e) {
      this.#fail(
        e instanceof TransportError
          ? e
          : new TransportError("io", `room ${this.#room}: receive failed`, { cause: e }),
      );
    }
  }

  #onLine(line: string, eventId: number): void {
    let f: Frame;
    try {
      f = decodeFrame(line, MAX_FRAME_CHARS);
    } catch (e) {
      throw fault("malformed", `room ${this.#room}, event ${eventId}: ${(e as Error).message}`);
    }
    if (f.type === "hello") this.#onHello(f, line);
    else this.#onData(f, line);
  }

  #onHello(f: HelloFrame, line: string): void {
    const who = `hello of party ${f.from}`;
    if (f.from === this.#i) {
      if (line === this.#helloLine) return;
      throw fault("injected", `a hello claiming to come from this party (${this.#i})`);
    }
    if (f.n !== this.#n) {
      throw fault("handshake", `${who}: expects ${f.n} parties, this session has ${this.#n}`);
    }
    const prev = this.#hellos[f.from];
    if (prev?.line === line) return;
    const pin = this.#pins[f.from] ?? prev?.identity ?? null;
    if (pin && !equalBytes(pin, f.identity)) {
      throw fault(
        "identity-mismatch",
        `${who}: identity key ${short(f.identity)}... is not the pinned key ${short(pin)}...`,
      );
    }
    let valid = false;
    try {
      valid = ed25519.verify(f.sig, helloSignedBytes(f), f.identity, { zip215: false });
    } catch {
      valid = false;
    }
    if (!valid) throw fault("tampered", `${who}: the signature does not verify`);
    if (f.room !== this.#room) throw fault("replayed", `${who}: signed for another room`);
    if (prev) throw fault("replayed", `${who}: a second, different hello`);
    this.#hellos[f.from] = { ...f, line };
    if (this.#hellos.filter((h) => h !== undefined).length === this.#n) this.#derive();
  }

  /** Every hello is in: key schedule (`_keys.ts`), then key confirmation to every peer. */
  #derive(): void {
    const T = transcriptHash(this.#hellos);
    for (let j = 0; j < this.#n; j++) {
      if (j === this.#i) continue;
      let shared: Uint8Array;
      try {
        shared = sharedSecret(this.#ephSecret, this.#hellos[j].eph);
      } catch {
        throw fault("handshake", `hello of party ${j}: an ephemeral key of low order`);
      }
      this.#sendKeys[j] = directionKey(shared, T, this.#i, j);
      this.#recvKeys[j] = directionKey(shared, T, j, this.#i);
      shared.fill(0);
    }
    this.#ephSecret.fill(0);
    this.#transcript = T;
    this.#tag = sessionTag(T);
    this.#sid = sessionId(T, this.#ctx);
    const lines: string[] = [];
    for (let j = 0; j < this.#n; j++) {
      if (j !== this.#i) lines.push(this.#seal(j, confirmPlaintext(this.#ctx), true));
    }
    this.#post(lines).catch(() => {});
  }

  /** Encrypts one fragment to party j under k_{i->j} with the next sequence number. */
  #seal(j: number, pt: Uint8Array, last: boolean): string {
    const seq = this.#sendSeq[j]++;
    if (seq > MAX_SEQ) throw fault("limit", `to party ${j}: sequence numbers exhausted`);
    const head = { from: this.#i, to: j, seq, last };
    const aad = dataAad(this.#room, this.#transcript!, head);
    const ct = chacha20poly1305(this.#sendKeys[j], seqNonce(seq), aad).encrypt(pt);
    return encodeFrame({ type: "data", tag: this.#tag, ...head, ct });
  }

  #onData(f: DataFrame, line: string): void {
    const at = `party ${f.from}, seq ${f.seq}`;
    if (!this.#transcript) {
      throw fault("out-of-order", `a data frame (${at}) before every hello arrived`);
    }
    if (!equalBytes(f.tag, this.#tag)) throw fault("replayed", `${at}: a frame of another session`);
    if (f.from >= this.#n || f.to >= this.#n) {
      throw fault("malformed", `${at}: a party index beyond ${this.#n - 1}`);
    }
    if (f.from === this.#i) {
      if (this.#sent.has(digest(line))) return;
      throw fault(
        "injected",
        `a frame claiming to come from this party (${this.#i}, seq ${f.seq})`,
      );
    }
    if (f.to !== this.#i) return;
    const p = this.#inbound[f.from];
    const d = digest(line);
    if (f.seq < p.next) {
      if (p.accepted.get(f.seq) === d) return;
      throw fault("replayed", `${at}: a different frame with an already used sequence number`);
    }
    if (f.seq > p.next) {
      throw fault(
        "out-of-order",
        `${at}: expected seq ${p.next} (a frame was dropped or reordered)`,
      );
    }
    let pt: Uint8Array;
    try {
      const aad = dataAad(this.#room, this.#transcript, f);
      pt = chacha20poly1305(this.#recvKeys[f.from], seqNonce(f.seq), aad).decrypt(f.ct);
    } catch {
      throw fault("tampered", `${at}: authentication failed (altered or forged)`);
    }
    p.accepted.set(f.seq, d);
    p.next++;
    if (f.seq === 0) return this.#onConfirm(f, pt);
    p.bytes += pt.length;
    if (p.bytes > this.#maxMessage) {
      throw fault("limit", `${at}: an envelope over ${this.#maxMessage} bytes`);
    }
    p.parts.push(pt);
    if (!f.last) return;
    const bytes = new Uint8Array(p.bytes);
    let o = 0;
    for (const part of p.parts) {
      bytes.set(part, o);
      o += part.length;
    }
    p.parts = [];
    p.bytes = 0;
    let m: Message;
    try {
      m = decodeEnvelope(bytes, this.#n);
    } catch (e) {
      throw fault("malformed", `${at}: ${(e as Error).message}`);
    }
    if (m.from !== f.from) throw fault("malformed", `${at}: an envelope from party ${m.from}`);
    if (m.to !== null && m.to !== this.#i) {
      throw fault("malformed", `${at}: an envelope addressed to party ${m.to}`);
    }
    this.#deliver(m);
  }

  #onConfirm(f: DataFrame, pt: Uint8Array): void {
    const c = checkConfirm(pt, this.#ctx);
    if (c === "context") {
      throw fault(
        "context-mismatch",
        `party ${f.from} joined this room for another context (operation, account, digest or path)`,
      );
    }
    if (c !== "ok" || !f.last) {
      throw fault("handshake", `party ${f.from}, seq 0: not a key confirmation`);
    }
    if (++this.#confirmed === this.#n - 1) this.#ready?.resolve();
  }

  #deliver(m: Message): void {
    const w = this.#waiters.shift();
    if (w) {
      w.done();
      w.resolve(m);
      return;
    }
    if (this.#queue.length >= this.#maxQueued) {
      throw fault("limit", `more than ${this.#maxQueued} envelopes waiting to be received`);
    }
    this.#queue.push(m);
  }
}
