import { test } from "node:test";
import assert from "node:assert/strict";
import { client, errorOf } from "./_test_util.ts";
import { SseReader } from "../testing/sse_reader.ts";
import { createGatewayHandler, type GatewayOptions } from "./handler.ts";
import { createLogger } from "../platform/logger.ts";
import { createMemoryBackend } from "./memory_backend.ts";

function gateway(options: GatewayOptions = {}) {
  const h = createGatewayHandler({ timers: false, ...options });
  return { h, c: client(h) };
}

test("subscribe streams the history, then live messages, with ids from 0", async () => {
  const { h, c } = gateway();
  assert.equal((await c.post("room1", "first")).status, 200);
  assert.equal((await c.post("room1", "second")).status, 200);
  const res = await c.subscribe("room1");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  assert.equal(res.headers.get("cache-control"), "no-cache, no-transform");
  const s = new SseReader(res);
  const history = await s.take(2);
  assert.deepEqual(history.map((e) => [e.event, e.id, e.data]), [
    ["new-message", "0", "first"],
    ["new-message", "1", "second"],
  ]);
  assert.equal(s.retry, 2000);
  await c.post("room1", "third");
  const [live] = await s.take(1);
  assert.deepEqual([live.event, live.id, live.data], ["new-message", "2", "third"]);
  await s.cancel();
  await h.close();
});

test("broadcast answers 200 with an empty body", async () => {
  const { h, c } = gateway();
  const res = await c.post("r", '{"x":1}', { "content-type": "application/json" });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "");
  await h.close();
});

test("bodies with newlines, unicode and SSE-like lines arrive exactly", async () => {
  const { h, c } = gateway();
  const bodies = ["a\nb", "\n", "x\n\ny\n", "data: fake\nid: 99\nevent: x", "✓ 𝄞", ": c", " sp"];
  const s = new SseReader(await c.subscribe("exact"));
  for (const b of bodies) assert.equal((await c.post("exact", b)).status, 200);
  const got = await s.take(bodies.length);
  assert.deepEqual(got.map((e) => e.data), bodies);
  assert.deepEqual(got.map((e) => e.id), bodies.map((_, i) => String(i)));
  await s.cancel();
  await h.close();
});

test("Last-Event-ID resumes after that id (header, then query parameter)", async () => {
  const { h, c } = gateway();
  for (let i = 0; i < 5; i++) await c.post("resume", `m${i}`);
  const byHeader = new SseReader(await c.subscribe("resume", { "last-event-id": "2" }));
  assert.deepEqual((await byHeader.take(2)).map((e) => e.data), ["m3", "m4"]);
  const byQuery = new SseReader(await c.subscribe("resume", {}, "?last_event_id=3"));
  assert.deepEqual((await byQuery.take(1)).map((e) => e.data), ["m4"]);
  const both = new SseReader(
    await c.subscribe("resume", { "last-event-id": "0" }, "?last_event_id=3"),
  );
  assert.equal((await both.take(1))[0].data, "m1", "the header wins over the query parameter");
  const newest = new SseReader(await c.subscribe("resume", { "last-event-id": "4" }));
  await c.post("resume", "m5");
  for (const s of [byHeader, byQuery, newest]) {
    const [e] = await s.take(1);
    assert.deepEqual([e.id, e.data], ["5", "m5"], "resumers continue with live messages");
  }
  await Promise.all([byHeader, byQuery, both, newest].map((s) => s.cancel()));
  await h.close();
});

test("resuming beyond the newest id is 410 unknown_event_id (e.g. a restarted memory gateway)", async () => {
  const { h, c } = gateway();
  await c.post("r", "only");
  assert.deepEqual(await errorOf(await c.subscribe("r", { "last-event-id": "5" })), {
    status: 410,
    error: "unknown_event_id",
  });
  assert.deepEqual(await errorOf(await c.subscribe("fresh", { "last-event-id": "0" })), {
    status: 410,
    error: "unknown_event_id",
  });
  await h.close();
});

test("resuming from an id dropped from the history is 410 history_gone", async () => {
  const { h, c } = gateway({ limits: { maxHistoryMessages: 3 } });
  for (let i = 0; i < 6; i++) await c.post("r", `m${i}`);
  assert.deepEqual(await errorOf(await c.subscribe("r", { "last-event-id": "1" })), {
    status: 410,
    error: "history_gone",
  });
  const ok = new SseReader(await c.subscribe("r", { "last-event-id": "2" }));
  assert.deepEqual((await ok.take(3)).map((e) => e.id), ["3", "4", "5"]);
  const fresh = new SseReader(await c.subscribe("r"));
  assert.deepEqual(
    (await fresh.take(3)).map((e) => e.id),
    ["3", "4", "5"],
    "a new subscriber gets what is kept",
  );
  await ok.cancel();
  await fresh.cancel();
  await h.close();
});

test("issue_unique_idx returns 1, 2, ... per room, unique under concurrency", async () => {
  const { h, c } = gateway();
  const res = await c.idx("a");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.deepEqual(await res.json(), { unique_idx: 1 });
  const many = await Promise.all(
    Array.from({ length: 20 }, () => c.idx("a").then((r) => r.json())),
  );
  const got = many.map((b) => b.unique_idx).sort((x, y) => x - y);
  assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => i + 2));
  assert.deepEqual(await (await c.idx("b")).json(), { unique_idx: 1 });
  await h.close();
});

test("every subscriber of a room receives each message; other rooms receive nothing", async () => {
  const { h, c } = gateway();
  const a1 = new SseReader(await c.subscribe("a"));
  const a2 = new SseReader(await c.subscribe("a"));
  const b = new SseReader(await c.subscribe("b"));
  await c.post("a", "for a");
  await c.post("b", "for b");
  assert.equal((await a1.take(1))[0].data, "for a");
  assert.equal((await a2.take(1))[0].data, "for a");
  assert.deepEqual((await b.take(1)).map((e) => [e.id, e.data]), [["0", "for b"]]);
  await Promise.all([a1, a2, b].map((s) => s.cancel()));
  assert.equal(h.stats().subscribers, 0, "cancelled streams are removed");
  await h.close();
});

test("idle streams get keep-alive comments on each maintenance tick", async () => {
  const { h, c } = gateway({ sse: { keepaliveMs: 1000, retryMs: 0 } });
  const s = new SseReader(await c.subscribe("k"));
  await s.pump();
  assert.deepEqual(s.comments, ["ok"]);
  h.tick(); // the prelude counts as activity: nothing sent
  h.tick();
  await s.pump();
  assert.deepEqual(s.comments, ["ok", "keep-alive"]);
  await c.post("k", "busy");
  h.tick();
  await s.take(1);
  assert.equal(s.comments.length, 2, "a stream that just carried a message needs no keep-alive");
  assert.equal(h.stats().metrics.keepalives, 1);
  await s.cancel();
  await h.close();
});

test("healthz reports the backend state; 503 once shutting down", async () => {
  const { h, c } = gateway();
  const res = await c.get("/healthz");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.status, "ok");
  assert.equal(body.backend.kind, "memory");
  assert.equal(body.backend.ok, true);
  const closing = h.close();
  const down = await c.get("/healthz");
  assert.equal(down.status, 503);
  assert.equal((await down.json()).status, "shutting_down");
  await closing;
});

test("metrics are Prometheus text with request, message and subscriber series", async () => {
  const { h, c } = gateway({ gauges: () => ({ process_x: { help: "x", value: 7 } }) });
  await c.post("m", "abc");
  await c.post("bad room", "x");
  const s = new SseReader(await c.subscribe("m"));
  await s.take(1);
  const res = await c.get("/metrics");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  for (
    const line of [
      "gateway_messages_posted_total 1",
      "gateway_message_bytes_posted_total 3",
      "gateway_events_delivered_total 1",
      'gateway_http_requests_total{route="broadcast",status="200"} 1',
      'gateway_http_requests_total{route="broadcast",status="400"} 1',
      'gateway_http_requests_total{route="subscribe",status="200"} 1',
      "gateway_subscribers 1",
      "gateway_backend_rooms 1",
      "process_x 7",
      "# TYPE gateway_subscribers gauge",
      "# TYPE gateway_messages_posted_total counter",
    ]
  ) {
    assert.ok(text.split("\n").includes(line), `missing ${line}`);
  }
  for (const l of text.trim().split("\n")) {
    assert.match(l, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? \d+(\.\d+)?)$/, l);
  }
  await s.cancel();
  await h.close();
});

test("CORS: allowed origins get headers and preflights; others are refused", async () => {
  const { h, c } = gateway({ corsOrigins: ["http://app.test"] });
  const pre = await c.get("/rooms/r/subscribe", {
    method: "OPTIONS",
    headers: {
      origin: "http://app.test",
      "access-control-request-method": "GET",
      "access-control-request-headers": "last-event-id, authorization",
    },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "http://app.test");
  assert.match(pre.headers.get("access-control-allow-headers") ?? "", /last-event-id/);
  assert.match(pre.headers.get("access-control-allow-headers") ?? "", /authorization/);
  assert.match(pre.headers.get("access-control-allow-methods") ?? "", /POST/);
  const denied = await c.get("/rooms/r/broadcast", {
    method: "OPTIONS",
    headers: { origin: "http://evil.test", "access-control-request-method": "POST" },
  });
  assert.equal((await errorOf(denied)).error, "cors_forbidden");
  assert.equal(denied.headers.get("access-control-allow-origin"), null);
  const sub = await c.subscribe("r", { origin: "http://app.test" });
  assert.equal(sub.headers.get("access-control-allow-origin"), "http://app.test");
  assert.match(sub.headers.get("vary") ?? "", /origin/i);
  await sub.body?.cancel();
  const other = await c.post("r", "x", { origin: "http://evil.test" });
  assert.equal(other.headers.get("access-control-allow-origin"), null);
  const err = await c.post("bad id", "x", { origin: "http://app.test" });
  assert.equal(err.headers.get("access-control-allow-origin"), "http://app.test", "errors too");
  await h.close();

  const any = gateway({ corsOrigins: ["*"] });
  const r = await any.c.idx("r", { origin: "http://whoever.test" });
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
  await any.h.close();
});

test("unknown routes are 404 and wrong methods 405 with Allow, as JSON errors", async () => {
  const { h, c } = gateway();
  for (const path of ["/", "/rooms", "/rooms/a", "/rooms/a/other", "/rooms/a/subscribe/x"]) {
    const res = await c.get(path);
    assert.equal(res.status, 404, path);
    assert.equal((await res.json()).error, "not_found");
  }
  const wrong = await c.get("/rooms/a/broadcast");
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "POST, OPTIONS");
  assert.deepEqual(Object.keys(await wrong.json()), ["error", "message"]);
  const wrong2 = await c.get("/rooms/a/subscribe", { method: "POST", body: "x" });
  assert.equal(wrong2.status, 405);
  assert.equal(wrong2.headers.get("allow"), "GET, OPTIONS");
  await h.close();
});

test("graceful shutdown flushes queued events, ends streams, then refuses requests", async () => {
  const { h, c } = gateway();
  const s = new SseReader(await c.subscribe("g"));
  for (let i = 0; i < 3; i++) await c.post("g", `m${i}`);
  const closing = h.close();
  const rest = await s.drain();
  assert.deepEqual(rest.map((e) => e.data), ["m0", "m1", "m2"], "queued events are delivered");
  assert.equal(s.error, null, "the stream ends cleanly, not with an error");
  await closing;
  assert.equal((await errorOf(await c.post("g", "late"))).error, "shutting_down");
  assert.equal((await c.subscribe("g")).status, 503);
  assert.equal(h.stats().subscribers, 0);
});

test("history larger than the subscriber queue is paced, not dropped", async () => {
  const backend = createMemoryBackend();
  let reads = 0;
  const counting = {
    ...backend,
    read: (room: string, from: number, limit: number) => (reads++, backend.read(room, from, limit)),
  };
  const { h, c } = gateway({
    backend: counting,
    limits: { subscriberQueueBytes: 4096, maxBodyBytes: 1024 },
  });
  const body = "y".repeat(300);
  for (let i = 0; i < 100; i++) await c.post("big", `${i}:${body}`);
  const s = new SseReader(await c.subscribe("big"));
  const got = await s.take(100);
  assert.deepEqual(got.map((e) => e.id), Array.from({ length: 100 }, (_, i) => String(i)));
  assert.equal(got[99].data, `99:${body}`);
  await c.post("big", "live");
  assert.equal((await s.take(1))[0].data, "live");
  assert.equal(h.stats().metrics.dropped.get(["slow"]), 0);
  // ~30 KB through a 4 KB queue: a paced replay reads the store once per half queue drained;
  // a loop that ignores the queue reads it again and again while the client is slow.
  const bound = Math.ceil((100 * 320) / 2048) + 3;
  assert.ok(reads <= bound, `${reads} history reads, expected at most ${bound}`);
  await s.cancel();
  await h.close();
  await backend.close();
});

test("a subscriber whose next message is dropped while it lags gets a history_gone event", async () => {
  const { h, c } = gateway({
    limits: { subscriberQueueBytes: 1024, maxBodyBytes: 400, maxHistoryMessages: 5 },
  });
  const body = "z".repeat(300);
  for (let i = 0; i < 5; i++) await c.post("lag", body);
  const s = new SseReader(await c.subscribe("lag"));
  // The first history read fills the queue; the rest waits until the client reads.
  for (let i = 0; i < 10; i++) await c.post("lag", body);
  const events = await s.drain();
  const last = events[events.length - 1];
  assert.equal(last.event, "gateway-error");
  assert.equal(JSON.parse(last.data).error, "history_gone");
  assert.ok(events.slice(0, -1).every((e) => e.event === "new-message"));
  assert.equal(h.stats().metrics.dropped.get(["history_gone"]), 1);
  await h.close();
});

test("JSON logs: one object per line, with request fields, never bodies or query strings", async () => {
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: (l) => lines.push(l) });
  const { h, c } = gateway({ logger });
  await c.post("logged", "SECRET-BODY-CONTENT");
  const sub = await c.subscribe("logged", {}, "?last_event_id=0&x=QUERY-SECRET");
  await sub.body?.cancel();
  await c.post("bad id!", "SECRET-BODY-2");
  await h.close();
  assert.ok(lines.length >= 3);
  for (const l of lines) {
    const o = JSON.parse(l);
    assert.equal(typeof o.ts, "string");
    assert.equal(typeof o.level, "string");
    assert.equal(typeof o.msg, "string");
    assert.ok(!l.includes("SECRET"), `log line leaks: ${l}`);
  }
  const req = lines.map((l) => JSON.parse(l)).find((o) => o.msg === "request" && o.status === 200);
  assert.equal(req.route, "broadcast");
  assert.equal(req.room, "logged");
});

test("an injected backend is used and left open by close()", async () => {
  const backend = createMemoryBackend();
  const { h, c } = gateway({ backend });
  await c.post("x", "1");
  await h.close();
  assert.equal((await backend.read("x", 0, 10)).messages.length, 1);
  assert.equal((await backend.health()).ok, true);
  await backend.close();
});
