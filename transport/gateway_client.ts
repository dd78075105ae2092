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
 * Room tokens (`docs/gateway.md`, "Room capability"): a gateway with access control needs
 * `Authorization: Bearer <room token>` on each room request (`token`, a string or a function per
 * room). {@link createRoomTokenIssuer} obtains tokens from the gateway's token endpoint with the
 * issuer secret, for the party that holds it (the sign-service): its own, cached per room, and
 * the other party's, to hand over on the authenticated channel the two already share.
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
import type { EventSourceMessage } from "eventsource-parser";
import { TransportError } from "../core/errors.ts";
import { readEvents, type SseReadLimits } from "./_sse_reader.ts";

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

/**
 * Creates a gateway client.
 *
 * @param options gateway URL, fetch, room token, retry budget
 * @returns the client
 * @throws {TypeError} for a URL that does not parse, {RangeError} for a bad retry budget
 */
export function createGatewayClient(options: GatewayClientOptions): GatewayClient {
  const requests = new RoomRequests(options.url, options.token);
  const link: Link = {
    requests,
    fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    retry: retryBudget(options.retry),
    stream: {
      idleMs: options.idleTimeoutMs ?? 45_000,
      maxEventChars: options.maxEventChars ?? 4 * 1024 * 1024,
    },
  };
  return {
    subscribe: (room, opts) => subscribe(link, room, opts),
    broadcast: (room, body, signal) => broadcast(link, room, body, signal),
    issueUniqueIdx: (room, signal) => issueUniqueIdx(link, room, signal),
  };
}

/** What each call of a client works with. */
interface Link {
  readonly requests: RoomRequests;
  readonly fetch: FetchLike;
  readonly retry: RetryOptions;
  readonly stream: SseReadLimits;
}

/**
 * The retry budget with its defaults.
 *
 * @throws {RangeError} for attempts below 1 or delays out of order
 */
function retryBudget(options: Partial<RetryOptions> | undefined): RetryOptions {
  const retry: RetryOptions = { attempts: 6, baseDelayMs: 200, maxDelayMs: 5000, ...options };
  if (!Number.isInteger(retry.attempts) || retry.attempts < 1) {
    throw new RangeError("retry.attempts: expected an integer >= 1");
  }
  if (!(retry.baseDelayMs >= 0) || !(retry.maxDelayMs >= retry.baseDelayMs)) {
    throw new RangeError("retry: expected 0 <= baseDelayMs <= maxDelayMs");
  }
  return retry;
}

/** The URLs and headers of room requests: the gateway's base URL and the room token. */
class RoomRequests {
  readonly #base: string;
  readonly #token: GatewayClientOptions["token"];

  /**
   * @param url the gateway's base URL
   * @param token the room token, or a function returning one per room
   * @throws {TypeError} for a URL that does not parse
   */
  constructor(url: string, token: GatewayClientOptions["token"]) {
    this.#base = new URL(url).href.replace(/\/+$/, "");
    this.#token = token;
  }

  /**
   * The URL of a room's action.
   *
   * @throws {RangeError} for a room id the gateway would refuse
   */
  url(room: string, action: string): string {
    if (typeof room !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(room)) {
      throw new RangeError("room: expected 1-128 characters of [A-Za-z0-9_-]");
    }
    return `${this.#base}/rooms/${room}/${action}`;
  }

  /**
   * The headers of a request to `room`: `extra` and the room token.
   *
   * @throws {TransportError} "rejected" when the token function fails
   */
  async headers(room: string, extra: Record<string, string>): Promise<Headers> {
    const h = new Headers(extra);
    const t = this.#token;
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
}

/** Runs `once` until it succeeds, throws a final error, or the budget is spent. */
async function withRetry<T>(
  retry: RetryOptions,
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
      last = retryable(e, what, signal);
    }
    await backOff(retry, what, signal, failures, last, "attempts");
  }
}

/**
 * Rethrows a failure that ends the retries: the signal aborted ("aborted"), or a final
 * {@link TransportError}.
 *
 * @returns the failure, to be retried
 */
function retryable(e: unknown, what: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted) throw aborted(what, signal);
  if (e instanceof TransportError) throw e;
  return e;
}

/**
 * Waits before the next try, after `failures` failures in a row (0 counts as 1).
 *
 * @param tries what the tries are, for the message ("attempts", "failed connections")
 * @throws {TransportError} "io" when the budget is spent, "aborted" when the signal aborts
 */
async function backOff(
  retry: RetryOptions,
  what: string,
  signal: AbortSignal | undefined,
  failures: number,
  failure: unknown,
  tries: string,
): Promise<void> {
  if (failures >= retry.attempts) {
    throw new TransportError(
      "io",
      `${what}: gave up after ${failures} ${tries} (${describe(failure)})`,
      { cause: failure },
    );
  }
  const d = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (Math.max(1, failures) - 1));
  try {
    await sleep(d * (0.5 + Math.random() / 2), signal);
  } catch {
    throw aborted(what, signal!);
  }
}

/** {@link GatewayClient.subscribe}: connects, reads, and reconnects from the last id seen. */
async function* subscribe(
  link: Link,
  room: string,
  opts: { signal: AbortSignal; lastEventId?: number },
): AsyncGenerator<GatewayEvent> {
  const url = link.requests.url(room, "subscribe");
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
      const body = await openStream(link, url, room, last, signal, what);
      for await (const e of readEvents(body, signal, link.stream)) {
        const event = roomEvent(e, what);
        if (event === null || event.id <= last) continue;
        last = event.id;
        failures = 0;
        yield event;
      }
      failure = new Error("the stream ended");
    } catch (e) {
      failure = retryable(e, what, signal);
    }
    await backOff(link.retry, what, signal, failures, failure, "failed connections");
  }
}

/**
 * Opens a room's event stream after `last`.
 *
 * @returns the stream's body
 * @throws {TransportError} "malformed" for an answer that is not an event stream, or as
 * {@link answerError} for another status than 200
 */
async function openStream(
  link: Link,
  url: string,
  room: string,
  last: number,
  signal: AbortSignal,
  what: string,
): Promise<ReadableStream<Uint8Array>> {
  const h = await link.requests.headers(room, { accept: "text/event-stream" });
  if (last >= 0) h.set("last-event-id", String(last));
  const res = await link.fetch(url, { method: "GET", headers: h, signal });
  if (res.status !== 200) throw await answerError(res, what);
  if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream") || !res.body) {
    await res.body?.cancel();
    throw new TransportError("malformed", `${what}: the answer is not an event stream`);
  }
  return res.body;
}

/**
 * The room message an SSE event carries.
 *
 * @returns the message, or null for an event of another type
 * @throws {TransportError} "gone" for a `gateway-error` event, "malformed" for a message without
 * a valid id
 */
function roomEvent(e: EventSourceMessage, what: string): GatewayEvent | null {
  if (e.event === "gateway-error") {
    let code = "";
    try {
      code = clean(String(JSON.parse(e.data).error));
    } catch {
      // unreadable: still an error event
    }
    throw new TransportError("gone", `${what}: gateway error event ${code}`);
  }
  if (e.event !== undefined && e.event !== "new-message") return null;
  if (e.id === undefined || !/^(0|[1-9][0-9]{0,14})$/.test(e.id)) {
    throw new TransportError("malformed", `${what}: event without a valid id`);
  }
  return { id: Number(e.id), data: e.data };
}

/** {@link GatewayClient.broadcast}; checks its arguments before any request. */
function broadcast(
  link: Link,
  room: string,
  body: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const url = link.requests.url(room, "broadcast");
  if (typeof body !== "string") throw new TypeError("body: expected a string");
  if (body.length === 0 || body.includes("\r")) {
    throw new RangeError("body: expected non-empty text without carriage returns");
  }
  const what = `broadcast to room ${room}`;
  return withRetry(link.retry, what, signal, async () => {
    const h = await link.requests.headers(room, { "content-type": "text/plain;charset=utf-8" });
    const res = await link.fetch(url, { method: "POST", headers: h, body, signal });
    if (res.status !== 200) throw await answerError(res, what);
    await res.body?.cancel();
  });
}

/** {@link GatewayClient.issueUniqueIdx}; checks the room before any request. */
function issueUniqueIdx(
  link: Link,
  room: string,
  signal: AbortSignal | undefined,
): Promise<number> {
  const url = link.requests.url(room, "issue_unique_idx");
  const what = `issue_unique_idx in room ${room}`;
  return withRetry(link.retry, what, signal, async () => {
    const res = await link.fetch(url, {
      method: "POST",
      headers: await link.requests.headers(room, {}),
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
}

/** Options of {@link createRoomTokenIssuer}. */
export interface RoomTokenIssuerOptions {
  /** Base URL of the gateway. */
  readonly url: string;
  /** The gateway's `access.issuer_secret` (at least 32 bytes). */
  readonly secret: string;
  /** fetch to use (default the global `fetch`). */
  readonly fetch?: FetchLike;
  /** Lifetime asked for each token, in seconds (default 3600; the gateway caps it). */
  readonly ttlS?: number;
  /** Retry budget of a token request (defaults as the gateway client's). */
  readonly retry?: Partial<RetryOptions>;
  /** Clock in milliseconds (default `Date.now`). */
  readonly now?: () => number;
}

/** A room token and when it expires. */
export interface IssuedRoomToken {
  /** The bearer token. */
  readonly token: string;
  /** Expiry, unix seconds. */
  readonly expiresAt: number;
}

/** Room tokens from the gateway's token endpoint (`POST /rooms/{room}/tokens`). */
export interface RoomTokenIssuer {
  /**
   * A fresh token for `party` in `room` (to hand to that party).
   * @param room the room
   * @param party the party's label (`^[A-Za-z0-9_-]{1,32}$`)
   * @param ttlS lifetime (default the issuer's)
   * @throws {RangeError} for a bad room or party; {TransportError} "rejected" when the gateway
   * refuses (no token endpoint, wrong secret), "malformed" for an answer without a token, "io"
   * when the retry budget is spent
   */
  issue(room: string, party: string, ttlS?: number): Promise<IssuedRoomToken>;
  /**
   * A token for `party` in `room`, reused while it has more than a tenth of its lifetime (and at
   * least 30 s) left: the `token` function of {@link createGatewayClient}.
   * @throws as {@link RoomTokenIssuer.issue}
   */
  token(room: string, party: string): Promise<string>;
}

/**
 * Creates a room-token issuer for the party that holds the gateway's issuer secret.
 *
 * @param options gateway URL, issuer secret, fetch, token lifetime, retry budget
 * @returns the issuer
 * @throws {TypeError} for a URL that does not parse, {RangeError} for a secret shorter than 32
 * bytes, a bad lifetime or retry budget
 * @example
 * ```ts
 * import { createGatewayHandler } from "../gateway/handler.ts";
 * import { createGatewayClient, createRoomTokenIssuer } from "./gateway_client.ts";
 * const tokenSecret = "t".repeat(32), secret = "i".repeat(32);
 * const handler = createGatewayHandler({
 *   timers: false,
 *   access: { enabled: true, tokenSecret, issuerSecret: secret },
 * });
 * const fetch = (input: string, init: RequestInit) => handler(new Request(input, init));
 * const issuer = createRoomTokenIssuer({ url: "http://gw", secret, fetch });
 * const service = createGatewayClient({
 *   url: "http://gw", fetch, token: (room) => issuer.token(room, "service"),
 * });
 * await service.broadcast("room1", "hello");
 * const { token } = await issuer.issue("room1", "client"); // handed to the client
 * const client = createGatewayClient({ url: "http://gw", fetch, token });
 * console.assert((await client.issueUniqueIdx("room1")) === 1);
 * await handler.close();
 * ```
 */
export function createRoomTokenIssuer(options: RoomTokenIssuerOptions): RoomTokenIssuer {
  const requests = new RoomRequests(options.url, undefined);
  if (new TextEncoder().encode(options.secret).length < 32) {
    throw new RangeError("secret: expected the gateway's issuer secret (at least 32 bytes)");
  }
  const ttlS = options.ttlS ?? 3600;
  if (!Number.isInteger(ttlS) || ttlS < 1) throw new RangeError("ttlS: expected an integer >= 1");
  const fetchFn: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const retry = retryBudget(options.retry);
  const now = options.now ?? Date.now;
  const cache = new Map<string, IssuedRoomToken>();

  const issue = (room: string, party: string, ttl = ttlS): Promise<IssuedRoomToken> => {
    const url = requests.url(room, "tokens");
    if (typeof party !== "string" || !/^[A-Za-z0-9_-]{1,32}$/.test(party)) {
      throw new RangeError("party: expected 1-32 characters of [A-Za-z0-9_-]");
    }
    const what = `room token for ${party} in room ${room}`;
    return withRetry(retry, what, undefined, async () => {
      const res = await fetchFn(url, {
        method: "POST",
        headers: { authorization: `Bearer ${options.secret}`, "content-type": "application/json" },
        body: JSON.stringify({ party, ttl_s: ttl }),
      });
      if (res.status !== 200) throw await answerError(res, what);
      let v: { token?: unknown; expires_at?: unknown } | null = null;
      try {
        v = JSON.parse(await readSome(res, 4096));
      } catch {
        v = null;
      }
      if (
        typeof v?.token !== "string" || !/^[!-~]{1,512}$/.test(v.token) ||
        typeof v.expires_at !== "number"
      ) {
        throw new TransportError("malformed", `${what}: expected {"token", "expires_at"}`);
      }
      return { token: v.token, expiresAt: v.expires_at };
    });
  };

  return {
    issue,
    async token(room, party) {
      const key = `${room}\n${party}`;
      const t = now() / 1000;
      const cached = cache.get(key);
      if (cached && cached.expiresAt - t > Math.max(30, ttlS / 10)) return cached.token;
      const fresh = await issue(room, party);
      if (cache.size >= 1024) {
        for (const [k, v] of cache) if (v.expiresAt - t <= 30) cache.delete(k);
        if (cache.size >= 1024) cache.delete(cache.keys().next().value!);
      }
      cache.set(key, fresh);
      return fresh.token;
    },
  };
}

function describe(e: unknown): string {
  if (e instanceof Error) return clean(e.message || e.name);
  return "unknown failure";
}
