/**
 * Client of the sign-gateway's room API (`docs/gateway.md`) over an injected `fetch`: subscribe
 * to a room's SSE stream (parsed by eventsource-parser) with automatic resume (`Last-Event-ID`)
 * after a dropped connection, post a body, issue a unique index. Web APIs only, so it runs in
 * browsers, Deno and Node.
 *
 * Delivery: event ids strictly increase; an id at or below the last one seen (a resumed stream
 * that repeats itself) is skipped. A broadcast is retried on a network failure or a 5xx / 429
 * answer, so a body may be stored twice when the first attempt reached the gateway; the secure
 * session drops such byte-identical duplicates.
 *
 * @example
 * ```ts
 * import { createGatewayHandler } from "../gateway/handler.ts";
 * import { createGatewayClient } from "./gateway_client.ts";
 * const handler = createGatewayHandler({ timers: false });
 * const gw = createGatewayClient({
 *   url: "http://gw",
 *   fetch: (input, init) => handler(new Request(input, init)),
 * });
 * await gw.broadcast("room1", "hello");
 * const ctl = new AbortController();
 * for await (const ev of gw.subscribe("room1", { signal: ctl.signal })) {
 *   console.assert(ev.id === 0 && ev.data === "hello");
 *   break;
 * }
 * await handler.close();
 * ```
 * @module
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { TransportError } from "../core/errors.ts";

/** The `fetch` the client calls (the global one, or e.g. an in-process gateway handler). */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Retry budget of one request, and of consecutive failed stream connections. */
export interface RetryOptions {
  /** Tries of one request, the first included (default 6). */
  readonly attempts: number;
  /** Delay before the first retry (default 200 ms); doubled each time. */
  readonly baseDelayMs: number;
  /** Largest delay (default 5000 ms). Each delay is jittered down by up to half. */
  readonly maxDelayMs: number;
}

/** Options of {@link createGatewayClient}. */
export interface GatewayClientOptions {
  /** Base URL of the gateway, e.g. `https://gw.example` (no trailing `/rooms`). */
  readonly url: string;
  /** fetch to use (default the global `fetch`). */
  readonly fetch?: FetchLike;
  /** Room token (`Authorization: Bearer`), or a function returning one per room. */
  readonly token?: string | ((room: string) => string | Promise<string>);
  /** Retry budget (defaults above). */
  readonly retry?: Partial<RetryOptions>;
  /**
   * A stream silent for this long is reconnected (default 45 s; keep it above the gateway's
   * keep-alive interval, 15 s by default).
   */
  readonly idleTimeoutMs?: number;
  /** Largest event accepted from the gateway, in characters (default 4 MiB). */
  readonly maxEventChars?: number;
}

/** One message of a room. */
export interface GatewayEvent {
  /** Position in the room's history, from 0. */
  readonly id: number;
  /** The exact posted body. */
  readonly data: string;
}

/** The gateway API. */
export interface GatewayClient {
  /**
   * The room's messages, history first, then live; reconnects with `Last-Event-ID` when the
   * stream drops. Ends only by throwing: {TransportError} "aborted" when `signal` aborts, "gone"
   * when the gateway lost the history (410, `gateway-error`), "rejected" for another 4xx, "io"
   * when the retry budget is spent, "malformed" / "limit" for a stream that breaks the SSE
   * contract.
   */
  subscribe(
    room: string,
    options: { signal: AbortSignal; lastEventId?: number },
  ): AsyncIterable<GatewayEvent>;
  /**
   * Appends `body` to the room.
   * @throws {TypeError} / {RangeError} for an empty body or one with a CR; {TransportError} as
   * above ("limit" for a body the gateway finds too large).
   */
  broadcast(room: string, body: string, signal?: AbortSignal): Promise<void>;
  /** A fresh index of the room (1, 2, ...). @throws {TransportError} as above. */
  issueUniqueIdx(room: string, signal?: AbortSignal): Promise<number>;
}

/** An answer worth retrying (5xx, 429, 408). */
class Retryable extends Error {}

const MAX_ERROR_TEXT = 200;

function clean(s: string): string {
  const t = s.replace(/[^\x20-\x7e]/g, "?");
  return t.length > MAX_ERROR_TEXT ? `${t.slice(0, MAX_ERROR_TEXT)}...` : t;
}

/** Reads the gateway's JSON error answer into an error (retryable or final). */
async function answerError(res: Response, what: string): Promise<Error> {
  let detail = "";
  try {
    const j = JSON.parse(await readSome(res, 4096));
    if (j && typeof j.error === "string") {
      detail = ` ${clean(j.error)}${typeof j.message === "string" ? `: ${clean(j.message)}` : ""}`;
    }
  } catch {
    // not a gateway answer: the status says enough
  }
  const msg = `${what}: gateway answered ${res.status}${detail}`;
  const s = res.status;
  if (s >= 500 || s === 429 || s === 408) return new Retryable(msg);
  if (s === 410) return new TransportError("gone", msg);
  if (s === 413) return new TransportError("limit", msg);
  return new TransportError("rejected", msg);
}

/** The start of a body (a hostile gateway may send a huge one); cancels the rest. */
async function readSome(res: Response, max: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < max) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return text.slice(0, max);
}

function aborted(what: string, signal: AbortSignal): TransportError {
  return new TransportError("aborted", `${what}: cancelled`, { cause: signal.reason });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Next chunk of a body, or rejects on abort / after `idleMs` of silence. */
function readChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  signal: AbortSignal,
  idleMs: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      done();
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      done();
      reject(new Error(`no data for ${idleMs} ms`));
    }, idleMs);
    signal.addEventListener("abort", onAbort, { once: true });
    reader.read().then((r) => {
      done();
      resolve(r);
    }, (e) => {
      done();
      reject(e);
    });
  });
}

/**
 * Creates a gateway client.
 *
 * @param options gateway URL, fetch, room token, retry budget
 * @returns the client
 * @throws {TypeError} for a URL that does not parse, {RangeError} for a bad retry budget
 */
export function createGatewayClient(options: GatewayClientOptions): GatewayClient {
  const base = new URL(options.url).href.replace(/\/+$/, "");
  const doFetch: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const retry: RetryOptions = { attempts: 6, baseDelayMs: 200, maxDelayMs: 5000, ...options.retry };
  if (!Number.isInteger(retry.attempts) || retry.attempts < 1) {
    throw new RangeError("retry.attempts: expected an integer >= 1");
  }
  if (!(retry.baseDelayMs >= 0) || !(retry.maxDelayMs >= retry.baseDelayMs)) {
    throw new RangeError("retry: expected 0 <= baseDelayMs <= maxDelayMs");
  }
  const idleMs = options.idleTimeoutMs ?? 45_000;
  const maxEventChars = options.maxEventChars ?? 4 * 1024 * 1024;

  const delay = (failures: number) => {
    const d = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (failures - 1));
    return d * (0.5 + Math.random() / 2);
  };

  function roomUrl(room: string, action: string): string {
    if (typeof room !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(room)) {
      throw new RangeError("room: expected 1-128 characters of [A-Za-z0-9_-]");
    }
    return `${base}/rooms/${room}/${action}`;
  }

  async function headers(room: string, extra: Record<string, string>): Promise<Headers> {
    const h = new Headers(extra);
    const t = options.token;
    if (t !== undefined) {
      let token: string;
      try {
        token = typeof t === "function" ? await t(room) : t;
      } catch (e) {
        throw new TransportError("rejected", "could not obtain a room token", { cause: e });
      }
      h.set("authorization", `Bearer ${token}`);
    }
    return h;
  }

  /** Runs `once` until it succeeds, throws a final error, or the budget is spent. */
  async function withRetry<T>(
    what: string,
    signal: AbortSignal | undefined,
    once: () => Promise<T>,
  ): Promise<T> {
    for (let failures = 1;; failures++) {
      if (signal?.aborted) throw aborted(what, signal);
      let last: unknown;
      try {
        return await once();
      } catch (e) {
        if (signal?.aborted) throw aborted(what, signal);
        if (e instanceof TransportError) throw e;
        last = e;
      }
      if (failures >= retry.attempts) {
        throw new TransportError(
          "io",
          `${what}: gave up after ${failures} attempts (${describe(last)})`,
          { cause: last },
        );
      }
      try {
        await sleep(delay(failures), signal);
      } catch {
        throw aborted(what, signal!);
      }
    }
  }

  async function* subscribe(
    room: string,
    opts: { signal: AbortSignal; lastEventId?: number },
  ): AsyncGenerator<GatewayEvent> {
    const url = roomUrl(room, "subscribe");
    const signal = opts.signal;
    const what = `subscribe to room ${room}`;
    let last = opts.lastEventId ?? -1;
    if (!Number.isSafeInteger(last) || last < -1) {
      throw new RangeError("lastEventId: expected a non-negative integer");
    }
    for (let failures = 1;; failures++) {
      if (signal.aborted) throw aborted(what, signal);
      let failure: unknown;
      try {
        const h = await headers(room, { accept: "text/event-stream" });
        if (last >= 0) h.set("last-event-id", String(last));
        const res = await doFetch(url, { method: "GET", headers: h, signal });
        if (res.status !== 200) throw await answerError(res, what);
        if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream") || !res.body) {
          await res.body?.cancel();
          throw new TransportError("malformed", `${what}: the answer is not an event stream`);
        }
        for await (const e of events(res.body, signal)) {
          if (e.event === "gateway-error") {
            let code = "";
            try {
              code = clean(String(JSON.parse(e.data).error));
            } catch {
              // unreadable: still an error event
            }
            throw new TransportError("gone", `${what}: gateway error event ${code}`);
          }
          if (e.event !== undefined && e.event !== "new-message") continue;
          if (e.id === undefined || !/^(0|[1-9][0-9]{0,14})$/.test(e.id)) {
            throw new TransportError("malformed", `${what}: event without a valid id`);
          }
          const id = Number(e.id);
          if (id <= last) continue;
          last = id;
          failures = 0;
          yield { id, data: e.data };
        }
        failure = new Error("the stream ended");
      } catch (e) {
        if (signal.aborted) throw aborted(what, signal);
        if (e instanceof TransportError) throw e;
        failure = e;
      }
      if (failures >= retry.attempts) {
        throw new TransportError(
          "io",
          `${what}: gave up after ${failures} failed connections (${describe(failure)})`,
          { cause: failure },
        );
      }
      try {
        await sleep(delay(Math.max(1, failures)), signal);
      } catch {
        throw aborted(what, signal);
      }
    }
  }

  async function* events(
    body: ReadableStream<Uint8Array>,
    signal: AbortSignal,
  ): AsyncGenerator<EventSourceMessage> {
    const queue: EventSourceMessage[] = [];
    let overflow = false;
    const parser = createParser({
      onEvent: (e) => {
        if (e.data.length > maxEventChars) overflow = true;
        else queue.push(e);
      },
      onError: (e) => {
        if (e.type === "max-buffer-size-exceeded") overflow = true;
      },
      maxBufferSize: maxEventChars,
    });
    const reader = body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await readChunk(reader, signal, idleMs);
        if (done) return;
        parser.feed(decoder.decode(value, { stream: true }));
        if (overflow) {
          throw new TransportError(
            "limit",
            `an event of the gateway exceeds ${maxEventChars} characters`,
          );
        }
        while (queue.length > 0) yield queue.shift()!;
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  return {
    subscribe,
    broadcast(room, body, signal) {
      const url = roomUrl(room, "broadcast");
      if (typeof body !== "string") throw new TypeError("body: expected a string");
      if (body.length === 0 || body.includes("\r")) {
        throw new RangeError("body: expected non-empty text without carriage returns");
      }
      const what = `broadcast to room ${room}`;
      return withRetry(what, signal, async () => {
        const h = await headers(room, { "content-type": "text/plain;charset=utf-8" });
        const res = await doFetch(url, { method: "POST", headers: h, body, signal });
        if (res.status !== 200) throw await answerError(res, what);
        await res.body?.cancel();
      });
    },
    issueUniqueIdx(room, signal) {
      const url = roomUrl(room, "issue_unique_idx");
      const what = `issue_unique_idx in room ${room}`;
      return withRetry(what, signal, async () => {
        const res = await doFetch(url, {
          method: "POST",
          headers: await headers(room, {}),
          signal,
        });
        if (res.status !== 200) throw await answerError(res, what);
        let v: unknown;
        try {
          v = (JSON.parse(await readSome(res, 4096)) as { unique_idx?: unknown })?.unique_idx;
        } catch {
          v = undefined;
        }
        if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
          throw new TransportError("malformed", `${what}: expected {"unique_idx": <positive int>}`);
        }
        return v;
      });
    },
  };
}

function describe(e: unknown): string {
  if (e instanceof Error) return clean(e.message || e.name);
  return "unknown failure";
}
