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
 *
 * A request body that is not a protobuf message of the method's input type is the caller's fault
 * on every protocol: `INVALID_ARGUMENT`, like malformed JSON (connect-es itself answers INTERNAL
 * for binary; see `requestFaultsAsInvalidArgument`).
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
import {
  createFetchHandler,
  encodeEnvelope,
  type UniversalHandler,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { trailerFlag, trailerParse, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { concatBytes } from "@noble/hashes/utils.js";
import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { MAX_MESSAGE_BYTES } from "../session/inputs.ts";

/**
 * Largest request message accepted, in bytes: a SignMessage of the largest message (128 KiB, as
 * hex in JSON) with its other fields; every other request is far smaller.
 */
export const MAX_REQUEST_BYTES = 2 * MAX_MESSAGE_BYTES + 8 * 1024;

/**
 * The routes of the sign API for `connectNodeAdapter` or a router.
 * @param impl the implementation (`createSignServiceImpl`).
 * @returns a router callback.
 */
export function signServiceRoutes(
  impl: ServiceImpl<typeof SignService>,
): (router: ConnectRouter) => void {
  return (router) => {
    const first = router.handlers.length;
    router.service(SignService, impl, {
      readMaxBytes: MAX_REQUEST_BYTES,
      jsonOptions: { ignoreUnknownFields: false },
      binaryOptions: { readUnknownFields: true },
      interceptors: [refuseUnknownFields],
    });
    for (let k = first; k < router.handlers.length; k++) {
      router.handlers[k] = requestFaultsAsInvalidArgument(router.handlers[k]);
    }
  };
}

/**
 * The messages with which connect-es refuses a request body as INTERNAL: its binary parser
 * (`createBinarySerialization`), a frame flagged compressed without a negotiated encoding
 * (`envelopeDecompress`, whose own doc says InvalidArgument), and a compressed body zlib cannot
 * inflate (connect-node; a truncated gzip stream).
 */
const REQUEST_FAULTS = [
  "parse binary: ",
  "received compressed envelope, but do not know how to decompress",
  "decompression failed",
];
const isRequestFault = (message: string) => REQUEST_FAULTS.some((m) => message.startsWith(m));
const GRPC_INTERNAL = "13";
const GRPC_INVALID_ARGUMENT = "3";

/**
 * Answers the caller's faults that connect-es itself mishandles with INVALID_ARGUMENT:
 *
 * 1. connect-es parses a request body before any interceptor runs and answers a binary body its
 *    parser refuses ("parse binary: premature EOF", "illegal tag ...", "invalid varint") with
 *    INTERNAL, whatever the protocol; the JSON parser's refusals are INVALID_ARGUMENT. So are a
 *    frame flagged compressed without an encoding and a compressed body that does not inflate
 *    (`REQUEST_FAULTS`; found by the rpc-routes fuzz harness). A malformed request must not drive
 *    5xx alerting (issue 15, finding 3), so exactly those answers become INVALID_ARGUMENT,
 *    message kept: the Connect JSON error body (HTTP 500 -> 400, `internal` ->
 *    `invalid_argument`), the gRPC `grpc-status` trailer (13 -> 3, set before the response
 *    resolves), the gRPC-web trailer frame at the end of the body.
 * 2. Over gRPC and gRPC-web, connect-es percent-encodes the error message into the
 *    `grpc-message` trailer with `encodeURIComponent`, which throws on a lone surrogate; a JSON
 *    request naming an unknown field `"\ud800"` puts one there (the parser quotes the name). The
 *    handler then rejects: connect-node logs it and never answers the stream, the fetch handler
 *    fails. Found by the rpc-routes fuzz harness. That rejection is answered INVALID_ARGUMENT in
 *    the request's protocol, with a fixed message.
 *
 * Every other response passes through untouched (and is not buffered).
 */
function requestFaultsAsInvalidArgument(h: UniversalHandler): UniversalHandler {
  const handle = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    let res: UniversalServerResponse;
    try {
      res = await h(req);
    } catch (e) {
      if (e instanceof URIError) return unencodableRequest(req.header.get("content-type") ?? "");
      throw e;
    }
    const type = res.header?.get("content-type") ?? "";
    if (type.startsWith("application/grpc-web")) {
      return res.body ? { ...res, body: mapGrpcWebTrailers(res.body) } : res;
    }
    if (type.startsWith("application/grpc")) {
      if (res.trailer) mapGrpcStatus(res.trailer);
      return res;
    }
    if (res.status === 500 && type.startsWith("application/json") && res.body) {
      return await mapConnectError(res, res.body);
    }
    return res;
  };
  return Object.assign(handle, h);
}

const UNENCODABLE = "invalid request: text that is not well-formed Unicode";

/** INVALID_ARGUMENT for a request whose error message could not be encoded, per protocol. */
function unencodableRequest(requestType: string): UniversalServerResponse {
  const json = requestType.includes("json");
  const status = new Headers({
    "grpc-status": GRPC_INVALID_ARGUMENT,
    "grpc-message": encodeURIComponent(UNENCODABLE),
  });
  const once = (b: Uint8Array) =>
    (async function* () {
      yield b;
    })();
  if (requestType.startsWith("application/grpc-web")) {
    return {
      status: 200,
      header: new Headers({
        "content-type": json ? "application/grpc-web+json" : "application/grpc-web+proto",
      }),
      body: once(encodeEnvelope(trailerFlag, trailerSerialize(status))),
    };
  }
  if (requestType.startsWith("application/grpc")) {
    return {
      status: 200,
      header: new Headers({
        "content-type": json ? "application/grpc+json" : "application/grpc+proto",
      }),
      body: (async function* (): AsyncGenerator<Uint8Array> {})(),
      trailer: status,
    };
  }
  const body = new TextEncoder().encode(
    JSON.stringify({ code: "invalid_argument", message: UNENCODABLE }),
  );
  return {
    status: 400,
    header: new Headers({ "content-type": "application/json" }),
    body: once(body),
  };
}

/** Whether a gRPC status and its (percent-encoded) message refuse the request body. */
function isGrpcRequestFault(status: string | null, message: string | null): boolean {
  if (status !== GRPC_INTERNAL || message === null) return false;
  try {
    return isRequestFault(decodeURIComponent(message));
  } catch {
    return false;
  }
}

function mapGrpcStatus(trailer: Headers): void {
  if (isGrpcRequestFault(trailer.get("grpc-status"), trailer.get("grpc-message"))) {
    trailer.set("grpc-status", GRPC_INVALID_ARGUMENT);
  }
}

async function* mapGrpcWebTrailers(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  // connect-es yields each frame as one chunk; the trailer frame (uncompressed) comes last.
  for await (const chunk of body) {
    const len = chunk.length >= 5
      ? new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength).getUint32(1)
      : -1;
    if (chunk[0] !== trailerFlag || len !== chunk.length - 5) {
      yield chunk;
      continue;
    }
    const trailer = trailerParse(chunk.subarray(5));
    if (!isGrpcRequestFault(trailer.get("grpc-status"), trailer.get("grpc-message"))) {
      yield chunk;
      continue;
    }
    trailer.set("grpc-status", GRPC_INVALID_ARGUMENT);
    yield encodeEnvelope(trailerFlag, trailerSerialize(trailer));
  }
}

async function mapConnectError(
  res: UniversalServerResponse,
  body: AsyncIterable<Uint8Array>,
): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const c of body) chunks.push(c);
  const bytes = concatBytes(...chunks);
  let error: { code?: unknown; message?: unknown } | null = null;
  try {
    error = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    // not an error body of connect-es: passed on as it was
  }
  if (
    error?.code !== "internal" || typeof error.message !== "string" ||
    !isRequestFault(error.message)
  ) {
    return {
      ...res,
      body: (async function* () {
        yield bytes;
      })(),
    };
  }
  const out = new TextEncoder().encode(JSON.stringify({ ...error, code: "invalid_argument" }));
  const header = new Headers(res.header);
  header.set("content-length", String(out.length));
  return {
    ...res,
    status: 400,
    header,
    body: (async function* () {
      yield out;
    })(),
  };
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
