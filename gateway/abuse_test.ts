/**
 * Anonymous abuse through the handler in process (threat model: "anonymous gateway flood"): a
 * room flood from one source, a flood of anonymous rooms from many sources, rooms nobody uses,
 * subscribers that never read, request bodies that never finish, and `/healthz` while a limit is
 * saturated. Each case fails when its mechanism is removed (the per-source quota, the anonymous
 * cap, the empty-room TTL, the total queue budget, the body deadline, the saturation report).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { client, errorOf } from "./_test_util.ts";
import { SseReader } from "../testing/sse_reader.ts";
import { createGatewayHandler, type GatewayOptions, type RequestInfo } from "./handler.ts";
import { createMemoryBackend } from "./memory_backend.ts";
import { createRoomTokenAuthority } from "./tokens.ts";
import { toHex } from "../core/bytes.ts";
import { createLogger } from "../platform/logger.ts";
import type { ConnectionStats } from "../platform/connection_guard.ts";
import {
  createGatewayClient,
  createRoomTokenIssuer,
  type FetchLike,
} from "../transport/gateway_client.ts";
import { generateIdentity } from "../transport/identity.ts";
import { openSecureSession } from "../transport/secure_session.ts";

const TOKEN_SECRET = "token-secret-for-tests-0123456789abcdef";
const ISSUER_SECRET = "issuer-secret-for-tests-0123456789abcdef";
const ATTACKER = "203.0.113.66";
const WALLET = "198.51.100.7";
const SERVICE = "198.51.100.200";

/** A handler whose requests come from a given peer address (as a server would pass it). */
function gateway(options: GatewayOptions = {}) {
  const backend = options.backend ??
    createMemoryBackend({ limits: options.limits, now: options.now });
  const h = createGatewayHandler({ timers: false, ...options, backend });
  const from = (address: string) => {
    const info: RequestInfo = { remoteAddr: { hostname: address } };
    return client((req) => h(req, info));
  };
  const fetchFrom = (address: string) => (input: string, init: RequestInit) =>
    h(new Request(input, init), { remoteAddr: { hostname: address } });
  const health = async () => await (await h(new Request("http://gw.test/healthz"))).json();
  return {
    h,
    backend,
    from,
    fetchFrom,
    health,
    close: async () => (await h.close(), await backend.close()),
  };
}

/** Two parties open an authenticated, encrypted session in `room` and exchange a message. */
async function session(
  fetches: readonly FetchLike[],
  room: string,
  tokens: [string | undefined, string | undefined] = [undefined, undefined],
): Promise<void> {
  const ids = [generateIdentity(), generateIdentity()];
  const context = new TextEncoder().encode(`abuse test ${room}`);
  const sessions = await Promise.all([0, 1].map((i) =>
    openSecureSession({
      gateway: createGatewayClient({
        url: "http://gw.test",
        fetch: fetches[i],
        token: tokens[i],
        retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
      }),
      room,
      i,
      n: 2,
      identity: ids[i],
      peers: ids.map((id) => id.publicKey),
      context,
      handshakeTimeoutMs: 10_000,
    })
  ));
  try {
    const sid = toHex(sessions[0].sid);
    await sessions[0].send({
      sid,
      protocol: "sign",
      round: 1,
      from: 0,
      to: 1,
      payload: { hello: "from the wallet" },
    });
    const got = await sessions[1].receive(AbortSignal.timeout(10_000));
    assert.deepEqual(got.payload, { hello: "from the wallet" });
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
  }
}

const hex = (n: number) => n.toString(16).padStart(32, "0");

test("an anonymous flood of 10,100 rooms from one source stops at its quota; a session from another source still runs", async () => {
  // The gateway's clock stands still: on a slow machine no room may expire during the flood.
  const g = gateway({ now: () => 1_000_000 });
  const attacker = g.from(ATTACKER);
  const status = new Map<number, number>();
  for (let i = 0; i < 10_100; i++) {
    const res = i % 3 === 0
      ? await attacker.post(`flood-${i}`, "x")
      : i % 3 === 1
      ? await attacker.idx(`flood-${i}`)
      : await attacker.subscribe(`flood-${i}`);
    status.set(res.status, (status.get(res.status) ?? 0) + 1);
    if (res.status === 200 && i % 3 === 2) await res.body!.cancel();
    else await res.body?.cancel();
  }
  assert.equal(status.get(200), 100, "the default quota: 100 rooms per source");
  assert.equal(status.get(429), 10_000, "every other room: 429 too_many_source_rooms");
  assert.ok(g.backend.stats().rooms <= 100);
  assert.deepEqual(await errorOf(await attacker.post("one-more", "x")), {
    status: 429,
    error: "too_many_source_rooms",
  });
  // The wallet and the service, each from its own address, still open and use a fresh room.
  await session([g.fetchFrom(WALLET), g.fetchFrom(SERVICE)], hex(1));
  const health = await g.health();
  assert.equal(health.status, "degraded");
  assert.deepEqual(health.saturated.map((s: { limit: string }) => s.limit), [
    "max_rooms_per_source",
  ]);
  assert.equal(health.saturated[0].refused, 10_001);
  await g.close();
});

test("with room tokens, anonymous rooms from many sources are capped and token holders keep the rest", async () => {
  let clock = 1_000_000;
  const now = () => clock;
  const lines: string[] = [];
  const g = gateway({
    now,
    logger: createLogger({ level: "info", sink: (l) => lines.push(l) }),
    limits: { maxRooms: 300, maxAnonymousRooms: 100, maxRoomsPerSource: 5 },
    access: {
      enabled: true,
      tokenSecret: TOKEN_SECRET,
      issuerSecret: ISSUER_SECRET,
      allowAnonymous: true,
    },
  });
  // 100 sources x 3 rooms each: under their own quota, but together over the anonymous cap.
  let refused = 0;
  for (let s = 0; s < 100; s++) {
    const c = g.from(`192.0.2.${s + 1}`);
    for (let r = 0; r < 3; r++) {
      const res = await c.post(`anon-${s}-${r}`, "x");
      if (res.status === 503) {
        assert.equal((await res.json()).error, "too_many_anonymous_rooms");
        refused++;
      } else assert.equal(res.status, 200);
    }
  }
  assert.equal(refused, 200);
  assert.equal(g.backend.stats().anonymous_rooms, 100);
  assert.deepEqual(
    lines.map((l) => [JSON.parse(l).msg, JSON.parse(l).limit]),
    [["limit saturated", "max_anonymous_rooms"]],
    "one log line for the saturation, none per refused request",
  );
  // The service holds the issuer secret: tokens for itself and for the wallet.
  const issuer = createRoomTokenIssuer({
    url: "http://gw.test",
    secret: ISSUER_SECRET,
    fetch: g.fetchFrom(SERVICE),
  });
  const room = hex(2);
  const walletToken = (await issuer.issue(room, "client")).token;
  await session(
    [g.fetchFrom(ATTACKER), g.fetchFrom(SERVICE)],
    room,
    [walletToken, (await issuer.issue(room, "service")).token],
  );
  // A wrong token is refused even though anonymous requests are allowed.
  const auth = await createRoomTokenAuthority({ secret: TOKEN_SECRET, now });
  const other = (await auth.issue("elsewhere", "client", 60)).token;
  assert.deepEqual(
    await errorOf(await g.from(WALLET).post(room, "x", { authorization: `Bearer ${other}` })),
    { status: 403, error: "forbidden" },
  );
  const health = await g.health();
  assert.equal(health.status, "degraded");
  assert.deepEqual(health.saturated.map((s: { limit: string }) => s.limit), [
    "max_anonymous_rooms",
  ]);
  clock += 61_000; // past limits.degraded_window_ms
  assert.equal((await g.health()).status, "ok");
  await g.close();
});

test("rooms nobody uses expire after the empty-room TTL and give the source its quota back", async () => {
  let clock = 0;
  const g = gateway({ now: () => clock, limits: { maxRoomsPerSource: 3, emptyRoomTtlMs: 10_000 } });
  const c = g.from(ATTACKER);
  const sub = await c.subscribe("e1");
  await sub.body!.cancel();
  assert.equal((await c.idx("kept")).status, 200);
  assert.equal((await c.post("e2", "x")).status, 200);
  assert.equal((await c.subscribe("e3")).status, 429, "the quota is full");
  clock = 9_999;
  g.h.tick();
  assert.equal(g.backend.stats().rooms, 3);
  clock = 10_000;
  g.h.tick();
  assert.equal(g.backend.stats().rooms, 2, "the room that never had a message is gone");
  const again = await c.subscribe("e3");
  assert.equal(again.status, 200);
  await again.body!.cancel();
  assert.equal(await (await c.idx("kept")).json().then((j) => j.unique_idx), 2);
  await g.close();
});

test("subscribers that never read are dropped at the total queue budget; a reader keeps receiving", async () => {
  const budget = 256 * 1024;
  const g = gateway({
    limits: {
      maxTotalQueuedBytes: budget,
      subscriberQueueBytes: 2 * 1024 * 1024,
      maxBodyBytes: 64 * 1024,
      maxSubscribersPerRoom: 64,
    },
  });
  const c = g.from(ATTACKER);
  const stalled: Response[] = [];
  for (let i = 0; i < 40; i++) stalled.push(await c.subscribe(`stall-${i % 20}`)); // never read
  const reader = new SseReader(await g.from(WALLET).subscribe("stall-0"));
  const body = "m".repeat(60 * 1024);
  let maxQueued = 0;
  for (let i = 0; i < 100; i++) {
    assert.equal((await c.post(`stall-${i % 20}`, `${i}${body}`)).status, 200);
    maxQueued = Math.max(maxQueued, g.h.stats().queuedBytes);
    if (i % 20 === 0) assert.equal((await reader.take(1))[0].id, String(i / 20));
  }
  assert.ok(
    maxQueued <= budget + 64 * 1024,
    `queued ${maxQueued} bytes for a budget of ${budget} (+ one frame)`,
  );
  const dropped = g.h.stats().metrics.dropped.get(["queue_total"]);
  assert.ok(dropped >= 30, `non-readers dropped by the budget: ${dropped}`);
  assert.equal(g.h.stats().metrics.dropped.get(["slow"]), 0);
  assert.equal(g.h.stats().subscribers, 40 - dropped + 1, "the reader is still subscribed");
  const health = await g.health();
  assert.ok(
    health.saturated.some((s: { limit: string }) => s.limit === "max_total_queued_bytes"),
    JSON.stringify(health.saturated),
  );
  await reader.cancel();
  for (const r of stalled) await r.body!.cancel().catch(() => {});
  await g.close();
});

test("a request body that never finishes is cut at the request deadline (408)", async () => {
  let clock = 0;
  const g = gateway({ now: () => clock, requestTimeoutMs: 5000 });
  const c = g.from(ATTACKER);
  let feed!: ReadableStreamDefaultController<Uint8Array>;
  const slow = new ReadableStream<Uint8Array>({ start: (ctl) => void (feed = ctl) });
  const pending = c.post("r", slow);
  feed.enqueue(new Uint8Array(10).fill(65));
  for (let i = 0; i < 100 && g.h.stats().inflightBodyBytes === 0; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  clock = 4999;
  g.h.tick();
  clock = 5000;
  g.h.tick();
  assert.deepEqual(await errorOf(await pending), { status: 408, error: "request_timeout" });
  assert.equal(g.h.stats().inflightBodyBytes, 0);
  assert.equal((await c.post("r", "fine")).status, 200);
  await g.close();
});

test("healthz names the saturated connection limits the server reports, then recovers", async () => {
  let clock = 100_000;
  let conn: ConnectionStats = {
    open: 3,
    max: 10,
    sources: 1,
    banned: 0,
    refused: { max_connections: 0, max_connections_per_source: 0, source_ban: 0 },
    lastRefusedAt: {
      max_connections: -Infinity,
      max_connections_per_source: -Infinity,
      source_ban: -Infinity,
    },
    timedOut: { headers: 0, keep_alive: 0 },
  };
  const g = gateway({ now: () => clock, connections: () => conn });
  assert.equal((await g.health()).status, "ok");
  conn = {
    ...conn,
    refused: { max_connections: 0, max_connections_per_source: 7, source_ban: 0 },
    lastRefusedAt: {
      max_connections: -Infinity,
      max_connections_per_source: clock,
      source_ban: -Infinity,
    },
    timedOut: { headers: 2, keep_alive: 1 },
  };
  const h = await g.health();
  assert.equal(h.status, "degraded");
  assert.deepEqual(h.saturated, [
    { limit: "max_connections_per_source", refused: 7, last_refusal_ms_ago: 0 },
  ]);
  assert.equal(h.connections, 3);
  const metrics = await (await g.h(new Request("http://gw.test/metrics"))).text();
  assert.match(
    metrics,
    /^gateway_connections_refused_total\{limit="max_connections_per_source"\} 7$/m,
  );
  assert.match(metrics, /^gateway_connections_timed_out_total\{phase="headers"\} 2$/m);
  assert.match(metrics, /^gateway_limit_refusals_total\{limit="max_connections_per_source"\} 7$/m);
  assert.match(metrics, /^gateway_degraded 1$/m);
  conn = { ...conn, open: 10 };
  clock += 60_000;
  assert.deepEqual((await g.health()).saturated.map((s: { limit: string }) => s.limit), [
    "max_connections",
  ]);
  conn = { ...conn, open: 9 };
  assert.equal((await g.health()).status, "ok");
  await g.close();
});

test("per-source quotas follow X-Forwarded-For only from trusted proxies, and skip exempt sources", async () => {
  const g = gateway({
    trustedProxies: ["10.0.0.0/8"],
    limits: { maxRoomsPerSource: 1, quotaExemptSources: ["192.0.2.0/24"] },
  });
  const viaProxy = (client: string) =>
    g.from("10.1.1.1").post(crypto.randomUUID(), "x", {
      "x-forwarded-for": client,
    });
  assert.equal((await viaProxy("198.51.100.1")).status, 200);
  assert.equal((await viaProxy("198.51.100.1")).status, 429);
  assert.equal((await viaProxy("198.51.100.2")).status, 200, "another client behind the proxy");
  const direct = g.from("198.51.100.3");
  assert.equal((await direct.post("d1", "x", { "x-forwarded-for": "1.2.3.4" })).status, 200);
  assert.equal(
    (await direct.post("d2", "x", { "x-forwarded-for": "5.6.7.8" })).status,
    429,
    "an untrusted peer's X-Forwarded-For is ignored",
  );
  for (let i = 0; i < 5; i++) {
    assert.equal((await g.from("192.0.2.9").post(`ex-${i}`, "x")).status, 200, "exempt");
  }
  assert.equal((await g.from("2001:db8:1:2::1").post("v6a", "x")).status, 200);
  assert.equal(
    (await g.from("2001:db8:1:2::ffff").post("v6b", "x")).status,
    429,
    "one IPv6 /64 is one source",
  );
  await g.close();
});

test("subscribers per source are limited (429); other sources are not", async () => {
  const g = gateway({ limits: { maxSubscribersPerSource: 2 } });
  const c = g.from(ATTACKER);
  const a = await c.subscribe("s1");
  const b = await c.subscribe("s2");
  assert.deepEqual(await errorOf(await c.subscribe("s3")), {
    status: 429,
    error: "too_many_source_subscribers",
  });
  const other = await g.from(WALLET).subscribe("s3");
  assert.equal(other.status, 200);
  await a.body!.cancel();
  const again = await c.subscribe("s4");
  assert.equal(again.status, 200, "a freed slot can be reused");
  await Promise.all([b, other, again].map((r) => r.body!.cancel()));
  await g.close();
});

test("a source that keeps hitting its quotas is handed to the server to ban; one behind a proxy is not", async () => {
  let clock = 0;
  const banned: string[] = [];
  const g = gateway({
    now: () => clock,
    trustedProxies: ["10.0.0.0/8"],
    limits: { maxRoomsPerSource: 2, sourceBanAfterRefusals: 5 },
    banSource: (peer) => banned.push(peer),
  });
  const c = g.from(ATTACKER);
  for (let i = 0; i < 6; i++) await c.post(`b${i}`, "x"); // 2 rooms, then 4 refusals
  assert.deepEqual(banned, []);
  clock = 10_000; // a new window: the count starts again
  for (let i = 0; i < 4; i++) await c.post(`c${i}`, "x");
  assert.deepEqual(banned, []);
  await c.post("c4", "x");
  assert.deepEqual(banned, [ATTACKER], "5 refusals within 10 s");
  const proxied = g.from("10.0.0.1");
  for (let i = 0; i < 20; i++) {
    await proxied.post(`p${i}`, "x", { "x-forwarded-for": "198.51.100.50" });
  }
  assert.deepEqual(banned, [ATTACKER], "the proxy itself is never banned");
  await g.close();
});

test("one source cannot fill everyone's history; anonymous rooms cannot fill what token holders need", async () => {
  const g = gateway({
    now: () => 1_000_000,
    limits: {
      maxBodyBytes: 64 * 1024,
      maxHistoryBytes: 512 * 1024,
      maxHistoryBytesPerSource: 1024 * 1024,
      maxAnonymousHistoryBytes: 2 * 1024 * 1024,
      maxTotalHistoryBytes: 4 * 1024 * 1024,
    },
    access: {
      enabled: true,
      tokenSecret: TOKEN_SECRET,
      issuerSecret: ISSUER_SECRET,
      allowAnonymous: true,
    },
  });
  const body = "h".repeat(60 * 1024);
  const fill = async (address: string) => {
    const c = g.from(address);
    for (let i = 0; i < 100; i++) {
      const res = await c.post(`h${address.replaceAll(".", "_")}-${i % 4}`, body);
      if (res.status !== 200) return await errorOf(res);
    }
    return null;
  };
  assert.deepEqual(await fill(ATTACKER), { status: 429, error: "too_many_source_bytes" });
  assert.ok(g.backend.stats().history_bytes <= 1024 * 1024);
  assert.deepEqual(await fill("192.0.2.1"), { status: 429, error: "too_many_source_bytes" });
  assert.deepEqual(await fill("192.0.2.2"), { status: 503, error: "storage_full" });
  assert.ok(g.backend.stats().history_bytes <= 2 * 1024 * 1024, "the anonymous share");
  const issuer = createRoomTokenIssuer({
    url: "http://gw.test",
    secret: ISSUER_SECRET,
    fetch: g.fetchFrom(SERVICE),
  });
  const token = (await issuer.issue("with-token", "service")).token;
  const service = g.from(SERVICE);
  for (let i = 0; i < 16; i++) {
    const res = await service.post("with-token", body, { authorization: `Bearer ${token}` });
    assert.equal(res.status, 200, "a token holder's room still gets its history");
  }
  const health = await g.health();
  assert.deepEqual(health.saturated.map((s: { limit: string }) => s.limit), [
    "max_anonymous_history_bytes",
    "max_history_bytes_per_source",
  ]);
  await g.close();
});
