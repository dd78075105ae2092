/**
 * An anonymous room flood against the sign-gateway, for the benchmark (`gateway_bench.ts
 * --flood`): raw `node:net` connections from one or more local addresses (one source each, on
 * loopback `127.0.0.2`, `127.0.0.3`, ...), each posting pipelined, token-less broadcasts to a
 * fresh room per request, as fast as the gateway answers (or at a fixed rate). A connection the
 * gateway closes (or refuses) is opened again at once, as a determined attacker would. Counts the
 * answers by status, and the connections lost. Node only.
 *
 * Usage: node --import tsx bench/gateway/flood.ts '<json FloodOptions>'; prints
 * `{"phase":"flooding"}` once connected, then on SIGTERM or a line on stdin one JSON line of
 * totals and exits.
 *
 * @module
 */

import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import process from "node:process";
import { responseStatuses } from "./loadgen.ts";

/** What to flood with. */
export interface FloodOptions {
  /** Gateway port on 127.0.0.1. */
  port: number;
  /** Local addresses to send from (each one source); default `["127.0.0.2"]`. */
  sources?: string[];
  /** Connections per source (default 4). */
  connsPerSource?: number;
  /** Requests in flight per connection (default 32). */
  inflight?: number;
  /** Requests per second over all connections; 0: as fast as answered (default 0). */
  rate?: number;
}

/** Totals of a flood. */
export interface FloodResult {
  /** Requests answered. */
  answered: number;
  /** Answers by status code. */
  byStatus: Record<string, number>;
  /** Answered requests per second. */
  perS: number;
  /** Connections the gateway closed or refused (each opened again). */
  connectionsLost: number;
}

/**
 * Starts a flood; resolves to a function that stops it and returns the totals.
 *
 * @param o the flood
 * @returns the stop function, once every connection is open
 */
export async function startFlood(o: FloodOptions): Promise<() => FloodResult> {
  const sources = o.sources ?? ["127.0.0.2"];
  const inflight = o.inflight ?? 32;
  const rate = o.rate ?? 0;
  const byStatus: Record<string, number> = {};
  let answered = 0;
  let lost = 0;
  let n = 0;
  let running = true;
  const stamp = `${process.pid}-${Date.now().toString(36)}`;
  const conns: { socket: Socket; inflight: number }[] = [];
  const send = (c: { socket: Socket; inflight: number }) => {
    if (!running || c.socket.destroyed) return false;
    const room = `flood-${stamp}-${n++}`;
    c.socket.write(
      `POST /rooms/${room}/broadcast HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1\r\n\r\nx`,
    );
    c.inflight++;
    return true;
  };
  const open = (source: string, c: { socket: Socket; inflight: number }): Promise<void> => {
    const socket = connect({ port: o.port, host: "127.0.0.1", localAddress: source });
    socket.setNoDelay(true);
    c.socket = socket;
    c.inflight = 0;
    socket.on(
      "data",
      responseStatuses((status) => {
        byStatus[status] = (byStatus[status] ?? 0) + 1;
        answered++;
        c.inflight--;
        if (rate === 0) send(c);
      }),
    );
    socket.on("error", () => {});
    socket.on("close", () => {
      if (!running) return;
      lost++;
      // Reconnect at once (one attempt at a time per connection slot).
      setImmediate(() => {
        if (!running) return;
        open(source, c).then(() => {
          if (rate === 0) { for (let k = 0; k < inflight; k++) send(c); }
        });
      });
    });
    return new Promise<void>((resolve) => {
      socket.once("connect", () => resolve());
      socket.once("error", () => resolve());
    });
  };
  for (const source of sources) {
    for (let i = 0; i < (o.connsPerSource ?? 4); i++) {
      const c = { socket: null as unknown as Socket, inflight: 0 };
      await open(source, c);
      conns.push(c);
    }
  }
  const t0 = performance.now();
  let timer: ReturnType<typeof setInterval> | undefined;
  if (rate === 0) {
    for (const c of conns) for (let k = 0; k < inflight; k++) send(c);
  } else {
    let sent = 0;
    let cursor = 0;
    timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      while (sent < due) {
        const c = conns[cursor++ % conns.length];
        if (c.inflight >= inflight) break;
        if (!send(c)) break;
        sent++;
      }
    }, 2);
  }
  return () => {
    running = false;
    clearInterval(timer);
    const secs = (performance.now() - t0) / 1000;
    for (const c of conns) c.socket.destroy();
    return { answered, byStatus, perS: answered / secs, connectionsLost: lost };
  };
}

if (process.argv[1]?.endsWith("flood.ts")) {
  const opts = JSON.parse(process.argv[2] ?? "{}") as FloodOptions;
  const stop = await startFlood(opts);
  console.log(JSON.stringify({ phase: "flooding" }));
  const finish = () => {
    console.log(JSON.stringify({ phase: "done", ...stop() }));
    process.exit(0);
  };
  process.on("SIGTERM", finish);
  process.stdin.once("data", finish);
}
