/**
 * The hub: this instance's subscribers, grouped by room, fed from a {@link Backend}.
 *
 * Delivery is gap-free and duplicate-free by message id. A new subscriber registers a live
 * listener first, then reads the history; live messages that arrive while it is still reading
 * history only raise a mark that makes it read again. A live message with an id beyond the next
 * expected one (a missed notification, e.g. across a Redis reconnect) sends the subscriber back to
 * reading history. History replay is paced by the subscriber's queue, so a large history never
 * exceeds the per-subscriber memory bound.
 *
 * @module
 */

import type { Backend, BackendMessage, HistoryRead, RoomCreator } from "./backend.ts";
import { GatewayError } from "./errors.ts";
import type { Logger } from "../platform/logger.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { encodeErrorEvent, encodeMessageEvent, encodePrelude, KEEPALIVE_FRAME } from "./sse.ts";
import { type EndReason, QueueBudget, Subscriber } from "./subscriber.ts";

/** Options of {@link Hub}. */
export interface HubOptions {
  /** Storage and fan-out. */
  backend: Backend;
  /** Counters. */
  metrics: GatewayMetrics;
  /** Logger. */
  logger: Logger;
  /** Subscribers of one room on this instance. */
  maxSubscribersPerRoom: number;
  /** Subscribers on this instance. */
  maxSubscribers: number;
  /** Queue bound of one subscriber in bytes. */
  subscriberQueueBytes: number;
  /** Bound of all subscribers' queues in bytes (default: no bound beyond the per-subscriber). */
  maxTotalQueuedBytes?: number;
  /** Subscribers of one source on this instance (default: no bound). */
  maxSubscribersPerSource?: number;
  /** Told when a capacity limit refuses or drops something (its setting name). */
  onLimit?: (limit: string) => void;
  /** `retry:` advertised in the prelude (0: none). */
  retryMs: number;
  /** Messages per history read (default 256). */
  historyBatch?: number;
}

interface LocalRoom {
  readonly name: string;
  readonly subs: Set<Subscriber>;
  /** The room had a message (its backend TTL is the idle one, not the short empty-room one). */
  used: boolean;
  listening: Promise<void> | null;
  unlisten: (() => void) | null;
  dead: boolean;
}

/** Outcome of applying one history read to a subscriber. */
type ReadOutcome = "ok" | "gone" | "ahead" | "reset";

/** This instance's subscribers and their delivery. */
export class Hub {
  #o: Required<HubOptions>;
  #rooms = new Map<string, LocalRoom>();
  #count = 0;
  #bySource = new Map<string, number>();
  #budget: QueueBudget;
  #closing = false;
  #prelude: Uint8Array;

  /** @param options backend, metrics, logger and limits */
  constructor(options: HubOptions) {
    this.#o = {
      historyBatch: 256,
      maxTotalQueuedBytes: Number.MAX_SAFE_INTEGER,
      maxSubscribersPerSource: Number.MAX_SAFE_INTEGER,
      onLimit: () => {},
      ...options,
    };
    this.#budget = new QueueBudget(this.#o.maxTotalQueuedBytes, (need) => this.#reclaim(need));
    this.#prelude = encodePrelude(options.retryMs);
    options.backend.onEvent((e) => {
      if (e === "up") this.resyncAll();
    });
  }

  /** Subscribers on this instance. */
  get subscriberCount(): number {
    return this.#count;
  }

  /** Rooms with at least one subscriber on this instance. */
  get roomCount(): number {
    return this.#rooms.size;
  }

  /** Sum of queued bytes over all subscribers (for tests and metrics). */
  get queuedBytes(): number {
    let n = 0;
    for (const r of this.#rooms.values()) for (const s of r.subs) n += s.queuedBytes;
    return n;
  }

  /** Sources with subscribers on this instance. */
  get sourceCount(): number {
    return this.#bySource.size;
  }

  /**
   * Adds a subscriber to a room and queues the prelude and the first part of the history.
   *
   * @param room validated room id
   * @param after id of the last message the client has (Last-Event-ID), or null for all history
   * @param creator who subscribes: its source is charged a subscriber, and the room when this
   * creates it (optional)
   * @returns the subscriber, whose `stream` is the response body
   * @throws {GatewayError} `shutting_down`, `server_busy`, `too_many_subscribers`,
   * `too_many_source_subscribers`, the room quotas' codes, `history_gone`, `unknown_event_id`,
   * `backend_unavailable`
   */
  async subscribe(room: string, after: number | null, creator?: RoomCreator): Promise<Subscriber> {
    if (this.#closing) throw new GatewayError("shutting_down", "the gateway is shutting down");
    if (this.#count >= this.#o.maxSubscribers) {
      throw new GatewayError(
        "server_busy",
        `this instance serves its maximum of ${this.#o.maxSubscribers} subscribers; retry later`,
        { limit: "max_subscribers" },
      );
    }
    const source = creator?.source ?? null;
    const fromSource = source === null ? 0 : this.#bySource.get(source) ?? 0;
    if (fromSource >= this.#o.maxSubscribersPerSource) {
      throw new GatewayError(
        "too_many_source_subscribers",
        `this source already has its maximum of ${this.#o.maxSubscribersPerSource} subscribers on this instance`,
        { limit: "max_subscribers_per_source" },
      );
    }
    let lr = this.#rooms.get(room);
    if (lr && lr.subs.size >= this.#o.maxSubscribersPerRoom) {
      throw new GatewayError(
        "too_many_subscribers",
        `room already has ${lr.subs.size} subscribers on this instance; the maximum is ${this.#o.maxSubscribersPerRoom}`,
        { limit: "max_subscribers_per_room" },
      );
    }
    if (!lr) {
      lr = {
        name: room,
        subs: new Set(),
        used: false,
        listening: null,
        unlisten: null,
        dead: false,
      };
      this.#rooms.set(room, lr);
    }
    const sub = new Subscriber({
      room,
      next: after === null ? 0 : after + 1,
      maxQueueBytes: this.#o.subscriberQueueBytes,
      budget: this.#budget,
      source,
      onEnd: (s, reason) => this.#onEnd(lr, s, reason),
    });
    lr.subs.add(sub);
    this.#count++;
    if (source !== null) this.#bySource.set(source, fromSource + 1);
    try {
      await this.#o.backend.open(room, creator);
      await this.#listen(lr);
      sub.liveMax = -1;
      let r = await this.#o.backend.read(room, sub.next, this.#o.historyBatch);
      if (after === null && r.firstId > sub.next) {
        sub.next = r.firstId;
        sub.liveMax = -1;
        r = await this.#o.backend.read(room, sub.next, this.#o.historyBatch);
      }
      sub.epoch = r.epoch;
      if (r.nextId > 0) lr.used = true;
      const outcome = this.#check(sub, r);
      if (outcome === "gone" || outcome === "ahead") {
        throw new GatewayError(
          outcome === "gone" ? "history_gone" : "unknown_event_id",
          outcome === "gone"
            ? `cannot resume after id ${after}: the room keeps ids ${r.firstId} to ${
              r.nextId - 1
            } only`
            : `cannot resume after id ${after}: the room's newest id is ${
              r.nextId - 1
            } (the room was reset or never had that id)`,
        );
      }
      sub.push(this.#prelude);
      this.#deliver(sub, r.messages);
      this.#settle(sub, r);
    } catch (e) {
      sub.abort("rejected");
      throw e;
    }
    return sub;
  }

  /**
   * Periodic maintenance: cuts closing streams that nobody reads (after two ticks), restarts
   * stalled history reads, and (when `keepalive` is true) sends `: keep-alive` to subscribers that
   * received nothing since the previous tick.
   *
   * @param keepalive whether to send keep-alive comments on this tick
   */
  tick(keepalive: boolean): void {
    for (const lr of this.#rooms.values()) {
      for (const sub of lr.subs) {
        if (sub.closing) {
          if (++sub.closingTicks > 1) sub.abort(sub.closeReason);
          continue;
        }
        if (sub.mode === "catchup" && !sub.looping) void this.#catchUp(sub);
        if (!keepalive) continue;
        if (sub.active) {
          sub.active = false;
        } else if (sub.push(KEEPALIVE_FRAME)) {
          sub.active = false;
          this.#o.metrics.keepalives++;
        }
      }
    }
  }

  /**
   * Room ids with local subscribers (kept alive in the backend).
   *
   * @param all every such room (default), or only those that never had a message here
   * @returns the room ids
   */
  activeRooms(all = true): string[] {
    if (all) return [...this.#rooms.keys()];
    const out: string[] = [];
    for (const lr of this.#rooms.values()) if (!lr.used) out.push(lr.name);
    return out;
  }

  /**
   * Makes every subscriber re-read history from where it is (after a backend reconnect, live
   * notifications may have been lost), and restarts stalled catch-ups.
   */
  resyncAll(): void {
    for (const lr of this.#rooms.values()) {
      for (const sub of lr.subs) {
        if (sub.mode === "live") sub.mode = "catchup";
        if (!sub.looping) void this.#catchUp(sub);
      }
    }
  }

  /**
   * Refuses new subscribers, closes every stream after its queued bytes are handed to the runtime,
   * and cuts the streams still open after `graceMs`.
   *
   * @param graceMs how long to wait for slow clients
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    const all: Subscriber[] = [];
    for (const lr of this.#rooms.values()) all.push(...lr.subs);
    for (const s of all) s.close(undefined, "shutdown");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(all.map((s) => s.done)),
      new Promise<void>((r) => (timer = setTimeout(r, graceMs))),
    ]);
    clearTimeout(timer);
    for (const s of all) s.abort("shutdown");
    for (const lr of this.#rooms.values()) this.#release(lr);
    this.#rooms.clear();
  }

  #listen(lr: LocalRoom): Promise<void> {
    if (!lr.listening) {
      lr.listening = this.#o.backend.listen(lr.name, (m) => this.#onMessage(lr, m)).then(
        (unlisten) => {
          if (lr.dead) unlisten();
          else lr.unlisten = unlisten;
        },
        (e) => {
          lr.listening = null;
          throw e;
        },
      );
    }
    return lr.listening;
  }

  #release(lr: LocalRoom): void {
    lr.dead = true;
    if (this.#rooms.get(lr.name) === lr) this.#rooms.delete(lr.name);
    const u = lr.unlisten;
    lr.unlisten = null;
    u?.();
  }

  /**
   * Makes `need` more bytes fit in the queue budget: measures every queue, then drops the
   * subscribers with the largest queues (those that do not read) until they fit.
   */
  #reclaim(need: number): void {
    const all: Subscriber[] = [];
    let total = 0;
    for (const lr of this.#rooms.values()) {
      for (const s of lr.subs) {
        total += s.measure();
        all.push(s);
      }
    }
    if (total + need <= this.#budget.max) return;
    all.sort((a, b) => b.queuedBytes - a.queuedBytes);
    for (const s of all) {
      if (total + need <= this.#budget.max) break;
      const q = s.queuedBytes;
      if (q === 0) break;
      total -= q;
      s.abort("queue_total");
    }
  }

  #onEnd(lr: LocalRoom, sub: Subscriber, reason: EndReason): void {
    lr.subs.delete(sub);
    this.#count--;
    if (sub.source !== null) {
      const n = (this.#bySource.get(sub.source) ?? 1) - 1;
      if (n > 0) this.#bySource.set(sub.source, n);
      else this.#bySource.delete(sub.source);
    }
    if (reason === "queue_total") this.#o.onLimit("max_total_queued_bytes");
    if (lr.subs.size === 0) this.#release(lr);
    if (reason !== "client_closed" && reason !== "rejected") {
      this.#o.metrics.dropped.inc([reason]);
      if (reason !== "shutdown" && reason !== "backend_error") {
        this.#o.logger.log("warn", "subscriber dropped", { room: sub.room, reason });
      }
    }
  }

  #onMessage(lr: LocalRoom, msg: BackendMessage): void {
    lr.used = true;
    let frame: Uint8Array | null = null;
    for (const sub of lr.subs) {
      if (sub.mode !== "live") {
        if (msg.id > sub.liveMax) sub.liveMax = msg.id;
        continue;
      }
      if (msg.epoch !== sub.epoch) {
        this.#fail(sub, "room_reset");
        continue;
      }
      if (msg.id < sub.next) continue;
      if (msg.id > sub.next) {
        sub.mode = "catchup";
        void this.#catchUp(sub);
        continue;
      }
      frame ??= encodeMessageEvent(msg.id, msg.body);
      if (sub.push(frame)) {
        sub.next = msg.id + 1;
        this.#o.metrics.eventsDelivered++;
      }
    }
  }

  #check(sub: Subscriber, r: HistoryRead): ReadOutcome {
    if (r.epoch !== sub.epoch) return "reset";
    if (sub.next < r.firstId) return "gone";
    if (sub.next > r.nextId) return "ahead";
    return "ok";
  }

  /** Queues history messages while they fit; returns how many were queued. */
  #deliver(sub: Subscriber, messages: readonly BackendMessage[]): number {
    let n = 0;
    for (const m of messages) {
      if (m.id !== sub.next) continue;
      const frame = encodeMessageEvent(m.id, m.body);
      if (sub.queuedBytes > 0 && sub.queuedBytes + frame.length > this.#o.subscriberQueueBytes) {
        break;
      }
      if (!sub.push(frame)) break;
      sub.next = m.id + 1;
      n++;
    }
    this.#o.metrics.eventsDelivered += n;
    return n;
  }

  /** After a history read: go live when complete, else keep reading. */
  #settle(sub: Subscriber, r: HistoryRead): void {
    if (sub.closed) return;
    if (sub.next >= r.nextId && sub.liveMax < sub.next) {
      sub.mode = "live";
    } else if (!sub.looping) {
      sub.mode = "catchup";
      void this.#catchUp(sub);
    }
  }

  #fail(sub: Subscriber, code: "history_gone" | "room_reset", detail = ""): void {
    const message = code === "history_gone"
      ? `message ${sub.next} was dropped from the room's history before this subscriber read it${detail}`
      : "the room was reset (expired or its store lost its data); its ids restarted";
    sub.close(encodeErrorEvent(code, message), code);
  }

  async #catchUp(sub: Subscriber): Promise<void> {
    if (sub.looping) return;
    sub.looping = true;
    try {
      while (!sub.closed) {
        await sub.waitForSpace(this.#o.subscriberQueueBytes >> 1);
        if (sub.closed) return;
        sub.liveMax = -1;
        const r = await this.#o.backend.read(sub.room, sub.next, this.#o.historyBatch);
        if (sub.closed) return;
        const outcome = this.#check(sub, r);
        if (outcome === "gone") {
          this.#fail(sub, "history_gone", ` (oldest kept: ${r.firstId})`);
          return;
        }
        if (outcome !== "ok") {
          this.#fail(sub, "room_reset");
          return;
        }
        const n = this.#deliver(sub, r.messages);
        if (sub.next >= r.nextId && sub.liveMax < sub.next) {
          sub.mode = "live";
          return;
        }
        if (n === 0 && sub.next < r.nextId && sub.queuedBytes === 0) {
          // A store that reports messages it does not return: stop rather than spin.
          sub.abort("backend_error");
          return;
        }
      }
    } catch (e) {
      // Backend unavailable: stay in catch-up; retried on reconnect or by tick().
      this.#o.logger.log("debug", "history read failed", {
        room: sub.room,
        error: (e as Error).message,
      });
    } finally {
      sub.looping = false;
    }
  }
}
