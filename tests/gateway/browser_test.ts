/**
 * A real browser (headless Chromium through playwright-core) using `EventSource` and `fetch`
 * against the gateway from another origin: CORS, history, live messages, exact multi-line bodies,
 * a refused origin, and (with Redis) an automatic reconnection with Last-Event-ID to a restarted
 * instance.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { missing, startGateway, startRedis } from "../../testing/processes.ts";

const CHROMIUM = "/usr/bin/chromium";
const noChromium = missing(CHROMIUM);

async function pageServer(): Promise<{ origin: string; close: () => Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>wallet</title><p>wallet page</p>");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function withBrowser(fn: (open: (origin: string) => Promise<Page>) => Promise<void>) {
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "gw-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    await fn(async (origin) => {
      const page = await context.newPage();
      await page.goto(`${origin}/`);
      return page;
    });
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const SUBSCRIBE = (url: string) => {
  const w = globalThis as unknown as {
    got: { id: string; data: string }[];
    errors: number;
    es: EventSource;
  };
  w.got = [];
  w.errors = 0;
  w.es = new EventSource(url);
  w.es.addEventListener("new-message", (e) => {
    const m = e as MessageEvent;
    w.got.push({ id: m.lastEventId, data: m.data });
  });
  w.es.onerror = () => w.errors++;
};

test("a browser on another origin subscribes with EventSource: history, live, exact bodies", {
  skip: noChromium,
}, async () => {
  const page1 = await pageServer();
  const page2 = await pageServer();
  const gw = await startGateway("node", ["--cors-origins", page1.origin]);
  try {
    const multi = '{"k":1}\nsecond line\n\nafter a blank line';
    await fetch(`${gw.url}/rooms/web/broadcast`, { method: "POST", body: "history 0" });
    await fetch(`${gw.url}/rooms/web/broadcast`, { method: "POST", body: multi });
    await withBrowser(async (open) => {
      const page = await open(page1.origin);
      await page.evaluate(SUBSCRIBE, `${gw.url}/rooms/web/subscribe`);
      await page.waitForFunction(() =>
        (globalThis as unknown as { got: unknown[] }).got.length === 2
      );
      // A cross-origin POST with a JSON content type (preflighted) from the page itself.
      const status = await page.evaluate(async (url) => {
        const r = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"live":true}',
        });
        return r.status;
      }, `${gw.url}/rooms/web/broadcast`);
      assert.equal(status, 200);
      await page.waitForFunction(() =>
        (globalThis as unknown as { got: unknown[] }).got.length === 3
      );
      const got = await page.evaluate(() => (globalThis as unknown as { got: unknown[] }).got);
      assert.deepEqual(got, [
        { id: "0", data: "history 0" },
        { id: "1", data: multi },
        { id: "2", data: '{"live":true}' },
      ]);

      // An origin that is not configured cannot read the stream.
      const other = await open(page2.origin);
      await other.evaluate(SUBSCRIBE, `${gw.url}/rooms/web/subscribe`);
      await other.waitForFunction(() =>
        (globalThis as unknown as { es: EventSource }).es.readyState === 2
      );
      assert.deepEqual(
        await other.evaluate(() => (globalThis as unknown as { got: unknown[] }).got),
        [],
      );
    });
  } finally {
    await gw.stop("SIGKILL");
    await page1.close();
    await page2.close();
  }
});

test("EventSource reconnects by itself to a restarted instance and resumes (Redis)", {
  skip: noChromium ?? missing("redis-server"),
}, async () => {
  const redis = await startRedis();
  const page = await pageServer();
  const args = [
    "--cors-origins",
    page.origin,
    "--backend",
    "redis",
    "--redis-url",
    redis.url,
    "--set",
    `backend.redis.key_prefix=br${Date.now()}:`,
    "--set",
    "sse.retry_ms=100",
  ];
  const poster = await startGateway("deno", args);
  // The gateway binds port 0 itself; its restart must come back on the same port (the browser
  // reconnects to the URL it has), retried while that port is taken.
  let gw = await startGateway("deno", args);
  const port = gw.port;
  const post = (body: string) =>
    fetch(`${poster.url}/rooms/re/broadcast`, { method: "POST", body }).then((r) => r.status);
  try {
    await withBrowser(async (open) => {
      const p = await open(page.origin);
      await p.evaluate(SUBSCRIBE, `${gw.url}/rooms/re/subscribe`);
      assert.equal(await post("m0"), 200);
      await p.waitForFunction(() => (globalThis as unknown as { got: unknown[] }).got.length === 1);
      await gw.stop("SIGTERM"); // the stream ends; the browser starts retrying
      await p.waitForFunction(() => (globalThis as unknown as { errors: number }).errors > 0);
      assert.equal(await post("m1"), 200);
      assert.equal(await post("m2"), 200);
      gw = await startGateway("deno", [...args, "--port", String(port)]);
      await p.waitForFunction(() => (globalThis as unknown as { got: unknown[] }).got.length === 3);
      assert.equal(await post("m3"), 200);
      await p.waitForFunction(() => (globalThis as unknown as { got: unknown[] }).got.length === 4);
      const got = await p.evaluate(() => (globalThis as unknown as { got: unknown[] }).got);
      assert.deepEqual(got, [
        { id: "0", data: "m0" },
        { id: "1", data: "m1" },
        { id: "2", data: "m2" },
        { id: "3", data: "m3" },
      ]);
    });
  } finally {
    await gw.stop("SIGKILL");
    await poster.stop("SIGKILL");
    await page.close();
    await redis.dispose();
  }
});
