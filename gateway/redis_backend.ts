/**
 * The Redis backend: history, unique indices and fan-out shared by several gateway instances.
 *
 * Data model (prefix `P`, room `r`):
 * - `P{r}:m`: hash `epoch`, `seq` (next id), `bytes` (history bytes), `idx` (unique index);
 * - `P{r}:l`: list of message bodies, oldest first; the first element has id `seq - LLEN`;
 * - `Prooms`: sorted set of room ids scored by last activity (counts rooms for `maxRooms`);
 * - `Pepoch`: counter that makes each room incarnation's epoch unique;
 * - channel `Pc:r`: `epoch:id:body` for each appended message.
 *
 * Every mutation is one Lua script (atomic): append = ensure room, id from `seq`, RPUSH, trim by
 * count and bytes, PEXPIRE (idle TTL), ZADD, PUBLISH. Because a message is stored before it is
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
import type {
  Backend,
  BackendEvent,
  BackendHealth,
  BackendMessage,
  HistoryRead,
  MessageListener,
} from "./backend.ts";
import { DEFAULT_LIMITS, type GatewayLimits } from "./config.ts";
import { GatewayError } from "./errors.ts";
import { type Logger, silentLogger } from "../platform/logger.ts";

/** Options of {@link createRedisBackend}. */
export interface RedisBackendOptions {
  /** `redis://[user:password@]host:port/db`. */
  url: string;
  /** Prefix of keys and channels (default `gw:`). */
  keyPrefix?: string;
  /** Per-command timeout in milliseconds (default 5000). */
  commandTimeoutMs?: number;
  /** History, room and TTL limits (defaults from {@link DEFAULT_LIMITS}). */
  limits?: Partial<
    Pick<GatewayLimits, "maxHistoryMessages" | "maxHistoryBytes" | "roomIdleTtlMs" | "maxRooms">
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

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- KEYS: meta, list, rooms, epoch counter. ARGV[1] room, ARGV[2] ttl ms, ARGV[3] max rooms.
local function ensure(now)
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if epoch then return epoch end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[2]))
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then return false end
  local t = redis.call('TIME')
  epoch = t[1] .. '.' .. t[2] .. '-' .. redis.call('INCR', KEYS[4])
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0, 'bytes', 0, 'idx', 0)
  return epoch
end
local function keep(now)
  local ttl = tonumber(ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('ZADD', KEYS[3], now, ARGV[1])
end
`;

/** ARGV[4] body, ARGV[5] max messages, ARGV[6] max bytes, ARGV[7] channel. Returns the id. */
const APPEND = PRELUDE + `
local now = now_ms()
local epoch = ensure(now)
if not epoch then return redis.error_reply('GWFULL too many rooms') end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1) - 1
local len = redis.call('RPUSH', KEYS[2], ARGV[4])
local bytes = redis.call('HINCRBY', KEYS[1], 'bytes', string.len(ARGV[4]))
local max_len = tonumber(ARGV[5])
local max_bytes = tonumber(ARGV[6])
while len > 1 and (len > max_len or bytes > max_bytes) do
  local old = redis.call('LPOP', KEYS[2])
  bytes = redis.call('HINCRBY', KEYS[1], 'bytes', -string.len(old))
  len = len - 1
end
keep(now)
redis.call('PUBLISH', ARGV[7], epoch .. ':' .. string.format('%d', id) .. ':' .. ARGV[4])
return id
`;

/** Returns the new unique index. */
const ISSUE_IDX = PRELUDE + `
local now = now_ms()
if not ensure(now) then return redis.error_reply('GWFULL too many rooms') end
keep(now)
return redis.call('HINCRBY', KEYS[1], 'idx', 1)
`;

/** Returns the epoch. */
const OPEN = PRELUDE + `
local now = now_ms()
local epoch = ensure(now)
if not epoch then return redis.error_reply('GWFULL too many rooms') end
keep(now)
return epoch
`;

/** KEYS meta, list; ARGV[1] from, ARGV[2] limit. Returns {epoch, nextId, firstId, bodies...}. */
const READ = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return {'', 0, 0} end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local first = seq - redis.call('LLEN', KEYS[2])
local from = tonumber(ARGV[1])
local out = {epoch, seq, first}
if from >= first and from < seq then
  local items = redis.call('LRANGE', KEYS[2], from - first, from - first + tonumber(ARGV[2]) - 1)
  for i = 1, #items do out[#out + 1] = items[i] end
end
return out
`;

/** KEYS[1] rooms; ARGV[1] ttl, ARGV[2] prefix, ARGV[3..] rooms. Refreshes existing rooms. */
const TOUCH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 3, #ARGV do
  local meta = ARGV[2] .. '{' .. ARGV[i] .. '}:m'
  if redis.call('PEXPIRE', meta, ttl) == 1 then
    redis.call('PEXPIRE', ARGV[2] .. '{' .. ARGV[i] .. '}:l', ttl)
    redis.call('ZADD', KEYS[1], now, ARGV[i])
  end
end
return 0
`;

const SCRIPTS = { APPEND, ISSUE_IDX, OPEN, READ, TOUCH } as const;
type ScriptName = keyof typeof SCRIPTS;

interface Channel {
  room: string;
  listeners: Set<MessageListener>;
  ready: Promise<unknown>;
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
 * ```ts ignore
 * import { createRedisBackend } from "./redis_backend.ts";
 * const backend = createRedisBackend({ url: "redis://127.0.0.1:6379/0" });
 * await backend.ready();
 * ```
 */
export function createRedisBackend(options: RedisBackendOptions): RedisBackend {
  const lim = { ...DEFAULT_LIMITS, ...options.limits };
  const prefix = options.keyPrefix ?? "gw:";
  const logger = options.logger ?? silentLogger;
  let parsed: URL;
  try {
    parsed = new URL(options.url);
  } catch {
    throw new TypeError("expected a redis:// URL for the Redis backend");
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new TypeError(`expected a redis:// URL, got a ${parsed.protocol} URL`);
  }
  const where = `${parsed.hostname}:${parsed.port || "6379"}`;
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
  const channels = new Map<string, Channel>();
  const events = new Set<(e: BackendEvent) => void>();
  const shas = new Map<ScriptName, string>();
  let up = false;
  let subReady = false;
  let closed = false;
  let reconnects = 0;
  let lastError = "";

  const roomsKey = `${prefix}rooms`;
  const epochKey = `${prefix}epoch`;
  const meta = (room: string) => `${prefix}{${room}}:m`;
  const list = (room: string) => `${prefix}{${room}}:l`;
  const channelOf = (room: string) => `${prefix}c:${room}`;

  function emit(e: BackendEvent): void {
    for (const cb of events) {
      try {
        cb(e);
      } catch {
        // listeners must not break the backend
      }
    }
  }

  function updateState(): void {
    const now = !closed && cmd.status === "ready" && sub.status === "ready" && subReady;
    if (now === up) return;
    up = now;
    if (now) {
      logger.log("info", "redis connected", { redis: where });
      emit("up");
    } else if (!closed) {
      reconnects++;
      logger.log("warn", "redis unavailable", { redis: where, error: lastError });
      emit("down");
    }
  }

  const onError = (e: Error) => {
    lastError = e.message;
    logger.log("debug", "redis error", { redis: where, error: e.message });
  };
  cmd.on("error", onError);
  sub.on("error", onError);
  for (const c of [cmd, sub]) {
    c.on("close", () => {
      if (c === sub) subReady = false;
      updateState();
    });
    c.on("end", updateState);
  }
  cmd.on("ready", () => {
    shas.clear();
    updateState();
  });
  sub.on("ready", () => {
    // Re-subscribe every room channel, then report `up` so the hub re-reads history.
    const names = [...channels.keys()];
    const done = names.length > 0 ? sub.subscribe(...names) : Promise.resolve(0);
    done.then(
      () => {
        subReady = true;
        updateState();
      },
      (e: Error) => {
        lastError = e.message;
        sub.disconnect(true);
      },
    );
  });
  sub.on("message", (channel: string, payload: string) => {
    const ch = channels.get(channel);
    if (!ch) return;
    const a = payload.indexOf(":");
    const b = payload.indexOf(":", a + 1);
    if (a < 0 || b < 0) return;
    const msg: BackendMessage = {
      epoch: payload.slice(0, a),
      id: Number(payload.slice(a + 1, b)),
      body: payload.slice(b + 1),
    };
    for (const l of ch.listeners) {
      try {
        l(msg);
      } catch {
        // a listener's failure must not affect other listeners
      }
    }
  });

  function unavailable(e: unknown): GatewayError {
    const m = e instanceof Error ? e.message : String(e);
    if (m.startsWith("GWFULL")) {
      return new GatewayError(
        "too_many_rooms",
        `the gateway holds its maximum of ${lim.maxRooms} rooms; retry later`,
      );
    }
    return new GatewayError(
      "backend_unavailable",
      "the Redis backend is unavailable; retry later",
      {
        cause: e,
      },
    );
  }

  async function run(
    name: ScriptName,
    keys: string[],
    args: (string | number)[],
  ): Promise<unknown> {
    if (closed) throw new GatewayError("backend_unavailable", "the backend is closed");
    try {
      const sha = shas.get(name);
      if (sha) {
        try {
          return await cmd.evalsha(sha, keys.length, ...keys, ...args);
        } catch (e) {
          if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
        }
      }
      const loaded = await cmd.script("LOAD", SCRIPTS[name]) as string;
      shas.set(name, loaded);
      return await cmd.evalsha(loaded, keys.length, ...keys, ...args);
    } catch (e) {
      throw unavailable(e);
    }
  }

  const roomKeys = (room: string) => [meta(room), list(room), roomsKey, epochKey];
  const roomArgs = (room: string) => [room, lim.roomIdleTtlMs, lim.maxRooms];

  const backend: RedisBackend = {
    kind: "redis",
    async open(room) {
      await run("OPEN", roomKeys(room), roomArgs(room));
    },
    async append(room, body) {
      const id = await run("APPEND", roomKeys(room), [
        ...roomArgs(room),
        body,
        lim.maxHistoryMessages,
        lim.maxHistoryBytes,
        channelOf(room),
      ]);
      return Number(id);
    },
    async issueUniqueIdx(room) {
      return Number(await run("ISSUE_IDX", roomKeys(room), roomArgs(room)));
    },
    async read(room, from, limit): Promise<HistoryRead> {
      const out = await run("READ", [meta(room), list(room)], [from, limit]) as (
        | string
        | number
      )[];
      const epoch = String(out[0]);
      const nextId = Number(out[1]);
      const firstId = Number(out[2]);
      const messages: BackendMessage[] = [];
      for (let i = 3; i < out.length; i++) {
        messages.push({ id: from + i - 3, body: String(out[i]), epoch });
      }
      return { epoch, firstId, nextId, messages };
    },
    async listen(room, listener) {
      if (closed) throw new GatewayError("backend_unavailable", "the backend is closed");
      const name = channelOf(room);
      let ch = channels.get(name);
      if (!ch) {
        const created: Channel = {
          room,
          listeners: new Set(),
          ready: sub.subscribe(name).catch((e) => {
            if (channels.get(name) === created) channels.delete(name);
            throw unavailable(e);
          }),
        };
        ch = created;
        channels.set(name, ch);
      }
      ch.listeners.add(listener);
      const mine = ch;
      const remove = () => {
        mine.listeners.delete(listener);
        if (mine.listeners.size === 0 && channels.get(name) === mine) {
          channels.delete(name);
          if (sub.status === "ready") sub.unsubscribe(name).catch(() => {});
        }
      };
      try {
        await ch.ready;
      } catch (e) {
        remove();
        throw e;
      }
      return remove;
    },
    async touch(rooms) {
      for (let i = 0; i < rooms.length; i += 500) {
        await run("TOUCH", [roomsKey], [lim.roomIdleTtlMs, prefix, ...rooms.slice(i, i + 500)]);
      }
    },
    sweep() {
      // Redis expires idle rooms itself (PEXPIRE); the rooms set is trimmed when rooms are created.
    },
    onEvent(cb) {
      events.add(cb);
      return () => events.delete(cb);
    },
    async health(): Promise<BackendHealth> {
      let ping = false;
      if (cmd.status === "ready") {
        try {
          ping = (await cmd.ping()) === "PONG";
        } catch {
          ping = false;
        }
      }
      return {
        ok: up && ping,
        kind: "redis",
        detail: {
          redis: where,
          command_connection: cmd.status,
          subscriber_connection: subReady ? sub.status : "subscribing",
          reconnects,
          channels: channels.size,
        },
      };
    },
    stats() {
      return { up: up ? 1 : 0, channels: channels.size, reconnects };
    },
    ready(timeoutMs = 10_000) {
      if (up) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          off();
          reject(
            new GatewayError(
              "backend_unavailable",
              `Redis at ${where} not ready in ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        const off = backend.onEvent((e) => {
          if (e === "up") {
            clearTimeout(timer);
            off();
            resolve();
          }
        });
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      up = false;
      channels.clear();
      events.clear();
      await Promise.allSettled([cmd.quit(), sub.quit()]);
      cmd.disconnect();
      sub.disconnect();
    },
  };
  return backend;
}
