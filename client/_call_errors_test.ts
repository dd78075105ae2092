/**
 * A service or gateway the client cannot reach fails its call with a Connect code and the URL
 * it could not reach (before: `[unknown] fetch failed`, no URL). The dead ports are bound and
 * closed by the test (port 0), so nothing listens there. The dead gateway waits out the gateway
 * client's retries (about 6 s): slow tier.
 * @module
 */
import { SLOW } from "../testing/setup.ts";
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { TransportError } from "../core/errors.ts";
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { fixtureAccounts, type PartyAccounts } from "../testing/accounts.ts";
import { gatewayFailure, serviceFailure } from "./_call_errors.ts";
import { newMpcClient } from "./mpc_client.ts";

/** A loopback URL nothing listens on: a port bound, then closed. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

let accounts: PartyAccounts;
before(async () => {
  accounts = await fixtureAccounts(["alice"]);
});

/**
 * A client of an in-process service that accepts a sign call and waits for the session until
 * the call is cancelled, as the real one waits for its peer.
 */
function waitingServiceClient(gatewayUrl: string) {
  const service = createRouterTransport(({ service }) =>
    service(SignService, {
      sign: (_req, ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true })
        ),
    })
  );
  return newMpcClient({
    rpcTransport: service,
    serviceUrl: "http://in-process.test",
    gatewayUrl,
    token: "t",
    keyStore: new MemoryKeyStore(accounts[0]),
  });
}

const where = { serviceUrl: "http://svc.test:1", gatewayUrl: "http://gw.test:2" };

test("failures to reach are typed as Connect defines them and name the URL", () => {
  const fetchFailed = new ConnectError("fetch failed", Code.Unknown, undefined, undefined, {
    name: "TypeError",
    message: "fetch failed",
    cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
  });
  const s = serviceFailure(fetchFailed, where) as ConnectError;
  assert.equal(s.code, Code.Unavailable);
  assert.match(s.message, /sign-service at http:\/\/svc\.test:1 unreachable: fetch failed/);
  const busy = new ConnectError("busy", Code.ResourceExhausted, { "retry-after": "3" });
  const b = serviceFailure(busy, where) as ConnectError;
  assert.equal(b.code, Code.ResourceExhausted);
  assert.equal(b.metadata.get("retry-after"), "3", "the retry hint is kept");
  assert.match(b.message, /svc\.test:1: busy/);

  const io = gatewayFailure(new TransportError("io", "subscribe room r: gave up"), where);
  assert.ok(io instanceof ConnectError && io.code === Code.Unavailable);
  assert.match(io.message, /sign-gateway at http:\/\/gw\.test:2 unreachable: subscribe room r/);
  const late = gatewayFailure(new TransportError("timeout", "sign round 2: timed out"), where);
  assert.ok(late instanceof ConnectError && late.code === Code.DeadlineExceeded);
  assert.match(late.message, /gw\.test:2/);
  const tampered = new TransportError("tampered", "frame 3");
  assert.equal(gatewayFailure(tampered, where), tampered, "a security fault passes unchanged");
});

test("signTx against a dead sign-service: UNAVAILABLE naming its URL, not [unknown] fetch failed", async () => {
  const serviceUrl = await deadUrl();
  const client = newMpcClient({
    serviceUrl,
    gatewayUrl: await deadUrl(),
    token: "t",
    keyStore: new MemoryKeyStore(accounts[0]),
  });
  const e = await client.signTx("0x" + "11".repeat(32), "alice").then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(e instanceof ConnectError, String(e));
  assert.equal(e.code, Code.Unavailable, e.message);
  assert.ok(e.message.includes(`sign-service at ${serviceUrl} unreachable`), e.message);
});

test(
  "signTx through a dead sign-gateway: UNAVAILABLE naming its URL",
  { skip: !SLOW },
  async () => {
    const gatewayUrl = await deadUrl();
    const client = waitingServiceClient(gatewayUrl);
    const e = await client.signTx("0x" + "22".repeat(32), "alice").then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(e instanceof ConnectError, String(e));
    assert.equal(e.code, Code.Unavailable, e.message);
    assert.ok(e.message.includes(`sign-gateway at ${gatewayUrl} unreachable`), e.message);
  },
);

test("signTx whose deadline passes: DEADLINE_EXCEEDED, not CANCELED", async () => {
  const client = waitingServiceClient(await deadUrl());
  const e = await client.signTx("0x" + "33".repeat(32), "alice", { timeoutMs: 300 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(e instanceof ConnectError, String(e));
  assert.equal(e.code, Code.DeadlineExceeded, e.message);
  assert.match(e.message, /deadline passed|timed out/);
});
