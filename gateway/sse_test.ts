import { test } from "node:test";
import assert from "node:assert/strict";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { GatewayError } from "./errors.ts";
import {
  encodeErrorEvent,
  encodeMessageEvent,
  encodePrelude,
  KEEPALIVE_FRAME,
  messageEventText,
  parseLastEventId,
} from "./sse.ts";

const decoder = new TextDecoder();

function parseAll(text: string, chunk = text.length): EventSourceMessage[] {
  const events: EventSourceMessage[] = [];
  const p = createParser({ onEvent: (e) => events.push(e) });
  for (let i = 0; i < text.length; i += chunk) p.feed(text.slice(i, i + chunk));
  return events;
}

const BODIES: [string, string][] = [
  ["plain", "hello"],
  ["json", '{"round":1,"from":0,"to":null,"body":"00ff"}'],
  ["two lines", "a\nb"],
  ["only a newline", "\n"],
  ["trailing newline", "a\n"],
  ["leading newline", "\na"],
  ["blank lines", "a\n\n\nb"],
  ["leading spaces", "  two spaces"],
  ["looks like a field", "data: x\nid: 9\nevent: other\nretry: 1"],
  ["looks like a comment", ": not a comment"],
  ["colon only", ":"],
  ["unicode", "✓ 𝄞 é ü 中文"],
  ["nul", "a\u0000b"],
  ["bom inside", "\uFEFFx"],
  ["long", "x".repeat(100_000)],
];

for (const [name, body] of BODIES) {
  test(`a ${name} body survives SSE framing exactly`, () => {
    const text = decoder.decode(encodeMessageEvent(7, body));
    const events = parseAll("retry: 10\n\n" + text);
    assert.equal(events.length, 1);
    assert.equal(events[0].event, "new-message");
    assert.equal(events[0].id, "7");
    assert.equal(events[0].data, body);
  });
}

test("events split at every byte boundary still parse to the same bodies", () => {
  const text = BODIES.slice(0, 12).map(([, b], i) => messageEventText(i, b)).join("");
  for (const chunk of [1, 2, 3, 7]) {
    const events = parseAll(text, chunk);
    assert.deepEqual(events.map((e) => e.data), BODIES.slice(0, 12).map(([, b]) => b));
    assert.deepEqual(events.map((e) => e.id), BODIES.slice(0, 12).map((_, i) => String(i)));
  }
});

test("keep-alive and prelude are comments or retry fields, not events", () => {
  const events: EventSourceMessage[] = [];
  let retry = 0;
  let comments = 0;
  const p = createParser({
    onEvent: (e) => events.push(e),
    onRetry: (r) => (retry = r),
    onComment: () => comments++,
  });
  p.feed(decoder.decode(encodePrelude(1500)));
  p.feed(decoder.decode(KEEPALIVE_FRAME));
  p.feed(decoder.decode(encodePrelude(0)));
  assert.equal(events.length, 0);
  assert.equal(retry, 1500);
  assert.equal(comments, 2);
});

test("an error event carries a JSON code and message", () => {
  const [e] = parseAll(decoder.decode(encodeErrorEvent("history_gone", "gone\nreally")));
  assert.equal(e.event, "gateway-error");
  assert.deepEqual(JSON.parse(e.data), { error: "history_gone", message: "gone\nreally" });
});

test("parseLastEventId accepts canonical non-negative integers and empty/absent values", () => {
  assert.equal(parseLastEventId(null), null);
  assert.equal(parseLastEventId(""), null);
  assert.equal(parseLastEventId("0"), 0);
  assert.equal(parseLastEventId("42"), 42);
  assert.equal(parseLastEventId("999999999999999"), 999_999_999_999_999);
});

const BAD_IDS = [
  "-1",
  "+1",
  "01",
  "1.0",
  "1e3",
  " 1",
  "1 ",
  "0x10",
  "abc",
  "1000000000000000",
  "99999999999999999999999",
  "١",
  "1\u0000",
  "NaN",
  "x".repeat(10_000),
];

for (const bad of BAD_IDS) {
  test(`parseLastEventId rejects ${JSON.stringify(bad.slice(0, 20))} with invalid_last_event_id`, () => {
    assert.throws(
      () => parseLastEventId(bad),
      (e: unknown) =>
        e instanceof GatewayError && e.code === "invalid_last_event_id" && e.status === 400 &&
        e.message.length < 200,
    );
  });
}
