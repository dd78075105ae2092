/**
 * A gateway killed in the middle of a stream and started again: with Redis, clients resume with
 * Last-Event-ID and get exactly what they missed; with the memory backend, a resume is a clean
 * 410 (the history died with the process).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SseReader } from "../../gateway/_test_util.ts";
import { missing, startGateway, startRedis } from "./_helpers.ts";

test("redis backend: kill -9 mid-stream, restart, resume with Last-Event-ID without loss", {
  skip: missing("redis-server"),
}, async () => {
  const redis = await startRedis();
  const args = [
    "--backend",
    "redis",
    "--redis-url",
    redis.url,
    "--set",
    `backend.redis.key_prefix=rs${Date.now()}:`,
  ];
  const other = await startGateway("deno", args);
  let victim = await startGateway("node", args);
  const post = (body: string) =>
    fetch(`${other.url}/rooms/r/broadcast`, { method: "POST", body }).then((r) => r.status);
  try {
    for (const m of ["m0", "m1", "m2"]) assert.equal(await post(m), 200);
    const s = new SseReader(await fetch(`${victim.url}/rooms/r/subscribe`));
    const seen = await s.take(3);
    const lastId = seen[2].id!;
    await victim.stop("SIGKILL");
    assert.deepEqual(await s.drain(), [], "the stream breaks with the process");
    for (const m of ["m3", "m4"]) assert.equal(await post(m), 200);
    victim = await startGateway("node", args);
    const resumed = new SseReader(
      await fetch(`${victim.url}/rooms/r/subscribe`, { headers: { "last-event-id": lastId } }),
    );
    assert.deepEqual((await resumed.take(2)).map((e) => [e.id, e.data]), [
      ["3", "m3"],
      ["4", "m4"],
    ]);
    assert.equal(await post("m5"), 200);
    assert.deepEqual((await resumed.take(1)).map((e) => e.id), ["5"]);
    await resumed.cancel();
  } finally {
    await other.stop("SIGKILL");
    await victim.stop("SIGKILL");
    await redis.dispose();
  }
});

test("memory backend: after a restart, a resume is refused cleanly with 410", async () => {
  let gw = await startGateway("deno");
  try {
    for (const m of ["m0", "m1"]) {
      await fetch(`${gw.url}/rooms/r/broadcast`, { method: "POST", body: m });
    }
    const s = new SseReader(await fetch(`${gw.url}/rooms/r/subscribe`));
    const lastId = (await s.take(2))[1].id!;
    await gw.stop("SIGKILL");
    await s.drain();
    gw = await startGateway("deno");
    const res = await fetch(`${gw.url}/rooms/r/subscribe`, {
      headers: { "last-event-id": lastId },
    });
    assert.equal(res.status, 410);
    assert.equal(res.headers.get("content-type"), "application/json");
    const body = await res.json();
    assert.equal(body.error, "unknown_event_id");
    assert.match(body.message, /reset|never had/);
    const fresh = await fetch(`${gw.url}/rooms/r/subscribe`);
    assert.equal(fresh.status, 200, "a client that starts over is served");
    await fresh.body!.cancel();
  } finally {
    await gw.stop("SIGKILL");
  }
});
