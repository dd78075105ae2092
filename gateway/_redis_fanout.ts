/**
 * Fan-out of the Redis backend (private to `gateway/`): one pub/sub subscription per room channel
 * with listeners on this instance, the decoding of published messages (`epoch:id:body`), and the
 * re-subscription of every channel after a reconnect.
 * @module
 */
import type { Redis } from "ioredis";
import type { BackendMessage, MessageListener } from "./backend.ts";
import type { GatewayError } from "./errors.ts";

interface Channel {
  room: string;
  listeners: Set<MessageListener>;
  ready: Promise<unknown>;
}

/**
 * Decodes a published message.
 *
 * @param payload `epoch:id:body`, as the APPEND script publishes it
 * @returns the message, or null for a payload of another shape
 */
export function decodePublished(payload: string): BackendMessage | null {
  const a = payload.indexOf(":");
  const b = payload.indexOf(":", a + 1);
  if (a < 0 || b < 0) return null;
  return {
    epoch: payload.slice(0, a),
    id: Number(payload.slice(a + 1, b)),
    body: payload.slice(b + 1),
  };
}

/** The room channels this instance listens to, on the subscriber connection. */
export class RedisFanout {
  readonly #sub: Redis;
  readonly #failure: (e: unknown) => GatewayError;
  readonly #channels = new Map<string, Channel>();

  /**
   * @param sub the subscriber connection (its `message` events are delivered here)
   * @param failure the error a failed SUBSCRIBE becomes
   */
  constructor(sub: Redis, failure: (e: unknown) => GatewayError) {
    this.#sub = sub;
    this.#failure = failure;
    sub.on("message", (channel: string, payload: string) => this.#deliver(channel, payload));
  }

  /** Channels subscribed (or being subscribed). */
  get size(): number {
    return this.#channels.size;
  }

  /**
   * Subscribes every channel again (after the subscriber connection reconnected).
   *
   * @returns settles when Redis has answered
   */
  resubscribe(): Promise<unknown> {
    const names = [...this.#channels.keys()];
    return names.length > 0 ? this.#sub.subscribe(...names) : Promise.resolve(0);
  }

  /**
   * Adds a listener to a room's channel, subscribing it when it is the first.
   *
   * @param name the room's channel
   * @param room the room
   * @param listener gets each message published to the channel
   * @returns the removal (unsubscribes after the last listener)
   * @throws {GatewayError} when the subscription fails
   */
  async listen(name: string, room: string, listener: MessageListener): Promise<() => void> {
    let ch = this.#channels.get(name);
    if (!ch) {
      const created: Channel = {
        room,
        listeners: new Set(),
        ready: this.#sub.subscribe(name).catch((e) => {
          if (this.#channels.get(name) === created) this.#channels.delete(name);
          throw this.#failure(e);
        }),
      };
      ch = created;
      this.#channels.set(name, ch);
    }
    ch.listeners.add(listener);
    const mine = ch;
    const remove = () => {
      mine.listeners.delete(listener);
      if (mine.listeners.size === 0 && this.#channels.get(name) === mine) {
        this.#channels.delete(name);
        if (this.#sub.status === "ready") this.#sub.unsubscribe(name).catch(() => {});
      }
    };
    try {
      await ch.ready;
    } catch (e) {
      remove();
      throw e;
    }
    return remove;
  }

  /** Forgets every channel (the backend is closing). */
  clear(): void {
    this.#channels.clear();
  }

  #deliver(channel: string, payload: string): void {
    const ch = this.#channels.get(channel);
    if (!ch) return;
    const msg = decodePublished(payload);
    if (!msg) return;
    for (const l of ch.listeners) {
      try {
        l(msg);
      } catch {
        // a listener's failure must not affect other listeners
      }
    }
  }
}
