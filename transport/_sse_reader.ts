/**
 * Reading an SSE response body into events (private to `transport/`), parsed by
 * eventsource-parser, with a bound on each event's size and on the silence between chunks.
 * @module
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { TransportError } from "../core/errors.ts";

/** The bounds of one stream. */
export interface SseReadLimits {
  /** A stream silent for this long fails (the caller reconnects). */
  readonly idleMs: number;
  /** Largest event accepted, in characters. */
  readonly maxEventChars: number;
}

/**
 * The events of an SSE body, in order; cancels the body when the iteration ends.
 *
 * @param body the response body
 * @param signal cancels the reading (rejects with its reason)
 * @param limits idle timeout and largest event
 * @returns the events, until the body ends
 * @throws {TransportError} "limit" for an event larger than `maxEventChars`; an `Error` after
 * `idleMs` without data; what the body's reader throws
 */
export async function* readEvents(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  limits: SseReadLimits,
): AsyncGenerator<EventSourceMessage> {
  const { idleMs, maxEventChars } = limits;
  const queue: EventSourceMessage[] = [];
  let overflow = false;
  const parser = createParser({
    onEvent: (e) => {
      if (e.data.length > maxEventChars) overflow = true;
      else queue.push(e);
    },
    onError: (e) => {
      if (e.type === "max-buffer-size-exceeded") overflow = true;
    },
    maxBufferSize: maxEventChars,
  });
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await readChunk(reader, signal, idleMs);
      if (done) return;
      parser.feed(decoder.decode(value, { stream: true }));
      if (overflow) {
        throw new TransportError(
          "limit",
          `an event of the gateway exceeds ${maxEventChars} characters`,
        );
      }
      while (queue.length > 0) yield queue.shift()!;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * Next chunk of a body, or rejects on abort (also when the signal was aborted before the call:
 * an "abort" event never comes again) / after `idleMs` of silence.
 */
export function readChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  signal: AbortSignal,
  idleMs: number,
): Promise<ReadableStreamReadResult<Uint8Array>> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      done();
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      done();
      reject(new Error(`no data for ${idleMs} ms`));
    }, idleMs);
    signal.addEventListener("abort", onAbort, { once: true });
    reader.read().then((r) => {
      done();
      resolve(r);
    }, (e) => {
      done();
      reject(e);
    });
  });
}
