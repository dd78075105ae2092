/**
 * The in-memory backend: the default, embedded, zero-setup store for a single gateway instance.
 * Everything is lost when the process stops (a client resuming afterwards gets 410
 * `unknown_event_id`).
 *
 * @module
 */

import {
  type Backend,
  type BackendEvent,
  type BackendHealth,
  type BackendMessage,
  type HistoryRead,
  type MessageListener,
  type RoomCreator,
  roomRefusal,
} from "./backend.ts";
import { DEFAULT_LIMITS, type GatewayLimits } from "./config.ts";
import { GatewayError } from "./errors.ts";

/** Options of {@link createMemoryBackend}. */
export interface MemoryBackendOptions {
  /** History, room, quota and TTL limits (defaults from {@link DEFAULT_LIMITS}). */
  limits?: Partial<
    Pick<
      GatewayLimits,
      | "maxHistoryMessages"
      | "maxHistoryBytes"
      | "maxTotalHistoryBytes"
      | "roomIdleTtlMs"
      | "emptyRoomTtlMs"
      | "maxRooms"
      | "maxRoomsPerSource"
      | "maxAnonymousRooms"
      | "maxHistoryBytesPerSource"
      | "maxAnonymousHistoryBytes"
    >
  >;
  /** Clock in milliseconds (default `Date.now`); tests inject a fake one. */
  now?: () => number;
}

interface StoredMessage extends BackendMessage {
  readonly bytes: number;
}

interface Room {
  readonly name: string;
  epoch: string;
  /** Id of `msgs[head]`. */
  firstId: number;
  nextId: number;
  /** History; slots before `head` are dropped messages (cleared). */
  msgs: (StoredMessage | undefined)[];
  head: number;
  bytes: number;
  idx: number;
  /** False until the room gets a message or issues an index (it expires after the empty TTL). */
  used: boolean;
  lastActive: number;
  /** `lastActive` when the room was last moved to the end of its queue. */
  ordered: number;
  listeners: Set<MessageListener>;
  /** Source charged for the room (null: none). */
  readonly source: string | null;
  /** Counted against `maxAnonymousRooms`. */
  readonly anonymous: boolean;
}

/**
 * Creates an in-memory backend.
 *
 * Memory is bounded by `maxTotalHistoryBytes` for message bodies (appends beyond it get 503
 * `storage_full`) and by `maxRooms` rooms (503 `too_many_rooms`); a source holds at most
 * `maxRoomsPerSource` rooms (429 `too_many_source_rooms`) and anonymous requests at most
 * `maxAnonymousRooms` (503 `too_many_anonymous_rooms`). Rooms without a listener are forgotten
 * after `emptyRoomTtlMs` of inactivity while they never had a message or an index, after
 * `roomIdleTtlMs` otherwise: by {@link Backend.sweep}, and lazily when a quota is reached.
 *
 * @param options limits and clock
 * @returns a {@link Backend}
 * @example
 * ```ts
 * import { createMemoryBackend } from "./memory_backend.ts";
 * const b = createMemoryBackend();
 * const id = await b.append("room1", "hello", 5);
 * const h = await b.read("room1", 0, 10);
 * console.assert(id === 0 && h.messages[0].body === "hello");
 * await b.close();
 * ```
 */
export function createMemoryBackend(options: MemoryBackendOptions = {}): Backend {
  const lim = { ...DEFAULT_LIMITS, ...options.limits };
  const now = options.now ?? Date.now;
  const rooms = new Map<string, Room>();
  /** Rooms in (approximate) order of last activity, oldest first: never used, and used. */
  const fresh = new Map<string, Room>();
  const used = new Map<string, Room>();
  const bySource = new Map<string, number>();
  /** History bytes of the rooms each source created, and of the anonymous rooms. */
  const bytesBySource = new Map<string, number>();
  let anonymousRooms = 0;
  let anonymousBytes = 0;

  /** Counts `delta` history bytes of `room` (its own, its source's, the anonymous ones). */
  function account(room: Room, delta: number): void {
    room.bytes += delta;
    totalBytes += delta;
    if (room.source !== null) {
      const n = (bytesBySource.get(room.source) ?? 0) + delta;
      if (n > 0) bytesBySource.set(room.source, n);
      else bytesBySource.delete(room.source);
    }
    if (room.anonymous) anonymousBytes += delta;
  }
  let totalBytes = 0;
  let epochs = 0;
  let closed = false;

  function checkOpen(): void {
    if (closed) throw new GatewayError("backend_unavailable", "the backend is closed");
  }

  const emptyTtlMs = Math.min(lim.emptyRoomTtlMs, lim.roomIdleTtlMs);
  const ttlOf = (room: Room) => (room.used ? lim.roomIdleTtlMs : emptyTtlMs);
  const reorderMs = Math.min(1000, Math.floor(emptyTtlMs / 10));
  const queueOf = (room: Room) => (room.used ? used : fresh);

  function touchRoom(room: Room, t: number): void {
    room.lastActive = t;
    if (t - room.ordered >= reorderMs) {
      room.ordered = t;
      const q = queueOf(room);
      q.delete(room.name);
      q.set(room.name, room);
    }
  }

  function markUsed(room: Room): void {
    if (room.used) return;
    fresh.delete(room.name);
    room.used = true;
    room.ordered = room.lastActive;
    used.set(room.name, room);
  }

  function forget(room: Room): void {
    rooms.delete(room.name);
    queueOf(room).delete(room.name);
    account(room, -room.bytes);
    if (room.source !== null) {
      const n = (bySource.get(room.source) ?? 1) - 1;
      if (n > 0) bySource.set(room.source, n);
      else bySource.delete(room.source);
    }
    if (room.anonymous) anonymousRooms--;
  }

  function sweepQueue(q: Map<string, Room>, ttl: number, t: number): void {
    for (const room of q.values()) {
      if (t - room.lastActive < ttl) break;
      if (room.listeners.size > 0) {
        room.ordered = -Infinity;
        touchRoom(room, t);
        continue;
      }
      forget(room);
    }
  }

  function sweep(): void {
    const t = now();
    sweepQueue(fresh, emptyTtlMs, t);
    sweepQueue(used, lim.roomIdleTtlMs, t);
  }

  /** Which quota refuses a new room of `creator`, or null. */
  function refusal(creator: RoomCreator | undefined): GatewayError | null {
    if (creator?.source != null && (bySource.get(creator.source) ?? 0) >= lim.maxRoomsPerSource) {
      return roomRefusal("source", lim.maxRoomsPerSource);
    }
    if (creator?.anonymous && anonymousRooms >= lim.maxAnonymousRooms) {
      return roomRefusal("anonymous", lim.maxAnonymousRooms);
    }
    if (rooms.size >= lim.maxRooms) return roomRefusal("rooms", lim.maxRooms);
    return null;
  }

  function getRoom(name: string, creator?: RoomCreator): Room {
    const t = now();
    let room = rooms.get(name);
    if (room && room.listeners.size === 0 && t - room.lastActive >= ttlOf(room)) {
      forget(room);
      room = undefined;
    }
    if (room) {
      touchRoom(room, t);
      return room;
    }
    if (refusal(creator) !== null) sweep();
    const refused = refusal(creator);
    if (refused !== null) throw refused;
    room = {
      name,
      epoch: String(++epochs),
      firstId: 0,
      nextId: 0,
      msgs: [],
      head: 0,
      bytes: 0,
      idx: 0,
      used: false,
      lastActive: t,
      ordered: t,
      listeners: new Set(),
      source: creator?.source ?? null,
      anonymous: creator?.anonymous ?? false,
    };
    rooms.set(name, room);
    fresh.set(name, room);
    if (room.source !== null) bySource.set(room.source, (bySource.get(room.source) ?? 0) + 1);
    if (room.anonymous) anonymousRooms++;
    return room;
  }

  /** Bytes that appending `bytes` to `room` would free by dropping its oldest messages. */
  function bytesFreedBy(room: Room, bytes: number): number {
    let len = room.msgs.length - room.head + 1;
    let kept = room.bytes + bytes;
    let freed = 0;
    for (
      let i = room.head;
      len > 1 && (len > lim.maxHistoryMessages || kept > lim.maxHistoryBytes);
      i++
    ) {
      const b = room.msgs[i]!.bytes;
      freed += b;
      kept -= b;
      len--;
    }
    return freed;
  }

  function trim(room: Room): void {
    while (
      room.msgs.length - room.head > 1 &&
      (room.msgs.length - room.head > lim.maxHistoryMessages || room.bytes > lim.maxHistoryBytes)
    ) {
      const old = room.msgs[room.head]!;
      room.msgs[room.head] = undefined; // let the dropped message be collected now
      room.head++;
      room.firstId++;
      account(room, -old.bytes);
    }
    if (room.head > 64 && room.head * 2 > room.msgs.length) {
      room.msgs = room.msgs.slice(room.head);
      room.head = 0;
    }
  }

  const listeners = new Set<(e: BackendEvent) => void>();

  return {
    kind: "memory",
    open: (room, creator) =>
      later(() => {
        checkOpen();
        getRoom(room, creator);
      }),
    append: (name, body, bytes, creator) =>
      later(() => {
        checkOpen();
        const room = getRoom(name, creator);
        if (
          room.source !== null &&
          (bytesBySource.get(room.source) ?? 0) + bytes > lim.maxHistoryBytesPerSource
        ) {
          throw roomRefusal("source_bytes", lim.maxHistoryBytesPerSource);
        }
        if (room.anonymous && anonymousBytes + bytes > lim.maxAnonymousHistoryBytes) {
          sweep();
          if (anonymousBytes + bytes > lim.maxAnonymousHistoryBytes) {
            throw new GatewayError(
              "storage_full",
              `the rooms created without a room token hold their maximum of ${lim.maxAnonymousHistoryBytes} bytes of history; retry later or use a room token`,
              { limit: "max_anonymous_history_bytes" },
            );
          }
        }
        if (totalBytes + bytes - bytesFreedBy(room, bytes) > lim.maxTotalHistoryBytes) {
          sweep();
          if (totalBytes + bytes - bytesFreedBy(room, bytes) > lim.maxTotalHistoryBytes) {
            throw new GatewayError(
              "storage_full",
              `the gateway holds its maximum of ${lim.maxTotalHistoryBytes} bytes of history; retry later`,
              { limit: "max_total_history_bytes" },
            );
          }
        }
        markUsed(room);
        const msg: StoredMessage = { id: room.nextId++, body, epoch: room.epoch, bytes };
        room.msgs.push(msg);
        account(room, bytes);
        trim(room);
        for (const l of room.listeners) {
          try {
            l(msg);
          } catch {
            // A listener's failure must not affect the poster or other listeners.
          }
        }
        return msg.id;
      }),
    issueUniqueIdx: (name, creator) =>
      later(() => {
        checkOpen();
        const room = getRoom(name, creator);
        markUsed(room);
        return ++room.idx;
      }),
    read: (name, from, limit) =>
      later((): HistoryRead => {
        checkOpen();
        const room = rooms.get(name);
        if (!room) return { epoch: "", firstId: 0, nextId: 0, messages: [] };
        const start = Math.max(from, room.firstId);
        const end = Math.min(room.nextId, start + limit);
        const base = room.head - room.firstId;
        const messages = start < end && from >= room.firstId
          ? room.msgs.slice(base + start, base + end) as StoredMessage[]
          : [];
        return { epoch: room.epoch, firstId: room.firstId, nextId: room.nextId, messages };
      }),
    listen: (name, listener) =>
      later(() => {
        checkOpen();
        const room = getRoom(name);
        room.listeners.add(listener);
        return () => {
          room.listeners.delete(listener);
          touchRoom(room, now());
        };
      }),
    touch: (names) =>
      later(() => {
        const t = now();
        for (const name of names) {
          const room = rooms.get(name);
          if (room) touchRoom(room, t);
        }
      }),
    sweep,
    onEvent(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    health: () =>
      later((): BackendHealth => ({
        ok: !closed,
        kind: "memory",
        detail: {
          rooms: rooms.size,
          anonymous_rooms: anonymousRooms,
          sources: bySource.size,
          history_bytes: totalBytes,
        },
      })),
    stats() {
      return {
        rooms: rooms.size,
        anonymous_rooms: anonymousRooms,
        room_sources: bySource.size,
        history_bytes: totalBytes,
      };
    },
    close: () =>
      later(() => {
        closed = true;
        rooms.clear();
        fresh.clear();
        used.clear();
        bySource.clear();
        bytesBySource.clear();
        anonymousRooms = 0;
        anonymousBytes = 0;
        totalBytes = 0;
      }),
  };
}

/** Runs `f` now; returns its result as a promise, and a throw as a rejection. */
function later<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}
