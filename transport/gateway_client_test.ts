import { test } from "node:test";
import assert from "node:assert/strict";
import { TransportError } from "../core/errors.ts";
import { createGatewayHandler } from "../gateway/handler.ts";
import {
  createGatewayClient,
  createRoomTokenIssuer,
  type GatewayClientOptions,
  type GatewayEvent,
} from "./gateway_client.ts";

const FAST = { attempts: 3, baseDelayMs: 1, maxDelayMs: 4 };
const code = (c: string) => (e: unknown) => e instanceof TransportError && e.code === c;

/** A fetch that answers from a script, one entry per request, and records the requests. */
function scripted(steps: ((req: Request) => Response | Promise<Response>)[]) {
  const requests: Request[] = [];
  const fetch = (input: string, init: RequestInit) => {
    const req = new Request(input, init);
    requests.push(req);
    const step = steps[Math.min(requests.length - 1, steps.length - 1)];
    return Promise.resolve().then(() => step(req));
  };
  return { fetch, requests };
}

function client(fetch: GatewayClientOptions["fetch"], extra: Partial<GatewayClientOptions> = {}) {
  return createGatewayClient({ url: "http://gw/", fetch, retry: FAST, ...extra });
}

const SSE = { "content-type": "text/event-stream" };
const sse = (text: string) => new Response(text, { status: 200, headers: SSE });
const ev = (id: number | string, data: string) =>
  `event: new-message\nid: ${id}\ndata: ${data}\n\n`;
const fail = (status: number, error = "x") =>
  new Response(JSON.stringify({ error, message: "m" }), { status });
const refused = (): Response => {
  throw new TypeError("fetch failed");
};
/** A stream that stays open without data until cancelled. */
const silent = () => new Response(new ReadableStream({ start() {} }), { headers: SSE });

async function take(it: AsyncIterable<GatewayEvent>, n: number): Promise<GatewayEvent[]> {
  const out: GatewayEvent[] = [];
  for await (const e of it) {
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

test("subscribe, broadcast and issueUniqueIdx work against the real handler", async () => {
  const h = createGatewayHandler({ timers: false });
  const gw = client((input, init) => h(new Request(input, init)));
  await gw.broadcast("room1", "first");
  await gw.broadcast("room1", "line a\nline b");
  const ctl = new AbortController();
  const it = gw.subscribe("room1", { signal: ctl.signal })[Symbol.asyncIterator]();
  assert.deepEqual((await it.next()).value, { id: 0, data: "first" });
  assert.deepEqual((await it.next()).value, { id: 1, data: "line a\nline b" });
  const next = it.next();
  await gw.broadcast("room1", "live");
  assert.deepEqual((await next).value, { id: 2, data: "live" });
  await it.return!(undefined);
  assert.equal(await gw.issueUniqueIdx("room1"), 1);
  assert.equal(await gw.issueUniqueIdx("room1"), 2);
  assert.equal(h.stats().subscribers, 0, "the stream was released");
  await h.close();
});

test("subscribe resumes with Last-Event-ID after a drop and skips repeated ids", async () => {
  const s = scripted([
    () => sse(ev(0, "a") + ev(1, "b")),
    () => sse(ev(1, "b") + ev(0, "a") + ev(2, "c")), // a resumed stream that repeats itself
  ]);
  const got = await take(
    client(s.fetch).subscribe("r", { signal: new AbortController().signal }),
    3,
  );
  assert.deepEqual(got.map((e) => [e.id, e.data]), [[0, "a"], [1, "b"], [2, "c"]]);
  assert.equal(s.requests[0].headers.get("last-event-id"), null);
  assert.equal(s.requests[1].headers.get("last-event-id"), "1");
  assert.equal(s.requests[1].headers.get("accept"), "text/event-stream");
});

test("subscribe with lastEventId starts after it", async () => {
  const s = scripted([() => sse(ev(5, "f"))]);
  const got = await take(
    client(s.fetch).subscribe("r", { signal: new AbortController().signal, lastEventId: 4 }),
    1,
  );
  assert.deepEqual(got, [{ id: 5, data: "f" }]);
  assert.equal(s.requests[0].headers.get("last-event-id"), "4");
});

test("a gateway-error event ends the subscription with gone", async () => {
  const s = scripted([
    () => sse(ev(0, "a") + 'event: gateway-error\ndata: {"error":"room_reset"}\n\n'),
  ]);
  const it = client(s.fetch).subscribe("r", { signal: new AbortController().signal });
  await assert.rejects(
    take(it, 5),
    (e) => code("gone")(e) && /room_reset/.test((e as Error).message),
  );
});

test("subscribe maps final answers to codes without retrying", async () => {
  const cases: [string, () => Response, string][] = [
    ["410", () => fail(410, "history_gone"), "gone"],
    ["403", () => fail(403, "forbidden"), "rejected"],
    ["400", () => fail(400, "invalid_room_id"), "rejected"],
    [
      "200 not SSE",
      () => new Response("<html>", { headers: { "content-type": "text/html" } }),
      "malformed",
    ],
    ["event without id", () => sse("event: new-message\ndata: a\n\n"), "malformed"],
    ["event with id 01", () => sse(ev("01", "a")), "malformed"],
    ["event with id -1", () => sse(ev("-1", "a")), "malformed"],
  ];
  for (const [what, answer, c] of cases) {
    const s = scripted([answer]);
    await assert.rejects(
      take(client(s.fetch).subscribe("r", { signal: new AbortController().signal }), 1),
      code(c),
      what,
    );
    assert.equal(s.requests.length, 1, what);
  }
});

test("an event larger than maxEventChars ends the subscription with limit", async () => {
  const s = scripted([() => sse(ev(0, "x".repeat(5000)))]);
  const gw = client(s.fetch, { maxEventChars: 1000 });
  await assert.rejects(
    take(gw.subscribe("r", { signal: new AbortController().signal }), 1),
    code("limit"),
  );
});

test("subscribe gives up with io after the retry budget of failed connections", async () => {
  for (const answer of [refused, () => fail(503, "backend_unavailable"), () => sse(": hi\n\n")]) {
    const s = scripted([answer]);
    await assert.rejects(
      take(client(s.fetch).subscribe("r", { signal: new AbortController().signal }), 1),
      (e) => code("io")(e) && /gave up after 3/.test((e as Error).message),
    );
    assert.equal(s.requests.length, 3);
  }
});

test("progress resets the budget: a stream dropped after every event still goes on", async () => {
  const s = scripted(Array.from({ length: 8 }, (_, k) => () => sse(ev(k, `m${k}`))));
  const got = await take(
    client(s.fetch).subscribe("r", { signal: new AbortController().signal }),
    8,
  );
  assert.equal(got.length, 8);
});

test("a silent stream is reconnected after idleTimeoutMs", async () => {
  const s = scripted([silent, () => sse(ev(0, "a"))]);
  const gw = client(s.fetch, { idleTimeoutMs: 30 });
  assert.deepEqual(await take(gw.subscribe("r", { signal: new AbortController().signal }), 1), [
    { id: 0, data: "a" },
  ]);
});

test("an aborted signal ends subscribe with aborted, while reading or waiting to retry", async () => {
  for (const answer of [silent, refused]) {
    const ctl = new AbortController();
    const s = scripted([answer]);
    const gw = client(s.fetch, {
      retry: { attempts: 100, baseDelayMs: 10_000, maxDelayMs: 10_000 },
    });
    const p = take(gw.subscribe("r", { signal: ctl.signal }), 1);
    setTimeout(() => ctl.abort(), 20);
    await assert.rejects(p, code("aborted"));
  }
});

test("broadcast retries network failures and 5xx, not 4xx", async () => {
  const ok = () => new Response(null, { status: 200 });
  let s = scripted([refused, () => fail(503), ok]);
  await client(s.fetch).broadcast("r", "body");
  assert.equal(s.requests.length, 3);
  assert.equal(await s.requests[2].text(), "body");
  assert.equal(s.requests[2].method, "POST");
  s = scripted([() => fail(413, "body_too_large")]);
  await assert.rejects(client(s.fetch).broadcast("r", "body"), code("limit"));
  assert.equal(s.requests.length, 1);
  s = scripted([() => fail(401, "unauthorized")]);
  await assert.rejects(client(s.fetch).broadcast("r", "body"), code("rejected"));
  s = scripted([refused]);
  await assert.rejects(client(s.fetch).broadcast("r", "body"), code("io"));
  assert.equal(s.requests.length, 3);
});

test("broadcast waiting to retry is cancelled by its signal", async () => {
  const s = scripted([refused]);
  const gw = client(s.fetch, { retry: { attempts: 5, baseDelayMs: 10_000, maxDelayMs: 10_000 } });
  const ctl = new AbortController();
  const p = gw.broadcast("r", "b", ctl.signal);
  setTimeout(() => ctl.abort(), 20);
  await assert.rejects(p, code("aborted"));
});

test("bad arguments are rejected before any request", () => {
  const s = scripted([refused]);
  const gw = client(s.fetch);
  assert.throws(() => gw.broadcast("r", "a\r\nb"), RangeError);
  assert.throws(() => gw.broadcast("r", ""), RangeError);
  assert.throws(() => gw.broadcast("r", 5 as unknown as string), TypeError);
  assert.throws(() => gw.broadcast("a/b", "x"), RangeError);
  assert.throws(() => gw.issueUniqueIdx("x".repeat(129)), RangeError);
  assert.throws(() => createGatewayClient({ url: "not a url" }), TypeError);
  assert.throws(
    () => createGatewayClient({ url: "http://gw", retry: { attempts: 0 } }),
    RangeError,
  );
  assert.equal(s.requests.length, 0);
});

test("room tokens: a string or a function per room becomes the bearer header", async () => {
  const ok = () => new Response('{"unique_idx":3}', { status: 200 });
  let s = scripted([ok]);
  assert.equal(await client(s.fetch, { token: "t1" }).issueUniqueIdx("r"), 3);
  assert.equal(s.requests[0].headers.get("authorization"), "Bearer t1");
  s = scripted([ok]);
  await client(s.fetch, { token: (room) => Promise.resolve(`tok-${room}`) }).issueUniqueIdx("r7");
  assert.equal(s.requests[0].headers.get("authorization"), "Bearer tok-r7");
  s = scripted([ok]);
  const broken = client(s.fetch, {
    token: () => {
      throw new Error("no token");
    },
  });
  await assert.rejects(broken.issueUniqueIdx("r"), code("rejected"));
  assert.equal(s.requests.length, 0);
});

test("issueUniqueIdx rejects an answer that is not a positive index", async () => {
  for (const body of ['{"unique_idx":0}', '{"unique_idx":"1"}', "[]", "x"]) {
    const s = scripted([() => new Response(body, { status: 200 })]);
    await assert.rejects(client(s.fetch).issueUniqueIdx("r"), code("malformed"), body);
  }
});

test("room token issuer: tokens from the gateway's endpoint open its rooms; cached per room and party", async () => {
  const tokenSecret = "token-secret-for-tests-0123456789abcdef";
  const secret = "issuer-secret-for-tests-0123456789abcdef";
  const h = createGatewayHandler({
    timers: false,
    access: { enabled: true, tokenSecret, issuerSecret: secret, tokenTtlS: 600 },
  });
  let calls = 0;
  const fetch = (input: string, init: RequestInit) => {
    if (input.endsWith("/tokens")) calls++;
    return h(new Request(input, init));
  };
  let clock = Date.now();
  const issuer = createRoomTokenIssuer({
    url: "http://gw",
    secret,
    fetch,
    ttlS: 600,
    retry: FAST,
    now: () => clock,
  });
  const service = client(fetch, { token: (room) => issuer.token(room, "service") });
  await service.broadcast("cap1", "from the service");
  await service.broadcast("cap1", "again");
  assert.equal(calls, 1, "the service's token is reused");
  const handed = await issuer.issue("cap1", "client");
  assert.equal(calls, 2);
  const wallet = client(fetch, { token: handed.token });
  const ctl = new AbortController();
  assert.deepEqual(await take(wallet.subscribe("cap1", { signal: ctl.signal }), 2), [
    { id: 0, data: "from the service" },
    { id: 1, data: "again" },
  ]);
  ctl.abort();
  await assert.rejects(client(fetch).broadcast("cap1", "anonymous"), code("rejected"));
  await assert.rejects(
    client(fetch, { token: handed.token }).broadcast("cap2", "other room"),
    code("rejected"),
  );
  clock += 590_000; // less than a tenth of the lifetime left: a new token
  await service.broadcast("cap1", "later");
  assert.equal(calls, 3);
  await h.close();
});

test("room token issuer: a wrong secret, no endpoint, or a bad answer is a clear error", async () => {
  const secret = "issuer-secret-for-tests-0123456789abcdef";
  const noIssuer = createGatewayHandler({
    timers: false,
    access: { enabled: true, tokenSecret: "t".repeat(32) },
  });
  const via = (h: (r: Request) => Promise<Response>) => (input: string, init: RequestInit) =>
    h(new Request(input, init));
  await assert.rejects(
    createRoomTokenIssuer({ url: "http://gw", secret, fetch: via(noIssuer), retry: FAST })
      .token("r", "p"),
    (e: unknown) => e instanceof TransportError && e.code === "rejected" && /404/.test(e.message),
  );
  await noIssuer.close();
  const wrong = createGatewayHandler({
    timers: false,
    access: { enabled: true, tokenSecret: "t".repeat(32), issuerSecret: "x".repeat(32) },
  });
  await assert.rejects(
    createRoomTokenIssuer({ url: "http://gw", secret, fetch: via(wrong), retry: FAST })
      .issue("r", "p"),
    (e: unknown) => e instanceof TransportError && e.code === "rejected" && /403/.test(e.message),
  );
  await wrong.close();
  const s = scripted([() => new Response('{"token": 5}', { status: 200 })]);
  await assert.rejects(
    createRoomTokenIssuer({ url: "http://gw", secret, fetch: s.fetch, retry: FAST })
      .issue("r", "p"),
    code("malformed"),
  );
  assert.throws(() => createRoomTokenIssuer({ url: "http://gw", secret: "short" }), RangeError);
  const issuer = createRoomTokenIssuer({ url: "http://gw", secret, fetch: s.fetch });
  assert.throws(() => issuer.issue("r", "bad party"), RangeError);
  assert.throws(() => issuer.issue("bad/room", "p"), RangeError);
});
