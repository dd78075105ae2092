/**
 * Length-framed messages between the parent and the enclave: the provisioning messages (one
 * each, in order, on their own vsock ports; one of them optional) and the share-file upload of
 * the enclave with the parent's answer. Every read is bounded in size and time, and every way a
 * message can be wrong is a {@link FramingError} with a `code`; the boot program ends on any of
 * them (threat model: "bad framing ends the boot cleanly").
 *
 * ## Frame
 *
 * ```
 * "WMPV" (4 bytes) | version 1 (1 byte) | kind (1 byte) | length (4 bytes, big-endian) | payload
 * ```
 *
 * A sender writes one frame and then ends its sending direction (half-close); the receiver reads
 * the frame, checks that nothing follows it (a second frame is `duplicate`, other bytes
 * `oversized`), and answers with one {@link ACK} byte. The length is checked against the
 * kind's bound before any payload byte is read.
 *
 * ## Provisioning (parent -> enclave)
 *
 * | port | kind | payload | bound |
 * |---|---|---|---|
 * | 7100 | `credentials` | JSON `{ accessKeyId, secretAccessKey, sessionToken? }` | 16 KiB |
 * | 7101 | `age-key` | KMS ciphertext of the age identity (`CiphertextBlob`) | 16 KiB |
 * | 7104 | `issuer-secret` | optional: KMS ciphertext of the gateway's issuer secret | 16 KiB |
 * | 7102 | `shares` | the age-encrypted key share file (empty: no file yet) | 64 MiB |
 *
 * The parent sends them in this order, each after the previous one was acknowledged; a
 * connection on a later port first is `wrong-order`, a second one on a port `duplicate`. The
 * optional message (the issuer secret, port 7104) is either sent in its turn, not empty, or not
 * at all: a connection on the port after it (7102) skips it, and it is `wrong-order` after
 * that. So a parent that predates it provisions as before, and a parent that sends it to an
 * enclave image that predates it is refused at once (nothing listens on 7104).
 *
 * @example
 * ```ts
 * import { decodeFrameHeader, encodeFrame, FRAME_HEADER_BYTES } from "./framing.ts";
 * const frame = encodeFrame("age-key", new Uint8Array([1, 2, 3]));
 * const h = decodeFrameHeader(frame.subarray(0, FRAME_HEADER_BYTES));
 * console.assert(h.kind === "age-key" && h.length === 3);
 * ```
 * @module
 */
import { MAX_FILE_BYTES } from "../core/keyshare.ts";
import { acceptEach, closeQuietly } from "./channel.ts";

/** The kinds of frames. */
export const FRAME_KINDS = [
  "credentials",
  "age-key",
  "shares",
  "share-upload",
  "upload-result",
  "issuer-secret",
] as const;
/** A kind of frame. */
export type FrameKind = (typeof FRAME_KINDS)[number];

/** Why a frame or the provisioning sequence was refused. */
export type FramingErrorCode =
  | "truncated" // the stream ended inside a header or a payload
  | "oversized" // a length above the kind's bound, or bytes after the frame
  | "malformed" // not a frame: bad magic or version, unknown kind, a bad payload
  | "wrong-kind" // a frame of another kind than the port carries
  | "wrong-order" // a provisioning message before the one it must follow
  | "duplicate" // a second message on a port (or a second frame on one connection)
  | "timeout" // a message or the whole sequence took longer than allowed
  | "refused"; // the other side closed without acknowledging

/**
 * A framing failure. The message names the port or kind and the sizes involved; never payload
 * bytes.
 *
 * @example
 * ```ts
 * import { FramingError } from "./framing.ts";
 * const e = new FramingError("oversized", "credentials: 20000 bytes, at most 16384");
 * console.assert(e.name === "FramingError" && e.code === "oversized");
 * ```
 */
export class FramingError extends Error {
  override readonly name = "FramingError";
  /** Why. */
  readonly code: FramingErrorCode;
  /**
   * @param code why.
   * @param message what was expected and what was got (never a payload).
   */
  constructor(code: FramingErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

const MAGIC = new TextEncoder().encode("WMPV");
const VERSION = 1;
/** Bytes of a frame header. */
export const FRAME_HEADER_BYTES = 10;
/** The one byte a receiver answers a good frame with. */
export const ACK = 0x06;

/** The size bound of each kind (payload bytes). */
export const MAX_PAYLOAD_BYTES: Readonly<Record<FrameKind, number>> = {
  credentials: 16 * 1024,
  "age-key": 16 * 1024,
  shares: MAX_FILE_BYTES,
  "share-upload": MAX_FILE_BYTES,
  "upload-result": 16 * 1024,
  // KMS Encrypt takes at most 4096 plaintext bytes; its ciphertext is a little larger.
  "issuer-secret": 16 * 1024,
};

/** One provisioning message: its port and kind. */
export interface ProvisioningSlot {
  readonly port: number;
  readonly kind: "credentials" | "age-key" | "issuer-secret" | "shares";
  /** The parent may leave it out (then the next message skips it); never empty when sent. */
  readonly optional?: boolean;
}

/** The enclave's port of the optional issuer-secret message. */
export const ISSUER_SECRET_PORT = 7104;

/** The provisioning messages, in the order they must arrive. */
export const PROVISIONING: readonly ProvisioningSlot[] = [
  { port: 7100, kind: "credentials" },
  { port: 7101, kind: "age-key" },
  { port: ISSUER_SECRET_PORT, kind: "issuer-secret", optional: true },
  { port: 7102, kind: "shares" },
];
/** The parent's port for share-file uploads of the enclave (vsock, on the parent's CID). */
export const SHARE_UPLOAD_PORT = 7103;

/**
 * Encodes one frame.
 * @param kind the kind.
 * @param payload its bytes (at most the kind's bound).
 * @returns header and payload.
 * @throws {FramingError} `oversized` above the bound.
 */
export function encodeFrame(kind: FrameKind, payload: Uint8Array): Uint8Array {
  const code = FRAME_KINDS.indexOf(kind);
  if (code < 0) throw new TypeError(`frame kind: expected one of ${FRAME_KINDS.join(", ")}`);
  if (payload.length > MAX_PAYLOAD_BYTES[kind]) {
    throw new FramingError(
      "oversized",
      `${kind}: ${payload.length} bytes, at most ${MAX_PAYLOAD_BYTES[kind]}`,
    );
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out[5] = code + 1;
  new DataView(out.buffer).setUint32(6, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Decodes a frame header.
 * @param header exactly {@link FRAME_HEADER_BYTES} bytes.
 * @returns the kind and payload length.
 * @throws {FramingError} `malformed` for a bad magic, version or kind.
 */
export function decodeFrameHeader(header: Uint8Array): { kind: FrameKind; length: number } {
  if (header.length !== FRAME_HEADER_BYTES || !MAGIC.every((b, i) => header[i] === b)) {
    throw new FramingError("malformed", "expected a frame header starting with WMPV");
  }
  if (header[4] !== VERSION) {
    throw new FramingError("malformed", `frame version: expected ${VERSION}, got ${header[4]}`);
  }
  const kind = FRAME_KINDS[header[5] - 1];
  if (kind === undefined) throw new FramingError("malformed", `unknown frame kind ${header[5]}`);
  return { kind, length: new DataView(header.buffer, header.byteOffset).getUint32(6) };
}

/** A deadline shared by the reads of one message: closes the connection when it passes. */
function deadline(conn: Deno.Conn, ms: number, what: string) {
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    closeQuietly(conn);
  }, ms);
  return {
    /** Maps a read error after the deadline to `timeout`. */
    wrap(e: unknown): unknown {
      return expired ? new FramingError("timeout", `${what}: no complete message in ${ms} ms`) : e;
    },
    get expired() {
      return expired;
    },
    clear: () => clearTimeout(timer),
  };
}

/** Reads exactly `buf.length` bytes; false at a clean end of stream before the first byte. */
async function readFull(conn: Deno.Conn, buf: Uint8Array, what: string): Promise<boolean> {
  let off = 0;
  while (off < buf.length) {
    const n = await conn.read(buf.subarray(off));
    if (n === null) {
      if (off === 0) return false;
      throw new FramingError(
        "truncated",
        `${what}: the stream ended after ${off} of ${buf.length} bytes`,
      );
    }
    off += n;
  }
  return true;
}

/** Options of {@link readFrame}. */
export interface ReadFrameOptions {
  /** The kind expected (another kind is `wrong-kind`). */
  readonly kind: FrameKind;
  /** How long the whole frame may take, from now (default 30 s). */
  readonly timeoutMs?: number;
  /** Names the channel in errors (default: the kind). */
  readonly what?: string;
  /** Require the sender's half-close after the frame (default true). */
  readonly expectEnd?: boolean;
}

/**
 * Reads one frame of a kind from a connection, bounded in size and time, and (by default)
 * checks that the sender ended its direction right after it.
 * @param conn the connection.
 * @param options kind, timeout, name.
 * @returns the payload.
 * @throws {FramingError} any code but `wrong-order`; the connection is closed on a timeout.
 */
export async function readFrame(conn: Deno.Conn, options: ReadFrameOptions): Promise<Uint8Array> {
  const what = options.what ?? options.kind;
  const ms = options.timeoutMs ?? 30_000;
  const d = deadline(conn, ms, what);
  try {
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    if (!(await readFull(conn, header, what))) {
      throw new FramingError("truncated", `${what}: the stream ended before a frame`);
    }
    const { kind, length } = decodeFrameHeader(header);
    if (kind !== options.kind) {
      throw new FramingError(
        "wrong-kind",
        `${what}: expected a ${options.kind} frame, got ${kind}`,
      );
    }
    const max = MAX_PAYLOAD_BYTES[kind];
    if (length > max) {
      throw new FramingError("oversized", `${what}: ${length} bytes announced, at most ${max}`);
    }
    const payload = new Uint8Array(length);
    if (length > 0 && !(await readFull(conn, payload, what))) {
      throw new FramingError("truncated", `${what}: the stream ended after the header`);
    }
    if (options.expectEnd !== false) {
      const after = new Uint8Array(MAGIC.length);
      const n = await conn.read(after);
      if (n !== null) {
        const again = n === MAGIC.length && MAGIC.every((b, i) => after[i] === b);
        throw again
          ? new FramingError("duplicate", `${what}: a second frame on one connection`)
          : new FramingError("oversized", `${what}: bytes after the ${length}-byte frame`);
      }
    }
    return payload;
  } catch (e) {
    throw d.wrap(e);
  } finally {
    d.clear();
  }
}

/** Writes all of `bytes`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/**
 * Sends one frame, ends the sending direction, and waits (bounded) for the receiver's
 * {@link ACK}.
 * @param conn the connection (closed afterwards).
 * @param kind the kind.
 * @param payload the payload.
 * @param timeoutMs how long the receiver may take to acknowledge (default 30 s).
 * @throws {FramingError} `refused` when it closed without an acknowledgement, `timeout`.
 */
export async function sendFrame(
  conn: Deno.Conn,
  kind: FrameKind,
  payload: Uint8Array,
  timeoutMs = 30_000,
): Promise<void> {
  const d = deadline(conn, timeoutMs, kind);
  try {
    await writeAll(conn, encodeFrame(kind, payload));
    await conn.closeWrite();
    const ack = new Uint8Array(1);
    const n = await conn.read(ack);
    if (n !== 1 || ack[0] !== ACK) {
      throw new FramingError("refused", `${kind}: the receiver closed without acknowledging`);
    }
  } catch (e) {
    if (d.expired) throw d.wrap(e);
    if (e instanceof FramingError) throw e;
    throw new FramingError(
      "refused",
      `${kind}: the receiver closed the connection (${(e as Error)?.name})`,
    );
  } finally {
    d.clear();
    closeQuietly(conn);
  }
}

/** The provisioning payloads. */
export interface Provisioning {
  readonly credentials: Uint8Array;
  readonly ageKey: Uint8Array;
  /** The KMS ciphertext of the gateway's issuer secret; absent: the parent sent none. */
  readonly issuerSecret?: Uint8Array;
  readonly shares: Uint8Array;
}

/** The payload of a slot in a {@link Provisioning}. */
function payloadOf(p: Provisioning, kind: ProvisioningSlot["kind"]): Uint8Array | undefined {
  switch (kind) {
    case "credentials":
      return p.credentials;
    case "age-key":
      return p.ageKey;
    case "issuer-secret":
      return p.issuerSecret;
    case "shares":
      return p.shares;
  }
}

/** Options of {@link receiveProvisioning}. */
export interface ReceiveOptions {
  /** Opens the listener of a port (channel.ts). */
  readonly listen: (port: number) => Deno.Listener;
  /** How long the whole sequence may take (default 5 minutes). */
  readonly timeoutMs?: number;
  /** How long one message may take from its connection (default 30 s). */
  readonly messageTimeoutMs?: number;
  /** Told when each message was received (port and size only). */
  readonly onMessage?: (slot: ProvisioningSlot, bytes: number) => void;
}

/**
 * Receives the provisioning messages: listens on every port, takes one connection on each, in
 * order, reads its frame (bounded) and acknowledges it; then closes the listeners. The optional
 * message is skipped when the next one's connection comes first. A connection on a port out of
 * turn fails the whole sequence (`wrong-order` before its turn or after it was skipped,
 * `duplicate` after), as does any frame error or an empty optional message (`malformed`):
 * nothing received is returned then.
 * @param options listen, timeouts.
 * @returns the payloads (`issuerSecret` only when it was sent).
 * @throws {FramingError} on the first fault; every listener and connection is closed.
 */
export function receiveProvisioning(options: ReceiveOptions): Promise<Provisioning> {
  const messageMs = options.messageTimeoutMs ?? 30_000;
  const totalMs = options.timeoutMs ?? 300_000;
  const listeners: Deno.Listener[] = [];
  const conns = new Set<Deno.Conn>();
  const got: (Uint8Array | undefined)[] = [];
  const state = PROVISIONING.map(() => "waiting" as "waiting" | "reading" | "done" | "skipped");
  const slotName = (s: ProvisioningSlot) => `${s.kind} (port ${s.port})`;
  let finished = false;

  return new Promise<Provisioning>((resolve, reject) => {
    const end = (e?: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      closeQuietly(...listeners, ...conns);
      if (e !== undefined) {
        for (const g of got) g?.fill(0);
        reject(e);
      } else {
        const at = (kind: ProvisioningSlot["kind"]) =>
          got[PROVISIONING.findIndex((s) => s.kind === kind)];
        const issuerSecret = at("issuer-secret");
        resolve({
          credentials: at("credentials")!,
          ageKey: at("age-key")!,
          ...(issuerSecret ? { issuerSecret } : {}),
          shares: at("shares")!,
        });
      }
    };
    const timer = setTimeout(
      () => end(new FramingError("timeout", `provisioning: not complete in ${totalMs} ms`)),
      totalMs,
    );

    const handle = async (i: number, conn: Deno.Conn) => {
      const slot = PROVISIONING[i];
      const what = slotName(slot);
      if (state[i] === "skipped") {
        const next = PROVISIONING.slice(i + 1).find((s) => !s.optional)!;
        throw new FramingError(
          "wrong-order",
          `${what}: arrived after ${slotName(next)}; it is sent before it or not at all`,
        );
      }
      if (state[i] !== "waiting") {
        throw new FramingError("duplicate", `${what}: a second connection`);
      }
      const expected = state.findIndex((s) => s === "waiting" || s === "reading");
      if (expected !== i) {
        // Optional messages still waiting before this one are skipped; any other is missing.
        const missing = PROVISIONING.findIndex((s, k) =>
          k >= expected && k < i && (!s.optional || state[k] !== "waiting")
        );
        if (missing >= 0) {
          throw new FramingError(
            "wrong-order",
            `${what}: arrived before ${slotName(PROVISIONING[missing])} was received`,
          );
        }
        for (let k = expected; k < i; k++) state[k] = "skipped";
      }
      state[i] = "reading";
      const payload = await readFrame(conn, { kind: slot.kind, timeoutMs: messageMs, what });
      if (slot.optional && payload.length === 0) {
        throw new FramingError(
          "malformed",
          `${what}: an empty message (a parent with nothing to send leaves it out)`,
        );
      }
      got[i] = payload;
      state[i] = "done";
      await writeAll(conn, new Uint8Array([ACK]));
      conn.close();
      conns.delete(conn);
      options.onMessage?.(slot, payload.length);
      if (state.every((s) => s === "done" || s === "skipped")) end();
    };

    try {
      for (const slot of PROVISIONING) listeners.push(options.listen(slot.port));
    } catch (e) {
      end(e);
      return;
    }
    listeners.forEach((l, i) => {
      acceptEach(l, (conn) => {
        if (finished) return closeQuietly(conn);
        conns.add(conn);
        handle(i, conn).catch((e) => end(e));
      }).then((e) => {
        if (!finished) end(e);
      });
    });
  });
}

/** Options of {@link sendProvisioning}. */
export interface SendOptions {
  /** Connects to a port of the enclave (channel.ts). */
  readonly connect: (port: number) => Promise<Deno.Conn>;
  /** How long each message's acknowledgement may take (default 30 s). */
  readonly timeoutMs?: number;
  /**
   * How long to keep trying to connect to the first port while the enclave is still booting
   * (default 60 s); later ports must be open at once.
   */
  readonly connectTimeoutMs?: number;
}

/**
 * Sends the provisioning messages in order, each after the previous one was acknowledged; the
 * optional one only when its payload is given.
 * @param p the payloads.
 * @param options connect, timeouts.
 * @throws {FramingError} `refused` or `timeout`, naming the message; `oversized` before
 *   anything is sent, `malformed` for an empty optional payload.
 */
export async function sendProvisioning(p: Provisioning, options: SendOptions): Promise<void> {
  const sent = PROVISIONING.flatMap((slot) => {
    const payload = payloadOf(p, slot.kind);
    return payload === undefined && slot.optional ? [] : [{ slot, payload: payload! }];
  });
  // Sizes first: nothing is sent when one message could not be.
  for (const { slot, payload } of sent) {
    if (payload.length > MAX_PAYLOAD_BYTES[slot.kind]) {
      throw new FramingError(
        "oversized",
        `${slot.kind}: ${payload.length} bytes, at most ${MAX_PAYLOAD_BYTES[slot.kind]}`,
      );
    }
    if (slot.optional && payload.length === 0) {
      throw new FramingError("malformed", `${slot.kind}: empty (leave it out instead)`);
    }
  }
  const connectMs = options.connectTimeoutMs ?? 60_000;
  for (const [i, { slot, payload }] of sent.entries()) {
    let conn: Deno.Conn | undefined;
    const until = Date.now() + (i === 0 ? connectMs : 0);
    for (;;) {
      try {
        conn = await options.connect(slot.port);
        break;
      } catch (e) {
        if (Date.now() >= until) {
          const older = slot.optional
            ? "; an enclave image that predates this optional message does not listen on it"
            : "";
          throw new FramingError(
            "refused",
            `${slot.kind} (port ${slot.port}): cannot connect to the enclave (${
              (e as Error)?.name
            })${older}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await sendFrame(conn, slot.kind, payload, options.timeoutMs);
  }
}
