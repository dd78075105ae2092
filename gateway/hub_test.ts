/**
 * Delivery guarantees of the hub with a backend that loses notifications, fails, or resets a
 * room, as the Redis backend can (pub/sub is at-most-once; Redis may restart empty).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Backend, BackendEvent, MessageListener } from "./backend.ts";
import { client, errorOf } from "./_test_util.ts";
import { SseReader } from "../testing/sse_reader.ts";
import { GatewayError } from "./errors.ts";
import { createGatewayHandler } from "./handler.ts";
import { createMemoryBackend } from "./memory_backend.ts";

/** A memory backend whose notifications can be muted and whose calls can fail. */
function flakyBackend() {
  const inner = createMemoryBackend();
  const events = new Set<(e: BackendEvent) => void>();
  const state = { muted: false, failing: false, epoch: "" };
  const guard = () => {
    if (state.failing) throw new GatewayError("backend_unavailable", "down for the test");
  };
  const backend: Backend = {
    ...inner,
    kind: "flaky",
    open: async (room) => (guard(), await inner.open(room)),
    append: async (room, body, bytes) => (guard(), await inner.append(room, body, bytes)),
    read: async (room, from, limit) => {
      guard();
      const r = await inner.read(room, from, limit);
      const epoch = r.epoch + state.epoch;
      return { ...r, epoch, messages: r.messages.map((m) => ({ ...m, epoch })) };
    },
    listen: async (room, listener: MessageListener) => {
      guard();
      return await inner.listen(room, (m) => {
        if (!state.muted) listener({ ...m, epoch: m.epoch + state.epoch });
      });
    },
    onEvent: (cb) => (events.add(cb), () => events.delete(cb)),
  };
  return { backend, inner, state, emit: (e: BackendEvent) => events.forEach((cb) => cb(e)) };
}

test("a missed notification is recovered from history when the next one shows a gap", async () => {
  const f = flakyBackend();
  const h = createGatewayHandler({ timers: false, backend: f.backend });
  const c = client(h);
  const s = new SseReader(await c.subscribe("gap"));
  await c.post("gap", "m0");
  f.state.muted = true;
  await c.post("gap", "m1 (notification lost)");
  f.state.muted = false;
  await c.post("gap", "m2");
  const got = await s.take(3);
  assert.deepEqual(got.map((e) => [e.id, e.data]), [
    ["0", "m0"],
    ["1", "m1 (notification lost)"],
    ["2", "m2"],
  ]);
  await s.cancel();
  await h.close();
});

test("after a backend reconnect ('up') subscribers re-read what they missed, in order", async () => {
  const f = flakyBackend();
  const h = createGatewayHandler({ timers: false, backend: f.backend });
  const c = client(h);
  const s = new SseReader(await c.subscribe("re"));
  f.state.muted = true;
  for (let i = 0; i < 3; i++) await c.post("re", `lost ${i}`);
  f.state.muted = false;
  f.emit("up");
  const got = await s.take(3);
  assert.deepEqual(got.map((e) => e.id), ["0", "1", "2"]);
  await c.post("re", "after");
  assert.equal((await s.take(1))[0].data, "after");
  await s.cancel();
  await h.close();
});

test("while the backend is down, requests are 503 and streams stay open; they resume after", async () => {
  const f = flakyBackend();
  const h = createGatewayHandler({ timers: false, backend: f.backend });
  const c = client(h);
  const s = new SseReader(await c.subscribe("down"));
  f.state.failing = true;
  f.emit("down");
  assert.deepEqual(await errorOf(await c.post("down", "x")), {
    status: 503,
    error: "backend_unavailable",
  });
  assert.equal((await c.subscribe("down")).status, 503);
  f.state.failing = false;
  f.state.muted = true;
  await f.inner.append("down", "written while this instance was cut off", 10);
  f.state.muted = false;
  f.emit("up");
  assert.equal((await s.take(1))[0].data, "written while this instance was cut off");
  assert.equal(h.stats().subscribers, 1);
  await s.cancel();
  await h.close();
});

test("a catch-up that fails is retried by the maintenance tick", async () => {
  const f = flakyBackend();
  const h = createGatewayHandler({ timers: false, backend: f.backend });
  const c = client(h);
  const s = new SseReader(await c.subscribe("retry"));
  f.state.muted = true;
  await c.post("retry", "m0");
  f.state.failing = true;
  f.emit("up"); // the re-read fails: the subscriber stalls in catch-up
  await new Promise((r) => setTimeout(r, 0));
  f.state.failing = false;
  f.state.muted = false;
  h.tick();
  assert.equal((await s.take(1))[0].data, "m0");
  await s.cancel();
  await h.close();
});

test("a room whose store was reset (new epoch) ends its streams with a room_reset event", async () => {
  const f = flakyBackend();
  const h = createGatewayHandler({ timers: false, backend: f.backend });
  const c = client(h);
  await c.post("reset", "old 0");
  const s = new SseReader(await c.subscribe("reset"));
  assert.equal((await s.take(1))[0].data, "old 0");
  f.state.epoch = "-reborn"; // the store now holds another incarnation of the room
  await c.post("reset", "new");
  const rest = await s.drain();
  assert.equal(rest.length, 1);
  assert.equal(rest[0].event, "gateway-error");
  assert.equal(JSON.parse(rest[0].data).error, "room_reset");
  assert.equal(h.stats().metrics.dropped.get(["room_reset"]), 1);
  await h.close();
});

test("a closing stream that nobody reads is cut after two maintenance ticks", async () => {
  const f = flakyBackend();
  const h = createGatewayHandler({ timers: false, backend: f.backend });
  const c = client(h);
  await c.subscribe("deaf"); // never read
  f.state.epoch = "-reborn";
  await c.post("deaf", "x"); // the stream is told room_reset and starts closing
  assert.equal(h.stats().subscribers, 1, "still waiting to hand over its last bytes");
  h.tick();
  assert.equal(h.stats().subscribers, 1);
  h.tick();
  assert.equal(h.stats().subscribers, 0, "cut after the second tick");
  await h.close();
});
