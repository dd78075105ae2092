import { test } from "node:test";
import assert from "node:assert/strict";
import { backendContract } from "./_backend_contract.ts";
import { GatewayError } from "./errors.ts";
import { createMemoryBackend } from "./memory_backend.ts";

for (
  const c of backendContract("memory", (l) => Promise.resolve(createMemoryBackend({ limits: l })))
) {
  test(c.title, c.run);
}

test("memory backend: idle rooms are forgotten after the TTL; the room's epoch changes", async () => {
  let clock = 0;
  const b = createMemoryBackend({ limits: { roomIdleTtlMs: 1000 }, now: () => clock });
  await b.append("a", "x", 1);
  const before = await b.read("a", 0, 10);
  clock = 999;
  b.sweep();
  assert.equal(b.stats().rooms, 1);
  clock = 2000;
  b.sweep();
  assert.equal(b.stats().rooms, 0);
  assert.equal(b.stats().history_bytes, 0);
  assert.equal(await b.append("a", "y", 1), 0, "a recreated room starts at id 0");
  const after = await b.read("a", 0, 10);
  assert.notEqual(after.epoch, before.epoch);
});

test("memory backend: a room with a listener never expires", async () => {
  let clock = 0;
  const b = createMemoryBackend({ limits: { roomIdleTtlMs: 1000 }, now: () => clock });
  const unlisten = await b.listen("kept", () => {});
  await b.append("idle", "x", 1);
  clock = 10_000;
  b.sweep();
  assert.equal(b.stats().rooms, 1, "only the room with a listener is left");
  unlisten();
  clock = 20_000;
  b.sweep();
  assert.equal(b.stats().rooms, 0);
});

test("memory backend: when full of rooms, expired ones are swept lazily to make space", async () => {
  let clock = 0;
  const b = createMemoryBackend({ limits: { maxRooms: 2, roomIdleTtlMs: 1000 }, now: () => clock });
  await b.open("a");
  await b.open("b");
  await assert.rejects(b.open("c"), (e: unknown) => (e as GatewayError).code === "too_many_rooms");
  clock = 5000;
  await b.open("c");
  assert.equal(b.stats().rooms, 1);
});

test("memory backend: total history bytes are bounded (storage_full), trimming counts as space", async () => {
  const b = createMemoryBackend({
    limits: { maxTotalHistoryBytes: 100, maxHistoryBytes: 60, maxHistoryMessages: 1000 },
  });
  await b.append("a", "x".repeat(60), 60);
  await b.append("b", "x".repeat(40), 40);
  await assert.rejects(
    b.append("c", "x", 1),
    (e: unknown) => e instanceof GatewayError && e.code === "storage_full" && e.status === 503,
  );
  // Appending to a full room drops its oldest message first, so this fits.
  await b.append("a", "y".repeat(60), 60);
  assert.equal(b.stats().history_bytes, 100);
});

test("memory backend: a long history is compacted and still reads correctly", async () => {
  const b = createMemoryBackend({ limits: { maxHistoryMessages: 10 } });
  for (let i = 0; i < 1000; i++) await b.append("long", `m${i}`, String(i).length + 1);
  const r = await b.read("long", 990, 100);
  assert.equal(r.firstId, 990);
  assert.deepEqual(
    r.messages.map((m) => m.body),
    Array.from({ length: 10 }, (_, i) => `m${990 + i}`),
  );
});

test("memory backend: a closed backend refuses requests with backend_unavailable", async () => {
  const b = createMemoryBackend();
  await b.close();
  await assert.rejects(
    b.append("a", "x", 1),
    (e: unknown) => (e as GatewayError).code === "backend_unavailable",
  );
  assert.equal((await b.health()).ok, false);
});
