/**
 * Load generator for the sign-gateway on loopback (Node only: raw `node:net` sockets, so the
 * client costs far less CPU than the server it measures).
 *
 * Opens `rooms * subsPerRoom` SSE subscriptions, then runs each phase: posts to the rooms round
 * robin at a fixed rate (or as fast as the server answers, `rate: 0`) over a few pipelined
 * keep-alive connections.
 * Each body carries the time the post was *scheduled* (not sent), so a server that falls behind
 * shows it in the latency instead of hiding it (no coordinated omission). Receivers parse every
 * event and record post-to-receipt latency.
 *
 * Usage: node --import tsx bench/gateway/loadgen.ts '<json LoadOptions>'; prints JSON lines
 * (`{"phase":"connected",...}`, then per phase `phase-start` and `phase-result`, then `done`).
 * When stdin is a pipe, the generator waits for a line on stdin after connecting (so the caller
 * can sample server memory).
 *
 * @module
 */

import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import process from "node:process";
import { createRoomTokenAuthority } from "../../gateway/tokens.ts";

/** Workload. */
export interface LoadOptions {
  /** Server port on 127.0.0.1. */
  port: number;
  /** Number of rooms. */
  rooms: number;
  /** Subscribers per room. */
  subsPerRoom: number;
  /** Load phases run one after the other on the same subscribers. */
  phases: LoadPhase[];
  /** Posting connections. */
  postConns: number;
  /** Posts in flight per posting connection (pipelined). */
  inflight: number;
  /** Body size in bytes (at least 16). */
  bodyBytes: number;
  /** Room name prefix (default `bench`). */
  roomPrefix?: string;
  /** Wait for a line on stdin after connecting (default: when stdin is not a TTY). */
  pauseAfterConnect?: boolean;
  /**
   * The gateway's `access.token_secret`: every request carries a room token minted with it
   * (`Authorization: Bearer`), as the parties of authenticated sessions do. Default: none.
   */
  tokenSecret?: string;
}

/** The `authorization` header line of each room (empty strings without a token secret). */
async function roomAuth(o: LoadOptions): Promise<string[]> {
  const prefix = o.roomPrefix ?? "bench";
  if (!o.tokenSecret) return Array.from({ length: o.rooms }, () => "");
  const authority = await createRoomTokenAuthority({ secret: o.tokenSecret });
  const out: string[] = [];
  for (let i = 0; i < o.rooms; i++) {
    const { token } = await authority.issue(`${prefix}-${i}`, "bench", 3600);
    out.push(`authorization: Bearer ${token}\r\n`);
  }
  return out;
}

/** One load phase. */
export interface LoadPhase {
  /** Posts per second over all rooms; 0 means "as fast as the server answers". */
  rate: number;
  /** Measurement time in seconds. */
  durationS: number;
  /** Warm-up time in seconds (posts sent, not measured). */
  warmupS: number;
}

/** Result of one phase. */
export interface LoadResult {
  subscribers: number;
  connectS: number;
  posted: number;
  postErrors: number;
  delivered: number;
  deliveredPerS: number;
  postsPerS: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  lost: number;
  disconnected: number;
}

const now = () => performance.now();

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function openSubscribers(
  o: LoadOptions,
  auth: readonly string[],
  onEvent: (ts: number) => void,
) {
  const total = o.rooms * o.subsPerRoom;
  const sockets: Socket[] = [];
  let ready = 0;
  let disconnected = 0;
  const prefix = o.roomPrefix ?? "bench";
  const openOne = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const room = `${prefix}-${i % o.rooms}`;
      const authLine = auth[i % o.rooms];
      const s = connect({ port: o.port, host: "127.0.0.1" });
      s.setNoDelay(true);
      let head = true;
      let tail = "";
      s.on("connect", () => {
        s.write(
          `GET /rooms/${room}/subscribe HTTP/1.1\r\nhost: 127.0.0.1\r\n${authLine}accept: text/event-stream\r\n\r\n`,
        );
      });
      s.on("data", (buf: Buffer) => {
        let text = tail + buf.toString("latin1");
        if (head) {
          const end = text.indexOf("\r\n\r\n");
          if (end < 0) {
            tail = text;
            return;
          }
          if (!text.startsWith("HTTP/1.1 200")) {
            reject(new Error(`subscribe failed: ${text.slice(0, 120)}`));
            s.destroy();
            return;
          }
          head = false;
          ready++;
          resolve();
          text = text.slice(end + 4);
        }
        const last = text.lastIndexOf("\n\n");
        if (last < 0) {
          tail = text;
          return;
        }
        tail = text.slice(last + 2);
        let pos = 0;
        for (;;) {
          const d = text.indexOf("\ndata: ", pos);
          if (d < 0 || d > last) break;
          let v = 0;
          let j = d + 7;
          for (; j < text.length; j++) {
            const c = text.charCodeAt(j) - 48;
            if (c < 0 || c > 9) break;
            v = v * 10 + c;
          }
          onEvent(v);
          pos = j;
        }
      });
      s.on("error", (e) => {
        if (head) reject(e);
      });
      s.on("close", () => {
        if (!head) disconnected++;
      });
      sockets.push(s);
    });
  const t0 = now();
  const batch = 200;
  for (let i = 0; i < total; i += batch) {
    const n = Math.min(batch, total - i);
    await Promise.all(Array.from({ length: n }, (_, k) => openOne(i + k)));
  }
  return {
    sockets,
    connectS: (now() - t0) / 1000,
    ready: () => ready,
    disconnected: () => disconnected,
  };
}

/**
 * A `data` listener that finds the responses of a pipelined HTTP/1.1 connection (their bodies
 * are skipped as text that holds no status line) and reports each one's status code.
 *
 * @param onStatus called with each response's three-digit status
 * @returns the listener
 */
export function responseStatuses(onStatus: (status: string) => void): (buf: Buffer) => void {
  let tail = "";
  return (buf) => {
    const text = tail + buf.toString("latin1");
    let pos = 0;
    for (;;) {
      const h = text.indexOf("HTTP/1.1 ", pos);
      if (h < 0) break;
      const end = text.indexOf("\r\n\r\n", h);
      if (end < 0) break;
      pos = end + 4;
      onStatus(text.slice(h + 9, h + 12));
    }
    tail = text.slice(pos);
  };
}

interface Poster {
  socket: Socket;
  inflight: number;
}

/**
 * Runs a load test against a server on 127.0.0.1: connects the subscribers once, then runs each
 * phase, reporting after each.
 *
 * @param o workload
 * @param log receives progress lines (`connected`, `phase-start`, `phase-result`)
 * @returns one result per phase
 */
export async function runLoad(
  o: LoadOptions,
  log: (line: Record<string, unknown>) => void,
): Promise<LoadResult[]> {
  let measuring = false;
  let delivered = 0;
  let deliveredMeasured = 0;
  const samples = new Float64Array(2_000_000);
  let nSamples = 0;
  let maxLat = 0;
  const auth = await roomAuth(o);
  const subs = await openSubscribers(o, auth, (ts) => {
    delivered++;
    if (!measuring) return;
    deliveredMeasured++;
    const lat = now() * 1000 - ts;
    if (lat > maxLat) maxLat = lat;
    if (nSamples < samples.length) samples[nSamples++] = lat;
    else samples[(Math.random() * samples.length) | 0] = lat;
  });
  log({ phase: "connected", subscribers: subs.ready(), connectS: subs.connectS });
  if (o.pauseAfterConnect ?? !process.stdin.isTTY) {
    await new Promise<void>((resolve) => {
      process.stdin.once("data", () => resolve());
    });
  }

  // Posting connections with pipelined requests.
  const prefix = o.roomPrefix ?? "bench";
  const pad = "x".repeat(Math.max(0, o.bodyBytes - 16));
  let posted = 0;
  let postErrors = 0;
  let postedMeasured = 0;
  let rate = 0;
  let running = false;
  let roomCursor = 0;
  let posterCursor = 0;
  const posters: Poster[] = [];
  const send = (scheduledUs: number): boolean => {
    for (let k = 0; k < posters.length; k++) {
      const p = posters[posterCursor];
      posterCursor = (posterCursor + 1) % posters.length;
      if (p.inflight >= o.inflight) continue;
      const body = `${Math.round(scheduledUs)}`.padStart(16, "0") + pad;
      const room = `${prefix}-${roomCursor}`;
      const authLine = auth[roomCursor];
      roomCursor = (roomCursor + 1) % o.rooms;
      p.socket.write(
        `POST /rooms/${room}/broadcast HTTP/1.1\r\nhost: 127.0.0.1\r\n${authLine}content-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      );
      p.inflight++;
      posted++;
      if (measuring) postedMeasured++;
      return true;
    }
    return false;
  };
  for (let i = 0; i < o.postConns; i++) {
    const socket = connect({ port: o.port, host: "127.0.0.1" });
    socket.setNoDelay(true);
    const p: Poster = { socket, inflight: 0 };
    socket.on(
      "data",
      responseStatuses((status) => {
        if (status[0] !== "2") postErrors++;
        p.inflight--;
        if (rate === 0 && running) send(now() * 1000);
      }),
    );
    socket.on("error", () => {});
    await new Promise<void>((r) => socket.once("connect", () => r()));
    posters.push(p);
  }

  const results: LoadResult[] = [];
  for (const [index, phase] of o.phases.entries()) {
    log({ phase: "phase-start", index });
    rate = phase.rate;
    delivered = 0;
    deliveredMeasured = 0;
    posted = 0;
    postedMeasured = 0;
    postErrors = 0;
    nSamples = 0;
    maxLat = 0;
    const disconnectedBefore = subs.disconnected();
    const start = now();
    const warmEnd = start + phase.warmupS * 1000;
    const end = warmEnd + phase.durationS * 1000;
    let scheduled = 0;
    let measureStart = warmEnd;
    running = true;
    if (rate === 0) {
      while (send(start * 1000)) scheduled++;
    }
    await new Promise<void>((resolve) => {
      const tick = () => {
        const t = now();
        if (!measuring && t >= warmEnd) {
          measuring = true;
          measureStart = t;
        }
        if (t >= end) {
          running = false;
          resolve();
          return;
        }
        if (rate > 0) {
          const due = Math.floor(((t - start) / 1000) * rate);
          while (scheduled < due) {
            const at = start * 1000 + (scheduled / rate) * 1e6;
            if (!send(at)) break;
            scheduled++;
          }
        }
        setTimeout(tick, 1);
      };
      tick();
    });
    const measureS = (now() - measureStart) / 1000;
    measuring = false;
    const deliveredInWindow = deliveredMeasured;
    const postedInWindow = postedMeasured;
    // Let in-flight posts and events arrive (bounded wait).
    const drainEnd = now() + 5000;
    while (
      (posters.some((p) => p.inflight > 0) || delivered < posted * o.subsPerRoom) &&
      now() < drainEnd
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const sorted = samples.slice(0, nSamples).sort();
    const result: LoadResult = {
      subscribers: subs.ready(),
      connectS: subs.connectS,
      posted,
      postErrors,
      delivered,
      deliveredPerS: deliveredInWindow / measureS,
      postsPerS: postedInWindow / measureS,
      p50Ms: percentile(sorted, 0.5) / 1000,
      p99Ms: percentile(sorted, 0.99) / 1000,
      maxMs: maxLat / 1000,
      lost: posted * o.subsPerRoom - delivered,
      disconnected: subs.disconnected() - disconnectedBefore,
    };
    log({ phase: "phase-result", index, ...result });
    results.push(result);
  }
  for (const p of posters) p.socket.destroy();
  for (const s of subs.sockets) s.destroy();
  return results;
}

if (process.argv[1]?.endsWith("loadgen.ts")) {
  const opts = JSON.parse(process.argv[2] ?? "{}") as LoadOptions;
  runLoad(opts, (l) => console.log(JSON.stringify(l)))
    .then(() => {
      console.log(JSON.stringify({ phase: "done" }));
      process.exit(0);
    })
    .catch((e) => {
      console.log(JSON.stringify({ phase: "error", error: String(e) }));
      process.exit(1);
    });
}
