/**
 * The API contract through a real server, under Deno (`Deno.serve`) and under Node (the
 * `node:http` adapter), driven by independent clients: `curl -N` and eventsource-parser over fetch.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SseReader } from "../../testing/sse_reader.ts";
import { curl, curlStream, missing, startGateway } from "../../testing/processes.ts";

const noCurl = missing("curl");

for (const runtime of ["deno", "node"] as const) {
  test(`${runtime} server: the seed API end to end with curl and eventsource-parser`, {
    skip: noCurl,
  }, async () => {
    const gw = await startGateway(runtime, ["--log-level", "debug"]);
    const url = gw.url;
    try {
      const body1 = '{"round":1,"msg":"first"}';
      const body2 = "line one\nline two\n";
      assert.equal(
        (await curl(["-XPOST", "--data-binary", body1, `${url}/rooms/s1/broadcast`])).status,
        200,
      );
      const post2 = await curl(["-XPOST", "--data-binary", body2, `${url}/rooms/s1/broadcast`]);
      assert.deepEqual(post2, { status: 200, body: "" });

      // curl -N: history, then a live message.
      const stream = await curlStream(`${url}/rooms/s1/subscribe`);
      await stream.waitEvents(2);
      assert.deepEqual(stream.events.map((e) => [e.event, e.id, e.data]), [
        ["new-message", "0", body1],
        ["new-message", "1", body2],
      ]);
      await curl(["-XPOST", "--data-binary", "live ✓", `${url}/rooms/s1/broadcast`]);
      await stream.waitEvents(3);
      assert.deepEqual([stream.events[2].id, stream.events[2].data], ["2", "live ✓"]);

      // eventsource-parser over fetch, resuming with Last-Event-ID.
      const resumed = new SseReader(
        await fetch(`${url}/rooms/s1/subscribe`, { headers: { "last-event-id": "0" } }),
      );
      assert.deepEqual((await resumed.take(2)).map((e) => e.id), ["1", "2"]);
      const bad = await curl(["-H", "Last-Event-ID: nope", `${url}/rooms/s1/subscribe`]);
      assert.equal(bad.status, 400);
      assert.equal(JSON.parse(bad.body).error, "invalid_last_event_id");

      const idx1 = await curl(["-XPOST", `${url}/rooms/s1/issue_unique_idx`]);
      const idx2 = await curl(["-XPOST", `${url}/rooms/s1/issue_unique_idx`]);
      assert.deepEqual([JSON.parse(idx1.body), JSON.parse(idx2.body)], [
        { unique_idx: 1 },
        { unique_idx: 2 },
      ]);
      const big = await curl(
        ["-XPOST", "--data-binary", "@-", `${url}/rooms/s1/broadcast`],
        "x".repeat(1024 * 1024 + 1),
      );
      assert.equal(big.status, 413);
      assert.equal((await curl([`${url}/rooms/bad%20room/subscribe`])).status, 400);

      const health = await curl([`${url}/healthz`]);
      assert.equal(health.status, 200);
      assert.equal(JSON.parse(health.body).subscribers, 2);
      const metrics = await curl([`${url}/metrics`]);
      assert.match(metrics.body, /^gateway_messages_posted_total 3$/m);
      assert.match(metrics.body, /^process_resident_memory_bytes \d+$/m);

      // Graceful shutdown: both streams end cleanly, the process logs "stopped" and exits.
      // (The exit code is not asserted: Deno's node:child_process reports the signal it sent.)
      await gw.stop("SIGTERM");
      assert.equal(await stream.exited, 0, "curl saw a clean end of the chunked stream");
      assert.equal((await resumed.drain()).length, 0);
      assert.equal(resumed.error, null);
      assert.ok(gw.logs.some((l) => l.msg === "stopped"));
      for (const l of gw.logs) {
        const text = JSON.stringify(l);
        assert.ok(
          !text.includes("line one") && !text.includes("first"),
          `log leaks a body: ${text}`,
        );
      }
      await stream.stop();
    } finally {
      await gw.stop("SIGKILL");
    }
  });
}

test("main.ts: environment and flags override the file; a bad setting stops the start clearly", async () => {
  const gw = await startGateway("deno", ["--set", "sse.retry_ms=1234"], {
    WALLET_MPC_GATEWAY__LIMITS__MAX_BODY_BYTES: "10",
    WALLET_MPC_GATEWAY_CORS_ORIGINS: "http://a.test, http://b.test",
  });
  try {
    const big = await fetch(`${gw.url}/rooms/c/broadcast`, {
      method: "POST",
      body: "x".repeat(11),
    });
    assert.equal(big.status, 413);
    await big.body?.cancel();
    const ok = await fetch(`${gw.url}/rooms/c/broadcast`, { method: "POST", body: "x".repeat(10) });
    assert.equal(ok.status, 200);
    const res = await fetch(`${gw.url}/rooms/c/subscribe`, {
      headers: { origin: "http://b.test" },
    });
    assert.equal(res.headers.get("access-control-allow-origin"), "http://b.test");
    const s = new SseReader(res);
    await s.take(1);
    assert.equal(s.retry, 1234);
    await s.cancel();
  } finally {
    await gw.stop("SIGKILL");
  }
  await assert.rejects(
    startGateway("deno", ["--set", "limits.max_rooms=-5"]),
    (e: unknown) =>
      e instanceof Error && /startup failed/.test(e.message) &&
      /limits\.max_rooms/.test(e.message),
  );
  await assert.rejects(
    startGateway("node", ["--no-such-flag"]),
    (e: unknown) => e instanceof Error && /unknown option --no-such-flag/.test(e.message),
  );
});
