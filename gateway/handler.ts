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
 * Per-source quotas (rooms, subscribers) apply when the server passes the peer's address as the
 * second argument (`Deno.serve`'s `info.remoteAddr`, or the same shape from the Node adapter);
 * a request without it (in-process calls) is charged to no source.
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
import { isGatewayError } from "./errors.ts";
import { RoomAccess } from "./_room_access.ts";
import { RoomRoutes } from "./_room_routes.ts";
import { roomIdCheck, route, type RouteInfo, type RouteTargets } from "./_router.ts";
import { type SaturatedLimit, Saturation } from "./_saturation.ts";
import { CounterFamily } from "./metrics.ts";
import type { ConnectionRefusal, ConnectionStats } from "../platform/connection_guard.ts";
import { AddressSet, clientAddress, sourceKey } from "../platform/net_address.ts";

/** A gauge value with its HELP text. */
export interface Gauge {
  /** HELP text. */
  help: string;
  /** Current value. */
  value: number;
}

/** What the server tells the handler of a request's connection (`Deno.serve`'s shape). */
export interface RequestInfo {
  /** The peer of the connection. */
  readonly remoteAddr?: { readonly hostname?: string };
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
  /** Time allowed to receive a request body (default 30 s; 408 `request_timeout`). */
  requestTimeoutMs?: number;
  /**
   * Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client for the
   * per-source quotas (default none).
   */
  trustedProxies?: readonly string[];
  /** The server's connection counters (from its `ConnectionGuard`), for health and metrics. */
  connections?: () => ConnectionStats;
  /**
   * Called with the peer's address when a source keeps being refused by capacity limits
   * (`limits.sourceBanAfterRefusals` refusals within 10 s): the server closes the source's
   * connections and refuses new ones for a while. Not called for a source named by a proxy's
   * `X-Forwarded-For` (the peer is the proxy).
   */
  banSource?: (peer: string) => void;
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
  /** Sources with subscribers on this instance. */
  subscriberSources: number;
  /** Limits that refused something within `limits.degradedWindowMs` (or are at their maximum). */
  saturated: SaturatedLimit[];
  /** Counters. */
  metrics: GatewayMetrics;
}

/** The handler returned by {@link createGatewayHandler}: a fetch function with a lifecycle. */
export interface GatewayHandler {
  /**
   * Serves one request. Never rejects: errors become JSON responses.
   * @param req the request
   * @param info the connection's peer, for the per-source quotas (optional)
   */
  (req: Request, info?: RequestInfo): Promise<Response>;
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
 * @throws {RangeError} when access control is enabled without a 32-byte secret, the room-id
 * pattern is not a regular expression, or an address list does not parse
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
  const saturation = new Saturation(limits.degradedWindowMs, now);
  /** Records a refusal by a limit; logs only the first of each saturation, not every refusal. */
  const refusedBy = (limit: string, count = 1, at = now()) => {
    if (saturation.hit(limit, count, at)) logger.log("warn", "limit saturated", { limit });
  };
  const sources = new SourceResolver(
    AddressSet.parse(limits.quotaExemptSources, "limits.quotaExemptSources"),
    AddressSet.parse(options.trustedProxies ?? [], "trustedProxies"),
  );
  const connections = options.connections
    ? new ConnectionLimits(options.connections, refusedBy)
    : null;
  const penalties = new SourcePenalties(limits.sourceBanAfterRefusals, now, (source, peer) => {
    logger.log("warn", "source banned", { source });
    options.banSource?.(peer);
  });

  const hub = new Hub({
    backend,
    metrics,
    logger,
    maxSubscribersPerRoom: limits.maxSubscribersPerRoom,
    maxSubscribers: limits.maxSubscribers,
    subscriberQueueBytes: limits.subscriberQueueBytes,
    maxTotalQueuedBytes: limits.maxTotalQueuedBytes,
    maxSubscribersPerSource: limits.maxSubscribersPerSource,
    onLimit: (limit) => refusedBy(limit),
    retryMs: sse.retryMs,
  });
  const unsubscribeBackend = logBackendEvents(backend, metrics, logger);
  const bodies = new BodyBudget(
    limits.maxInflightBodyBytes,
    options.requestTimeoutMs ?? 30_000,
    now,
  );
  let closing = false;
  let closed: Promise<void> | null = null;
  const maintenance = new Maintenance({
    hub,
    backend,
    logger,
    now,
    keepaliveMs: sse.keepaliveMs,
    roomIdleTtlMs: limits.roomIdleTtlMs,
    emptyRoomTtlMs: limits.emptyRoomTtlMs,
    bodies,
    timers: options.timers !== false,
  });
  const stats = (): GatewayStats => {
    const queuedBytes = hub.queuedBytes;
    const conn = connections?.sync() ?? null;
    const backendGauges = backend.stats();
    const atMax: string[] = [];
    if (hub.subscriberCount >= limits.maxSubscribers) atMax.push("max_subscribers");
    if (queuedBytes >= limits.maxTotalQueuedBytes) atMax.push("max_total_queued_bytes");
    if (bodies.inflight >= limits.maxInflightBodyBytes) atMax.push("max_inflight_body_bytes");
    if ((backendGauges.rooms ?? 0) >= limits.maxRooms) atMax.push("max_rooms");
    if (conn !== null && conn.open >= conn.max) atMax.push("max_connections");
    return {
      subscribers: hub.subscriberCount,
      localRooms: hub.roomCount,
      queuedBytes,
      inflightBodyBytes: bodies.inflight,
      subscriberSources: hub.sourceCount,
      saturated: saturation.saturated(atMax),
      metrics,
    };
  };
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
    health: () => healthResponse(backend, stats(), closing, connections?.sync() ?? null),
    metrics: () =>
      metricsResponse(stats(), backend, saturation, connections?.sync() ?? null, options.gauges),
    closing: () => closing,
  };

  const corsEnabled = (options.corsOrigins ?? []).length > 0;
  const observed = {
    cors: corsEnabled ? cors : null,
    metrics,
    logger,
    now,
    refusedBy,
    sources,
    penalties,
  };
  const handler = (req: Request, info?: RequestInfo): Promise<Response> =>
    serve(req, targets, observed, info);

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
 * The source key a request is charged to: the peer's address (or, behind a trusted proxy, the
 * client's from `X-Forwarded-For`) as an IPv4 address or IPv6 /64; null for an exempt source or
 * a request without a peer. Results for a peer are cached.
 */
class SourceResolver {
  readonly #exempt: AddressSet;
  readonly #trusted: AddressSet;
  readonly #cache = new Map<string, string | null>();

  /**
   * @param exempt sources no per-source quota applies to
   * @param trusted proxies whose `X-Forwarded-For` is believed
   */
  constructor(exempt: AddressSet, trusted: AddressSet) {
    this.#exempt = exempt;
    this.#trusted = trusted;
  }

  /**
   * Sets the source key of a request (class doc) in `into.source`, and in `into.peer` the peer's
   * address when the source is the peer itself (not a client behind a proxy).
   */
  resolve(req: Request, info: RequestInfo | undefined, into: RouteInfo): void {
    const peer = info?.remoteAddr?.hostname;
    if (peer === undefined) return;
    const address = this.#trusted.empty
      ? peer
      : clientAddress(peer, req.headers.get("x-forwarded-for"), this.#trusted);
    let key = this.#cache.get(address);
    if (key === undefined) {
      key = this.#exempt.has(address) ? null : sourceKey(address);
      if (this.#cache.size >= 10_000) this.#cache.clear();
      this.#cache.set(address, key);
    }
    into.source = key;
    into.peer = address === peer ? peer : null;
  }
}

/**
 * The refusals by capacity limits that get a source banned: a client that keeps sending requests
 * the gateway refuses (a legitimate one backs off after a few).
 */
class SourcePenalties {
  static readonly WINDOW_MS = 10_000;
  readonly #threshold: number;
  readonly #now: () => number;
  readonly #ban: (source: string, peer: string) => void;
  readonly #counts = new Map<string, { n: number; since: number }>();

  /**
   * @param threshold refusals within the window that get a source banned (0: never)
   * @param now clock
   * @param ban bans a source (given its key and the peer's address)
   */
  constructor(
    threshold: number,
    now: () => number,
    ban: (source: string, peer: string) => void,
  ) {
    this.#threshold = threshold;
    this.#now = now;
    this.#ban = ban;
  }

  /** A request of `source` (from `peer`, null behind a proxy) was refused by a limit. */
  refused(source: string, peer: string | null): void {
    if (this.#threshold <= 0 || peer === null) return;
    const t = this.#now();
    let c = this.#counts.get(source);
    if (c === undefined || t - c.since >= SourcePenalties.WINDOW_MS) {
      if (this.#counts.size >= 10_000) this.#counts.clear();
      c = { n: 0, since: t };
      this.#counts.set(source, c);
    }
    if (++c.n < this.#threshold) return;
    this.#counts.delete(source);
    this.#ban(source, peer);
  }
}

/** The server's connection counters, folded into the limits' saturation as they grow. */
class ConnectionLimits {
  readonly #read: () => ConnectionStats;
  readonly #refusedBy: (limit: string, count: number, at: number) => void;
  readonly #seen: Record<ConnectionRefusal, number> = {
    max_connections: 0,
    max_connections_per_source: 0,
    source_ban: 0,
  };

  /**
   * @param read the server's counters
   * @param refusedBy where refusals are recorded
   */
  constructor(
    read: () => ConnectionStats,
    refusedBy: (limit: string, count: number, at: number) => void,
  ) {
    this.#read = read;
    this.#refusedBy = refusedBy;
  }

  /** Reads the counters and records the refusals since the last read. */
  sync(): ConnectionStats {
    const s = this.#read();
    for (const limit of Object.keys(this.#seen) as ConnectionRefusal[]) {
      const more = s.refused[limit] - this.#seen[limit];
      if (more > 0) this.#refusedBy(limit, more, s.lastRefusedAt[limit]);
      this.#seen[limit] = s.refused[limit];
    }
    return s;
  }
}

/** What {@link serve} needs besides the routes. */
interface Observed {
  /** CORS (null when no origin is allowed). */
  readonly cors: Cors | null;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly now: () => number;
  /** Records a refusal by a capacity limit (logged once per saturation). */
  readonly refusedBy: (limit: string) => void;
  readonly sources: SourceResolver;
  readonly penalties: SourcePenalties;
}

/**
 * Serves one request: routes it, answers a throw with its JSON error (recording a refusal by a
 * capacity limit), applies CORS, counts the request and logs it (at debug level, or as a warning
 * for a 5xx that is not a capacity refusal).
 *
 * @param req the request
 * @param targets the routes
 * @param o CORS, counters, logger, clock, refusals and sources
 * @param conn the connection's peer
 * @returns the response; never rejects
 */
async function serve(
  req: Request,
  targets: RouteTargets,
  o: Observed,
  conn: RequestInfo | undefined,
): Promise<Response> {
  const t0 = o.now();
  const info: RouteInfo = { route: "other", source: null, peer: null };
  let res: Response;
  let limited = false;
  try {
    o.sources.resolve(req, conn, info);
    res = await route(req, new URL(req.url), info, targets);
  } catch (e) {
    if (isGatewayError(e) && e.limit !== undefined) {
      o.refusedBy(e.limit);
      limited = true;
      if (info.source !== null) o.penalties.refused(info.source, info.peer);
    }
    res = errorResponse(e, o.logger);
  }
  o.cors?.apply(req.headers.get("origin"), res.headers);
  o.metrics.countRequest(info.route, res.status);
  // A 5xx is logged, except a capacity refusal: a flood of those must not become a flood of log
  // lines (the limit's saturation is logged once, counted and reported by /healthz).
  if (o.logger.enabled("debug") || (res.status >= 500 && !limited)) {
    o.logger.log(res.status >= 500 && !limited ? "warn" : "debug", "request", {
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
  readonly emptyRoomTtlMs: number;
  /** Request bodies, whose deadlines the tick enforces. */
  readonly bodies: BodyBudget;
  /** Whether to run a timer; else only {@link Maintenance.tick} calls run it. */
  readonly timers: boolean;
}

/**
 * The periodic work: keep-alive comments, the backend's sweep, request-body deadlines, and the
 * TTL of active rooms (rooms that never had a message every tick, since their TTL is short; all
 * rooms every quarter of the idle TTL).
 */
class Maintenance {
  readonly #o: MaintenanceOptions;
  #lastKeepalive: number;
  #lastFullTouch: number;
  readonly #fullTouchMs: number;
  readonly #timer: ReturnType<typeof setInterval> | undefined;

  /** @param options hub, backend, logger, clock, intervals; starts the timer unless disabled */
  constructor(options: MaintenanceOptions) {
    this.#o = options;
    this.#fullTouchMs = Math.min(15_000, Math.floor(options.roomIdleTtlMs / 4));
    const tickMs = Math.max(
      10,
      Math.min(
        options.keepaliveMs > 0 ? options.keepaliveMs : 15_000,
        this.#fullTouchMs,
        Math.floor(options.emptyRoomTtlMs / 4),
      ),
    );
    this.#lastKeepalive = options.now();
    this.#lastFullTouch = options.now();
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
    this.#o.bodies.expire(t);
    const all = force || t - this.#lastFullTouch >= this.#fullTouchMs - 5;
    if (all) this.#lastFullTouch = t;
    const rooms = hub.activeRooms(all);
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

/**
 * `GET /healthz`: 200 `ok`, or 200 `degraded` when a capacity limit refused something within
 * `limits.degradedWindowMs` or is at its maximum (the limits are listed in `saturated`); 503
 * `unavailable` while the backend is down, `shutting_down` during a graceful shutdown.
 */
async function healthResponse(
  backend: Backend,
  stats: GatewayStats,
  closing: boolean,
  conn: ConnectionStats | null,
): Promise<Response> {
  let b: Awaited<ReturnType<Backend["health"]>>;
  try {
    b = await backend.health();
  } catch (e) {
    b = { ok: false, kind: backend.kind, detail: { error: (e as Error).message } };
  }
  const ok = b.ok && !closing;
  const saturated = stats.saturated;
  const body = {
    status: closing
      ? "shutting_down"
      : !b.ok
      ? "unavailable"
      : saturated.length > 0
      ? "degraded"
      : "ok",
    saturated,
    backend: b,
    subscribers: stats.subscribers,
    local_rooms: stats.localRooms,
    queued_bytes: stats.queuedBytes,
    ...(conn === null ? {} : { connections: conn.open, max_connections: conn.max }),
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
  saturation: Saturation,
  conn: ConnectionStats | null,
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
    gateway_subscriber_sources: {
      help: "Sources with subscribers on this instance.",
      value: stats.subscriberSources,
    },
    gateway_degraded: {
      help: "1 while a capacity limit is saturated (see /healthz), else 0.",
      value: stats.saturated.length > 0 ? 1 : 0,
    },
  };
  const families: CounterFamily[] = [];
  const refusals = new CounterFamily(
    "gateway_limit_refusals_total",
    "Requests, connections and subscribers refused or dropped by a capacity limit, by limit.",
    ["limit"],
  );
  for (const [limit, n] of saturation.counts()) refusals.inc([limit], n);
  families.push(refusals);
  if (conn !== null) {
    gauges.gateway_connections = { help: "Open connections.", value: conn.open };
    gauges.gateway_connection_sources = {
      help: "Sources with open connections (per-source limits apply).",
      value: conn.sources,
    };
    gauges.gateway_banned_sources = {
      help: "Sources banned now (limits.source_ban_after_refusals).",
      value: conn.banned,
    };
    const refused = new CounterFamily(
      "gateway_connections_refused_total",
      "Connections closed at once by a connection limit, by limit.",
      ["limit"],
    );
    for (const [limit, n] of Object.entries(conn.refused)) refused.inc([limit], n);
    const timedOut = new CounterFamily(
      "gateway_connections_timed_out_total",
      "Connections closed by a deadline: headers (no complete request head in time), " +
        "keep_alive (idle between requests).",
      ["phase"],
    );
    for (const [phase, n] of Object.entries(conn.timedOut)) timedOut.inc([phase], n);
    families.push(refused, timedOut);
  }
  for (const [k, v] of Object.entries(backend.stats())) {
    gauges[`gateway_backend_${k}`] = { help: `Backend gauge ${k}.`, value: v };
  }
  Object.assign(gauges, extra?.());
  return new Response(stats.metrics.render(gauges, families), {
    status: 200,
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}
