/**
 * The storage and fan-out interface shared by the in-memory and Redis backends.
 *
 * A backend keeps, per room, a bounded history of messages numbered from 0, a unique-index
 * counter, and notifies listeners of new messages. It knows nothing of HTTP or SSE; the hub
 * (`hub.ts`) turns its messages into streams. Errors are {@link GatewayError}s
 * (`too_many_rooms`, `too_many_source_rooms`, `too_many_anonymous_rooms`, `storage_full`,
 * `backend_unavailable`).
 *
 * Room lifetime: a room that never had a message or a unique index and has no listener is
 * forgotten `emptyRoomTtlMs` after its last use; any other room without a listener after
 * `roomIdleTtlMs`. A room remembers who created it ({@link RoomCreator}) until it is forgotten,
 * so a source's rooms and the anonymous rooms can be counted.
 *
 * @module
 */

import { GatewayError } from "./errors.ts";

/** One message of a room. */
export interface BackendMessage {
  /** Position in the room's history, from 0. */
  readonly id: number;
  /** The exact posted text. */
  readonly body: string;
  /**
   * Incarnation of the room: changes when a room is forgotten and created again (idle TTL, a Redis
   * that lost its data), so a subscriber can tell "new message 3" from "message 3 of a new room".
   */
  readonly epoch: string;
}

/** The result of reading a room's history from some id. */
export interface HistoryRead {
  /** Incarnation of the room ("" when the room does not exist). */
  epoch: string;
  /** Id of the oldest message still kept (equal to `nextId` when the history is empty). */
  firstId: number;
  /** Id the next posted message will get. */
  nextId: number;
  /** Messages from the requested id on, in order, at most the requested count. */
  messages: BackendMessage[];
}

/** Connectivity report of a backend. */
export interface BackendHealth {
  /** True when the backend can serve requests. */
  ok: boolean;
  /** Backend kind (`memory`, `redis`). */
  kind: string;
  /** Non-secret details (connection states, counts). */
  detail: Record<string, string | number | boolean>;
}

/**
 * Backend state changes: `down` (lost its store), `up` (back; live notifications may have been
 * missed, so listeners must re-read history from where they are).
 */
export type BackendEvent = "down" | "up";

/**
 * Who is asking for a room, for the room quotas: a request that would create a room is refused
 * when its source already holds `maxRoomsPerSource` rooms, or (anonymous) when
 * `maxAnonymousRooms` anonymous rooms exist. Omitted: counted against `maxRooms` only.
 */
export interface RoomCreator {
  /** Source key of the request (see `platform/net_address.ts`); null: no per-source quota. */
  readonly source: string | null;
  /** Created without a room token on a gateway that checks them. */
  readonly anonymous: boolean;
}

/** Receives live messages of one room. */
export type MessageListener = (message: BackendMessage) => void;

/** Storage and fan-out for rooms. */
export interface Backend {
  /** `memory` or `redis`. */
  readonly kind: string;
  /**
   * Creates the room if it does not exist and marks it active.
   * @param room room id (already validated)
   * @param creator who asks, charged when the room is created (optional)
   * @throws {GatewayError} the room quotas' codes, `backend_unavailable`
   */
  open(room: string, creator?: RoomCreator): Promise<void>;
  /**
   * Appends a message, drops the oldest ones beyond the history limits, notifies listeners.
   * @param room room id (already validated)
   * @param body the exact text
   * @param bytes UTF-8 length of `body`
   * @param creator who asks, charged when the room is created (optional)
   * @returns the id of the new message
   * @throws {GatewayError} the room quotas' codes, `storage_full`, `backend_unavailable`
   */
  append(room: string, body: string, bytes: number, creator?: RoomCreator): Promise<number>;
  /**
   * Returns the next unique index of the room: 1, 2, ... (atomic across instances).
   * @param room room id (already validated)
   * @param creator who asks, charged when the room is created (optional)
   * @throws {GatewayError} the room quotas' codes, `backend_unavailable`
   */
  issueUniqueIdx(room: string, creator?: RoomCreator): Promise<number>;
  /**
   * Reads up to `limit` messages with id >= `from`.
   * @throws {GatewayError} `backend_unavailable`
   */
  read(room: string, from: number, limit: number): Promise<HistoryRead>;
  /**
   * Registers a live listener; once the promise resolves, every message appended afterwards (on any
   * instance) reaches the listener, except across a `down`/`up` gap.
   * @returns a function that removes the listener
   * @throws {GatewayError} `backend_unavailable`
   */
  listen(room: string, listener: MessageListener): Promise<() => void>;
  /** Keeps rooms that have local subscribers alive (refreshes their idle TTL). */
  touch(rooms: readonly string[]): Promise<void>;
  /** Forgets idle rooms now (also done lazily). */
  sweep(): void;
  /** Subscribes to state changes; returns an unsubscribe function. */
  onEvent(callback: (event: BackendEvent) => void): () => void;
  /** Reports connectivity. */
  health(): Promise<BackendHealth>;
  /** Gauges for `/metrics` (name without prefix -> value). */
  stats(): Record<string, number>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/**
 * The quotas a backend enforces on rooms: all rooms, a source's rooms, the anonymous rooms, and
 * the history bytes a source's rooms hold.
 */
export type RoomQuota = "rooms" | "source" | "anonymous" | "source_bytes";

/**
 * The refusal of a room, or of a message, that a quota does not allow.
 *
 * @param quota which quota (see {@link RoomQuota})
 * @param max its limit, for the message
 * @returns the error (`too_many_rooms` 503, `too_many_source_rooms` 429,
 * `too_many_anonymous_rooms` 503, `too_many_source_bytes` 429), naming the limit's setting
 */
export function roomRefusal(quota: RoomQuota, max: number): GatewayError {
  switch (quota) {
    case "source":
      return new GatewayError(
        "too_many_source_rooms",
        `this source already holds its maximum of ${max} rooms; retry when one has expired`,
        { limit: "max_rooms_per_source" },
      );
    case "source_bytes":
      return new GatewayError(
        "too_many_source_bytes",
        `the rooms this source created hold their maximum of ${max} bytes of history; ` +
          "retry when one has expired",
        { limit: "max_history_bytes_per_source" },
      );
    case "anonymous":
      return new GatewayError(
        "too_many_anonymous_rooms",
        `the gateway holds its maximum of ${max} rooms created without a room token; ` +
          "retry later or use a room token",
        { limit: "max_anonymous_rooms" },
      );
    default:
      return new GatewayError(
        "too_many_rooms",
        `the gateway holds its maximum of ${max} rooms; retry later`,
        { limit: "max_rooms" },
      );
  }
}
