/**
 * Hostile input against the handler (threat model: "gateway abuse"): each case must be refused
 * with a clear 4xx/503, keep memory bounded, and leave other rooms working. Each assertion targets
 * one check; removing the check makes the case fail.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { client, errorOf } from "./_test_util.ts";
import { SseReader } from "../testing/sse_reader.ts";
import { createGatewayHandler, type GatewayOptions } from "./handler.ts";
import { createMemoryBackend } from "./memory_backend.ts";

function gateway(options: GatewayOptions = {}) {
  const backend = options.backend ?? createMemoryBackend({ limits: options.limits });
  const h = createGatewayHandler({ timers: false, ...options, backend });
  return { h, c: client(h), backend, close: async () => (await h.close(), await backend.close()) };
}

test("an oversized body announced by Content-Length is 413 and stores nothing", async () => {
  const g = gateway({ limits: { maxBodyBytes: 1000 } });
  const res = await g.c.post("r", "x".repeat(1001));
  assert.deepEqual(await errorOf(res), { status: 413, error: "body_too_large" });
  assert.equal((await g.backend.read("r", 0, 10)).nextId, 0);
  assert.equal((await g.c.post("r", "x".repeat(1000))).status, 200, "the limit itself is fine");
  await g.close();
});

test("an oversized Content-Length is refused before any body byte is read", async () => {
  const g = gateway({ limits: { maxBodyBytes: 1000 } });
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled++;
      c.enqueue(new Uint8Array(10));
      c.close();
    },
  }, { highWaterMark: 0 });
  const res = await g.h(
    new Request("http://gw.test/rooms/r/broadcast", {
      method: "POST",
      body,
      headers: { "content-length": "5000000" },
      duplex: "half",
    } as RequestInit),
  );
  assert.deepEqual(await errorOf(res), { status: 413, error: "body_too_large" });
  assert.equal(pulled, 0, "the body was not read");
  await g.close();
});

test("an oversized streamed body is cut at the limit: 413 without reading the rest", async () => {
  const g = gateway({ limits: { maxBodyBytes: 64 * 1024 } });
  let produced = 0;
  const chunk = new Uint8Array(16 * 1024).fill(97);
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      produced += chunk.length;
      if (produced > 100 * 1024 * 1024) {
        c.error(new Error("the gateway kept reading past its limit"));
      } else c.enqueue(chunk);
    },
  });
  const res = await g.c.post("r", endless);
  assert.deepEqual(await errorOf(res), { status: 413, error: "body_too_large" });
  assert.ok(produced <= 64 * 1024 + 3 * chunk.length, `read ${produced} bytes for a 64 KiB limit`);
  assert.equal(g.h.stats().inflightBodyBytes, 0, "the in-flight reservation is released");
  await g.close();
});

test("a non-numeric Content-Length is 400 invalid_request", async () => {
  const g = gateway();
  const res = await g.h(
    new Request("http://gw.test/rooms/r/broadcast", {
      method: "POST",
      body: "x",
      headers: { "content-length": "1; drop table" },
    }),
  );
  assert.deepEqual(await errorOf(res), { status: 400, error: "invalid_request" });
  await g.close();
});

const BAD_ROOMS = [
  "a%20b",
  "a.b",
  "...",
  "a:b",
  "a@b",
  "x".repeat(129),
  "x".repeat(5000),
  "%C3%A9",
  "a+b",
  "a~b",
  "a%00b",
];

test("bad room ids are 400 invalid_room_id on every route and create no room", async () => {
  const g = gateway();
  for (const room of BAD_ROOMS) {
    for (const res of [await g.c.subscribe(room), await g.c.post(room, "x"), await g.c.idx(room)]) {
      const e = await errorOf(res);
      assert.deepEqual(e, { status: 400, error: "invalid_room_id" }, room.slice(0, 40));
    }
  }
  // Dot segments are resolved by URL parsing before routing: no route, no room.
  for (const room of ["..", "%2e%2e", "."]) {
    assert.equal((await g.c.post(room, "x")).status, 404);
  }
  assert.equal(g.backend.stats().rooms, 0);
  assert.equal((await g.c.post("x".repeat(128), "ok")).status, 200, "128 characters is allowed");
  await g.close();
});

test("a custom room-id pattern is enforced in full (anchored)", async () => {
  const g = gateway({ limits: { roomIdPattern: "[a-z]+" } });
  assert.equal((await g.c.post("abc", "x")).status, 200);
  assert.equal((await errorOf(await g.c.post("abc1", "x"))).error, "invalid_room_id");
  assert.equal((await errorOf(await g.c.post("1abc", "x"))).error, "invalid_room_id");
  await g.close();
});

const BAD_LAST_IDS = ["-1", "abc", "1.5", "01", "1e2", " 1", "0x1", "99999999999999999999", "NaN"];

test("a malformed Last-Event-ID (header or query) is 400 and opens no stream", async () => {
  const g = gateway();
  await g.c.post("r", "x");
  for (const bad of BAD_LAST_IDS) {
    if (bad.trim() === bad) {
      // (header values are trimmed by the Fetch standard, so " 1" is only hostile in a query)
      const h = await g.c.subscribe("r", { "last-event-id": bad });
      assert.deepEqual(await errorOf(h), { status: 400, error: "invalid_last_event_id" }, bad);
    }
    const q = await g.c.subscribe("r", {}, `?last_event_id=${encodeURIComponent(bad)}`);
    assert.deepEqual(await errorOf(q), { status: 400, error: "invalid_last_event_id" }, bad);
  }
  assert.equal(g.h.stats().subscribers, 0);
  await g.close();
});

test("bodies that SSE cannot carry exactly are refused: invalid UTF-8, CR, empty", async () => {
  const g = gateway();
  const cases: [BodyInit | null, string][] = [
    [new Uint8Array([0x61, 0xff, 0x62]), "invalid_body"],
    [new Uint8Array([0xed, 0xa0, 0x80]), "invalid_body"],
    ["a\r\nb", "invalid_body"],
    ["a\rb", "invalid_body"],
    ["", "empty_body"],
    [null, "empty_body"],
  ];
  for (const [body, code] of cases) {
    assert.deepEqual(await errorOf(await g.c.post("r", body)), { status: 400, error: code });
  }
  assert.equal((await g.backend.read("r", 0, 10)).nextId, 0);
  await g.close();
});

test("thousands of rooms: the room limit holds (503 too_many_rooms) and existing rooms work", async () => {
  const g = gateway({ limits: { maxRooms: 3000, maxTotalHistoryBytes: 1024 * 1024 } });
  const watcher = new SseReader(await g.c.subscribe("room-0"));
  for (let i = 1; i < 3000; i++) {
    assert.equal((await g.c.post(`room-${i}`, "m")).status, 200);
  }
  for (let i = 3000; i < 3050; i++) {
    assert.deepEqual(await errorOf(await g.c.post(`room-${i}`, "m")), {
      status: 503,
      error: "too_many_rooms",
    });
    assert.equal((await g.c.subscribe(`room-${i}`)).status, 503);
    assert.equal((await g.c.idx(`room-${i}`)).status, 503);
  }
  assert.equal(g.backend.stats().rooms, 3000);
  assert.equal((await g.c.post("room-0", "still works")).status, 200);
  assert.equal((await watcher.take(1))[0].data, "still works");
  assert.equal((await g.c.post("room-2999", "again")).status, 200);
  await watcher.cancel();
  await g.close();
});

test("total history is bounded across rooms (503 storage_full), other rooms keep working", async () => {
  const g = gateway({
    limits: { maxTotalHistoryBytes: 10_000, maxHistoryBytes: 5_000, maxBodyBytes: 1000 },
  });
  const body = "b".repeat(1000);
  for (let i = 0; i < 5; i++) {
    assert.equal((await g.c.post("full-a", body)).status, 200);
    assert.equal((await g.c.post("full-b", body)).status, 200);
  }
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(await errorOf(await g.c.post(`more-${i}`, body)), {
      status: 503,
      error: "storage_full",
    });
  }
  assert.ok(g.backend.stats().history_bytes <= 10_000);
  assert.equal((await g.c.post("full-a", body)).status, 200, "a full room still rotates");
  assert.equal((await g.backend.read("full-a", 0, 10)).firstId, 1);
  await g.close();
});

test("a subscriber that never reads is dropped at its queue bound; readers are unaffected", async () => {
  const queue = 16 * 1024;
  const g = gateway({ limits: { subscriberQueueBytes: queue } });
  const stalled = await g.c.subscribe("shared"); // never read
  const reader = new SseReader(await g.c.subscribe("shared"));
  const elsewhere = new SseReader(await g.c.subscribe("other"));
  const body = "q".repeat(1024);
  let maxQueued = 0;
  for (let i = 0; i < 200; i++) {
    assert.equal((await g.c.post("shared", `${i}${body}`)).status, 200);
    assert.equal((await reader.take(1))[0].id, String(i));
    maxQueued = Math.max(maxQueued, g.h.stats().queuedBytes);
  }
  assert.ok(maxQueued <= queue + 2048, `queued ${maxQueued} bytes for a ${queue}-byte bound`);
  assert.equal(g.h.stats().metrics.dropped.get(["slow"]), 1);
  assert.equal(g.h.stats().subscribers, 2, "only the stalled subscriber was removed");
  await assert.rejects(stalled.body!.getReader().read(), "its stream is errored");
  await g.c.post("other", "fine");
  assert.equal((await elsewhere.take(1))[0].data, "fine");
  await reader.cancel();
  await elsewhere.cancel();
  await g.close();
});

test("subscribers per room are limited (429); other rooms are unaffected", async () => {
  const g = gateway({ limits: { maxSubscribersPerRoom: 2 } });
  const a = await g.c.subscribe("busy");
  const b = await g.c.subscribe("busy");
  assert.deepEqual(await errorOf(await g.c.subscribe("busy")), {
    status: 429,
    error: "too_many_subscribers",
  });
  const other = await g.c.subscribe("calm");
  assert.equal(other.status, 200);
  await a.body!.cancel();
  const again = await g.c.subscribe("busy");
  assert.equal(again.status, 200, "a freed slot can be reused");
  await Promise.all([b, other, again].map((r) => r.body!.cancel()));
  await g.close();
});

test("subscribers per instance are limited (503 server_busy)", async () => {
  const g = gateway({ limits: { maxSubscribers: 3 } });
  const subs = [await g.c.subscribe("a"), await g.c.subscribe("b"), await g.c.subscribe("c")];
  assert.deepEqual(await errorOf(await g.c.subscribe("d")), { status: 503, error: "server_busy" });
  await Promise.all(subs.map((r) => r.body!.cancel()));
  const d = await g.c.subscribe("d");
  assert.equal(d.status, 200);
  await d.body!.cancel();
  await g.close();
});

test("request bodies in flight are bounded (503 server_busy) and released afterwards", async () => {
  const g = gateway({ limits: { maxInflightBodyBytes: 1500, maxBodyBytes: 1000 } });
  let feed!: ReadableStreamDefaultController<Uint8Array>;
  const slow = new ReadableStream<Uint8Array>({ start: (c) => void (feed = c) });
  const pending = g.c.post("r", slow);
  feed.enqueue(new Uint8Array(900).fill(65));
  for (let i = 0; i < 50 && g.h.stats().inflightBodyBytes < 900; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(g.h.stats().inflightBodyBytes, 900);
  const second = await g.c.post(
    "r",
    new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(900).fill(66));
        c.close();
      },
    }),
  );
  assert.deepEqual(await errorOf(second), { status: 503, error: "server_busy" });
  feed.close();
  assert.equal((await pending).status, 200);
  assert.equal(g.h.stats().inflightBodyBytes, 0);
  assert.equal((await g.c.post("r", "x".repeat(900))).status, 200);
  await g.close();
});
