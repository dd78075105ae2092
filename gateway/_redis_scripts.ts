/**
 * The Redis backend's data model and its Lua scripts (private to `gateway/`): key and channel
 * names, one atomic script per mutation, a runner that loads each script once (EVALSHA, reloaded
 * after NOSCRIPT), the decoding of a history read, and the mapping of a failure to the gateway's
 * error. See `redis_backend.ts` for the data model.
 * @module
 */
import type { Redis } from "ioredis";
import type { BackendMessage, HistoryRead } from "./backend.ts";
import { GatewayError } from "./errors.ts";

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

/** The name of one of the backend's scripts. */
export type ScriptName = keyof typeof SCRIPTS;

/** Key and channel names under one prefix (a room's keys share the hash tag `{room}`). */
export class RedisKeys {
  /** Sorted set of room ids scored by last activity. */
  readonly rooms: string;
  /** Counter that makes each room incarnation's epoch unique. */
  readonly epoch: string;
  readonly #prefix: string;

  /** @param prefix prefix of every key and channel */
  constructor(prefix: string) {
    this.#prefix = prefix;
    this.rooms = `${prefix}rooms`;
    this.epoch = `${prefix}epoch`;
  }

  /** The room's hash (`epoch`, `seq`, `bytes`, `idx`). */
  meta(room: string): string {
    return `${this.#prefix}{${room}}:m`;
  }

  /** The room's list of message bodies. */
  list(room: string): string {
    return `${this.#prefix}{${room}}:l`;
  }

  /** The room's pub/sub channel. */
  channel(room: string): string {
    return `${this.#prefix}c:${room}`;
  }

  /** KEYS of the OPEN, APPEND and ISSUE_IDX scripts: meta, list, rooms, epoch counter. */
  room(room: string): string[] {
    return [this.meta(room), this.list(room), this.rooms, this.epoch];
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
 * The gateway's error for a failed Redis call: `too_many_rooms` for a script's GWFULL reply,
 * else `backend_unavailable`.
 *
 * @param e what the call threw
 * @param maxRooms the room limit, for the message
 * @returns the error to throw
 */
export function redisFailure(e: unknown, maxRooms: number): GatewayError {
  const m = e instanceof Error ? e.message : String(e);
  if (m.startsWith("GWFULL")) {
    return new GatewayError(
      "too_many_rooms",
      `the gateway holds its maximum of ${maxRooms} rooms; retry later`,
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
