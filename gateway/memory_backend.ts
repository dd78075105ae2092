/**
 * The in-memory backend: the default, embedded, zero-setup store for a single gateway instance.
 * Everything is lost when the process stops (a client resuming afterwards gets 410
 * `unknown_event_id`).
 *
 * @module
 */

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

/** Options of {@link createMemoryBackend}. */
export interface MemoryBackendOptions {
  /** History, room and TTL limits (defaults from {@link DEFAULT_LIMITS}). */
  limits?: Partial<
    Pick<
      GatewayLimits,
      | "maxHistoryMessages"
      | "maxHistoryBytes"
      | "maxTotalHistoryBytes"
      | "roomIdleTtlMs"
      | "maxRooms"
    >
  >;
  /** Clock in milliseconds (default `Date.now`); tests inject a fake one. */
  now?: () => number;
}

interface StoredMessage extends BackendMessage {
  readonly bytes: number;
}

interface Room {
  epoch: string;
  /** Id of `msgs[head]`. */
  firstId: number;
  nextId: number;
  /** History; slots before `head` are dropped messages (cleared). */
  msgs: (StoredMessage | undefined)[];
  head: number;
  bytes: number;
  idx: number;
  lastActive: number;
  /** `lastActive` when the room was last moved to the end of the map. */
  ordered: number;
  listeners: Set<MessageListener>;
}

/**
 * Creates an in-memory backend.
 *
 * Memory is bounded by `maxTotalHistoryBytes` for message bodies (appends beyond it get 503
 * `storage_full`) and by `maxRooms` rooms (503 `too_many_rooms`). Idle rooms (no listener, no
 * activity for `roomIdleTtlMs`) are forgotten by {@link Backend.sweep} and lazily when full.
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
  /** Rooms in (approximate) order of last activity, oldest first. */
  const rooms = new Map<string, Room>();
  const reorderMs = Math.min(1000, Math.floor(lim.roomIdleTtlMs / 10));
  let totalBytes = 0;
  let epochs = 0;
  let closed = false;

  function checkOpen(): void {
    if (closed) throw new GatewayError("backend_unavailable", "the backend is closed");
  }

  function touchRoom(name: string, room: Room, t: number): void {
    room.lastActive = t;
    if (t - room.ordered >= reorderMs) {
      room.ordered = t;
      rooms.delete(name);
      rooms.set(name, room);
    }
  }

  function sweep(): void {
    const t = now();
    for (const [name, room] of rooms) {
      if (t - room.lastActive < lim.roomIdleTtlMs) break;
      if (room.listeners.size > 0) {
        room.ordered = -Infinity;
        touchRoom(name, room, t);
        continue;
      }
      totalBytes -= room.bytes;
      rooms.delete(name);
    }
  }

  function getRoom(name: string): Room {
    const t = now();
    let room = rooms.get(name);
    if (room && room.listeners.size === 0 && t - room.lastActive >= lim.roomIdleTtlMs) {
      totalBytes -= room.bytes;
      rooms.delete(name);
      room = undefined;
    }
    if (room) {
      touchRoom(name, room, t);
      return room;
    }
    if (rooms.size >= lim.maxRooms) sweep();
    if (rooms.size >= lim.maxRooms) {
      throw new GatewayError(
        "too_many_rooms",
        `the gateway holds its maximum of ${lim.maxRooms} rooms; retry later`,
      );
    }
    room = {
      epoch: String(++epochs),
      firstId: 0,
      nextId: 0,
      msgs: [],
      head: 0,
      bytes: 0,
      idx: 0,
      lastActive: t,
      ordered: t,
      listeners: new Set(),
    };
    rooms.set(name, room);
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
      room.bytes -= old.bytes;
      totalBytes -= old.bytes;
    }
    if (room.head > 64 && room.head * 2 > room.msgs.length) {
      room.msgs = room.msgs.slice(room.head);
      room.head = 0;
    }
  }

  const listeners = new Set<(e: BackendEvent) => void>();

  return {
    kind: "memory",
    open: (room) =>
      later(() => {
        checkOpen();
        getRoom(room);
      }),
    append: (name, body, bytes) =>
      later(() => {
        checkOpen();
        const room = getRoom(name);
        if (totalBytes + bytes - bytesFreedBy(room, bytes) > lim.maxTotalHistoryBytes) {
          sweep();
          if (totalBytes + bytes - bytesFreedBy(room, bytes) > lim.maxTotalHistoryBytes) {
            throw new GatewayError(
              "storage_full",
              `the gateway holds its maximum of ${lim.maxTotalHistoryBytes} bytes of history; retry later`,
            );
          }
        }
        const msg: StoredMessage = { id: room.nextId++, body, epoch: room.epoch, bytes };
        room.msgs.push(msg);
        room.bytes += bytes;
        totalBytes += bytes;
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
    issueUniqueIdx: (name) =>
      later(() => {
        checkOpen();
        return ++getRoom(name).idx;
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
          touchRoom(name, room, now());
        };
      }),
    touch: (names) =>
      later(() => {
        const t = now();
        for (const name of names) {
          const room = rooms.get(name);
          if (room) touchRoom(name, room, t);
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
        detail: { rooms: rooms.size, history_bytes: totalBytes },
      })),
    stats() {
      return { rooms: rooms.size, history_bytes: totalBytes };
    },
    close: () =>
      later(() => {
        closed = true;
        rooms.clear();
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
