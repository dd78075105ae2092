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
import { type Cors, createCors } from "./cors.ts";
import { Hub } from "./hub.ts";
import { type Logger, silentLogger } from "../platform/logger.ts";
import { createMemoryBackend } from "./memory_backend.ts";
import { GatewayMetrics } from "./metrics.ts";
import { BodyBudget } from "./_request_body.ts";
import { errorResponse, JSON_HEADERS } from "./_responses.ts";
import { RoomAccess } from "./_room_access.ts";
import { RoomRoutes } from "./_room_routes.ts";
import { roomIdCheck, route, type RouteInfo, type RouteTargets } from "./_router.ts";

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
  const now = options.now ?? Date.now;
  const logger = options.logger ?? silentLogger;
  const ownBackend = options.backend === undefined;
  const backend = options.backend ?? createMemoryBackend({ limits, now });
  const metrics = new GatewayMetrics();
  const cors = createCors(options.corsOrigins ?? []);
  const graceMs = options.shutdownGraceMs ?? 5000;
  const validRoom = roomIdCheck(limits.roomIdPattern);
  const access = new RoomAccess(options.access ?? {}, now);

  const hub = new Hub({
    backend,
    metrics,
    logger,
    maxSubscribersPerRoom: limits.maxSubscribersPerRoom,
    maxSubscribers: limits.maxSubscribers,
    subscriberQueueBytes: limits.subscriberQueueBytes,
    retryMs: sse.retryMs,
  });
  const unsubscribeBackend = logBackendEvents(backend, metrics, logger);
  const bodies = new BodyBudget(limits.maxInflightBodyBytes);
  let closing = false;
  let closed: Promise<void> | null = null;
  const maintenance = new Maintenance({
    hub,
    backend,
    logger,
    now,
    keepaliveMs: sse.keepaliveMs,
    roomIdleTtlMs: limits.roomIdleTtlMs,
    timers: options.timers !== false,
  });
  const stats = (): GatewayStats => ({
    subscribers: hub.subscriberCount,
    localRooms: hub.roomCount,
    queuedBytes: hub.queuedBytes,
    inflightBodyBytes: bodies.inflight,
    metrics,
  });
  const targets: RouteTargets = {
    cors,
    rooms: new RoomRoutes({
      backend,
      hub,
      metrics,
      access,
      bodies,
      maxBodyBytes: limits.maxBodyBytes,
    }),
    validRoom,
    health: () => healthResponse(backend, hub, closing),
    metrics: () => metricsResponse(stats(), backend, options.gauges),
    closing: () => closing,
  };

  const corsEnabled = (options.corsOrigins ?? []).length > 0;
  const observed = { cors: corsEnabled ? cors : null, metrics, logger, now };
  const handler = (req: Request): Promise<Response> => serve(req, targets, observed);

  return Object.assign(handler, {
    close(): Promise<void> {
      if (closed) return closed;
      closing = true;
      closed = (async () => {
        logger.log("info", "shutting down", { subscribers: hub.subscriberCount });
        maintenance.stop();
        await hub.close(graceMs);
        unsubscribeBackend();
        if (ownBackend) await backend.close();
      })();
      return closed;
    },
    tick: () => maintenance.tick(true),
    stats,
  });
}

/**
 * Serves one request: routes it, answers a throw with its JSON error, applies CORS, counts the
 * request and logs it (at debug level, or as a warning for a 5xx).
 *
 * @param req the request
 * @param targets the routes
 * @param o CORS (null when no origin is allowed), counters, logger and clock
 * @returns the response; never rejects
 */
async function serve(
  req: Request,
  targets: RouteTargets,
  o: { cors: Cors | null; metrics: GatewayMetrics; logger: Logger; now: () => number },
): Promise<Response> {
  const t0 = o.now();
  const info: RouteInfo = { route: "other" };
  let res: Response;
  try {
    res = await route(req, new URL(req.url), info, targets);
  } catch (e) {
    res = errorResponse(e, o.logger);
  }
  o.cors?.apply(req.headers.get("origin"), res.headers);
  o.metrics.countRequest(info.route, res.status);
  if (o.logger.enabled("debug") || res.status >= 500) {
    o.logger.log(res.status >= 500 ? "warn" : "debug", "request", {
      method: req.method,
      route: info.route,
      room: info.room,
      status: res.status,
      ms: o.now() - t0,
    });
  }
  return res;
}

/**
 * Counts the backend's up / down events and logs them.
 *
 * @returns the unsubscription
 */
function logBackendEvents(backend: Backend, metrics: GatewayMetrics, logger: Logger): () => void {
  return backend.onEvent((e) => {
    metrics.backendEvents.inc([e]);
    if (e === "down") logger.log("warn", "backend down", { backend: backend.kind });
    else logger.log("info", "backend up", { backend: backend.kind });
  });
}

/** What the maintenance tick works on, and how often. */
interface MaintenanceOptions {
  readonly hub: Hub;
  readonly backend: Backend;
  readonly logger: Logger;
  readonly now: () => number;
  /** SSE keep-alive interval (0: none). */
  readonly keepaliveMs: number;
  readonly roomIdleTtlMs: number;
  /** Whether to run a timer; else only {@link Maintenance.tick} calls run it. */
  readonly timers: boolean;
}

/** The periodic work: keep-alive comments, the backend's sweep, and the TTL of active rooms. */
class Maintenance {
  readonly #o: MaintenanceOptions;
  #lastKeepalive: number;
  readonly #timer: ReturnType<typeof setInterval> | undefined;

  /** @param options hub, backend, logger, clock, intervals; starts the timer unless disabled */
  constructor(options: MaintenanceOptions) {
    this.#o = options;
    const tickMs = Math.max(
      10,
      Math.min(
        options.keepaliveMs > 0 ? options.keepaliveMs : 15_000,
        Math.floor(options.roomIdleTtlMs / 4),
      ),
    );
    this.#lastKeepalive = options.now();
    this.#timer = options.timers ? setInterval(() => this.tick(false), tickMs) : undefined;
  }

  /** Runs once; `force` sends keep-alive comments even when one was sent recently. */
  tick(force: boolean): void {
    const { hub, backend, logger, keepaliveMs } = this.#o;
    const t = this.#o.now();
    const keepalive = keepaliveMs > 0 && (force || t - this.#lastKeepalive >= keepaliveMs - 5);
    if (keepalive) this.#lastKeepalive = t;
    hub.tick(keepalive);
    backend.sweep();
    const rooms = hub.activeRooms();
    if (rooms.length > 0) {
      backend.touch(rooms).catch((e) =>
        logger.log("debug", "touch failed", { error: (e as Error).message })
      );
    }
  }

  /** Stops the timer. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }
}

/** `GET /healthz`: 200 when the backend is up and the gateway is not shutting down, else 503. */
async function healthResponse(backend: Backend, hub: Hub, closing: boolean): Promise<Response> {
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

/** `GET /metrics`: the counters and gauges in the Prometheus text format. */
function metricsResponse(
  stats: GatewayStats,
  backend: Backend,
  extra: (() => Record<string, Gauge>) | undefined,
): Response {
  const gauges: Record<string, Gauge> = {
    gateway_subscribers: { help: "Subscribers on this instance.", value: stats.subscribers },
    gateway_local_rooms: {
      help: "Rooms with subscribers on this instance.",
      value: stats.localRooms,
    },
    gateway_queued_bytes: {
      help: "Bytes queued for subscribers.",
      value: stats.queuedBytes,
    },
    gateway_inflight_body_bytes: {
      help: "Bytes of request bodies being received.",
      value: stats.inflightBodyBytes,
    },
  };
  for (const [k, v] of Object.entries(backend.stats())) {
    gauges[`gateway_backend_${k}`] = { help: `Backend gauge ${k}.`, value: v };
  }
  Object.assign(gauges, extra?.());
  return new Response(stats.metrics.render(gauges), {
    status: 200,
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}
