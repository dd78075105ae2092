/**
 * The `node:http` adapter: request and response conversion, streaming with backpressure, client
 * disconnects, errors. Runs under Node and under Deno's node:http.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { bounded, WAIT_MS } from "../testing/waits.ts";
import { createNodeListener, serveNode } from "./node_adapter.ts";

test("requests reach the handler intact (method, URL, headers, buffered and streamed bodies)", async () => {
  const seen: { method: string; url: string; h: string | null; body: string }[] = [];
  const s = await serveNode(async (req) => {
    seen.push({
      method: req.method,
      url: new URL(req.url).pathname + new URL(req.url).search,
      h: req.headers.get("x-test"),
      body: await req.text(),
    });
    return new Response(`echo:${seen.at(-1)!.body}`, { status: 201, headers: { "x-out": "1" } });
  }, { port: 0, bufferBodyBytes: 8 });
  const base = `http://127.0.0.1:${s.port}`;
  const small = await fetch(`${base}/a?b=c`, {
    method: "POST",
    body: "tiny",
    headers: { "x-test": "v" },
  });
  assert.equal(small.status, 201);
  assert.equal(small.headers.get("x-out"), "1");
  assert.equal(await small.text(), "echo:tiny");
  const big = "z".repeat(100_000);
  const large = await fetch(`${base}/big`, { method: "POST", body: big });
  assert.equal(await large.text(), `echo:${big}`);
  const get = await fetch(`${base}/g`);
  assert.equal(await get.text(), "echo:");
  assert.deepEqual(seen.map((x) => [x.method, x.url, x.h, x.body.length]), [
    ["POST", "/a?b=c", "v", 4],
    ["POST", "/big", null, 100_000],
    ["GET", "/g", null, 0],
  ]);
  await s.shutdown(1000);
});

test("a streamed response is written as it is produced and ends cleanly", async () => {
  let push!: (s: string) => void;
  let end!: () => void;
  const enc = new TextEncoder();
  const s = await serveNode(() =>
    Promise.resolve(
      new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            push = (x) => c.enqueue(enc.encode(x));
            end = () => c.close();
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      ),
    ), { port: 0 });
  const res = await bounded(WAIT_MS, "the response head", fetch(`http://127.0.0.1:${s.port}/`));
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  push("one");
  assert.equal(dec.decode((await bounded(WAIT_MS, "first chunk", reader.read())).value), "one");
  push("two");
  assert.equal(dec.decode((await bounded(WAIT_MS, "second chunk", reader.read())).value), "two");
  end();
  assert.equal((await bounded(WAIT_MS, "end", reader.read())).done, true);
  await s.shutdown(1000);
});

test("a client that disconnects cancels the response stream", async () => {
  let cancelled!: () => void;
  const wasCancelled = new Promise<void>((r) => (cancelled = r));
  const s = await serveNode(() =>
    Promise.resolve(
      new Response(
        new ReadableStream<Uint8Array>({
          start: (c) => c.enqueue(new Uint8Array([58, 10, 10])),
          cancel: () => cancelled(),
        }),
      ),
    ), { port: 0 });
  const sock = connect({ port: s.port, host: "127.0.0.1" });
  sock.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  await bounded(WAIT_MS, "response head", new Promise((r) => sock.once("data", r)));
  sock.destroy();
  await bounded(WAIT_MS, "the stream to be cancelled after the client left", wasCancelled);
  await s.shutdown(1000);
});

test("a client that does not read stops the pump (backpressure), memory stays bounded", async () => {
  let pulled = 0;
  const chunk = new Uint8Array(64 * 1024);
  const s = await serveNode(() =>
    Promise.resolve(
      new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            pulled += chunk.length;
            if (pulled > 512 * 1024 * 1024) c.error(new Error("no backpressure"));
            else c.enqueue(chunk);
          },
        }, { highWaterMark: 0 }),
      ),
    ), { port: 0 });
  const sock = connect({ port: s.port, host: "127.0.0.1" });
  sock.pause(); // never read
  sock.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
  // Wait until the pump stalls: the pulled count stops moving (bounded wait).
  let last = -1;
  let still = 0;
  await bounded(
    WAIT_MS,
    "the pump to stall",
    (async () => {
      while (still < 5) {
        await new Promise((r) => setTimeout(r, 40));
        still = pulled === last && pulled > 0 ? still + 1 : 0;
        last = pulled;
      }
    })(),
  );
  assert.ok(pulled < 64 * 1024 * 1024, `pulled ${pulled} bytes for a client that reads nothing`);
  sock.destroy();
  await s.shutdown(1000);
});

test("a handler that throws yields a 500 JSON error; an errored stream cuts the connection", async () => {
  const errors: unknown[] = [];
  const s = await serveNode((req) => {
    if (new URL(req.url).pathname === "/throw") return Promise.reject(new Error("boom"));
    return Promise.resolve(
      new Response(
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new Uint8Array([97]));
            setTimeout(() => c.error(new Error("dropped")), 10);
          },
        }),
      ),
    );
  }, { port: 0, onError: (e) => errors.push(e) });
  const res = await fetch(`http://127.0.0.1:${s.port}/throw`);
  assert.equal(res.status, 500);
  assert.deepEqual(await res.json(), { error: "internal", message: "internal error" });
  assert.equal(errors.length, 1);
  const cut = await fetch(`http://127.0.0.1:${s.port}/cut`);
  await assert.rejects(bounded(WAIT_MS, "the cut stream", cut.text()));
  await s.shutdown(1000);
});

test("a refused streamed upload is answered and the connection closed", async () => {
  const s = await serveNode(async (req) => {
    const r = req.body!.getReader();
    await r.read();
    await r.cancel();
    return new Response("no", { status: 413 });
  }, { port: 0, bufferBodyBytes: 16 });
  const sock = connect({ port: s.port, host: "127.0.0.1" });
  let got = "";
  sock.on("data", (b) => (got += b.toString()));
  const closed = new Promise((r) => sock.once("close", r));
  sock.write(
    "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n",
  );
  await bounded(WAIT_MS, "the server to close the connection", closed);
  assert.match(got, /^HTTP\/1\.1 413/);
  assert.match(got, /connection: close/i);
  await s.shutdown(1000);
});

test("the adapter's light request behaves like a Request (fast members and delegated ones)", async () => {
  const { LightRequest } = await import("./_node_request.ts");
  const mk = (body: Uint8Array | ReadableStream<Uint8Array> | null) =>
    new LightRequest({
      method: "POST",
      url: "http://h/p?q=1",
      headers: new Headers({ "content-type": "application/json", "x-a": "b" }),
      body,
    }) as unknown as Request;
  const r = mk(new TextEncoder().encode('{"a":1}'));
  assert.ok(r instanceof Request);
  assert.equal(r.method, "POST");
  assert.equal(r.url, "http://h/p?q=1");
  assert.equal(r.headers.get("x-a"), "b");
  assert.equal(r.cache, "default", "an inherited getter is answered by the real request");
  assert.equal(r.signal.aborted, false);
  assert.deepEqual(await r.json(), { a: 1 });
  assert.equal(r.bodyUsed, true);
  await assert.rejects(r.text(), TypeError, "a body reads once");

  const streamed = mk(
    new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode("he"));
        c.enqueue(new TextEncoder().encode("llo"));
        c.close();
      },
    }),
  );
  assert.equal(await streamed.text(), "hello");

  const viaStream = mk(new TextEncoder().encode("abc"));
  const reader = viaStream.body!.getReader();
  assert.equal(new TextDecoder().decode((await reader.read()).value), "abc");
  assert.equal((await reader.read()).done, true);

  const cloned = mk(new TextEncoder().encode("xyz")).clone();
  assert.equal(await cloned.text(), "xyz", "clone() goes through the real request");
  assert.equal(await mk(null).text(), "");
});

test("createNodeListener serves a server made elsewhere, with its scheme and default host", async () => {
  const { createServer } = await import("node:http");
  const urls: string[] = [];
  const listener = createNodeListener((req) => {
    urls.push(req.url);
    return Promise.resolve(new Response("ok"));
  }, { scheme: "https", defaultHost: () => "svc.test:1" });
  const server = createServer(listener);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  const sock = connect({ port, host: "127.0.0.1" });
  let got = "";
  sock.on("data", (b) => (got += b.toString()));
  const closed = new Promise((r) => sock.once("close", r));
  // HTTP/1.0 without a Host header, then one with it.
  sock.write("GET /a HTTP/1.0\r\n\r\n");
  await bounded(WAIT_MS, "the HTTP/1.0 response", closed);
  assert.match(got, /^HTTP\/1\.1 200/);
  const res = await fetch(`http://127.0.0.1:${port}/b?c=d`);
  assert.equal(await res.text(), "ok");
  assert.deepEqual(urls, ["https://svc.test:1/a", `https://127.0.0.1:${port}/b?c=d`]);
  assert.equal(listener.open.size, 0);
  await new Promise((r) => server.close(r));
});
