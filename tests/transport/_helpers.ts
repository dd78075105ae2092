/**
 * Helpers of the transport tests: the real gateway handler in-process behind a scriptable
 * (possibly hostile) `fetch`, frame surgery, and a two-party key generation run in which the
 * failure of one chosen party stops the other.
 * @module
 */
import { base64 } from "@scure/base";
import { TransportError, type TransportErrorCode } from "../../core/errors.ts";
import { runProtocol } from "../../core/protocols/driver.ts";
import { keygen } from "../../core/protocols/keygen.ts";
import type { KeyShareCore } from "../../core/protocols/types.ts";
import { createGatewayHandler, type GatewayOptions } from "../../gateway/handler.ts";
import {
  createGatewayClient,
  type GatewayClient,
  generateIdentity,
  type Identity,
  openSecureSession,
  type RetryOptions,
  type SecureSession,
  type SecureSessionOptions,
} from "../../transport/mod.ts";

/** A frame line as a plain object (for surgery). */
export type Wire = Record<string, unknown>;

/** Parses a frame line. */
export const frameOf = (line: string): Wire => JSON.parse(line);

/** Re-encodes a frame in canonical key order (the order `_frames.ts` writes). */
export function lineOf(f: Wire): string {
  const order = f.type === "hello"
    ? ["v", "type", "room", "from", "n", "nonce", "eph", "id", "sig"]
    : ["v", "type", "tag", "from", "to", "seq", "last", "ct"];
  return JSON.stringify(Object.fromEntries(order.map((k) => [k, f[k]])));
}

/** Whether a line is the data frame from `from` with sequence number `seq`. */
export function isData(line: string, from: number, seq: number): boolean {
  const f = frameOf(line);
  return f.type === "data" && f.from === from && f.seq === seq;
}

/** The line with one ciphertext byte flipped. */
export function flipByte(line: string): string {
  const f = frameOf(line);
  const ct = base64.decode(f.ct as string);
  ct[Math.floor(ct.length / 2)] ^= 0x01;
  return lineOf({ ...f, ct: base64.encode(ct) });
}

/** The real gateway handler behind a fetch with hooks. */
export class TestGateway {
  readonly handler: ReturnType<typeof createGatewayHandler>;
  /** Rewrites the frames of each POST to the broadcast route (return the lines to store). */
  onPost: ((lines: string[], room: string) => string[] | Promise<string[]>) | null = null;
  /** Answers a subscribe before the gateway does (e.g. a 410), or returns null to pass. */
  onSubscribe: ((req: Request) => Response | null) | null = null;
  /** Cut every subscribe stream after this many bytes (once per stream), or null. */
  cutAfterBytes: number | null = null;
  /** While true, every request fails like an unreachable host. */
  down = false;
  /** The Last-Event-ID header of every subscribe request. */
  readonly resumes: (string | null)[] = [];
  /** Every line stored, with its room. */
  readonly stored: { room: string; line: string }[] = [];
  readonly #streams = new Set<() => void>();

  constructor(options: GatewayOptions = {}) {
    this.handler = createGatewayHandler({ timers: false, ...options });
  }

  /** The hooked fetch. */
  readonly fetch = async (input: string, init: RequestInit): Promise<Response> => {
    if (this.down) throw new TypeError("fetch failed: connection refused");
    const req = new Request(input, init);
    const path = new URL(req.url).pathname.split("/");
    const room = path[2];
    if (path[3] === "broadcast" && req.method === "POST") {
      const body = await req.text();
      const lines = this.onPost ? await this.onPost(body.split("\n"), room) : body.split("\n");
      if (lines.length === 0) return new Response(null, { status: 200 });
      for (const line of lines) this.stored.push({ room, line });
      return this.handler(
        new Request(req.url, { method: "POST", headers: req.headers, body: lines.join("\n") }),
      );
    }
    if (path[3] === "subscribe") {
      this.resumes.push(req.headers.get("last-event-id"));
      const early = this.onSubscribe?.(req);
      if (early) return early;
      const res = await this.handler(req);
      if (res.status !== 200 || !res.body) return res;
      return new Response(this.#wrap(res.body), { status: 200, headers: res.headers });
    }
    return this.handler(req);
  };

  /** A stream that can be cut: after `cutAfterBytes`, or all at once by `cutAll`. */
  #wrap(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    const reader = body.getReader();
    let seen = 0;
    const limit = this.cutAfterBytes;
    let ctl!: ReadableStreamDefaultController<Uint8Array>;
    const end = () => {
      this.#streams.delete(end);
      reader.cancel().catch(() => {});
      try {
        ctl.close();
      } catch {
        // already closed
      }
    };
    return new ReadableStream<Uint8Array>({
      start: (c) => {
        ctl = c;
        this.#streams.add(end);
      },
      pull: async (c) => {
        const { done, value } = await reader.read();
        if (done) return end();
        if (limit !== null && seen + value.length > limit) {
          c.enqueue(value.subarray(0, limit - seen));
          return end();
        }
        seen += value.length;
        c.enqueue(value);
      },
      cancel: () => {
        this.#streams.delete(end);
        reader.cancel().catch(() => {});
      },
    });
  }

  /** Closes every open stream (as a gateway restart would). */
  cutAll(): void {
    for (const end of [...this.#streams]) end();
  }

  /** Appends a body to a room directly (an injection that bypasses the hooks). */
  async append(room: string, body: string): Promise<void> {
    const res = await this.handler(
      new Request(`http://gw/rooms/${room}/broadcast`, { method: "POST", body }),
    );
    if (res.status !== 200) throw new Error(`append: ${res.status} ${await res.text()}`);
  }

  /** A gateway client on the hooked fetch. */
  client(
    retry: Partial<RetryOptions> = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 },
  ): GatewayClient {
    return createGatewayClient({ url: "http://gw", fetch: this.fetch, retry });
  }

  async close(): Promise<void> {
    this.down = false;
    this.cutAll();
    await this.handler.close();
  }
}

/** Two fixed identities (kept across sessions, as in production). */
export const IDS: readonly Identity[] = [generateIdentity(), generateIdentity()];
export const PINS: readonly Uint8Array[] = IDS.map((id) => id.publicKey);
export const CONTEXT: Uint8Array = new TextEncoder().encode("test context");

/** Options of one party's session in a test. */
export function sessionOptions(
  gw: TestGateway,
  room: string,
  i: number,
  extra: Partial<SecureSessionOptions> = {},
): SecureSessionOptions {
  return {
    gateway: gw.client(),
    room,
    i,
    n: 2,
    identity: IDS[i],
    peers: PINS,
    context: CONTEXT,
    handshakeTimeoutMs: 5000,
    ...extra,
  };
}

/**
 * Opens both sessions and runs key generation; when `victim` settles, the other party is
 * stopped (cancelled), so a run that the victim aborts ends at once.
 */
export async function keygenPair(
  gw: TestGateway,
  room: string,
  options: {
    victim?: number;
    extra?: (i: number) => Partial<SecureSessionOptions>;
    onOpen?: (s: SecureSession, i: number) => void;
  } = {},
): Promise<PromiseSettledResult<KeyShareCore>[]> {
  const stop = new AbortController();
  const run = async (i: number): Promise<KeyShareCore> => {
    const s = await openSecureSession(
      sessionOptions(gw, room, i, { signal: stop.signal, ...options.extra?.(i) }),
    );
    options.onOpen?.(s, i);
    try {
      return await runProtocol(keygen, { sid: s.protocolSid("keygen"), i, n: 2 }, s, {
        signal: stop.signal,
        roundTimeoutMs: 5000,
      });
    } finally {
      await s.close();
    }
  };
  const runs = [0, 1].map(run);
  if (options.victim !== undefined) {
    runs[options.victim].then(() => stop.abort(), () => stop.abort());
  }
  return await Promise.allSettled(runs);
}

/** The TransportError code of a rejected result (fails the test for anything else). */
export function codeOf(r: PromiseSettledResult<unknown>): TransportErrorCode {
  if (r.status === "fulfilled") throw new Error("expected a failure, got an output");
  if (!(r.reason instanceof TransportError)) {
    throw new Error(`expected a TransportError, got ${String(r.reason)}`, { cause: r.reason });
  }
  return r.reason.code;
}

/** The error of a rejected result. */
export function errorOf(r: PromiseSettledResult<unknown>): TransportError {
  codeOf(r);
  return (r as PromiseRejectedResult).reason;
}

/** A deferred value. */
export function deferred<T>(): { promise: Promise<T>; resolve(v: T): void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
