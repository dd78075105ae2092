/**
 * Several gateway instances on one Redis (one under Deno, one under Node): cross-instance delivery,
 * history and Last-Event-ID resume across instances, unique indices, and a Redis restart in the
 * middle of a session (instances report it, recover, and open streams continue without loss).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SseReader } from "../../testing/sse_reader.ts";
import { missing, startGateway, startRedis, until } from "../../testing/processes.ts";

const skip = missing("redis-server");

test("two instances on Redis serve one room; a Redis restart is survived and reported", {
  skip,
}, async () => {
  const redis = await startRedis({ persist: true });
  const args = [
    "--backend",
    "redis",
    "--redis-url",
    redis.url,
    "--set",
    `backend.redis.key_prefix=it${Date.now()}:`,
  ];
  const a = await startGateway("deno", args);
  const b = await startGateway("node", args);
  const post = (url: string, body: string) =>
    fetch(`${url}/rooms/session/broadcast`, { method: "POST", body });
  const health = async (url: string) => {
    const r = await fetch(`${url}/healthz`);
    return { status: r.status, body: await r.json() };
  };
  const streams: SseReader[] = [];
  try {
    assert.equal((await post(a.url, "a0")).status, 200);
    assert.equal((await post(a.url, "a1\nsecond line")).status, 200);
    const onB = new SseReader(await fetch(`${b.url}/rooms/session/subscribe`));
    streams.push(onB);
    assert.deepEqual((await onB.take(2)).map((e) => [e.id, e.data]), [
      ["0", "a0"],
      ["1", "a1\nsecond line"],
    ]);
    await post(b.url, "b2");
    await post(a.url, "a3");
    assert.deepEqual((await onB.take(2)).map((e) => [e.id, e.data]), [["2", "b2"], ["3", "a3"]]);

    const onA = new SseReader(
      await fetch(`${a.url}/rooms/session/subscribe`, { headers: { "last-event-id": "1" } }),
    );
    streams.push(onA);
    assert.deepEqual((await onA.take(2)).map((e) => e.id), ["2", "3"], "resume across instances");

    const idx: number[] = [];
    for (const url of [a.url, b.url, a.url, b.url]) {
      const r = await fetch(`${url}/rooms/session/issue_unique_idx`, { method: "POST" });
      idx.push((await r.json()).unique_idx);
    }
    assert.deepEqual(idx, [1, 2, 3, 4]);

    // Redis goes away in the middle of the session.
    await redis.stop();
    for (const gw of [a, b]) {
      await until(
        `${gw.url} to report Redis down`,
        async () => (await health(gw.url)).status === 503,
      );
      const h = await health(gw.url);
      assert.equal(h.body.status, "unavailable");
      assert.equal(h.body.backend.kind, "redis");
      assert.equal(h.body.backend.ok, false);
      await gw.waitForLog("a 'redis unavailable' log", (l) => l.msg === "redis unavailable");
    }
    const refused = await post(a.url, "during");
    assert.equal(refused.status, 503);
    assert.equal((await refused.json()).error, "backend_unavailable");

    await redis.start();
    for (const gw of [a, b]) {
      await until(
        `${gw.url} to report Redis up`,
        async () => (await health(gw.url)).status === 200,
      );
      await gw.waitForLog(
        "a 'redis connected' log after the outage",
        (l) =>
          l.msg === "redis connected" &&
          gw.logs.indexOf(l) > gw.logs.findIndex((x) => x.msg === "redis unavailable"),
      );
    }
    assert.equal((await post(a.url, "after restart")).status, 200);
    for (const s of [onA, onB]) {
      assert.deepEqual((await s.take(1)).map((e) => [e.id, e.data]), [["4", "after restart"]]);
    }
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    assert.match(metrics, /^gateway_backend_events_total\{event="down"\} 1$/m);
    assert.match(metrics, /^gateway_backend_events_total\{event="up"\} 1$/m);
  } finally {
    await Promise.all(streams.map((s) => s.cancel()));
    await a.stop("SIGKILL");
    await b.stop("SIGKILL");
    await redis.dispose();
  }
});
