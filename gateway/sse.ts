/**
 * Server-sent events framing (WHATWG HTML, "Server-sent events", section 9.2).
 *
 * A message body is sent as one `data:` line per line of the body, so that a client that follows
 * the specification rejoins the lines with `\n` and gets the exact posted text back. Bodies are
 * therefore restricted to UTF-8 text without carriage returns (a CR is a line break in SSE and
 * could not be restored exactly); the handler refuses such bodies with 400 `invalid_body`.
 *
 * @module
 */

import { GatewayError } from "./errors.ts";

const encoder = new TextEncoder();

/** The event type of every relayed message (seed compatible). */
export const MESSAGE_EVENT = "new-message";

/** The event type of a gateway error sent in-stream before the stream is closed. */
export const ERROR_EVENT = "gateway-error";

/** A pre-encoded keep-alive comment line. Shared by all subscribers; never mutate it. */
export const KEEPALIVE_FRAME: Uint8Array = encoder.encode(": keep-alive\n\n");

/**
 * Encodes one relayed message as an SSE event.
 *
 * @param id position of the message in its room's history, from 0
 * @param body the exact posted text (LF line breaks only)
 * @returns the UTF-8 bytes of `event: new-message\nid: <id>\ndata: ...\n\n`
 * @example
 * ```ts
 * import { encodeMessageEvent } from "./sse.ts";
 * const text = new TextDecoder().decode(encodeMessageEvent(3, "a\nb"));
 * console.assert(text === "event: new-message\nid: 3\ndata: a\ndata: b\n\n");
 * ```
 */
export function encodeMessageEvent(id: number, body: string): Uint8Array {
  return encoder.encode(messageEventText(id, body));
}

/**
 * The text form of {@link encodeMessageEvent}.
 *
 * @param id position of the message in its room's history
 * @param body the exact posted text
 * @returns the SSE event text
 */
export function messageEventText(id: number, body: string): string {
  const data = body.includes("\n") ? body.replaceAll("\n", "\ndata: ") : body;
  return `event: ${MESSAGE_EVENT}\nid: ${id}\ndata: ${data}\n\n`;
}

/**
 * Encodes a gateway error event (`event: gateway-error`, JSON data), sent just before the gateway
 * closes a stream it can no longer serve (history dropped under a slow reader, room reset).
 *
 * @param code a gateway error code
 * @param message human-readable text (no secrets)
 * @returns UTF-8 bytes of the event
 */
export function encodeErrorEvent(code: string, message: string): Uint8Array {
  return encoder.encode(
    `event: ${ERROR_EVENT}\ndata: ${JSON.stringify({ error: code, message })}\n\n`,
  );
}

/**
 * Encodes the first bytes of every stream: a `retry:` field when `retryMs > 0` (how long a browser
 * waits before reconnecting) or a comment otherwise. Sending bytes at once lets every proxy and
 * client see the response start.
 *
 * @param retryMs reconnection delay advertised to clients, 0 for none
 * @returns UTF-8 bytes
 */
export function encodePrelude(retryMs: number): Uint8Array {
  return encoder.encode(retryMs > 0 ? `retry: ${retryMs}\n\n` : ": ok\n\n");
}

const EVENT_ID = /^(?:0|[1-9][0-9]{0,14})$/;

/**
 * Parses a `Last-Event-ID` value (header or `last_event_id` query parameter).
 *
 * Accepted: a canonical decimal integer from 0 to 999999999999999 (no sign, no leading zeros, no
 * spaces). An empty value means "no last event" (the SSE specification treats an empty id as a
 * reset) and yields `null`.
 *
 * @param value the raw value, or null when absent
 * @returns the id the client has seen, or null to start from the beginning of the history
 * @throws {GatewayError} `invalid_last_event_id` (400) for anything else
 * @example
 * ```ts
 * import { parseLastEventId } from "./sse.ts";
 * console.assert(parseLastEventId("7") === 7);
 * console.assert(parseLastEventId(null) === null);
 * ```
 */
export function parseLastEventId(value: string | null): number | null {
  if (value === null || value === "") return null;
  if (!EVENT_ID.test(value)) {
    const shown = value.length > 32 ? `${value.slice(0, 32)}...` : value;
    throw new GatewayError(
      "invalid_last_event_id",
      `expected Last-Event-ID to be a decimal integer from 0 to 999999999999999, got ${
        JSON.stringify(shown)
      }`,
    );
  }
  return Number(value);
}
