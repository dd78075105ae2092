/**
 * The sign-gateway as a Web-standard fetch handler: `(req: Request) => Promise<Response>`.
 *
 * Routes (seed compatible):
 * - `GET  /rooms/{room_id}/subscribe`: SSE stream of `new-message` events (history, then live).
 * - `POST /rooms/{room_id}/broadcast`: appends the body; 200 with an empty body.
 * - `POST /rooms/{room_id}/issue_unique_idx`: `{"unique_idx": n}`, n = 1, 2, ... per room.
 * - `POST /rooms/{room_id}/tokens`: issues a room token (only with access control and an issuer
 *   secret).
 * - `GET /healthz`, `GET /metrics`, and CORS preflights.
 *
 * Uses only `Request`, `Response`, `Headers`, `ReadableStream`, `TextEncoder`/`TextDecoder`, `URL`,
 * `crypto.subtle` and timers, so it runs unchanged in Deno, Node, Bun or a worker.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import {
  type AccessConfig,
  DEFAULT_LIMITS,
  DEFAULT_SSE,
  type GatewayLimits,
  type SseOptions,
} from "./config.ts";
import { createCors } from "./cors.ts";
import { GatewayError, isGatewayError } from "./errors.ts";
import { Hub } from "./hub.ts";
import { type Logger, silentLogger } from "../platform/logger.ts";
import { createMemoryBackend } from "./memory_backend.ts";
import { GatewayMetrics } from "./metrics.ts";
import { parseLastEventId } from "./sse.ts";
import {
  createRoomTokenAuthority,
  createSecretChecker,
  type RoomTokenAuthority,
} from "./tokens.ts";

/** A gauge value with its HELP text. */
export interface Gauge {
  /** HELP text. */
  help: string;
  /** Current value. */
  value: number;
}

/** Options of {@link createGatewayHandler}. All optional; the defaults are safe. */
export interface GatewayOptions {
  /** Storage and fan-out (default: a new in-memory backend, closed by `close()`). */
  backend?: Backend;
  /** Limits (defaults: {@link DEFAULT_LIMITS}). */
  limits?: Partial<GatewayLimits>;
  /** SSE keep-alive and retry (defaults: {@link DEFAULT_SSE}). */
  sse?: Partial<SseOptions>;
  /** Origins allowed by CORS; `["*"]` for any. Default: none. */
  corsOrigins?: readonly string[];
  /** Access control (default: disabled). */
  access?: Partial<AccessConfig>;
  /** Structured logger (default: silent). */
  logger?: Logger;
  /** Clock in milliseconds (default `Date.now`). */
  now?: () => number;
  /** Extra gauges for `/metrics` (e.g. process memory, supplied by `main.ts`). */
  gauges?: () => Record<string, Gauge>;
  /** Run the maintenance timer (keep-alive, TTL refresh). Default true; tests call `tick()`. */
  timers?: boolean;
  /** How long `close()` waits for streams to flush (default 5000 ms). */
  shutdownGraceMs?: number;
}

/** Counters a test or an operator can read without scraping `/metrics`. */
export interface GatewayStats {
  /** Subscribers on this instance. */
  subscribers: number;
  /** Rooms with subscribers on this instance. */
  localRooms: number;
  /** Bytes queued for subscribers, not yet handed to the runtime. */
  queuedBytes: number;
  /** Bytes of request bodies being received. */
  inflightBodyBytes: number;
  /** Counters. */
  metrics: GatewayMetrics;
}

/** The handler returned by {@link createGatewayHandler}: a fetch function with a lifecycle. */
export interface GatewayHandler {
  /** Serves one request. Never rejects: errors become JSON responses. */
  (req: Request): Promise<Response>;
  /** Stops accepting requests (503), closes every stream after flushing it, stops timers. */
  close(): Promise<void>;
  /** Runs maintenance now: keep-alive comments, TTL refresh, idle-room sweep, retries. */
  tick(): void;
  /** Current counters. */
  stats(): GatewayStats;
}

const JSON_HEADERS = { "content-type": "application/json" };
const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};
const ROUTES = new Set(["subscribe", "broadcast", "issue_unique_idx", "tokens"]);
const MAX_ROOM_ID_LENGTH = 256;
const TOKEN_REQUEST_MAX_BYTES = 1024;
/** Bodies declared up to this size are read in one call rather than streamed. */
const FAST_BODY_BYTES = 64 * 1024;

/**
 * Creates the gateway's fetch handler.
 *
 * @param options backend, limits, CORS, access control, logger; all optional
 * @returns a {@link GatewayHandler}
 * @throws {RangeError} when access control is enabled without a 32-byte secret, or the room-id
 * pattern is not a regular expression
 * @example
 * ```ts
 * import { createGatewayHandler } from "./handler.ts";
 * const handler = createGatewayHandler({ timers: false });
 * await handler(new Request("http://gw/rooms/r1/broadcast", { method: "POST", body: "hi" }));
 * const res = await handler(
 *   new Request("http://gw/rooms/r1/issue_unique_idx", { method: "POST" }),
 * );
 * console.assert((await res.json()).unique_idx === 1);
 * await handler.close();
 * ```
 */
export function createGatewayHandler(options: GatewayOptions = {}): GatewayHandler {
  const limits: GatewayLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const sse: SseOptions = { ...DEFAULT_SSE, ...options.sse };
  const access: AccessConfig = {
    enabled: false,
    tokenSecret: "",
    issuerSecret: "",
    tokenTtlS: 86_400,
    allowQueryToken: false,
    ...options.access,
  };
  const now = options.now ?? Date.now;
  const logger = options.logger ?? silentLogger;
  const ownBackend = options.backend === undefined;
  const backend = options.backend ?? createMemoryBackend({ limits, now });
  const metrics = new GatewayMetrics();
  const cors = createCors(options.corsOrigins ?? []);
  const corsEnabled = (options.corsOrigins ?? []).length > 0;
  const graceMs = options.shutdownGraceMs ?? 5000;
  let roomId: RegExp;
  try {
    roomId = new RegExp(`^(?:${limits.roomIdPattern})$`);
  } catch (e) {
    throw new RangeError(`limits.roomIdPattern: not a valid regular expression`, { cause: e });
  }
  if (access.enabled && new TextEncoder().encode(access.tokenSecret).length < 32) {
    throw new RangeError("access.tokenSecret: expected at least 32 bytes when access is enabled");
  }
  if (access.issuerSecret !== "" && new TextEncoder().encode(access.issuerSecret).length < 32) {
    throw new RangeError("access.issuerSecret: expected empty or at least 32 bytes");
  }
  const authority: Promise<RoomTokenAuthority> | null = access.enabled
    ? createRoomTokenAuthority({ secret: access.tokenSecret, now })
    : null;
  const issuerCheck = access.enabled && access.issuerSecret !== ""
    ? createSecretChecker(access.issuerSecret)
    : null;
  // Surface key-import failures on first use, not as unhandled rejections.
  authority?.catch(() => {});
  issuerCheck?.catch(() => {});

  const hub = new Hub({
    backend,
    metrics,
    logger,
    maxSubscribersPerRoom: limits.maxSubscribersPerRoom,
    maxSubscribers: limits.maxSubscribers,
    subscriberQueueBytes: limits.subscriberQueueBytes,
    retryMs: sse.retryMs,
  });
  const unsubscribeBackend = backend.onEvent((e) => {
    metrics.backendEvents.inc([e]);
    if (e === "down") logger.log("warn", "backend down", { backend: backend.kind });
    else logger.log("info", "backend up", { backend: backend.kind });
  });

  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let inflight = 0;
  let closing = false;
  let closed: Promise<void> | null = null;

  const tickMs = Math.max(
    10,
    Math.min(sse.keepaliveMs > 0 ? sse.keepaliveMs : 15_000, Math.floor(limits.roomIdleTtlMs / 4)),
  );
  let lastKeepalive = now();
  function tick(force: boolean): void {
    const t = now();
    const keepalive = sse.keepaliveMs > 0 && (force || t - lastKeepalive >= sse.keepaliveMs - 5);
    if (keepalive) lastKeepalive = t;
    hub.tick(keepalive);
    backend.sweep();
    const rooms = hub.activeRooms();
    if (rooms.length > 0) {
      backend.touch(rooms).catch((e) =>
        logger.log("debug", "touch failed", { error: (e as Error).message })
      );
    }
  }
  const timer = options.timers === false ? undefined : setInterval(() => tick(false), tickMs);

  function validRoom(id: string): string {
    if (id.length === 0 || id.length > MAX_ROOM_ID_LENGTH || !roomId.test(id)) {
      throw new GatewayError(
        "invalid_room_id",
        `expected a room id matching ${limits.roomIdPattern}, got ${
          JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}...` : id)
        } (${id.length} characters)`,
      );
    }
    return id;
  }

  function bearer(req: Request): string | null {
    const h = req.headers.get("authorization");
    if (h === null) return null;
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(h);
    return m ? m[1] : "";
  }

  async function authorize(req: Request, url: URL, room: string, allowQuery: boolean) {
    if (!authority) return;
    let token = bearer(req);
    if (token === null && allowQuery) token = url.searchParams.get("access_token");
    if (token === null) {
      throw new GatewayError(
        "unauthorized",
        "this gateway requires a room token: send Authorization: Bearer <token>",
      );
    }
    const check = await (await authority).verify(token, room);
    if (!check.ok) {
      throw new GatewayError("forbidden", "the room token is not valid for this room");
    }
  }

  function reserve(bytes: number, held: { bytes: number }): void {
    if (inflight + bytes > limits.maxInflightBodyBytes) {
      throw new GatewayError(
        "server_busy",
        "too many request bodies are being received at once; retry later",
      );
    }
    inflight += bytes;
    held.bytes += bytes;
  }

  async function readBody(req: Request, max: number, held: { bytes: number }) {
    const cl = req.headers.get("content-length");
    if (cl !== null) {
      if (!/^[0-9]{1,15}$/.test(cl)) {
        throw new GatewayError("invalid_request", "expected a decimal Content-Length");
      }
      const declared = Number(cl);
      if (declared > max) {
        throw new GatewayError(
          "body_too_large",
          `expected a body of at most ${max} bytes, got Content-Length ${cl}`,
        );
      }
      if (declared <= FAST_BODY_BYTES) {
        // Fast path for small declared bodies (the HTTP layer enforces the declared length; the
        // length is still checked, for requests built in-process). `req.body` is not touched:
        // creating the body stream would cost more than the whole read.
        reserve(declared, held);
        const bytes = new Uint8Array(await req.arrayBuffer());
        if (bytes.length > declared) {
          throw new GatewayError(
            "body_too_large",
            `expected a body of ${declared} bytes as declared, got more`,
          );
        }
        return bytes;
      }
    }
    if (req.body === null) return new Uint8Array(0);
    const reader = req.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.length;
        if (total > max) {
          throw new GatewayError(
            "body_too_large",
            `expected a body of at most ${max} bytes, got more`,
          );
        }
        reserve(value.length, held);
        chunks.push(value);
      }
    } catch (e) {
      reader.cancel().catch(() => {});
      throw e;
    }
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  async function broadcast(req: Request, url: URL, room: string): Promise<Response> {
    if (authority) await authorize(req, url, room, false);
    const held = { bytes: 0 };
    try {
      const bytes = await readBody(req, limits.maxBodyBytes, held);
      if (bytes.length === 0) {
        throw new GatewayError(
          "empty_body",
          "expected a non-empty body (an empty SSE data field is not delivered by EventSource)",
        );
      }
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        throw new GatewayError("invalid_body", "expected a UTF-8 text body");
      }
      if (text.includes("\r")) {
        throw new GatewayError(
          "invalid_body",
          "expected a body without carriage returns (SSE cannot carry CR exactly; use LF)",
        );
      }
      await backend.append(room, text, bytes.length);
      metrics.messagesPosted++;
      metrics.bytesPosted += bytes.length;
      return new Response(null, { status: 200 });
    } finally {
      inflight -= held.bytes;
    }
  }

  async function subscribe(req: Request, url: URL, room: string): Promise<Response> {
    if (authority) await authorize(req, url, room, access.allowQueryToken);
    const header = req.headers.get("last-event-id");
    const after = parseLastEventId(
      header !== null ? header : url.searchParams.get("last_event_id"),
    );
    const sub = await hub.subscribe(room, after);
    return new Response(sub.stream, { status: 200, headers: SSE_HEADERS });
  }

  async function issueIdx(req: Request, url: URL, room: string): Promise<Response> {
    if (authority) await authorize(req, url, room, false);
    const n = await backend.issueUniqueIdx(room);
    return new Response(`{"unique_idx":${n}}`, { status: 200, headers: JSON_HEADERS });
  }

  async function issueToken(req: Request, room: string): Promise<Response> {
    if (!authority || !issuerCheck) {
      throw new GatewayError("not_found", "token issuing is not enabled on this gateway");
    }
    const presented = bearer(req);
    if (presented === null) {
      throw new GatewayError("unauthorized", "expected Authorization: Bearer <issuer secret>");
    }
    if (!(await (await issuerCheck)(presented))) {
      throw new GatewayError("forbidden", "the issuer secret is not valid");
    }
    const held = { bytes: 0 };
    let party: unknown;
    let ttl: unknown;
    try {
      const body = await readBody(req, TOKEN_REQUEST_MAX_BYTES, held);
      const parsed = JSON.parse(decoder.decode(body));
      party = parsed?.party;
      ttl = parsed?.ttl_s ?? access.tokenTtlS;
    } catch (e) {
      if (isGatewayError(e)) throw e;
      throw new GatewayError("invalid_request", 'expected a JSON body {"party": "<label>"}');
    } finally {
      inflight -= held.bytes;
    }
    if (typeof party !== "string" || !/^[A-Za-z0-9_-]{1,32}$/.test(party)) {
      throw new GatewayError("invalid_request", "expected party to match ^[A-Za-z0-9_-]{1,32}$");
    }
    if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 1 || ttl > access.tokenTtlS) {
      throw new GatewayError(
        "invalid_request",
        `expected ttl_s to be an integer from 1 to ${access.tokenTtlS}`,
      );
    }
    const { token, expiresAt } = await (await authority).issue(room, party, ttl);
    return new Response(JSON.stringify({ token, room, party, expires_at: expiresAt }), {
      status: 200,
      headers: { ...JSON_HEADERS, "cache-control": "no-store" },
    });
  }

  async function health(): Promise<Response> {
    let b: Awaited<ReturnType<Backend["health"]>>;
    try {
      b = await backend.health();
    } catch (e) {
      b = { ok: false, kind: backend.kind, detail: { error: (e as Error).message } };
    }
    const ok = b.ok && !closing;
    const body = {
      status: closing ? "shutting_down" : b.ok ? "ok" : "unavailable",
      backend: b,
      subscribers: hub.subscriberCount,
      local_rooms: hub.roomCount,
    };
    return new Response(JSON.stringify(body), {
      status: ok ? 200 : 503,
      headers: { ...JSON_HEADERS, "cache-control": "no-store" },
    });
  }

  function metricsResponse(): Response {
    const gauges: Record<string, Gauge> = {
      gateway_subscribers: { help: "Subscribers on this instance.", value: hub.subscriberCount },
      gateway_local_rooms: {
        help: "Rooms with subscribers on this instance.",
        value: hub.roomCount,
      },
      gateway_queued_bytes: {
        help: "Bytes queued for subscribers.",
        value: hub.queuedBytes,
      },
      gateway_inflight_body_bytes: {
        help: "Bytes of request bodies being received.",
        value: inflight,
      },
    };
    for (const [k, v] of Object.entries(backend.stats())) {
      gauges[`gateway_backend_${k}`] = { help: `Backend gauge ${k}.`, value: v };
    }
    Object.assign(gauges, options.gauges?.());
    return new Response(metrics.render(gauges), {
      status: 200,
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  }

  function errorResponse(e: unknown): Response {
    const err = isGatewayError(e) ? e : new GatewayError("internal", "internal error");
    if (!isGatewayError(e)) {
      logger.log("error", "internal error", {
        error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
      });
    }
    const headers = new Headers({ ...JSON_HEADERS, ...err.headers });
    if (err.code === "unauthorized") headers.set("www-authenticate", 'Bearer realm="sign-gateway"');
    return new Response(JSON.stringify({ error: err.code, message: err.message }), {
      status: err.status,
      headers,
    });
  }

  function route(
    req: Request,
    url: URL,
    info: { route: string; room?: string },
  ): Promise<Response> | Response {
    const path = url.pathname;
    if (req.method === "OPTIONS") {
      info.route = "preflight";
      if (req.headers.get("access-control-request-method") !== null) {
        return cors.preflight(req.headers.get("origin"));
      }
      return new Response(null, { status: 204, headers: { allow: "GET, POST, OPTIONS" } });
    }
    if (path === "/healthz" || path === "/metrics") {
      info.route = path.slice(1);
      if (req.method !== "GET") throw methodNotAllowed("GET");
      return path === "/healthz" ? health() : metricsResponse();
    }
    const parts = path.split("/");
    if (parts.length !== 4 || parts[1] !== "rooms" || !ROUTES.has(parts[3])) {
      throw new GatewayError("not_found", `no route for ${req.method} ${truncate(path)}`);
    }
    const action = parts[3];
    info.route = action;
    const want = action === "subscribe" ? "GET" : "POST";
    if (req.method !== want) throw methodNotAllowed(want);
    const room = validRoom(parts[2]);
    info.room = room;
    if (closing) throw new GatewayError("shutting_down", "the gateway is shutting down");
    switch (action) {
      case "subscribe":
        return subscribe(req, url, room);
      case "broadcast":
        return broadcast(req, url, room);
      case "issue_unique_idx":
        return issueIdx(req, url, room);
      default:
        return issueToken(req, room);
    }
  }

  const handler = async (req: Request): Promise<Response> => {
    const t0 = now();
    const info: { route: string; room?: string } = { route: "other" };
    let res: Response;
    try {
      res = await route(req, new URL(req.url), info);
    } catch (e) {
      res = errorResponse(e);
    }
    if (corsEnabled) cors.apply(req.headers.get("origin"), res.headers);
    metrics.countRequest(info.route, res.status);
    if (logger.enabled("debug") || res.status >= 500) {
      logger.log(res.status >= 500 ? "warn" : "debug", "request", {
        method: req.method,
        route: info.route,
        room: info.room,
        status: res.status,
        ms: now() - t0,
      });
    }
    return res;
  };

  return Object.assign(handler, {
    close(): Promise<void> {
      if (closed) return closed;
      closing = true;
      closed = (async () => {
        logger.log("info", "shutting down", { subscribers: hub.subscriberCount });
        if (timer !== undefined) clearInterval(timer);
        await hub.close(graceMs);
        unsubscribeBackend();
        if (ownBackend) await backend.close();
      })();
      return closed;
    },
    tick: () => tick(true),
    stats: (): GatewayStats => ({
      subscribers: hub.subscriberCount,
      localRooms: hub.roomCount,
      queuedBytes: hub.queuedBytes,
      inflightBodyBytes: inflight,
      metrics,
    }),
  });
}

function methodNotAllowed(allow: string): GatewayError {
  return new GatewayError("method_not_allowed", `expected method ${allow}`, {
    headers: { allow: `${allow}, OPTIONS` },
  });
}

function truncate(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);
}
