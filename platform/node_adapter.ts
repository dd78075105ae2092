/**
 * Serves a fetch handler with `node:http`: the one fetch-to-Node adapter of the sign-gateway and
 * the sign-service under Node, reduced to two converters (`IncomingMessage` -> `Request`,
 * `Response` -> `ServerResponse`) and a server lifecycle. Streams are pumped with backpressure (a
 * client that stops reading stops the pump; the handler's bounded queue then decides), and a
 * client that disconnects cancels the response body.
 *
 * {@link serveNode} runs a whole server: HTTP/1.1, or with `tls` HTTP/1.1 and HTTP/2 over TLS
 * (ALPN; `node:http2`'s compatibility API, converted the same way). With a `guard`
 * (`platform/connection_guard.ts`) it refuses connections beyond the connection limits and closes
 * the ones that send no complete request head in time or stay idle. The handler gets the peer's
 * address as its second argument, in `Deno.serve`'s shape. {@link createNodeListener} is the
 * conversion as a `request` listener, for a server made elsewhere (the service's TLS server,
 * which answers HTTP/1.1 requests with it and HTTP/2 ones with gRPC).
 *
 * @module
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createSecureServer } from "node:http2";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import { LightRequest } from "./_node_request.ts";
import {
  type ConnectionGuard,
  type GuardedConnection,
  refusalResponse,
} from "./connection_guard.ts";

/** What a server tells a handler of a request's connection (`Deno.serve`'s shape). */
export interface ServeInfo {
  /** The peer of the connection. */
  readonly remoteAddr: {
    readonly transport: "tcp";
    readonly hostname: string;
    readonly port: number;
  };
}

/** A fetch-style handler; the second argument names the peer. */
export type FetchHandler = (req: Request, info?: ServeInfo) => Promise<Response>;

/** Options of {@link createNodeListener}. */
export interface NodeListenerOptions {
  /**
   * Request bodies announced with a Content-Length up to this many bytes are read before the
   * handler runs (faster); larger or chunked ones are streamed. Default 1 MiB.
   */
  bufferBodyBytes?: number;
  /** Called on unexpected adapter errors (never with bodies or headers). */
  onError?: (error: unknown) => void;
  /** Scheme of the request URLs the handler sees (default `http`). */
  scheme?: "http" | "https";
  /** Host (`name:port`) of a request that sends no Host header (default `127.0.0.1`). */
  defaultHost?: () => string;
  /**
   * Called when a request starts; returns what to call when it ends, or `false` to refuse it
   * (its connection was refused). Default: nothing to track.
   */
  onRequest?: (req: IncomingMessage) => (() => void) | false;
}

/** A `request` listener that serves a fetch handler. */
export interface NodeListener {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Responses begun and not yet closed (a graceful shutdown waits for them). */
  readonly open: ReadonlySet<ServerResponse>;
}

/** Options of {@link serveNode}. */
export interface NodeServeOptions
  extends Omit<NodeListenerOptions, "defaultHost" | "scheme" | "onRequest"> {
  /** Interface to bind (default 127.0.0.1). */
  hostname?: string;
  /** Port (0 picks a free one). */
  port: number;
  /** Certificate chain and key (PEM): HTTP/1.1 and HTTP/2 over TLS. Default: plain HTTP/1.1. */
  tls?: { readonly cert: string; readonly key: string };
  /** Connection limits and deadlines (default: none beyond Node's own). */
  guard?: ConnectionGuard;
  /**
   * Node's own deadlines, set a second beyond the guard's so that the guard's act first (and
   * count): head of a request, idle keep-alive, whole request (body included).
   */
  timeouts?: { headersMs: number; keepAliveMs: number; requestMs: number };
  /** Streams one HTTP/2 connection may carry at once (default 100). */
  maxConcurrentStreams?: number;
}

/** A running Node server. */
export interface NodeServer {
  /** The underlying server (`node:http`, or `node:http2` with TLS). */
  readonly server: NetServer;
  /** Bound address. */
  readonly hostname: string;
  /** Bound port. */
  readonly port: number;
  /**
   * Stops accepting connections, waits for open responses to end, then closes idle and (after
   * `graceMs`) all connections.
   */
  shutdown(graceMs?: number): Promise<void>;
}

const NO_BODY = new Set(["GET", "HEAD"]);

/** Response headers HTTP/2 forbids (connection-specific). */
const HTTP1_ONLY = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/** Whether a response (HTTP/1.1, or HTTP/2 compatibility) can no longer be written. */
function gone(res: ServerResponse): boolean {
  const r = res as ServerResponse & { stream?: { destroyed?: boolean } };
  return r.destroyed === true || r.stream?.destroyed === true;
}

function requestHeaders(raw: string[]): Headers {
  const h = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    // HTTP/2 pseudo headers and invalid names cannot be represented; skip them.
    if (name.charCodeAt(0) === 58) continue;
    try {
      h.append(name, raw[i + 1]);
    } catch {
      // invalid header value: ignored
    }
  }
  return h;
}

function streamBody(
  req: IncomingMessage,
  state: { attached: boolean },
): ReadableStream<Uint8Array> {
  let done = false;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (!state.attached) {
        state.attached = true;
        req.on("data", (chunk: Buffer) => {
          if (done) return;
          c.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
          if ((c.desiredSize ?? 0) <= 0) req.pause();
        });
        req.on("end", () => {
          if (done) return;
          done = true;
          c.close();
        });
        req.on("error", (e) => {
          if (done) return;
          done = true;
          c.error(e);
        });
      }
      req.resume();
    },
    cancel() {
      done = true;
      req.resume();
    },
  }, { highWaterMark: 1 });
}

function readWhole(req: IncomingMessage, length: number): Promise<Uint8Array | null> {
  return new Promise((resolve) => {
    const buf = new Uint8Array(length);
    let off = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (off + chunk.length > length) {
        failed = true;
        return;
      }
      buf.set(chunk, off);
      off += chunk.length;
    });
    req.on("end", () => resolve(failed || off !== length ? null : buf));
    req.on("error", () => resolve(null));
    req.on("aborted", () => resolve(null));
  });
}

/**
 * A `node:http` `request` listener for a fetch handler (the conversion of {@link serveNode}).
 *
 * @param handler the fetch handler
 * @param options body buffering, error hook, scheme and default host of the request URLs
 * @returns the listener, with the set of responses still open
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import type { AddressInfo } from "node:net";
 * import { createNodeListener } from "./node_adapter.ts";
 * const listener = createNodeListener(async (req) => new Response(new URL(req.url).pathname));
 * const server = createServer(listener);
 * await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
 * const { port } = server.address() as AddressInfo;
 * console.assert((await (await fetch(`http://127.0.0.1:${port}/a`)).text()) === "/a");
 * server.closeAllConnections();
 * await new Promise((closed) => server.close(closed));
 * ```
 */
export function createNodeListener(
  handler: FetchHandler,
  options: NodeListenerOptions = {},
): NodeListener {
  const bufferLimit = options.bufferBodyBytes ?? 1024 * 1024;
  const onError = options.onError ?? (() => {});
  const scheme = options.scheme ?? "http";
  const defaultHost = options.defaultHost ?? (() => "127.0.0.1");
  const open = new Set<ServerResponse>();

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const done = options.onRequest?.(req);
    if (done === false) {
      res.destroy();
      return;
    }
    open.add(res);
    res.on("close", () => {
      open.delete(res);
      done?.();
    });
    const h2 = req.httpVersionMajor >= 2;
    const method = req.method ?? "GET";
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
    let request: LightRequest | null = null;
    let finished = false;
    res.on("close", () => {
      if (!finished) {
        request?.abortNow();
        reader?.cancel().catch(() => {});
      }
    });
    const state = { attached: false };
    try {
      const host = req.headers.host ?? req.headers[":authority"] ?? defaultHost();
      const url = `${scheme}://${host}${req.url ?? "/"}`;
      new URL(url); // refuse a Host header that does not make a URL
      const headers = requestHeaders(req.rawHeaders);
      let body: Uint8Array | ReadableStream<Uint8Array> | null = null;
      if (!NO_BODY.has(method)) {
        const cl = req.headers["content-length"];
        const n = cl !== undefined && /^[0-9]{1,15}$/.test(cl) ? Number(cl) : -1;
        if (n === 0) {
          body = null;
        } else if (n > 0 && n <= bufferLimit) {
          const whole = await readWhole(req, n);
          if (whole === null) {
            res.destroy();
            return;
          }
          body = whole;
        } else {
          body = streamBody(req, state);
        }
      }
      request = new LightRequest({ method, url, headers, body });
    } catch {
      res.writeHead(400, {
        "content-type": "application/json",
        ...(h2 ? {} : { connection: "close" }),
      });
      res.end('{"error":"invalid_request","message":"malformed HTTP request"}');
      return;
    }
    let response: Response;
    try {
      response = await handler(request as unknown as Request, {
        remoteAddr: {
          transport: "tcp",
          hostname: req.socket.remoteAddress ?? "",
          port: req.socket.remotePort ?? 0,
        },
      });
    } catch (e) {
      onError(e);
      response = new Response('{"error":"internal","message":"internal error"}', {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    }
    if (gone(res)) {
      response.body?.cancel().catch(() => {});
      return;
    }
    const out: Record<string, string | string[]> = {};
    response.headers.forEach((v, k) => {
      if (!h2 || !HTTP1_ONLY.has(k)) out[k] = v;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) out["set-cookie"] = cookies;
    if (state.attached && !req.complete && !h2) out["connection"] = "close";
    res.writeHead(response.status, out);
    if (response.body === null || method === "HEAD") {
      finished = true;
      res.end();
      response.body?.cancel().catch(() => {});
      return;
    }
    // Send the head now: a stream may take a while to produce its first bytes.
    res.flushHeaders();
    reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!res.write(value)) {
          await new Promise<void>((resolve) => {
            const go = () => {
              res.off("drain", go);
              res.off("close", go);
              resolve();
            };
            res.on("drain", go);
            res.on("close", go);
          });
          if (gone(res)) return;
        }
      }
      finished = true;
      res.end();
    } catch {
      // The handler errored its stream (e.g. a slow subscriber was dropped): cut the connection.
      finished = true;
      res.destroy();
    }
  }

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    serve(req, res).catch((e) => {
      onError(e);
      res.destroy();
    });
  };
  return Object.assign(listener, { open: open as ReadonlySet<ServerResponse> });
}

/**
 * Starts a `node:http` server (or, with `tls`, a `node:http2` server that also speaks HTTP/1.1)
 * for a fetch handler, with the guard's connection limits and deadlines.
 *
 * @param handler the fetch handler
 * @param options bind address and port, TLS, connection guard, Node's own deadlines
 * @returns the running server once it listens
 * @throws {Error} when the port cannot be bound
 * @example
 * ```ts
 * import { serveNode } from "./node_adapter.ts";
 * const s = await serveNode(async () => new Response("ok"), { port: 0 });
 * console.assert((await (await fetch(`http://127.0.0.1:${s.port}/`)).text()) === "ok");
 * await s.shutdown();
 * ```
 */
export async function serveNode(
  handler: FetchHandler,
  options: NodeServeOptions,
): Promise<NodeServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const sockets = new Set<Socket>();
  const guard = options.guard;
  /** Admitted connections by `address|port` (the same for a TLS socket and its TCP socket). */
  const admitted = new Map<string, GuardedConnection>();
  const key = (s: { remoteAddress?: string; remotePort?: number }) =>
    `${s.remoteAddress}|${s.remotePort}`;
  const listener = createNodeListener(handler, {
    ...options,
    scheme: options.tls ? "https" : "http",
    defaultHost: () => `${hostname}:${port}`,
    onRequest: guard
      ? (req) => {
        const c = admitted.get(key(req.socket));
        if (c === undefined) return false;
        c.requestStarted();
        let ended = false;
        return () => {
          if (ended) return;
          ended = true;
          c.requestEnded();
        };
      }
      : undefined,
  });
  const open = listener.open;
  const t = options.timeouts;
  // Node's deadlines back the guard's up: a second later, so that the guard's act (and count).
  const nodeTimeouts = t
    ? {
      headersTimeout: t.headersMs + 1000,
      requestTimeout: Math.max(t.requestMs, t.headersMs + 1000) + 1000,
      keepAliveTimeout: t.keepAliveMs + 1000,
      connectionsCheckingInterval: Math.max(100, Math.min(t.headersMs, t.keepAliveMs) / 4),
    }
    : {};
  let server: NetServer;
  if (options.tls) {
    const secure = createSecureServer({
      cert: options.tls.cert,
      key: options.tls.key,
      allowHTTP1: true,
      settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 100 },
    });
    secure.on("request", (req, res) => {
      listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    });
    secure.on("tlsClientError", (_e, socket: Socket) => socket.destroy());
    server = secure;
  } else {
    const plain = createServer(nodeTimeouts, listener);
    plain.on("clientError", (_e, socket: Socket) => {
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
      else socket.destroy();
    });
    if (t) plain.keepAliveTimeout = nodeTimeouts.keepAliveTimeout!;
    server = plain;
  }
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    if (!guard) return;
    const c = guard.admit(s.remoteAddress ?? "", () => s.destroy());
    if (typeof c === "string") {
      // TLS: no plaintext answer is possible; a banned source is closed at once (it is flooding).
      if (options.tls || c === "source_ban") s.destroy();
      else s.end(refusalResponse(c));
      return;
    }
    const k = key(s);
    admitted.set(k, c);
    s.on("close", () => {
      if (admitted.get(k) === c) admitted.delete(k);
      c.release();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const closeIdle = () => (server as Server).closeIdleConnections?.();

  return {
    server,
    hostname,
    port,
    async shutdown(graceMs = 5000) {
      const closed = new Promise<void>((r) => server.close(() => r()));
      closeIdle();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waitOpen = new Promise<void>((resolve) => {
        const check = () => {
          closeIdle();
          if (open.size === 0) resolve();
          else timer = setTimeout(check, 20);
        };
        check();
      });
      let cut: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([waitOpen, new Promise<void>((r) => (cut = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      clearTimeout(cut);
      (server as Server).closeAllConnections?.();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
