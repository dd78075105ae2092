/**
 * Access control through the handler: room tokens (bearer), the issuing endpoint, and what an
 * unauthenticated caller can and cannot do.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { client, errorOf } from "./_test_util.ts";
import { SseReader } from "../testing/sse_reader.ts";
import { createGatewayHandler } from "./handler.ts";
import { createLogger } from "../platform/logger.ts";
import { createMemoryBackend } from "./memory_backend.ts";
import { createRoomTokenAuthority } from "./tokens.ts";

const TOKEN_SECRET = "token-secret-for-tests-0123456789abcdef";
const ISSUER_SECRET = "issuer-secret-for-tests-0123456789abcdef";

async function setup(extra: { allowQueryToken?: boolean; issuer?: boolean } = {}) {
  const lines: string[] = [];
  const backend = createMemoryBackend();
  const h = createGatewayHandler({
    timers: false,
    backend,
    logger: createLogger({ level: "debug", sink: (l) => lines.push(l) }),
    access: {
      enabled: true,
      tokenSecret: TOKEN_SECRET,
      issuerSecret: extra.issuer === false ? "" : ISSUER_SECRET,
      allowQueryToken: extra.allowQueryToken ?? false,
      tokenTtlS: 3600,
    },
  });
  const auth = await createRoomTokenAuthority({ secret: TOKEN_SECRET });
  const token = async (room: string, party = "1") => (await auth.issue(room, party, 600)).token;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const issue = (room: string, body: unknown, secret: string | null = ISSUER_SECRET) =>
    h(
      new Request(`http://gw.test/rooms/${room}/tokens`, {
        method: "POST",
        body: JSON.stringify(body),
        headers: secret === null ? {} : { authorization: `Bearer ${secret}` },
      }),
    );
  const close = async () => (await h.close(), await backend.close());
  return { h, c: client(h), backend, lines, token, bearer, issue, close };
}

test("without a token, subscribe, broadcast and issue_unique_idx are 401 and create nothing", async () => {
  const g = await setup();
  for (const res of [await g.c.subscribe("s"), await g.c.post("s", "x"), await g.c.idx("s")]) {
    assert.deepEqual(await errorOf(res), { status: 401, error: "unauthorized" });
    assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer/);
  }
  assert.equal(g.backend.stats().rooms, 0);
  await g.close();
});

test("a token for another room, a forged or malformed one, is 403 on every route", async () => {
  const g = await setup();
  const other = await g.token("other-room");
  const good = await g.token("s");
  const forged = good.slice(0, -2) + (good.endsWith("AA") ? "BA" : "AA");
  for (const t of [other, forged, "garbage", "v1.1.1.x", "Basic abc"]) {
    const headers = g.bearer(t);
    for (const res of [await g.c.subscribe("s", headers), await g.c.post("s", "x", headers)]) {
      assert.deepEqual(await errorOf(res), { status: 403, error: "forbidden" }, t);
    }
    assert.equal((await g.c.idx("s", headers)).status, 403);
  }
  const notBearer = await g.c.post("s", "x", { authorization: `Basic ${good}` });
  assert.equal(notBearer.status, 403);
  assert.equal(g.backend.stats().rooms, 0);
  await g.close();
});

test("with a valid room token every route works for that room", async () => {
  const g = await setup();
  const headers = g.bearer(await g.token("s", "2"));
  const s = new SseReader(await g.c.subscribe("s", headers));
  assert.equal((await g.c.post("s", "hello", headers)).status, 200);
  assert.deepEqual(await (await g.c.idx("s", headers)).json(), { unique_idx: 1 });
  assert.equal((await s.take(1))[0].data, "hello");
  await s.cancel();
  await g.close();
});

test("the access_token query parameter is refused unless allowed, then only for subscribe", async () => {
  const off = await setup();
  const t = await off.token("q");
  const res = await off.c.subscribe("q", {}, `?access_token=${t}`);
  assert.deepEqual(await errorOf(res), { status: 401, error: "unauthorized" });
  await off.close();

  const on = await setup({ allowQueryToken: true });
  const t2 = await on.token("q");
  const ok = await on.c.subscribe("q", {}, `?access_token=${t2}`);
  assert.equal(ok.status, 200);
  await ok.body!.cancel();
  const wrong = await on.c.subscribe("q", {}, `?access_token=${await on.token("z")}`);
  assert.equal(wrong.status, 403);
  const post = await on.h(
    new Request(`http://gw.test/rooms/q/broadcast?access_token=${t2}`, {
      method: "POST",
      body: "x",
    }),
  );
  assert.equal(post.status, 401, "posts never take a query token");
  await on.close();
});

test("the issuing endpoint needs the issuer secret; its tokens work for their room only", async () => {
  const g = await setup();
  assert.equal((await errorOf(await g.issue("s", { party: "1" }, null))).status, 401);
  assert.equal((await errorOf(await g.issue("s", { party: "1" }, "wrong-secret"))).status, 403);
  assert.equal((await errorOf(await g.issue("s", { party: "1" }, TOKEN_SECRET))).status, 403);
  assert.equal((await errorOf(await g.issue("s", { party: "a.b" }))).error, "invalid_request");
  assert.equal((await errorOf(await g.issue("s", { party: "1", ttl_s: 1e9 }))).status, 400);
  assert.equal((await errorOf(await g.issue("s", "not an object"))).status, 400);
  const res = await g.issue("s", { party: "p1", ttl_s: 60 });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("cache-control"), "no-store");
  const body = await res.json();
  assert.equal(body.room, "s");
  assert.equal(body.party, "p1");
  assert.equal((await g.c.post("s", "x", g.bearer(body.token))).status, 200);
  assert.equal((await g.c.post("t", "x", g.bearer(body.token))).status, 403);
  await g.close();
});

test("the issuing endpoint does not exist without an issuer secret or without access control", async () => {
  const g = await setup({ issuer: false });
  assert.equal((await g.issue("s", { party: "1" })).status, 404);
  await g.close();
  const open = createGatewayHandler({ timers: false });
  const res = await open(new Request("http://gw.test/rooms/s/tokens", { method: "POST" }));
  assert.equal(res.status, 404);
  await open.close();
});

test("logs never contain tokens, secrets or bodies", async () => {
  const g = await setup();
  const t = await g.token("s");
  await g.c.post("s", "BODY-MARKER", g.bearer(t));
  await g.c.post("s", "BODY-MARKER", g.bearer(t + "x"));
  await g.c.post("s", "BODY-MARKER");
  await g.issue("s", { party: "1" });
  await g.issue("s", { party: "1" }, "WRONG-ISSUER-MARKER");
  await g.close();
  assert.ok(g.lines.length >= 5);
  const all = g.lines.join("\n");
  for (const secret of [t, t.split(".")[3], TOKEN_SECRET, ISSUER_SECRET, "BODY-MARKER", "MARKER"]) {
    assert.ok(!all.includes(secret), `a log line contains ${secret.slice(0, 12)}...`);
  }
});

test("enabling access control without a 32-byte secret is refused at construction", () => {
  assert.throws(
    () => createGatewayHandler({ timers: false, access: { enabled: true, tokenSecret: "short" } }),
    RangeError,
  );
});
