/**
 * Session rooms the service opens (`OpenRoom`, docs/gateway.md "Room capability"): the room of a
 * protocol session is chosen by the service, fresh and random, and handed to the authenticated
 * caller with the caller's room token for the sign-gateway. The session call (`Sign`, `Keygen`,
 * `Refresh`) must then name that room: {@link SessionRooms.take} accepts it once, for the caller,
 * account and operation it was opened for, before it expires.
 *
 * - **One table of operations.** {@link ROOM_OPERATIONS} names every session kind a room is
 *   opened for and the permission it needs on the account (the same as the session call's). A
 *   new kind of session is one line there.
 * - **Single use.** A room is forgotten when a matching call takes it. A call by another caller,
 *   for another account or operation, is refused and leaves the room in place: room ids pass
 *   through the untrusted gateway, and whoever sees one must not be able to spend it.
 * - **Bounded.** A room expires with its token (the gateway's `expires_at`, at most `ttlS`
 *   after it was opened). At most `maxOpenPerCaller` unused rooms per caller (opening one more
 *   forgets that caller's oldest: a client that died leaves rooms behind) and `maxOpen` in all
 *   (one more is refused, RESOURCE_EXHAUSTED, until rooms expire or are used).
 *
 * Refusals are Connect errors: an unknown operation `INVALID_ARGUMENT`; a room that was not
 * opened for this caller, account and operation, has expired or was used `PERMISSION_DENIED`;
 * the table full `RESOURCE_EXHAUSTED`; the gateway's token endpoint unreachable or refusing
 * `UNAVAILABLE`.
 *
 * @example
 * ```ts
 * import { SessionRooms } from "./rooms.ts";
 * const expiresAt = (ttlS: number) => Math.floor(Date.now() / 1000) + ttlS;
 * const rooms = new SessionRooms({
 *   issuer: { issue: (_room, _party, ttlS) => Promise.resolve({ token: "t", expiresAt: expiresAt(ttlS) }) },
 * });
 * const { roomId } = await rooms.open("app", "alice", "sign");
 * rooms.take("app", "alice", "sign", roomId); // once: a second take is PERMISSION_DENIED
 * let again = true;
 * try {
 *   rooms.take("app", "alice", "sign", roomId);
 * } catch {
 *   again = false;
 * }
 * console.assert(!again);
 * ```
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { newRoomId } from "../session/inputs.ts";
import type { Action } from "./auth.ts";

/**
 * The session kinds a room is opened for (OpenRoom's `operation`), each with the permission it
 * needs on the account: the permission of its session call. `resume` is `Keygen` with `resume`.
 */
export const ROOM_OPERATIONS = {
  sign: "sign",
  keygen: "keygen",
  resume: "keygen",
  refresh: "refresh",
  presign: "sign",
  sign_message: "sign",
} as const satisfies Readonly<Record<string, Action>>;

/** A session kind of {@link ROOM_OPERATIONS}. */
export type RoomOperation = keyof typeof ROOM_OPERATIONS;

/**
 * An operation name from a request.
 * @param v the request's `operation`.
 * @returns the operation.
 * @throws {RangeError} for a name that is not in {@link ROOM_OPERATIONS}.
 */
export function parseRoomOperation(v: string): RoomOperation {
  if (!Object.hasOwn(ROOM_OPERATIONS, v)) {
    throw new RangeError(
      `operation: expected one of ${Object.keys(ROOM_OPERATIONS).join(", ")}, got ${
        JSON.stringify(v.slice(0, 32))
      }`,
    );
  }
  return v as RoomOperation;
}

/** Issues room tokens for a party (the gateway's token endpoint: `createRoomTokenIssuer`). */
export interface RoomTokenSource {
  issue(room: string, party: string, ttlS: number): Promise<{ token: string; expiresAt: number }>;
}

/** Options of {@link SessionRooms}. */
export interface SessionRoomsOptions {
  /** Where the caller's tokens come from (issued for the party label `client`). */
  readonly issuer: RoomTokenSource;
  /** Lifetime of a room and of its token, seconds (default 3600: the longest session). */
  readonly ttlS?: number;
  /** Unused rooms kept per caller (default 64); one more forgets the caller's oldest. */
  readonly maxOpenPerCaller?: number;
  /** Unused rooms kept in all (default 10 000); one more is refused. */
  readonly maxOpen?: number;
  /** Milliseconds clock (default `Date.now`). */
  readonly clock?: () => number;
}

/** A room opened for one session. */
export interface OpenedRoom {
  readonly roomId: string;
  /** The caller's room token for the gateway. */
  readonly gatewayToken: string;
  /** Expiry of the token and of the room, unix seconds. */
  readonly expiresAt: number;
}

interface Entry {
  readonly caller: string;
  readonly account: string;
  readonly operation: RoomOperation;
  expiresAtMs: number;
}

/** The rooms the service opened and that were not used yet (module doc). */
export class SessionRooms {
  readonly #issuer: RoomTokenSource;
  readonly #ttlS: number;
  readonly #perCaller: number;
  readonly #max: number;
  readonly #clock: () => number;
  /** Room -> entry, in the order opened (so the first entries expire first). */
  readonly #rooms = new Map<string, Entry>();
  /** Caller -> its rooms, in the order opened. */
  readonly #byCaller = new Map<string, Set<string>>();

  /**
   * @param options the token issuer, lifetime and bounds.
   * @throws {RangeError} for a lifetime or a bound below 1.
   */
  constructor(options: SessionRoomsOptions) {
    this.#issuer = options.issuer;
    this.#ttlS = options.ttlS ?? 3600;
    this.#perCaller = options.maxOpenPerCaller ?? 64;
    this.#max = options.maxOpen ?? 10_000;
    this.#clock = options.clock ?? Date.now;
    for (const [k, v] of [["ttlS", this.#ttlS], ["maxOpenPerCaller", this.#perCaller]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k}: expected an integer >= 1`);
    }
    if (!Number.isInteger(this.#max) || this.#max < this.#perCaller) {
      throw new RangeError("maxOpen: expected an integer >= maxOpenPerCaller");
    }
  }

  /** Rooms opened and not yet used or expired (expired ones may still count until purged). */
  get size(): number {
    return this.#rooms.size;
  }

  /**
   * Opens a fresh room for one session of `caller` on `account`, with the caller's token.
   * @returns the room, its token and their expiry.
   * @throws {ConnectError} RESOURCE_EXHAUSTED when `maxOpen` rooms are open; UNAVAILABLE when the
   *   gateway gives no token.
   */
  async open(caller: string, account: string, operation: RoomOperation): Promise<OpenedRoom> {
    const now = this.#clock();
    this.#purge(now);
    const mine = this.#byCaller.get(caller);
    if (mine && mine.size >= this.#perCaller) this.#forget(mine.values().next().value!);
    if (this.#rooms.size >= this.#max) {
      throw new ConnectError(
        `too many session rooms open (${this.#max}); retry when some are used or expired`,
        Code.ResourceExhausted,
      );
    }
    const room = newRoomId();
    // Held before the token arrives, so that concurrent opens count against the bounds.
    const entry: Entry = { caller, account, operation, expiresAtMs: now + this.#ttlS * 1000 };
    this.#rooms.set(room, entry);
    if (mine) mine.add(room);
    else this.#byCaller.set(caller, new Set([room]));
    let issued: { token: string; expiresAt: number };
    try {
      issued = await this.#issuer.issue(room, "client", this.#ttlS);
    } catch (e) {
      this.#forget(room);
      throw new ConnectError(
        "could not obtain a room token from the sign-gateway",
        Code.Unavailable,
        undefined,
        undefined,
        e,
      );
    }
    entry.expiresAtMs = Math.min(entry.expiresAtMs, issued.expiresAt * 1000);
    return {
      roomId: room,
      gatewayToken: issued.token,
      expiresAt: Math.floor(entry.expiresAtMs / 1000),
    };
  }

  /**
   * Uses a room: accepted once, for the caller, account and operation it was opened for, before
   * it expires; then forgotten. A refused room stays as it was (module doc).
   * @throws {ConnectError} PERMISSION_DENIED otherwise.
   */
  take(caller: string, account: string, operation: RoomOperation, room: string): void {
    const e = this.#rooms.get(room);
    const now = this.#clock();
    if (
      !e || e.expiresAtMs <= now || e.caller !== caller || e.account !== account ||
      e.operation !== operation
    ) {
      throw new ConnectError(
        `room ${room} was not opened by OpenRoom for this caller, account "${account}" and ` +
          `operation "${operation}", has expired, or was used already: open a new room`,
        Code.PermissionDenied,
      );
    }
    this.#forget(room);
  }

  /** Forgets the expired rooms at the front (opened first, so they expire first). */
  #purge(now: number): void {
    for (const [room, e] of this.#rooms) {
      if (e.expiresAtMs > now) break;
      this.#forget(room);
    }
  }

  #forget(room: string): void {
    const e = this.#rooms.get(room);
    if (!e) return;
    this.#rooms.delete(room);
    const mine = this.#byCaller.get(e.caller);
    mine?.delete(room);
    if (mine?.size === 0) this.#byCaller.delete(e.caller);
  }
}
