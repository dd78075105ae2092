/**
 * The Redis backend against a real, throw-away redis-server: the shared backend contract, two
 * backends sharing one Redis, idle expiry, and a Redis restart.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { backendContract } from "./_backend_contract.ts";
import type { BackendEvent, BackendMessage } from "./backend.ts";
import { GatewayError } from "./errors.ts";
import { createRedisBackend, type RedisBackend } from "./redis_backend.ts";
import { missing, startRedis, until } from "../testing/processes.ts";

const skip = missing("redis-server");
let prefixes = 0;
const prefix = () => `t${Date.now().toString(36)}${++prefixes}:`;

test("redis backend", { skip }, async (t) => {
  const redis = await startRedis({ persist: true });
  const open: RedisBackend[] = [];
  const make = async (
    limits: Parameters<typeof createRedisBackend>[0]["limits"] = {},
    keyPrefix = prefix(),
  ) => {
    const b = createRedisBackend({ url: redis.url, keyPrefix, limits });
    open.push(b);
    await b.ready();
    return b;
  };
  try {
    for (const c of backendContract("redis", (l) => make(l))) await t.test(c.title, c.run);

    await t.test("two backends on one Redis share rooms, ids, indices and notifications", async () => {
      const p = prefix();
      const a = await make({}, p);
      const b = await make({}, p);
      const seen: BackendMessage[] = [];
      await b.listen("shared", (m) => seen.push(m));
      assert.equal(await a.append("shared", "from a", 6), 0);
      assert.equal(await b.append("shared", "from b", 6), 1);
      await until("both notifications on b", () => seen.length === 2);
      assert.deepEqual(seen.map((m) => [m.id, m.body]), [[0, "from a"], [1, "from b"]]);
      const idx = await Promise.all([a, b, a, b].map((x) => x.issueUniqueIdx("shared")));
      assert.deepEqual([...idx].sort(), [1, 2, 3, 4]);
      assert.deepEqual((await a.read("shared", 0, 10)).messages.map((m) => m.body), [
        "from a",
        "from b",
      ]);
    });

    await t.test("the room limit is global across backends", async () => {
      const p = prefix();
      const a = await make({ maxRooms: 2 }, p);
      const b = await make({ maxRooms: 2 }, p);
      await a.open("one");
      await b.open("two");
      await assert.rejects(
        a.append("three", "x", 1),
        (e: unknown) => e instanceof GatewayError && e.code === "too_many_rooms",
      );
    });

    await t.test("idle rooms expire in Redis and come back with a new epoch", async () => {
      const b = await make({ roomIdleTtlMs: 200 });
      await b.append("idle", "x", 1);
      const before = await b.read("idle", 0, 1);
      await until("the idle room to expire", async () => (await b.read("idle", 0, 1)).epoch === "");
      assert.equal(await b.append("idle", "y", 1), 0);
      assert.notEqual((await b.read("idle", 0, 1)).epoch, before.epoch);
    });

    await t.test("a Redis restart: down, 503s, then up with the data kept", async () => {
      const b = await make();
      const events: BackendEvent[] = [];
      b.onEvent((e) => events.push(e));
      const seen: BackendMessage[] = [];
      await b.listen("restart", (m) => seen.push(m));
      await b.append("restart", "before", 6);
      await until("the notification before the restart", () => seen.length === 1);
      await redis.stop();
      await until("the backend to report down", () => events.includes("down"));
      assert.equal((await b.health()).ok, false);
      await assert.rejects(
        b.append("restart", "during", 6),
        (e: unknown) => e instanceof GatewayError && e.code === "backend_unavailable",
      );
      await redis.start();
      await until("the backend to report up", () => events.at(-1) === "up");
      assert.equal((await b.health()).ok, true);
      assert.equal(await b.append("restart", "after", 5), 1, "ids continue: data was kept");
      await until("notifications after the restart", () => seen.length === 2);
      assert.equal(seen[1].body, "after");
      assert.equal(b.stats().reconnects, 1);
    });
  } finally {
    await Promise.all(open.map((b) => b.close()));
    await redis.dispose();
  }
});

test("the redis backend refuses a URL that is not redis://", () => {
  assert.throws(() => createRedisBackend({ url: "http://x" }), TypeError);
  assert.throws(() => createRedisBackend({ url: "not a url" }), TypeError);
});
