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
 * The queues of all subscribers share a {@link QueueBudget}: a push that would take the sum past
 * it first measures every queue exactly, then drops the subscribers with the largest queues (the
 * ones that do not read) until the push fits. Frames larger than {@link CHUNK_BYTES} are enqueued
 * as several views of the same bytes, so the runtime, which takes chunks from the queue into a
 * buffer of its own (Deno: up to 64 KiB plus one chunk; the Node adapter: its socket's 16 KiB plus
 * one chunk), never holds more than a small, fixed amount per stream outside the budget.
 *
 * @module
 */

/** Largest chunk handed to the runtime at once (a frame's view; never a copy). */
export const CHUNK_BYTES = 16 * 1024;

/**
 * The bytes all subscribers of an instance may have queued. It tracks the sum of each queue's
 * upper bound (cheap to keep on every push); when a push would take that sum past the maximum,
 * `reclaim` is asked to measure the queues and drop the largest ones.
 */
export class QueueBudget {
  /** Largest sum of queued bytes. */
  readonly max: number;
  /** Sum of the subscribers' upper bounds (at least the bytes really queued). */
  bound = 0;
  readonly #reclaim: (need: number) => void;

  /**
   * @param max largest sum of queued bytes
   * @param reclaim measures every queue and drops the largest until `need` more bytes fit
   */
  constructor(max: number, reclaim: (need: number) => void) {
    this.max = max;
    this.#reclaim = reclaim;
  }

  /**
   * Makes room for `need` bytes, dropping subscribers if needed.
   *
   * @param need bytes about to be queued
   */
  reserve(need: number): void {
    if (this.bound + need > this.max) this.#reclaim(need);
  }
}

/** Why a subscriber stream ended. */
export type EndReason =
  | "client_closed"
  | "slow"
  | "history_gone"
  | "room_reset"
  | "shutdown"
  | "backend_error"
  | "rejected"
  | "queue_total";

/** Options of {@link Subscriber}. */
export interface SubscriberOptions {
  /** Room id. */
  room: string;
  /** Id of the next message this subscriber must receive. */
  next: number;
  /** Largest number of queued bytes before the subscriber is dropped as slow. */
  maxQueueBytes: number;
  /** The budget shared by all subscribers (default: none). */
  budget?: QueueBudget;
  /** Source key of the client (for the per-source quota; default null). */
  source?: string | null;
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
  /** Source key of the client, or null. */
  readonly source: string | null;
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
  #budget: QueueBudget | null;
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
    this.source = options.source ?? null;
    this.#budget = options.budget ?? null;
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
      this.#setBound(queued);
    }
    if (this.#budget !== null) {
      this.#budget.reserve(frame.length);
      if (this.#ended !== null) return false;
    }
    this.#enqueue(frame);
    this.active = true;
    return true;
  }

  /**
   * Measures the queue exactly and lowers the upper bound to it (used by the budget's reclaim).
   *
   * @returns the bytes queued
   */
  measure(): number {
    if (this.#ended !== null) return 0;
    const queued = this.queuedBytes;
    this.#setBound(queued);
    return queued;
  }

  #setBound(bytes: number): void {
    if (this.#budget !== null) this.#budget.bound += bytes - this.#bound;
    this.#bound = bytes;
  }

  #enqueue(frame: Uint8Array): void {
    if (frame.length <= CHUNK_BYTES) {
      this.#c.enqueue(frame);
    } else {
      for (let at = 0; at < frame.length; at += CHUNK_BYTES) {
        this.#c.enqueue(frame.subarray(at, at + CHUNK_BYTES));
      }
    }
    this.#setBound(this.#bound + frame.length);
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
    if (final) this.#enqueue(final);
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
    this.#setBound(queued);
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
    this.#setBound(0);
    this.#ended = reason;
    this.#unpark();
    const waiters = this.#space;
    this.#space = [];
    for (const w of waiters) w.resolve();
    this.#resolveDone();
    this.#onEnd(this, reason);
  }
}
