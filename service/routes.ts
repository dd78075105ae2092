/**
 * Serving the sign API: one set of Connect routes (`signServiceRoutes`) for every transport.
 *
 * - Real gRPC (HTTP/2 with trailers): `connectNodeAdapter({ routes })` on a `node:http2` server
 *   (see main.ts); that adapter also answers gRPC-web and Connect on the same HTTP/2 port.
 * - gRPC-web and Connect from browsers and edge runtimes: `createSignServiceFetchHandler`, a
 *   Web-standard `(Request) => Promise<Response>` with CORS, served by `Deno.serve` or a small
 *   `node:http` adapter on a second port (browsers cannot speak HTTP/2 without TLS).
 *
 * With TLS both share one port (ALPN picks h2 for gRPC, HTTP/1.1 for browsers); without TLS the
 * gRPC port is h2c and the web port is HTTP/1.1. Request bodies are capped (`readMaxBytes`).
 * @module
 */
import {
  Code,
  ConnectError,
  type ConnectRouter,
  cors,
  createConnectRouter,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import { createFetchHandler, type UniversalHandler } from "@connectrpc/connect/protocol";
import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";

/** Largest request message accepted, in bytes (every request is small). */
export const MAX_REQUEST_BYTES = 64 * 1024;

/**
 * The routes of the sign API for `connectNodeAdapter` or a router.
 * @param impl the implementation (`createSignServiceImpl`).
 * @returns a router callback.
 */
export function signServiceRoutes(
  impl: ServiceImpl<typeof SignService>,
): (router: ConnectRouter) => void {
  return (router) =>
    router.service(SignService, impl, {
      readMaxBytes: MAX_REQUEST_BYTES,
      jsonOptions: { ignoreUnknownFields: false },
      binaryOptions: { readUnknownFields: true },
      interceptors: [refuseUnknownFields],
    });
}

/**
 * Requests with fields this API does not define are refused (INVALID_ARGUMENT) rather than
 * silently ignored: a client built for another API version learns it at once. JSON is refused
 * by the parser; binary unknown fields are kept by the parser and refused here.
 */
const refuseUnknownFields: Interceptor =
  (next) => (req: Parameters<ReturnType<Interceptor>>[0]) => {
    const unknown = (req as { message?: { $unknown?: unknown[] } }).message?.$unknown;
    if (!req.stream && Array.isArray(unknown) && unknown.length > 0) {
      throw new ConnectError(
        `unknown field(s) in ${req.method.name} request`,
        Code.InvalidArgument,
      );
    }
    return next(req);
  };

/** Options of the fetch handler. */
export interface FetchHandlerOptions {
  /** Origins whose pages may call the API (`*` for any; default none). */
  readonly corsOrigins?: readonly string[];
}

function jsonError(status: number, code: string, message: string, headers: Headers): Response {
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify({ code, message }), { status, headers });
}

/**
 * A fetch handler serving the sign API over gRPC-web and Connect (gRPC needs HTTP/2 trailers:
 * use `connectNodeAdapter`), with CORS for the configured origins.
 *
 * @param impl the implementation.
 * @param options allowed CORS origins.
 * @returns `(req: Request) => Promise<Response>`.
 */
export function createSignServiceFetchHandler(
  impl: ServiceImpl<typeof SignService>,
  options: FetchHandlerOptions = {},
): (req: Request) => Promise<Response> {
  const router = createConnectRouter({ grpc: false, grpcWeb: true, connect: true });
  signServiceRoutes(impl)(router);
  const byPath = new Map<string, (req: Request) => Promise<Response>>(
    router.handlers.map((h: UniversalHandler) => [h.requestPath, createFetchHandler(h)]),
  );
  const origins = new Set(options.corsOrigins ?? []);
  const allowed = (origin: string | null) =>
    origin !== null && (origins.has("*") || origins.has(origin));
  return async (req) => {
    const origin = req.headers.get("origin");
    const headers = new Headers();
    if (allowed(origin)) {
      headers.set("access-control-allow-origin", origin!);
      headers.set("vary", "origin");
      headers.set("access-control-expose-headers", cors.exposedHeaders.join(", "));
    }
    if (req.method === "OPTIONS") {
      if (!allowed(origin)) return jsonError(403, "cors_forbidden", "origin not allowed", headers);
      headers.set("access-control-allow-methods", cors.allowedMethods.join(", "));
      headers.set(
        "access-control-allow-headers",
        [...cors.allowedHeaders, "authorization"].join(", "),
      );
      headers.set("access-control-max-age", "7200");
      return new Response(null, { status: 204, headers });
    }
    const path = new URL(req.url).pathname;
    const handler = byPath.get(path);
    if (!handler) return jsonError(404, "not_found", `no route ${path.slice(0, 100)}`, headers);
    const res = await handler(req);
    if (headers.has("access-control-allow-origin")) {
      const out = new Headers(res.headers);
      for (const [k, v] of headers) out.set(k, v);
      return new Response(res.body, {
        status: res.status,
        statusText: res.statusText,
        headers: out,
      });
    }
    return res;
  };
}
