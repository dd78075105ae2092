/**
 * The Redis backend: history, unique indices and fan-out shared by several gateway instances.
 *
 * Data model (prefix `P`, room `r`):
 * - `P{r}:m`: hash `epoch`, `seq` (next id), `bytes` (history bytes), `idx` (unique index);
 * - `P{r}:l`: list of message bodies, oldest first; the first element has id `seq - LLEN`;
 * - `Proom_expiry`: sorted set of room ids scored by expiry time (counts rooms for `maxRooms`);
 *   `Panonymous_rooms` and `Psource:<source>` the same for the anonymous rooms and each source's
 *   rooms (quotas `maxAnonymousRooms`, `maxRoomsPerSource`); the room's hash names its creator
 *   (`src`, `anon`);
 * - `Pepoch`: counter that makes each room incarnation's epoch unique;
 * - channel `Pc:r`: `epoch:id:body` for each appended message.
 *
 * Every mutation is one Lua script (atomic): append = ensure room, id from `seq`, RPUSH, trim by
 * count and bytes, PEXPIRE (the idle TTL, or the empty-room TTL while a room never had a message
 * or an index), ZADD, PUBLISH. Because a message is stored before it is
 * published and a subscriber listens before it reads history, no message falls between history
 * and live delivery. Pub/sub is at-most-once: after a reconnect the backend emits `up` and the hub
 * re-reads history from each subscriber's position, so nothing is lost across a Redis restart that
 * kept its data (and a restart that lost it is reported to subscribers as a room reset).
 *
 * Requires a single Redis (or a Sentinel-managed primary) of version 5 or later; Redis Cluster is
 * not supported (the scripts touch keys of several rooms). Memory in Redis is bounded by the
 * per-room history limits, `maxRooms` and Redis's own `maxmemory` (use `noeviction`).
 *
 * @module
 */

import { Redis, type RedisOptions } from "ioredis";
import type { Backend, BackendEvent, BackendHealth, RoomCreator } from "./backend.ts";
import { DEFAULT_LIMITS, type GatewayLimits } from "./config.ts";
import { GatewayError } from "./errors.ts";
import { type Logger, silentLogger } from "../platform/logger.ts";
import { RedisFanout } from "./_redis_fanout.ts";
import {
  decodeRead,
  redisFailure,
  RedisKeys,
  type ScriptName,
  ScriptRunner,
} from "./_redis_scripts.ts";

/** Options of {@link createRedisBackend}. */
export interface RedisBackendOptions {
  /** `redis://[user:password@]host:port/db`. */
  url: string;
  /** Prefix of keys and channels (default `gw:`). */
  keyPrefix?: string;
  /** Per-command timeout in milliseconds (default 5000). */
  commandTimeoutMs?: number;
  /** History, room, quota and TTL limits (defaults from {@link DEFAULT_LIMITS}). */
  limits?: Partial<
    Pick<
      GatewayLimits,
      | "maxHistoryMessages"
      | "maxHistoryBytes"
      | "roomIdleTtlMs"
      | "emptyRoomTtlMs"
      | "maxRooms"
      | "maxRoomsPerSource"
      | "maxAnonymousRooms"
      | "maxHistoryBytesPerSource"
    >
  >;
  /** Logger for connection events (never logs the URL's password). */
  logger?: Logger;
  /** Extra ioredis options (tests). */
  redisOptions?: Partial<RedisOptions>;
}

/** A {@link Backend} with a way to wait for the first connection. */
export interface RedisBackend extends Backend {
  /**
   * Resolves once both connections are ready (or rejects after `timeoutMs`).
   * @param timeoutMs how long to wait (default 10 s)
   */
  ready(timeoutMs?: number): Promise<void>;
}

/**
 * Creates a Redis backend with two connections (commands, pub/sub). It connects at once and
 * reconnects forever with capped backoff; while Redis is unreachable, requests get 503
 * `backend_unavailable`, `health()` reports `ok: false`, and `onEvent` listeners get `down` then
 * `up`.
 *
 * @param options URL, key prefix, limits, logger
 * @returns a {@link RedisBackend}
 * @throws {TypeError} when the URL is not a `redis://` URL
 * @example
 * ```ts
 * import { createRedisBackend, type RedisBackend } from "./redis_backend.ts";
 * // Needs a Redis server at `url`.
 * async function connect(url = "redis://127.0.0.1:6379/0"): Promise<RedisBackend> {
 *   const backend = createRedisBackend({ url });
 *   await backend.ready();
 *   return backend;
 * }
 * ```
 */
export function createRedisBackend(options: RedisBackendOptions): RedisBackend {
  const lim = { ...DEFAULT_LIMITS, ...options.limits };
  const prefix = options.keyPrefix ?? "gw:";
  const where = redisAddress(options.url);
  const { cmd, sub } = openConnections(options);
  const failure = (e: unknown) => redisFailure(e, lim);
  const keys = new RedisKeys(prefix);
  const scripts = new ScriptRunner(cmd);
  const fanout = new RedisFanout(sub, failure);
  const conns = new RedisConnections(cmd, sub, {
    where,
    logger: options.logger ?? silentLogger,
    onCommandReady: () => scripts.reset(),
    resubscribe: () => fanout.resubscribe(),
  });

  async function run(
    name: ScriptName,
    scriptKeys: string[],
    args: (string | number)[],
  ): Promise<unknown> {
    if (conns.closed) throw new GatewayError("backend_unavailable", "the backend is closed");
    try {
      return await scripts.run(name, scriptKeys, args);
    } catch (e) {
      throw failure(e);
    }
  }
  const roomArgs = (room: string, creator: RoomCreator | undefined) => [
    room,
    lim.roomIdleTtlMs,
    lim.maxRooms,
    lim.emptyRoomTtlMs,
    creator?.source ?? "",
    creator?.anonymous ? "1" : "0",
    lim.maxRoomsPerSource,
    lim.maxAnonymousRooms,
    prefix,
  ];
  const roomKeys = (room: string, creator: RoomCreator | undefined) =>
    keys.room(room, creator?.source ?? null);

  return {
    kind: "redis",
    async open(room, creator) {
      await run("OPEN", roomKeys(room, creator), roomArgs(room, creator));
    },
    async append(room, body, _bytes, creator) {
      const id = await run("APPEND", roomKeys(room, creator), [
        ...roomArgs(room, creator),
        body,
        lim.maxHistoryMessages,
        lim.maxHistoryBytes,
        keys.channel(room),
        lim.maxHistoryBytesPerSource,
      ]);
      return Number(id);
    },
    async issueUniqueIdx(room, creator) {
      return Number(
        await run("ISSUE_IDX", roomKeys(room, creator), roomArgs(room, creator)),
      );
    },
    async read(room, from, limit) {
      const out = await run("READ", [keys.meta(room), keys.list(room)], [from, limit]);
      return decodeRead(out as (string | number)[], from);
    },
    async listen(room, listener) {
      if (conns.closed) throw new GatewayError("backend_unavailable", "the backend is closed");
      return await fanout.listen(keys.channel(room), room, listener);
    },
    async touch(rooms) {
      for (let i = 0; i < rooms.length; i += 500) {
        await run("TOUCH", [keys.rooms, keys.anonymous], [
          lim.roomIdleTtlMs,
          lim.emptyRoomTtlMs,
          prefix,
          ...rooms.slice(i, i + 500),
        ]);
      }
    },
    sweep() {
      // Redis expires idle rooms itself (PEXPIRE); the rooms set is trimmed when rooms are created.
    },
    onEvent: (cb) => conns.onEvent(cb),
    health: () => conns.health(fanout.size),
    stats() {
      return { up: conns.up ? 1 : 0, channels: fanout.size, reconnects: conns.reconnects };
    },
    ready: (timeoutMs = 10_000) => conns.ready(timeoutMs),
    async close() {
      if (conns.closed) return;
      fanout.clear();
      await conns.close();
    },
  };
}

/**
 * Opens the two connections: commands (auto-pipelined, with a command timeout) and pub/sub. Both
 * connect at once, never queue commands while down, and reconnect forever with capped backoff.
 */
function openConnections(options: RedisBackendOptions): { cmd: Redis; sub: Redis } {
  const base: RedisOptions = {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    autoResubscribe: false,
    connectTimeout: 2000,
    commandTimeout: options.commandTimeoutMs ?? 5000,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 1000),
    ...options.redisOptions,
  };
  // Auto-pipelining sends the commands issued in one tick in one write (fewer syscalls).
  const cmd = new Redis(options.url, {
    ...base,
    connectionName: "gateway-cmd",
    enableAutoPipelining: true,
  });
  const sub = new Redis(options.url, {
    ...base,
    connectionName: "gateway-sub",
    commandTimeout: undefined,
  });
  return { cmd, sub };
}

/**
 * The `host:port` of a Redis URL, for logs (never the password).
 *
 * @throws {TypeError} when the URL is not a `redis://` or `rediss://` URL
 */
function redisAddress(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError("expected a redis:// URL for the Redis backend");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new TypeError(`expected a redis:// URL, got a ${parsed.protocol} URL`);
  }
  return `${parsed.hostname}:${parsed.port || "6379"}`;
}

/** What {@link RedisConnections} reports to, and calls on a (re)connection. */
interface ConnectionHooks {
  /** `host:port`, for logs. */
  readonly where: string;
  readonly logger: Logger;
  /** The command connection is (again) ready. */
  readonly onCommandReady: () => void;
  /** The subscriber connection is (again) ready: subscribe every channel. */
  readonly resubscribe: () => Promise<unknown>;
}

/**
 * The state of the two connections: `up` once both are ready and every channel is subscribed,
 * `down` (logged, counted as a reconnect) when either drops; `up` / `down` go to the listeners.
 */
class RedisConnections {
  readonly #cmd: Redis;
  readonly #sub: Redis;
  readonly #h: ConnectionHooks;
  readonly #events = new Set<(e: BackendEvent) => void>();
  #up = false;
  #subReady = false;
  #closed = false;
  #reconnects = 0;
  #lastError = "";

  /**
   * @param cmd the command connection
   * @param sub the subscriber connection
   * @param hooks address, logger, and what to do when a connection is (again) ready
   */
  constructor(cmd: Redis, sub: Redis, hooks: ConnectionHooks) {
    this.#cmd = cmd;
    this.#sub = sub;
    this.#h = hooks;
    const onError = (e: Error) => {
      this.#lastError = e.message;
      hooks.logger.log("debug", "redis error", { redis: hooks.where, error: e.message });
    };
    cmd.on("error", onError);
    sub.on("error", onError);
    for (const c of [cmd, sub]) {
      c.on("close", () => {
        if (c === sub) this.#subReady = false;
        this.#update();
      });
      c.on("end", () => this.#update());
    }
    cmd.on("ready", () => {
      hooks.onCommandReady();
      this.#update();
    });
    sub.on("ready", () => {
      // Re-subscribe every room channel, then report `up` so the hub re-reads history.
      hooks.resubscribe().then(
        () => {
          this.#subReady = true;
          this.#update();
        },
        (e: Error) => {
          this.#lastError = e.message;
          sub.disconnect(true);
        },
      );
    });
  }

  /** Both connections ready and every channel subscribed. */
  get up(): boolean {
    return this.#up;
  }

  /** Whether {@link RedisConnections.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Times the connections went down. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /**
   * Adds a listener of `up` / `down`.
   *
   * @returns its removal
   */
  onEvent(cb: (e: BackendEvent) => void): () => boolean {
    this.#events.add(cb);
    return () => this.#events.delete(cb);
  }

  /**
   * Resolves once both connections are ready.
   *
   * @throws {GatewayError} `backend_unavailable` after `timeoutMs`
   */
  ready(timeoutMs: number): Promise<void> {
    if (this.#up) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(
          new GatewayError(
            "backend_unavailable",
            `Redis at ${this.#h.where} not ready in ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const off = this.onEvent((e) => {
        if (e === "up") {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
    });
  }

  /**
   * Pings Redis and reports both connections.
   *
   * @param channels channels subscribed, for the report
   */
  async health(channels: number): Promise<BackendHealth> {
    let ping = false;
    if (this.#cmd.status === "ready") {
      try {
        ping = (await this.#cmd.ping()) === "PONG";
      } catch {
        ping = false;
      }
    }
    return {
      ok: this.#up && ping,
      kind: "redis",
      detail: {
        redis: this.#h.where,
        command_connection: this.#cmd.status,
        subscriber_connection: this.#subReady ? this.#sub.status : "subscribing",
        reconnects: this.#reconnects,
        channels,
      },
    };
  }

  /** Closes both connections (no more events). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#up = false;
    this.#events.clear();
    await Promise.allSettled([this.#cmd.quit(), this.#sub.quit()]);
    this.#cmd.disconnect();
    this.#sub.disconnect();
  }

  #emit(e: BackendEvent): void {
    for (const cb of this.#events) {
      try {
        cb(e);
      } catch {
        // listeners must not break the backend
      }
    }
  }

  #update(): void {
    const now = !this.#closed && this.#cmd.status === "ready" && this.#sub.status === "ready" &&
      this.#subReady;
    if (now === this.#up) return;
    this.#up = now;
    const { logger, where } = this.#h;
    if (now) {
      logger.log("info", "redis connected", { redis: where });
      this.#emit("up");
    } else if (!this.#closed) {
      this.#reconnects++;
      logger.log("warn", "redis unavailable", { redis: where, error: this.#lastError });
      this.#emit("down");
    }
  }
}
