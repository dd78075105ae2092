/**
 * Serves a fetch handler with `node:http`: the one fetch-to-Node adapter of the sign-gateway and
 * the sign-service under Node, reduced to two converters (`IncomingMessage` -> `Request`,
 * `Response` -> `ServerResponse`) and a server lifecycle. Streams are pumped with backpressure (a
 * client that stops reading stops the pump; the handler's bounded queue then decides), and a
 * client that disconnects cancels the response body.
 *
 * {@link serveNode} runs a whole HTTP/1.1 server; {@link createNodeListener} is the same
 * conversion as a `request` listener, for a server made elsewhere (the service's TLS server,
 * which answers HTTP/1.1 requests with it and HTTP/2 ones with gRPC).
 *
 * @module
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { LightRequest } from "./_node_request.ts";

/** A fetch-style handler. */
export type FetchHandler = (req: Request) => Promise<Response>;

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
}

/** A `request` listener that serves a fetch handler. */
export interface NodeListener {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Responses begun and not yet closed (a graceful shutdown waits for them). */
  readonly open: ReadonlySet<ServerResponse>;
}

/** Options of {@link serveNode}. */
export interface NodeServeOptions extends Omit<NodeListenerOptions, "defaultHost"> {
  /** Interface to bind (default 127.0.0.1). */
  hostname?: string;
  /** Port (0 picks a free one). */
  port: number;
}

/** A running Node server. */
export interface NodeServer {
  /** The underlying server. */
  readonly server: Server;
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
 * ```ts ignore
 * import { createServer } from "node:http";
 * import { createNodeListener } from "./node_adapter.ts";
 * createServer(createNodeListener(async () => new Response("ok"))).listen(0);
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
    open.add(res);
    res.on("close", () => open.delete(res));
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
      const url = `${scheme}://${req.headers.host ?? defaultHost()}${req.url ?? "/"}`;
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
      res.writeHead(400, { "content-type": "application/json", connection: "close" });
      res.end('{"error":"invalid_request","message":"malformed HTTP request"}');
      return;
    }
    let response: Response;
    try {
      response = await handler(request as unknown as Request);
    } catch (e) {
      onError(e);
      response = new Response('{"error":"internal","message":"internal error"}', {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    }
    if (res.destroyed) {
      response.body?.cancel().catch(() => {});
      return;
    }
    const out: Record<string, string | string[]> = {};
    response.headers.forEach((v, k) => {
      out[k] = v;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) out["set-cookie"] = cookies;
    if (state.attached && !req.complete) out["connection"] = "close";
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
          if (res.destroyed) return;
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
 * Starts a `node:http` server for a fetch handler.
 *
 * @param handler the fetch handler
 * @param options bind address and port
 * @returns the running server once it listens
 * @throws {Error} when the port cannot be bound
 * @example
 * ```ts ignore
 * import { serveNode } from "./node_adapter.ts";
 * const s = await serveNode(async () => new Response("ok"), { port: 0 });
 * await s.shutdown();
 * ```
 */
export async function serveNode(
  handler: FetchHandler,
  options: NodeServeOptions,
): Promise<NodeServer> {
  const hostname = options.hostname ?? "127.0.0.1";
  const sockets = new Set<Socket>();
  const listener = createNodeListener(handler, {
    ...options,
    defaultHost: () => `${hostname}:${port}`,
  });
  const open = listener.open;
  const server = createServer(listener);
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("clientError", (_e, socket: Socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    server,
    hostname,
    port,
    async shutdown(graceMs = 5000) {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waitOpen = new Promise<void>((resolve) => {
        const check = () => {
          server.closeIdleConnections();
          if (open.size === 0) resolve();
          else timer = setTimeout(check, 20);
        };
        check();
      });
      let cut: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([waitOpen, new Promise<void>((r) => (cut = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      clearTimeout(cut);
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
