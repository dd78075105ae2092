/**
 * An SSE reader over a `Response` for tests, built on eventsource-parser (a parser independent
 * of the gateway's own encoder), each read bounded ({@link WAIT_MS}) so that a stream that stops
 * delivering fails the test with a message instead of hanging it. Used by the gateway's unit
 * tests (in process) and the gateway process tests (tests/gateway/).
 *
 * @example
 * ```ts
 * import { SseReader } from "./sse_reader.ts";
 * const res = new Response("event: msg\ndata: hello\n\n", {
 *   headers: { "content-type": "text/event-stream" },
 * });
 * const reader = new SseReader(res);
 * const [e] = await reader.take(1);
 * console.assert(e.event === "msg" && e.data === "hello");
 * console.assert((await reader.drain()).length === 0 && reader.ended);
 * ```
 * @module
 */

import { createParser, type EventSourceMessage } from "eventsource-parser";
import { bounded, WAIT_MS, WaitBoundExceeded } from "./waits.ts";

/** Reads SSE events from a response body. */
export class SseReader {
  /** Events parsed so far and not yet taken. */
  readonly events: EventSourceMessage[] = [];
  /** Comment lines seen. */
  readonly comments: string[] = [];
  /** Last `retry:` value. */
  retry = 0;
  /** True once the stream ended (closed or errored). */
  ended = false;
  /** The error that ended the stream, if any. */
  error: unknown = null;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #parser = createParser({
    onEvent: (e) => this.events.push(e),
    onComment: (c) => this.comments.push(c),
    onRetry: (r) => (this.retry = r),
  });
  #decoder = new TextDecoder();

  /** @param res a `text/event-stream` response */
  constructor(res: Response) {
    if (!res.body) throw new TypeError("expected a response with a body");
    this.#reader = res.body.getReader();
  }

  /** Reads one chunk; returns false at the end of the stream. */
  async pump(what = "an SSE chunk"): Promise<boolean> {
    if (this.ended) return false;
    try {
      const { done, value } = await bounded(WAIT_MS, what, this.#reader.read());
      if (done) {
        this.ended = true;
        return false;
      }
      this.#parser.feed(this.#decoder.decode(value, { stream: true }));
      return true;
    } catch (e) {
      if (e instanceof WaitBoundExceeded) throw e;
      this.ended = true;
      this.error = e;
      return false;
    }
  }

  /**
   * Takes exactly `n` events, reading as needed.
   * @throws when the stream ends first or the wait is exceeded
   */
  async take(n: number): Promise<EventSourceMessage[]> {
    while (this.events.length < n) {
      if (!(await this.pump(`${n} events (have ${this.events.length})`))) {
        throw new Error(
          `stream ended after ${this.events.length} of ${n} events${
            this.error ? ` (${String(this.error)})` : ""
          }`,
        );
      }
    }
    return this.events.splice(0, n);
  }

  /** Reads until the stream ends; returns the remaining events. */
  async drain(): Promise<EventSourceMessage[]> {
    while (await this.pump("the end of the stream"));
    return this.events.splice(0);
  }

  /** Cancels the stream (the client goes away). */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    this.ended = true;
  }
}
