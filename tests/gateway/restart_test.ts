/**
 * A gateway killed in the middle of a stream and started again: with Redis, clients resume with
 * Last-Event-ID and get exactly what they missed; with the memory backend, a resume is a clean
 * 410 (the history died with the process). A restart on its port while another process holds
 * that port is retried until the port is free, and fails, bounded, when it stays taken.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { SseReader } from "../../testing/sse_reader.ts";
import {
  type GatewayProcess,
  missing,
  PortInUse,
  startGateway,
  startRedis,
} from "../../testing/processes.ts";

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

test("a restart on a port another process holds is retried until the port is free", async () => {
  const first = await startGateway("node");
  const port = first.port;
  await first.stop("SIGKILL");
  // Someone else binds the port between the stop and the restart (a bind-to-0 probe, say).
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(port, "127.0.0.1", () => r()));
  const released = new Promise<void>((r) => setTimeout(() => squatter.close(() => r()), 1_500));
  let gw: GatewayProcess | undefined;
  try {
    gw = await startGateway("deno", ["--port", String(port)]);
    assert.equal(gw.port, port, "the restart came back on its port");
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
  } finally {
    await released;
    await gw?.stop("SIGKILL");
  }
});

test("a port that stays taken fails the restart with PortInUse, bounded", async () => {
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(0, "127.0.0.1", () => r()));
  const port = (squatter.address() as { port: number }).port;
  try {
    await assert.rejects(
      startGateway("node", ["--port", "0", "--port", String(port)], {}, 1_500),
      (e: unknown) =>
        e instanceof Error && /stayed in use/.test(e.message) && e.cause instanceof PortInUse &&
        new RegExp(`port ${port}`).test(e.message),
    );
  } finally {
    await new Promise<void>((r) => squatter.close(() => r()));
  }
});
