/**
 * The Redis backend's data model and its Lua scripts (private to `gateway/`): key and channel
 * names, one atomic script per mutation, a runner that loads each script once (EVALSHA, reloaded
 * after NOSCRIPT), the decoding of a history read, and the mapping of a failure to the gateway's
 * error. See `redis_backend.ts` for the data model.
 * @module
 */
import type { Redis } from "ioredis";
import { type BackendMessage, type HistoryRead, roomRefusal } from "./backend.ts";
import type { GatewayLimits } from "./config.ts";
import { GatewayError } from "./errors.ts";

/**
 * Shared Lua: the clock, and how a room is kept alive. A room's keys and its entries in the
 * sorted sets that count rooms (all, anonymous, per source) expire together: `idle` ms after the
 * last use, or `empty` ms while the room never had a message or an index. The sorted sets are
 * scored by expiry time, so a count first drops the entries whose time has passed.
 */
const COMMON = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep_room(room, meta, list, rooms, anon, prefix, idle, empty, now)
  local m = redis.call('HMGET', meta, 'seq', 'idx', 'src', 'anon')
  if not m[1] then return 0 end
  local ttl = idle
  if tonumber(m[1]) == 0 and tonumber(m[2]) == 0 then ttl = math.min(empty, idle) end
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PEXPIRE', list, ttl)
  redis.call('ZADD', rooms, now + ttl, room)
  if m[3] and m[3] ~= '' then
    local k = prefix .. 'source:' .. m[3]
    redis.call('ZADD', k, now + ttl, room)
    redis.call('PEXPIRE', k, idle)
  end
  if m[4] == '1' then redis.call('ZADD', anon, now + ttl, room) end
  return 1
end
local function count(set, now)
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
  return redis.call('ZCARD', set)
end
`;

/**
 * The room scripts' prelude. KEYS: meta, list, rooms, epoch counter, anonymous rooms, the
 * source's rooms. ARGV[1] room, ARGV[2] idle ttl ms, ARGV[3] max rooms, ARGV[4] empty ttl ms,
 * ARGV[5] source ('' none), ARGV[6] '1' when anonymous, ARGV[7] max rooms per source, ARGV[8]
 * max anonymous rooms, ARGV[9] key prefix; the scripts' own arguments from ARGV[10].
 */
const PRELUDE = COMMON + `
local function ensure(now)
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if epoch then return epoch end
  if ARGV[5] ~= '' and count(KEYS[6], now) >= tonumber(ARGV[7]) then return false, 'GWSRC' end
  if ARGV[6] == '1' and count(KEYS[5], now) >= tonumber(ARGV[8]) then return false, 'GWANON' end
  if count(KEYS[3], now) >= tonumber(ARGV[3]) then return false, 'GWFULL' end
  local t = redis.call('TIME')
  epoch = t[1] .. '.' .. t[2] .. '-' .. redis.call('INCR', KEYS[4])
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0, 'bytes', 0, 'idx', 0,
    'src', ARGV[5], 'anon', ARGV[6])
  return epoch
end
local function keep(now)
  keep_room(ARGV[1], KEYS[1], KEYS[2], KEYS[3], KEYS[5], ARGV[9], tonumber(ARGV[2]),
    tonumber(ARGV[4]), now)
end
`;

/**
 * ARGV[10] body, ARGV[11] max messages, ARGV[12] max bytes, ARGV[13] channel, ARGV[14] max
 * history bytes of one source's rooms. Returns the id.
 */
const APPEND = PRELUDE + `
local now = now_ms()
local epoch, full = ensure(now)
if not epoch then return redis.error_reply(full .. ' room quota reached') end
local src = redis.call('HGET', KEYS[1], 'src')
if src and src ~= '' then
  local held = 0
  for _, r in ipairs(redis.call('ZRANGEBYSCORE', ARGV[9] .. 'source:' .. src, now, '+inf')) do
    held = held + tonumber(redis.call('HGET', ARGV[9] .. '{' .. r .. '}:m', 'bytes') or 0)
  end
  if held + string.len(ARGV[10]) > tonumber(ARGV[14]) then
    return redis.error_reply('GWSRCBYTES source history quota reached')
  end
end
local id = redis.call('HINCRBY', KEYS[1], 'seq', 1) - 1
local len = redis.call('RPUSH', KEYS[2], ARGV[10])
local bytes = redis.call('HINCRBY', KEYS[1], 'bytes', string.len(ARGV[10]))
local max_len = tonumber(ARGV[11])
local max_bytes = tonumber(ARGV[12])
while len > 1 and (len > max_len or bytes > max_bytes) do
  local old = redis.call('LPOP', KEYS[2])
  bytes = redis.call('HINCRBY', KEYS[1], 'bytes', -string.len(old))
  len = len - 1
end
keep(now)
redis.call('PUBLISH', ARGV[13], epoch .. ':' .. string.format('%d', id) .. ':' .. ARGV[10])
return id
`;

/** Returns the new unique index. */
const ISSUE_IDX = PRELUDE + `
local now = now_ms()
local epoch, full = ensure(now)
if not epoch then return redis.error_reply(full .. ' room quota reached') end
local idx = redis.call('HINCRBY', KEYS[1], 'idx', 1)
keep(now)
return idx
`;

/** Returns the epoch. */
const OPEN = PRELUDE + `
local now = now_ms()
local epoch, full = ensure(now)
if not epoch then return redis.error_reply(full .. ' room quota reached') end
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

/**
 * KEYS[1] rooms, KEYS[2] anonymous rooms; ARGV[1] idle ttl, ARGV[2] empty ttl, ARGV[3] prefix,
 * ARGV[4..] rooms. Keeps existing rooms alive (rooms with local subscribers).
 */
const TOUCH = COMMON + `
local now = now_ms()
local idle = tonumber(ARGV[1])
local empty = tonumber(ARGV[2])
for i = 4, #ARGV do
  local base = ARGV[3] .. '{' .. ARGV[i] .. '}:'
  keep_room(ARGV[i], base .. 'm', base .. 'l', KEYS[1], KEYS[2], ARGV[3], idle, empty, now)
end
return 0
`;

const SCRIPTS = { APPEND, ISSUE_IDX, OPEN, READ, TOUCH } as const;

/** The name of one of the backend's scripts. */
export type ScriptName = keyof typeof SCRIPTS;

/** Key and channel names under one prefix (a room's keys share the hash tag `{room}`). */
export class RedisKeys {
  /** Sorted set of room ids scored by expiry time (counts rooms for `maxRooms`). */
  readonly rooms: string;
  /** Sorted set of the rooms created anonymously, scored by expiry time. */
  readonly anonymous: string;
  /** Counter that makes each room incarnation's epoch unique. */
  readonly epoch: string;
  /** The prefix of every key and channel. */
  readonly prefix: string;

  /** @param prefix prefix of every key and channel */
  constructor(prefix: string) {
    this.prefix = prefix;
    this.rooms = `${prefix}room_expiry`;
    this.anonymous = `${prefix}anonymous_rooms`;
    this.epoch = `${prefix}epoch`;
  }

  /** The room's hash (`epoch`, `seq`, `bytes`, `idx`). */
  meta(room: string): string {
    return `${this.prefix}{${room}}:m`;
  }

  /** The room's list of message bodies. */
  list(room: string): string {
    return `${this.prefix}{${room}}:l`;
  }

  /** The room's pub/sub channel. */
  channel(room: string): string {
    return `${this.prefix}c:${room}`;
  }

  /** Sorted set of the rooms a source created, scored by expiry time. */
  source(source: string): string {
    return `${this.prefix}source:${source}`;
  }

  /**
   * KEYS of the OPEN, APPEND and ISSUE_IDX scripts: meta, list, rooms, epoch counter, anonymous
   * rooms, the source's rooms (any key when there is no source: not touched then).
   */
  room(room: string, source: string | null): string[] {
    return [
      this.meta(room),
      this.list(room),
      this.rooms,
      this.epoch,
      this.anonymous,
      this.source(source ?? ""),
    ];
  }
}

/** Runs the scripts on one connection, each loaded once (and again after a Redis restart). */
export class ScriptRunner {
  readonly #cmd: Redis;
  readonly #shas = new Map<ScriptName, string>();

  /** @param cmd the command connection */
  constructor(cmd: Redis) {
    this.#cmd = cmd;
  }

  /** Forgets the loaded scripts (on every new connection). */
  reset(): void {
    this.#shas.clear();
  }

  /**
   * Runs a script by its SHA, loading it first when Redis does not know it.
   *
   * @param name the script
   * @param keys its KEYS
   * @param args its ARGV
   * @returns the script's reply
   * @throws what the connection throws (see {@link redisFailure})
   */
  async run(name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    const sha = this.#shas.get(name);
    if (sha) {
      try {
        return await this.#cmd.evalsha(sha, keys.length, ...keys, ...args);
      } catch (e) {
        if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
      }
    }
    const loaded = await this.#cmd.script("LOAD", SCRIPTS[name]) as string;
    this.#shas.set(name, loaded);
    return await this.#cmd.evalsha(loaded, keys.length, ...keys, ...args);
  }
}

/**
 * Decodes the reply of READ.
 *
 * @param out `{epoch, nextId, firstId, bodies...}`
 * @param from the id of the first body
 * @returns the history read
 */
export function decodeRead(out: (string | number)[], from: number): HistoryRead {
  const epoch = String(out[0]);
  const nextId = Number(out[1]);
  const firstId = Number(out[2]);
  const messages: BackendMessage[] = [];
  for (let i = 3; i < out.length; i++) {
    messages.push({ id: from + i - 3, body: String(out[i]), epoch });
  }
  return { epoch, firstId, nextId, messages };
}

/**
 * The gateway's error for a failed Redis call: the quota a script's GWFULL, GWSRC, GWANON or
 * GWSRCBYTES reply names (an error reply's first word is its code), else `backend_unavailable`.
 *
 * @param e what the call threw
 * @param limits the room limits, for the messages
 * @returns the error to throw
 */
export function redisFailure(
  e: unknown,
  limits: Pick<
    GatewayLimits,
    "maxRooms" | "maxRoomsPerSource" | "maxAnonymousRooms" | "maxHistoryBytesPerSource"
  >,
): GatewayError {
  const m = e instanceof Error ? e.message : String(e);
  if (m.startsWith("GWFULL")) return roomRefusal("rooms", limits.maxRooms);
  if (m.startsWith("GWSRCBYTES")) {
    return roomRefusal("source_bytes", limits.maxHistoryBytesPerSource);
  }
  if (m.startsWith("GWSRC")) return roomRefusal("source", limits.maxRoomsPerSource);
  if (m.startsWith("GWANON")) return roomRefusal("anonymous", limits.maxAnonymousRooms);
  return new GatewayError(
    "backend_unavailable",
    "the Redis backend is unavailable; retry later",
    {
      cause: e,
    },
  );
}
