/**
 * The fetch handler (gRPC-web and Connect) with hostile wire data: no socket, a stub
 * implementation that records calls. Malformed bodies are answered with a clear error and never
 * reach the implementation.
 */
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { createConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { trailerFlag, trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { GetPublicKeyRequestSchema, type SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { createSignServiceFetchHandler, MAX_REQUEST_BYTES, signServiceRoutes } from "./routes.ts";

const BASE = "http://service.test/wallet_mpc.v1.SignService";

function setup(corsOrigins: string[] = []) {
  const calls: string[] = [];
  const impl: Partial<ServiceImpl<typeof SignService>> = {
    health: () => {
      calls.push("health");
      return { status: "serving", partyIndex: 1, accounts: 0, version: "test" };
    },
    getPublicKey: (req) => {
      calls.push(`getPublicKey:${req.accountId}`);
      return { publicKey: "02" + "11".repeat(32), address: "0x", derivationPath: "m" };
    },
  };
  const handler = createSignServiceFetchHandler(impl as ServiceImpl<typeof SignService>, {
    corsOrigins,
  });
  return { calls, handler, impl };
}

const connectJson = (body: string, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body,
});

test("routes: Connect JSON and gRPC-web binary reach the implementation", async () => {
  const { calls, handler } = setup();
  const r1 = await handler(new Request(`${BASE}/Health`, connectJson("{}")));
  assert.equal(r1.status, 200);
  assert.equal((await r1.json()).status, "serving");
  const msg = toBinary(
    GetPublicKeyRequestSchema,
    create(GetPublicKeyRequestSchema, { accountId: "a" }),
  );
  const frame = new Uint8Array(5 + msg.length);
  new DataView(frame.buffer).setUint32(1, msg.length);
  frame.set(msg, 5);
  const r2 = await handler(
    new Request(`${BASE}/GetPublicKey`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: frame,
    }),
  );
  assert.equal(r2.status, 200);
  await r2.arrayBuffer();
  assert.deepEqual(calls, ["health", "getPublicKey:a"]);
});

const HOSTILE: [string, () => Request, RegExp][] = [
  [
    "truncated JSON",
    () => new Request(`${BASE}/GetPublicKey`, connectJson('{"accountId": "a"')),
    /invalid_argument|internal/,
  ],
  [
    "JSON of the wrong type",
    () => new Request(`${BASE}/GetPublicKey`, connectJson('{"accountId": 42}')),
    /invalid_argument/,
  ],
  [
    "an unknown JSON field",
    () => new Request(`${BASE}/GetPublicKey`, connectJson('{"accountId": "a", "evil": 1}')),
    /invalid_argument/,
  ],
  [
    "a JSON array",
    () => new Request(`${BASE}/GetPublicKey`, connectJson("[1,2]")),
    /invalid_argument/,
  ],
  [
    "garbage protobuf",
    () =>
      new Request(`${BASE}/GetPublicKey`, {
        method: "POST",
        headers: { "content-type": "application/proto" },
        body: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]),
      }),
    // connect-es says "internal"; the routes answer "invalid_argument" (issue 15, finding 3).
    /invalid_argument/,
  ],
  [
    "an unknown binary field",
    () =>
      new Request(`${BASE}/GetPublicKey`, {
        method: "POST",
        headers: { "content-type": "application/proto" },
        body: new Uint8Array([0x0a, 0x01, 0x61, 0xf8, 0x06, 0x01]), // field 1 = "a", field 111 = 1
      }),
    /invalid_argument/,
  ],
  [
    "an oversized body",
    () =>
      new Request(
        `${BASE}/GetPublicKey`,
        connectJson(`{"accountId": "${"a".repeat(MAX_REQUEST_BYTES + 10)}"}`),
      ),
    /resource_exhausted|invalid_argument/,
  ],
];

for (const [name, make, code] of HOSTILE) {
  test(`routes: ${name} is answered with a clear error and never reaches the implementation`, async () => {
    const { calls, handler } = setup();
    const res = await handler(make());
    assert.ok(res.status >= 400, `status ${res.status}`);
    const body = await res.json();
    assert.ok(typeof body.message === "string" && body.message.length > 0);
    assert.match(String(body.code), code);
    assert.deepEqual(calls, []);
  });
}

test("routes: unknown paths are 404 and methods other than POST are refused", async () => {
  const { calls, handler } = setup();
  assert.equal((await handler(new Request(`${BASE}/Nope`, connectJson("{}")))).status, 404);
  assert.equal((await handler(new Request("http://service.test/../../etc/passwd"))).status, 404);
  const get = await handler(new Request(`${BASE}/Health`));
  assert.ok(get.status >= 400, `GET status ${get.status}`);
  assert.deepEqual(calls, []);
});

test("routes: CORS preflight allowed for configured origins only; responses carry the origin", async () => {
  const { handler } = setup(["https://wallet.example"]);
  const pre = (origin: string) =>
    handler(
      new Request(`${BASE}/Health`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST" },
      }),
    );
  const ok = await pre("https://wallet.example");
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get("access-control-allow-origin"), "https://wallet.example");
  assert.match(ok.headers.get("access-control-allow-headers")!, /authorization/);
  assert.equal((await pre("https://evil.example")).status, 403);
  const res = await handler(
    new Request(`${BASE}/Health`, connectJson("{}", { origin: "https://wallet.example" })),
  );
  assert.equal(res.headers.get("access-control-allow-origin"), "https://wallet.example");
  const other = await handler(
    new Request(`${BASE}/Health`, connectJson("{}", { origin: "https://evil.example" })),
  );
  assert.equal(other.headers.get("access-control-allow-origin"), null);
});

// ---- malformed binary bodies are INVALID_ARGUMENT on every protocol (issue 15, finding 3) ----

/** Bodies protobuf-es refuses as a GetPublicKeyRequest, with the parser's complaint. */
const MALFORMED_BINARY: [string, number[]][] = [
  ["premature EOF", [0x0a, 0x05, 0x61]],
  ["illegal tag: field no 0", [0x00, 0x01]],
  ["invalid varint", [0x08, ...new Array(10).fill(0xff), 0x01]],
  ["illegal tag: field no 1 wire type 6", [0x0e]],
  ["invalid UTF-8 in a string field", [0x0a, 0x01, 0xff]],
];

/** One gRPC / gRPC-web length-prefixed frame (flags 0). */
const grpcFrame = (msg: Uint8Array) => encodeEnvelope(0, msg);

/** The trailer frame (flags 0x80) of a gRPC-web response body, parsed. */
function grpcWebTrailer(body: Uint8Array): Headers {
  for (let o = 0; o + 5 <= body.length;) {
    const len = new DataView(body.buffer, body.byteOffset + o + 1, 4).getUint32(0);
    if (body[o] === trailerFlag) return trailerParse(body.subarray(o + 5, o + 5 + len));
    o += 5 + len;
  }
  throw new Error("no gRPC-web trailer frame");
}

/** The universal handler of GetPublicKey (every protocol, gRPC included, with its trailers). */
function universalHandler(impl: Partial<ServiceImpl<typeof SignService>>) {
  const router = createConnectRouter();
  signServiceRoutes(impl as ServiceImpl<typeof SignService>)(router);
  const h = router.handlers.find((x) => x.requestPath.endsWith("/GetPublicKey"));
  assert.ok(h);
  return h;
}

async function grpcCall(
  impl: Partial<ServiceImpl<typeof SignService>>,
  body: Uint8Array,
  contentType = "application/grpc+proto",
): Promise<Headers> {
  const res = await universalHandler(impl)({
    httpVersion: "2.0",
    method: "POST",
    url: `${BASE}/GetPublicKey`,
    header: new Headers({ "content-type": contentType, te: "trailers" }),
    body: (async function* () {
      yield body;
    })(),
    signal: new AbortController().signal,
  });
  for await (const _ of res.body ?? []) {
    // drain: the trailer is final once the body ends
  }
  assert.ok(res.trailer);
  return res.trailer;
}

for (const [what, bytes] of MALFORMED_BINARY) {
  const body = new Uint8Array(bytes);
  test(`routes: a binary body with ${what} is INVALID_ARGUMENT over Connect, gRPC-web and gRPC`, async () => {
    const { calls, handler } = setup();
    const connect = await handler(
      new Request(`${BASE}/GetPublicKey`, {
        method: "POST",
        headers: { "content-type": "application/proto" },
        body,
      }),
    );
    assert.equal(connect.status, 400);
    const text = await connect.text();
    const err = JSON.parse(text);
    assert.equal(err.code, "invalid_argument");
    assert.match(err.message, /^parse binary: /);
    assert.equal(
      connect.headers.get("content-length"),
      String(new TextEncoder().encode(text).length),
    );

    const web = await handler(
      new Request(`${BASE}/GetPublicKey`, {
        method: "POST",
        headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
        body: grpcFrame(body),
      }),
    );
    assert.equal(web.status, 200);
    const trailer = grpcWebTrailer(new Uint8Array(await web.arrayBuffer()));
    assert.equal(trailer.get("grpc-status"), "3", `gRPC-web: ${trailer.get("grpc-message")}`);
    assert.match(decodeURIComponent(trailer.get("grpc-message")!), /^parse binary: /);

    const grpc = await grpcCall({}, grpcFrame(body));
    assert.equal(grpc.get("grpc-status"), "3", `gRPC: ${grpc.get("grpc-message")}`);
    assert.deepEqual(calls, []);
  });
}

test("routes: the mapping is narrow: a valid binary request succeeds, an implementation failure stays INTERNAL", async () => {
  const msg = toBinary(
    GetPublicKeyRequestSchema,
    create(GetPublicKeyRequestSchema, { accountId: "a" }),
  );
  const ok = await grpcCall(
    { getPublicKey: () => ({ publicKey: "02", address: "0x", derivationPath: "m" }) },
    grpcFrame(msg),
  );
  assert.equal(ok.get("grpc-status"), "0");
  const failing: Partial<ServiceImpl<typeof SignService>> = {
    getPublicKey: (): never => {
      throw new Error("a bug");
    },
  };
  assert.equal((await grpcCall(failing, grpcFrame(msg))).get("grpc-status"), "13");
  const handler = createSignServiceFetchHandler(failing as ServiceImpl<typeof SignService>);
  const res = await handler(
    new Request(`${BASE}/GetPublicKey`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: msg,
    }),
  );
  assert.equal(res.status, 500);
  assert.equal((await res.json()).code, "internal");
});

/**
 * The gRPC status of one call over real gRPC: `connectNodeAdapter` on an h2c server on port 0,
 * a raw `node:http2` client. Rejects when no status arrives within 10 s (a stream left open).
 */
async function h2cStatus(
  contentType: string,
  body: Uint8Array,
  headers: Record<string, string> = {},
): Promise<string | undefined> {
  const server = http2.createServer(
    connectNodeAdapter({
      routes: signServiceRoutes(setup().impl as ServiceImpl<typeof SignService>),
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const client = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<string | undefined>((resolve, reject) => {
      const req = client.request({
        ":method": "POST",
        ":path": "/wallet_mpc.v1.SignService/GetPublicKey",
        "content-type": contentType,
        te: "trailers",
        ...headers,
      });
      req.setTimeout(10_000, () => {
        req.close();
        reject(new Error("no answer: the stream was left open"));
      });
      let found: string | undefined;
      const take = (h: Record<string, unknown>) => {
        if (typeof h["grpc-status"] === "string") found = h["grpc-status"];
      };
      req.on("response", take);
      req.on("trailers", take);
      req.on("error", reject);
      req.on("data", () => {});
      req.on("end", () => resolve(found));
      req.end(body);
    });
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

test("routes: over real gRPC (connectNodeAdapter on h2c, port 0) a malformed body is INVALID_ARGUMENT", async () => {
  const body = grpcFrame(new Uint8Array(MALFORMED_BINARY[0][1]));
  assert.equal(await h2cStatus("application/grpc", body), "3");
});

// A JSON request naming an unknown field "\ud800": the parser quotes the name in its message,
// and connect-es's encodeURIComponent of it for the grpc-message trailer throws (found by the
// rpc-routes fuzz harness): the handler rejected, connect-node never answered the stream.
const LONE_SURROGATE_JSON = new TextEncoder().encode('{"accountId":"a","\\ud800":""}');

test("routes: a JSON body with a lone-surrogate field name is INVALID_ARGUMENT over gRPC-web and gRPC, not a broken stream", async () => {
  const { calls, handler } = setup();
  const web = await handler(
    new Request(`${BASE}/GetPublicKey`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+json", "x-grpc-web": "1" },
      body: grpcFrame(LONE_SURROGATE_JSON),
    }),
  );
  assert.equal(web.status, 200);
  const trailer = grpcWebTrailer(new Uint8Array(await web.arrayBuffer()));
  assert.equal(trailer.get("grpc-status"), "3");
  const grpc = await grpcCall({}, grpcFrame(LONE_SURROGATE_JSON), "application/grpc+json");
  assert.equal(grpc.get("grpc-status"), "3");
  assert.equal(await h2cStatus("application/grpc+json", grpcFrame(LONE_SURROGATE_JSON)), "3");
  // Over Connect the JSON error body always encoded: still INVALID_ARGUMENT.
  const connect = await handler(
    new Request(`${BASE}/GetPublicKey`, connectJson('{"accountId":"a","\\ud800":""}')),
  );
  assert.equal((await connect.json()).code, "invalid_argument");
  assert.deepEqual(calls, []);
});

test("routes: a frame flagged compressed without an encoding, or a gzip body that does not inflate, is INVALID_ARGUMENT (gRPC-web, gRPC)", async () => {
  const msg = new Uint8Array([0x0a, 0x01, 0x61]);
  const flagged = encodeEnvelope(1, msg); // compressed flag, no grpc-encoding header
  const { calls, handler } = setup();
  const web = await handler(
    new Request(`${BASE}/GetPublicKey`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: flagged,
    }),
  );
  assert.equal(grpcWebTrailer(new Uint8Array(await web.arrayBuffer())).get("grpc-status"), "3");
  assert.equal((await grpcCall({}, flagged)).get("grpc-status"), "3");
  assert.equal(await h2cStatus("application/grpc", flagged), "3");
  // connect-node inflates gzip: a truncated stream is "decompression failed".
  const gz = gzipSync(msg);
  const truncated = encodeEnvelope(1, gz.subarray(0, gz.length - 6));
  assert.equal(await h2cStatus("application/grpc", truncated, { "grpc-encoding": "gzip" }), "3");
  assert.deepEqual(calls, []);
});
