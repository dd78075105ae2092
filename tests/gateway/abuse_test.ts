/**
 * Anonymous abuse against a real gateway process, under Deno (its per-connection server) and
 * under Node (the `node:http` adapter): connections that never send a request head, slowloris
 * clients, idle keep-alive connections, too many connections from one source, a room flood from
 * one source, and subscribers that never read. Another source on loopback is another local
 * address (`127.0.0.2`). Every wait is for an event (a socket's close, a metric reaching a value),
 * bounded; nothing is timed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { SseReader } from "../../testing/sse_reader.ts";
import { createGatewayClient } from "../../transport/gateway_client.ts";
import { startGateway, until } from "../../testing/processes.ts";
import { metric, openRaw } from "./_connections.ts";

const ATTACKER = "127.0.0.2";

/**
 * POSTs over one keep-alive connection from `localAddress`; returns the statuses, 0 for a
 * request whose connection the gateway closed (the requests after it are not sent).
 */
async function postFrom(
  url: string,
  localAddress: string,
  paths: string[],
  body = "x",
): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress });
  const out: number[] = [];
  try {
    for (const path of paths) {
      const status = await new Promise<number>((resolve) => {
        const req = request(`${url}${path}`, { method: "POST", agent }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", () => resolve(0));
        });
        req.on("error", () => resolve(0));
        req.end(body);
      });
      out.push(status);
      if (status === 0) break;
    }
  } finally {
    agent.destroy();
  }
  return out;
}

for (const runtime of ["deno", "node"] as const) {
  test(`${runtime} gateway: half-open, slowloris and idle keep-alive connections are closed; a stream is not`, async () => {
    const gw = await startGateway(runtime, [
      "--set",
      "server.headers_timeout_ms=3000",
      "--set",
      "server.keep_alive_timeout_ms=3000",
    ]);
    let dribble: ReturnType<typeof setInterval> | undefined;
    try {
      // A subscriber: a request in progress has no deadline.
      const stream = new SseReader(await fetch(`${gw.url}/rooms/kept/subscribe`));
      await stream.pump("the stream's prelude");
      const halfOpen = await openRaw(gw.port);
      const slowloris = await openRaw(gw.port);
      slowloris.socket.write("GET /healthz HTTP/1.1\r\nHost: gw\r\n");
      let n = 0;
      dribble = setInterval(() => {
        if (!slowloris.isClosed()) slowloris.socket.write(`X-Slow-${n++}: 1\r\n`);
      }, 100);
      const idle = await openRaw(gw.port);
      idle.socket.write("GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n");
      await until("the keep-alive connection's answer", () => idle.received().includes("\r\n\r\n"));
      await until("all three connections to be closed by the gateway", async () => {
        await Promise.race([
          Promise.all([halfOpen.closed, slowloris.closed, idle.closed]),
          new Promise((r) => setTimeout(r, 50)),
        ]);
        return halfOpen.isClosed() && slowloris.isClosed() && idle.isClosed();
      });
      assert.ok(
        !slowloris.received().startsWith("HTTP/1.1 200"),
        "the slowloris request was never served",
      );
      assert.ok(
        await metric(gw.url, 'gateway_connections_timed_out_total{phase="headers"}') >= 2,
      );
      assert.ok(
        await metric(gw.url, 'gateway_connections_timed_out_total{phase="keep_alive"}') >= 1,
      );
      // The stream outlived both deadlines and still delivers.
      await fetch(`${gw.url}/rooms/kept/broadcast`, { method: "POST", body: "still here" });
      assert.equal((await stream.take(1))[0].data, "still here");
      await stream.cancel();
    } finally {
      clearInterval(dribble);
      await gw.stop("SIGKILL");
    }
  });

  test(`${runtime} gateway: a room flood and a connection flood from one source; another source still runs a session`, async () => {
    const gw = await startGateway(runtime, [
      "--set",
      "limits.quota_exempt_sources=",
      "--set",
      "limits.max_connections_per_source=8",
      "--set",
      "server.headers_timeout_ms=60000",
    ]);
    const held: Awaited<ReturnType<typeof openRaw>>[] = [];
    try {
      const statuses = await postFrom(
        gw.url,
        ATTACKER,
        Array.from({ length: 130 }, (_, i) => `/rooms/flood-${i}/broadcast`),
      );
      assert.deepEqual(
        [statuses.filter((s) => s === 200).length, statuses.filter((s) => s === 429).length],
        [100, 30],
        "100 rooms per source, then 429 too_many_source_rooms",
      );
      await until(
        "the gateway to release the flood's connection",
        async () => (await metric(gw.url, "gateway_connections")) === 1,
      );
      for (let i = 0; i < 8; i++) held.push(await openRaw(gw.port, ATTACKER));
      await until(
        "the gateway to hold the attacker's 8 connections",
        async () => (await metric(gw.url, "gateway_connections")) >= 9,
      );
      const refused = await openRaw(gw.port, ATTACKER);
      await refused.closed;
      assert.match(refused.received(), /^HTTP\/1\.1 503 [^]*"too_many_connections"/);

      // The wallet (127.0.0.1) runs a session through the client library meanwhile.
      const wallet = createGatewayClient({ url: gw.url });
      const ctl = new AbortController();
      const events = wallet.subscribe("session-room", { signal: ctl.signal })
        [Symbol.asyncIterator]();
      const first = events.next();
      await wallet.broadcast("session-room", "round 1");
      assert.deepEqual((await first).value, { id: 0, data: "round 1" });
      assert.equal(await wallet.issueUniqueIdx("session-room"), 1);
      ctl.abort();
      await events.return?.();

      const health = await (await fetch(`${gw.url}/healthz`)).json();
      assert.equal(health.status, "degraded");
      const limits = health.saturated.map((s: { limit: string }) => s.limit);
      assert.ok(limits.includes("max_rooms_per_source"), JSON.stringify(limits));
      assert.ok(limits.includes("max_connections_per_source"), JSON.stringify(limits));
      assert.ok(
        await metric(
          gw.url,
          'gateway_connections_refused_total{limit="max_connections_per_source"}',
        ) >= 1,
      );
    } finally {
      for (const c of held) c.socket.destroy();
      await gw.stop("SIGKILL");
    }
  });

  test(`${runtime} gateway: a source that keeps hitting its quota is banned; others are not`, async () => {
    const gw = await startGateway(runtime, [
      "--set",
      "limits.quota_exempt_sources=",
      "--set",
      "limits.source_ban_after_refusals=20",
    ]);
    try {
      const statuses = await postFrom(
        gw.url,
        ATTACKER,
        Array.from({ length: 300 }, (_, i) => `/rooms/ban-${i}/broadcast`),
      );
      assert.equal(statuses.filter((s) => s === 200).length, 100);
      const refused = statuses.filter((s) => s === 429).length;
      assert.ok(refused >= 19 && refused <= 20, `${refused} refusals before the ban`);
      const after = statuses.slice(statuses.lastIndexOf(429) + 1);
      assert.ok(
        after.length > 0 && after.every((s) => s === 0),
        `after the ban: connections closed (0), got ${after.join(",")}`,
      );
      const again = await openRaw(gw.port, ATTACKER);
      await again.closed;
      assert.equal(again.received(), "", "a banned source's connection is closed at once");
      const wallet = await fetch(`${gw.url}/rooms/wallet/broadcast`, { method: "POST", body: "x" });
      assert.equal(wallet.status, 200, "another source is not banned");
      assert.equal(await metric(gw.url, "gateway_banned_sources"), 1);
      assert.ok(gw.logs.some((l) => l.msg === "source banned" && l.source === ATTACKER));
      const health = await (await fetch(`${gw.url}/healthz`)).json();
      assert.ok(health.saturated.some((s: { limit: string }) => s.limit === "source_ban"));
    } finally {
      await gw.stop("SIGKILL");
    }
  });

  test(`${runtime} gateway: subscribers that never read are dropped at the total budget; a reader keeps receiving`, async () => {
    const budget = 1024 * 1024;
    const gw = await startGateway(runtime, [
      "--set",
      `limits.max_total_queued_bytes=${budget}`,
      "--set",
      "limits.max_body_bytes=65536",
      "--set",
      "limits.subscriber_queue_bytes=4194304",
    ]);
    const stalled: Awaited<ReturnType<typeof openRaw>>[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await openRaw(gw.port, ATTACKER);
        c.socket.pause(); // never read: the kernel's buffers fill, then the gateway's queue
        c.socket.write("GET /rooms/big/subscribe HTTP/1.1\r\nHost: gw\r\n\r\n");
        stalled.push(c);
      }
      const reader = new SseReader(await fetch(`${gw.url}/rooms/big/subscribe`));
      await until(
        "the gateway to count 4 subscribers",
        async () => (await metric(gw.url, "gateway_subscribers")) === 4,
      );
      const body = "b".repeat(60 * 1024);
      let maxQueued = 0;
      let posted = 0;
      // Post until the budget has dropped the three non-readers (bounded: 150 MB).
      while (
        (await metric(gw.url, 'gateway_subscribers_dropped_total{reason="queue_total"}')) < 3
      ) {
        assert.ok(posted < 2500, "the non-readers were not dropped after 150 MB");
        const batch = await postFrom(
          gw.url,
          "127.0.0.1",
          Array.from({ length: 20 }, () => "/rooms/big/broadcast"),
          `${posted}:${body}`,
        );
        assert.ok(batch.every((s) => s === 200));
        const got = await reader.take(20);
        assert.equal(got.at(-1)!.id, String(posted + 19), "the reader keeps up");
        posted += 20;
        maxQueued = Math.max(maxQueued, await metric(gw.url, "gateway_queued_bytes"));
      }
      assert.ok(maxQueued <= budget + 64 * 1024, `queued ${maxQueued} for a budget of ${budget}`);
      assert.equal(await metric(gw.url, "gateway_subscribers"), 1, "only the reader is left");
      assert.equal(await metric(gw.url, 'gateway_subscribers_dropped_total{reason="slow"}'), 0);
      await fetch(`${gw.url}/rooms/big/broadcast`, { method: "POST", body: "after" });
      assert.equal((await reader.take(1))[0].data, "after");
      await reader.cancel();
    } finally {
      for (const c of stalled) c.socket.destroy();
      await gw.stop("SIGKILL");
    }
  });
}
