/**
 * Serves a fetch handler under Deno with control of each connection: the server accepts TCP
 * connections itself (`Deno.listen`), so it can refuse them beyond the connection limits and close
 * them at a deadline (`platform/connection_guard.ts`), and serves each one with the HTTP machinery
 * `Deno.serve` is built on (`serveHttpOnConnection`: hyper, HTTP/1.1 with keep-alive and
 * pipelining, the same throughput). `Deno.serve` itself offers neither: it has no limit on
 * connections and no deadline for a request head, so a client that opens connections and never
 * finishes a request holds them forever.
 *
 * `serveHttpOnConnection` is Deno's own (reached through `Deno[Deno.internal]`, as Deno's Node
 * compatibility layer does); {@link denoConnectionServer} reports whether this Deno has it, and the
 * caller falls back to the `node:http` adapter (`platform/node_adapter.ts`, also under Deno: the
 * same limits, about half the throughput) when it does not. TLS is served by the Node adapter
 * too: a TLS connection accepted by `Deno.listenTls` that never sends its ClientHello cannot be
 * closed by the server (tested with Deno 2.9).
 *
 * @module
 */
import { type ConnectionGuard, refusalResponse } from "./connection_guard.ts";
import type { FetchHandler, ServeInfo } from "./node_adapter.ts";

/** Deno's per-connection server (`Deno.serve`'s machinery), as this module uses it. */
type ServeOnConnection = (
  conn: Deno.Conn,
  signal: AbortSignal,
  handler: (req: Request, info: { completed: Promise<void> }) => Promise<Response>,
  onError: (e: unknown) => Response,
  onListen: () => void,
) => { finished: Promise<void>; shutdown(): Promise<void> };

/** Options of {@link serveDeno}. */
export interface DenoServeOptions {
  /** Interface to bind (default 127.0.0.1). */
  readonly hostname?: string;
  /** Port (0 picks a free one). */
  readonly port: number;
  /** Connection limits and deadlines. */
  readonly guard: ConnectionGuard;
  /** Called on unexpected errors (never with bodies or headers). */
  readonly onError?: (error: unknown) => void;
}

/** A running server. */
export interface DenoServer {
  /** Bound address. */
  readonly hostname: string;
  /** Bound port. */
  readonly port: number;
  /**
   * Stops accepting connections, lets each connection finish its requests, and closes the ones
   * still open after `graceMs`.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/**
 * Deno's per-connection server, when this runtime has it.
 *
 * @returns the function, or null (not Deno, or a Deno without it)
 */
export function denoConnectionServer(): ServeOnConnection | null {
  const d = (globalThis as { Deno?: { internal?: symbol } }).Deno;
  if (d === undefined || d.internal === undefined) return null;
  const internals = (d as unknown as Record<symbol, Record<string, unknown>>)[d.internal];
  const f = internals?.serveHttpOnConnection;
  return typeof f === "function" ? f as ServeOnConnection : null;
}

const encoder = new TextEncoder();

/**
 * Serves `handler` on a TCP port, one connection at a time under the guard (module doc).
 *
 * @param handler the fetch handler; its second argument names the peer
 * @param options bind address, port, guard, error hook
 * @returns the running server
 * @throws {Error} when this Deno has no per-connection server ({@link denoConnectionServer}) or
 * the port cannot be bound
 * @example
 * ```ts
 * import { ConnectionGuard } from "./connection_guard.ts";
 * import { serveDeno } from "./deno_server.ts";
 * const guard = new ConnectionGuard({
 *   maxConnections: 100, maxConnectionsPerSource: 10, headersTimeoutMs: 10_000,
 *   keepAliveTimeoutMs: 5000,
 * });
 * const s = serveDeno(async () => new Response("ok"), { port: 0, guard });
 * console.assert((await (await fetch(`http://127.0.0.1:${s.port}/`)).text()) === "ok");
 * await s.shutdown();
 * guard.stop();
 * ```
 */
export function serveDeno(handler: FetchHandler, options: DenoServeOptions): DenoServer {
  const serveOn = denoConnectionServer();
  if (serveOn === null) throw new Error("this Deno has no per-connection HTTP server");
  const hostname = options.hostname ?? "127.0.0.1";
  const listener = Deno.listen({ hostname, port: options.port, transport: "tcp" });
  const onError = options.onError ?? (() => {});
  const { guard } = options;
  const servers = new Set<{ finished: Promise<void>; shutdown(): Promise<void> }>();
  const aborts = new Set<AbortController>();

  const serveOne = (conn: Deno.Conn) => {
    const peer = conn.remoteAddr as Deno.NetAddr;
    const abort = new AbortController();
    const admitted = guard.admit(peer.hostname, () => abort.abort());
    if (typeof admitted === "string") {
      const close = () => {
        try {
          conn.close();
        } catch {
          // already closed
        }
      };
      // A banned source is closed at once (it is flooding: no answer is owed, and none is cheaper).
      if (admitted === "source_ban") close();
      else conn.write(encoder.encode(refusalResponse(admitted))).catch(() => 0).finally(close);
      return;
    }
    try {
      (conn as Deno.TcpConn).setNoDelay(true);
    } catch {
      // not a TCP socket option here
    }
    const info: ServeInfo = {
      remoteAddr: { transport: "tcp", hostname: peer.hostname, port: peer.port },
    };
    const ended = () => admitted.requestEnded();
    const server = serveOn(conn, abort.signal, (req, denoInfo) => {
      admitted.requestStarted();
      denoInfo.completed.then(ended, ended);
      return handler(req, info);
    }, (e) => {
      onError(e);
      return new Response('{"error":"internal","message":"internal error"}', {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    }, () => {});
    servers.add(server);
    aborts.add(abort);
    const release = () => {
      servers.delete(server);
      aborts.delete(abort);
      admitted.release();
    };
    server.finished.then(release, release);
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) serveOne(conn);
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource)) onError(e);
    }
  })();
  const addr = listener.addr as Deno.NetAddr;

  return {
    hostname: addr.hostname,
    port: addr.port,
    async shutdown(graceMs = 5000) {
      try {
        listener.close();
      } catch {
        // already closed
      }
      await accepting;
      let cut: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...servers].map((s) => s.shutdown())),
        new Promise<void>((r) => (cut = setTimeout(r, graceMs))),
      ]);
      clearTimeout(cut);
      for (const a of aborts) a.abort();
      await Promise.allSettled([...servers].map((s) => s.finished));
    },
  };
}
