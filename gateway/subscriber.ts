/**
 * One SSE subscriber: a bounded queue of pre-encoded frames feeding the response stream.
 *
 * Frames are enqueued straight into the `ReadableStream` (whose queue is measured in bytes) and
 * are shared between subscribers, never copied per subscriber. Memory per subscriber is bounded:
 * a push that would take the queued bytes above the limit drops the subscriber (its stream
 * errors, which makes the runtime close the connection), instead of buffering without bound for
 * a client that does not read. The runtime drains the queue only as fast as the client's socket
 * accepts data, so a slow client is seen here as a growing queue.
 *
 * @module
 */

/** Why a subscriber stream ended. */
export type EndReason =
  | "client_closed"
  | "slow"
  | "history_gone"
  | "room_reset"
  | "shutdown"
  | "backend_error"
  | "rejected";

/** Options of {@link Subscriber}. */
export interface SubscriberOptions {
  /** Room id. */
  room: string;
  /** Id of the next message this subscriber must receive. */
  next: number;
  /** Largest number of queued bytes before the subscriber is dropped as slow. */
  maxQueueBytes: number;
  /** Called once when the stream ends, whatever the reason. */
  onEnd: (sub: Subscriber, reason: EndReason) => void;
}

/**
 * A subscriber's queue and response stream. The hub owns the delivery state (`next`, `epoch`,
 * `mode`); this class owns the bytes.
 */
export class Subscriber {
  /** Room id. */
  readonly room: string;
  /** Id of the next message to deliver. */
  next: number;
  /** Room incarnation the subscriber is following ("" until the first history read). */
  epoch = "";
  /** `catchup` while history is being read, `live` while following notifications. */
  mode: "catchup" | "live" = "catchup";
  /** Highest live message id seen while catching up (-1: none). */
  liveMax = -1;
  /** True when something was queued since the last keep-alive tick. */
  active = false;
  /** True while a history catch-up loop runs for this subscriber. */
  looping = false;
  /** Maintenance ticks seen while closing (a closing stream nobody reads is cut after two). */
  closingTicks = 0;
  /** The response body. */
  readonly stream: ReadableStream<Uint8Array>;

  #max: number;
  /** Upper bound of the queued bytes, refreshed from the stream only when it nears the limit. */
  #bound = 0;
  #c!: ReadableStreamDefaultController<Uint8Array>;
  #space: { bytes: number; resolve: () => void }[] = [];
  /** Resolves a parked `pull` (see {@link #pull}). */
  #parked: (() => void) | null = null;
  #closing = false;
  #closeReason: EndReason = "shutdown";
  #ended: EndReason | null = null;
  #onEnd: SubscriberOptions["onEnd"];
  #done: Promise<void>;
  #resolveDone!: () => void;

  /** @param options room, starting id, queue bound and end callback */
  constructor(options: SubscriberOptions) {
    this.room = options.room;
    this.next = options.next;
    this.#max = options.maxQueueBytes;
    this.#onEnd = options.onEnd;
    this.#done = new Promise((r) => (this.#resolveDone = r));
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (c) => {
          this.#c = c;
        },
        // Called by the stream after the runtime took bytes and the queue is below its mark.
        pull: () => this.#pull(),
        cancel: () => this.#end("client_closed"),
      },
      { highWaterMark: options.maxQueueBytes, size: (chunk) => chunk.byteLength },
    );
  }

  /** Bytes queued and not yet taken by the runtime. */
  get queuedBytes(): number {
    if (this.#ended !== null) return 0;
    return this.#max - (this.#c.desiredSize ?? this.#max);
  }

  /** True once the stream has ended or is closing. */
  get closed(): boolean {
    return this.#ended !== null || this.#closing;
  }

  /** True while the stream waits to hand its last bytes over before closing. */
  get closing(): boolean {
    return this.#ended === null && this.#closing;
  }

  /** The reason recorded for a closing stream. */
  get closeReason(): EndReason {
    return this.#closeReason;
  }

  /** Resolves when the stream has ended. */
  get done(): Promise<void> {
    return this.#done;
  }

  /**
   * Queues a frame. When the queue would exceed its bound (and is not empty), the subscriber is
   * dropped as slow instead.
   *
   * @param frame pre-encoded SSE bytes; must not be mutated afterwards
   * @returns false when the subscriber is (now) closed
   */
  push(frame: Uint8Array): boolean {
    if (this.#ended !== null || this.#closing) return false;
    if (this.#bound + frame.length > this.#max) {
      // Measure precisely (a getter call) only when the cheap bound says we might be full.
      const queued = this.#max - (this.#c.desiredSize ?? 0);
      if (queued > 0 && queued + frame.length > this.#max) {
        this.abort("slow");
        return false;
      }
      this.#bound = queued;
    }
    this.#c.enqueue(frame);
    this.#bound += frame.length;
    this.active = true;
    return true;
  }

  /**
   * Resolves when at most `bytes` are queued (used to pace history replay).
   *
   * @param bytes threshold
   * @returns a promise resolved once there is room, or the stream ended
   */
  waitForSpace(bytes: number): Promise<void> {
    if (this.#ended !== null || this.queuedBytes <= bytes) return Promise.resolve();
    return new Promise((resolve) => {
      this.#space.push({ bytes, resolve });
      this.#unpark();
    });
  }

  /**
   * Closes the stream once the queued frames are taken by the runtime (graceful end).
   *
   * @param final an optional last frame (e.g. an error event); queued even if the queue is full
   * @param reason recorded end reason
   */
  close(final?: Uint8Array, reason: EndReason = "shutdown"): void {
    if (this.#ended !== null || this.#closing) return;
    if (final) {
      this.#c.enqueue(final);
      this.#bound += final.length;
    }
    this.#closing = true;
    this.#closeReason = reason;
    this.#drained();
    this.#unpark();
  }

  /**
   * Ends the stream at once, discarding queued bytes; the runtime then closes the connection.
   *
   * @param reason recorded end reason
   */
  abort(reason: EndReason): void {
    if (this.#ended !== null) return;
    try {
      this.#c.error(new Error(`subscriber dropped: ${reason}`));
    } catch {
      // already closed
    }
    this.#end(reason);
  }

  /**
   * The stream calls `pull` after the runtime takes bytes, unless a previous pull is pending.
   * Nobody needs to hear about it in the steady state, so the pull is parked (left pending),
   * which stops further calls; it is released when a caller waits for space or a close waits
   * for the queue to empty.
   */
  #pull(): Promise<void> | void {
    if (this.#ended !== null) return;
    if (this.#closing || this.#space.length > 0) {
      this.#drained();
      return;
    }
    return new Promise<void>((resolve) => (this.#parked = resolve));
  }

  #unpark(): void {
    const p = this.#parked;
    if (p) {
      this.#parked = null;
      p();
    }
  }

  #drained(): void {
    if (this.#ended !== null || (!this.#closing && this.#space.length === 0)) return;
    const queued = this.queuedBytes;
    this.#bound = queued;
    if (this.#closing && queued === 0) {
      try {
        this.#c.close();
      } catch {
        // already closed
      }
      this.#end(this.#closeReason);
      return;
    }
    if (this.#space.length > 0) {
      const ready = this.#space.filter((w) => queued <= w.bytes);
      if (ready.length > 0) {
        this.#space = this.#space.filter((w) => queued > w.bytes);
        for (const w of ready) w.resolve();
      }
    }
  }

  #end(reason: EndReason): void {
    if (this.#ended !== null) return;
    this.#ended = reason;
    this.#unpark();
    const waiters = this.#space;
    this.#space = [];
    for (const w of waiters) w.resolve();
    this.#resolveDone();
    this.#onEnd(this, reason);
  }
}
