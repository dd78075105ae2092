/**
 * Reading a gateway event stream: an abort that came before a read still ends it at once (found
 * by the secure-session fuzz harness: a session whose first post failed while its subscription
 * was being opened waited for the 45 s idle timeout, not its handshake timeout).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readChunk, readEvents } from "./_sse_reader.ts";

/** A body that never sends anything (a quiet room). */
const silent = () => new ReadableStream<Uint8Array>({ start() {} });

test("readChunk rejects at once with the reason of a signal aborted before the read", async () => {
  const ctl = new AbortController();
  ctl.abort(new Error("closed before"));
  // Waiting for the idle timeout would reject with the timeout's reason instead.
  await assert.rejects(readChunk(silent().getReader(), ctl.signal, 2_000), /closed before/);
});

test("readEvents over an already aborted signal ends at once and releases the body", async () => {
  const ctl = new AbortController();
  ctl.abort(new Error("session failed"));
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({ cancel: () => void (cancelled = true) });
  const events = readEvents(body, ctl.signal, { idleMs: 2_000, maxEventChars: 1024 });
  await assert.rejects(events.next(), /session failed/);
  assert.ok(cancelled, "the body was not cancelled");
});

test("readChunk still rejects on an abort during the read and on silence", async () => {
  const ctl = new AbortController();
  const pending = readChunk(silent().getReader(), ctl.signal, 45_000);
  ctl.abort(new Error("later"));
  await assert.rejects(pending, /later/);
  await assert.rejects(
    readChunk(silent().getReader(), new AbortController().signal, 5),
    /no data for 5 ms/,
  );
});
