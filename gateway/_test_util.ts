/**
 * Helpers for the gateway's unit tests: an SSE reader over a `Response` built on
 * eventsource-parser (an independent parser), with bounded waits that fail with a clear message.
 * Private to the tests.
 *
 * @module
 */

import { createParser, type EventSourceMessage } from "eventsource-parser";

/** Upper bound for any single wait in the unit tests (a hang becomes a clear failure). */
export const WAIT_MS = 10_000;

/**
 * Rejects with `what` when `p` has not settled within `ms` (a bounded wait, not a timed check).
 *
 * @param p promise to wait for
 * @param what description for the failure message
 * @param ms bound
 * @returns the value of `p`
 */
export async function bounded<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`gave up waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

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
      const { done, value } = await bounded(this.#reader.read(), what);
      if (done) {
        this.ended = true;
        return false;
      }
      this.#parser.feed(this.#decoder.decode(value, { stream: true }));
      return true;
    } catch (e) {
      if (e instanceof Error && e.message.startsWith("gave up")) throw e;
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

/**
 * Shorthand for requests against a handler on a dummy origin.
 *
 * @param handler the fetch handler
 * @returns helpers for the gateway's routes
 */
export function client(handler: (req: Request) => Promise<Response>) {
  const base = "http://gw.test";
  return {
    subscribe: (room: string, headers: Record<string, string> = {}, query = "") =>
      handler(new Request(`${base}/rooms/${room}/subscribe${query}`, { headers })),
    post: (room: string, body: BodyInit | null, headers: Record<string, string> = {}) =>
      handler(
        new Request(`${base}/rooms/${room}/broadcast`, {
          method: "POST",
          body,
          headers,
          // Node's Request needs `duplex` for a streamed body.
          ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
        } as RequestInit),
      ),
    idx: (room: string, headers: Record<string, string> = {}) =>
      handler(new Request(`${base}/rooms/${room}/issue_unique_idx`, { method: "POST", headers })),
    get: (path: string, init: RequestInit = {}) => handler(new Request(`${base}${path}`, init)),
  };
}

/**
 * Reads a JSON error body.
 *
 * @param res a response
 * @returns status and the `error` code
 */
export async function errorOf(res: Response): Promise<{ status: number; error: string }> {
  const body = await res.json();
  return { status: res.status, error: body.error };
}
