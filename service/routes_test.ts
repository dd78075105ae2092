/**
 * The fetch handler (gRPC-web and Connect) with hostile wire data: no socket, a stub
 * implementation that records calls. Malformed bodies are answered with a clear error and never
 * reach the implementation.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { GetPublicKeyRequestSchema, type SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { createSignServiceFetchHandler, MAX_REQUEST_BYTES } from "./routes.ts";

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
  return { calls, handler };
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
    // connect-es answers a body it cannot parse with "internal" and the parser's message.
    /internal/,
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
