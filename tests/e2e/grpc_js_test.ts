/**
 * An independent gRPC client against the service's real gRPC port: `@grpc/grpc-js` with
 * `@grpc/proto-loader` reading `proto/wallet_mpc/v1/sign.proto` itself (not the generated code),
 * over HTTP/2 cleartext. Health, GetPublicKey and ListAccounts with `authorization` metadata;
 * UNAUTHENTICATED without it; OpenRoom (the stack's gateway serves no anonymous room); and a
 * whole Sign where this process runs the client party (`signAsParty` in the room OpenRoom gave,
 * with its room token, alongside the grpc-js call, as `client/mpc_client.ts` does over Connect)
 * and both parties produce the same DER signature.
 *
 * The service and gateway run under the runtime of this test (grpc-js runs on Deno's node:http2).
 * @module
 */
import "../../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { MemoryKeyStore } from "../../keystore/memory_key_store.ts";
import { fromHex, toHex } from "../../core/bytes.ts";
import { MemoryPresignatureStore } from "../../core/presignature_store.ts";
import { newRoomId } from "../../session/inputs.ts";
import { signAsParty } from "../../session/party.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import { createGatewayClient } from "../../transport/mod.ts";
import type { PartyAccounts } from "../../testing/accounts.ts";
import { ACCOUNT, e2eAccounts, randomDigest, RUNTIME, waitAudit } from "./e2e_helpers.ts";
import { bounded } from "../../testing/waits.ts";

const PROTO = fileURLToPath(new URL("../../proto/wallet_mpc/v1/sign.proto", import.meta.url));
const CALL_MS = 60_000;

/** The generic grpc-js client of the service: method name -> unary call. */
type Unary = (
  req: Record<string, unknown>,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void,
) => grpc.ClientUnaryCall;
type SignServiceClient = grpc.Client & Record<string, Unary>;

function loadService(): new (address: string, creds: grpc.ChannelCredentials) => SignServiceClient {
  const def = protoLoader.loadSync(PROTO, {
    keepCase: true, // field names exactly as in the .proto (account_id, ...)
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    wallet_mpc: {
      v1: { SignService: new (a: string, c: grpc.ChannelCredentials) => SignServiceClient };
    };
  };
  return pkg.wallet_mpc.v1.SignService;
}

/** One unary call as a promise, with a deadline. */
function call(
  client: SignServiceClient,
  method: string,
  req: Record<string, unknown>,
  token?: string,
  ms = CALL_MS,
): Promise<Record<string, unknown>> {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return new Promise((resolve, reject) => {
    client[method](req, md, { deadline: Date.now() + ms }, (err, res) => {
      if (err) reject(err);
      else resolve(res);
    });
  });
}

async function grpcStatus(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (e) {
    return e as grpc.ServiceError;
  }
  throw new Error("expected the call to fail");
}

describe(`grpc-js against the ${RUNTIME} service's gRPC port (h2c)`, () => {
  let accounts: PartyAccounts;
  let stack: LocalStack | undefined;
  let client: SignServiceClient | undefined;

  before(async () => {
    accounts = await e2eAccounts();
    stack = await startLocalStack({ runtime: RUNTIME, preset: accounts });
    const SignService = loadService();
    client = new SignService(
      new URL(stack.serviceGrpcUrl).host,
      grpc.credentials.createInsecure(),
    );
  });

  after(async () => {
    client?.close();
    await stack?.stop();
  });

  test("Health answers without credentials", async () => {
    const h = await call(client!, "Health", {});
    assert.equal(h.status, "serving");
    assert.equal(h.party_index, 1);
    assert.equal(h.accounts, 1);
  });

  test("GetPublicKey and ListAccounts with a bearer token in the metadata", async () => {
    const share = accounts[0].get(ACCOUNT)!.keyShare;
    const pk = await call(client!, "GetPublicKey", { account_id: ACCOUNT }, stack!.token);
    assert.equal(pk.public_key, share.publicKey.toHex(true));
    assert.equal(pk.derivation_path, "m");
    assert.match(String(pk.address), /^0x[0-9a-fA-F]{40}$/);
    const list = await call(client!, "ListAccounts", {}, stack!.token);
    const accountsList = list.accounts as Record<string, unknown>[];
    assert.deepEqual(accountsList.map((a) => a.account_id), [ACCOUNT]);
    assert.equal(accountsList[0].public_key, share.publicKey.toHex(true));
  });

  test("without credentials, or with a wrong token: UNAUTHENTICATED", async () => {
    for (const token of [undefined, "x".repeat(43)]) {
      for (
        const [method, req] of [["GetPublicKey", { account_id: ACCOUNT }], [
          "ListAccounts",
          {},
        ]] as const
      ) {
        const e = await grpcStatus(call(client!, method, req, token));
        assert.equal(e.code, grpc.status.UNAUTHENTICATED, `${method}: ${e.message}`);
      }
    }
    const e = await grpcStatus(
      call(client!, "Sign", {
        account_id: ACCOUNT,
        digest: randomDigest(),
        derivation_path: "",
        room_id: newRoomId(),
      }),
    );
    assert.equal(e.code, grpc.status.UNAUTHENTICATED);
  });

  test("an invalid argument comes back as INVALID_ARGUMENT", async () => {
    const e = await grpcStatus(
      call(client!, "Sign", {
        account_id: ACCOUNT,
        digest: "00",
        derivation_path: "",
        room_id: newRoomId(),
      }, stack!.token),
    );
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.match(e.details, /digest/);
  });

  test("OpenRoom: UNAUTHENTICATED without credentials; a room and its gateway token with them", async () => {
    const req = { account_id: ACCOUNT, operation: "sign" };
    const e = await grpcStatus(call(client!, "OpenRoom", req));
    assert.equal(e.code, grpc.status.UNAUTHENTICATED);
    const bad = await grpcStatus(
      call(client!, "OpenRoom", { ...req, operation: "export" }, stack!.token),
    );
    assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
    const r = await call(client!, "OpenRoom", req, stack!.token);
    assert.match(String(r.room_id), /^[0-9a-f]{32}$/);
    assert.ok(Number(r.expires_at) > Date.now() / 1000, `expires_at ${r.expires_at}`);
    // The token opens that room on the gateway, which refuses the room without it.
    const room = `${stack!.gatewayUrl}/rooms/${r.room_id}/issue_unique_idx`;
    assert.equal((await fetch(room, { method: "POST" })).status, 401);
    const ok = await fetch(room, {
      method: "POST",
      headers: { authorization: `Bearer ${r.gateway_token}` },
    });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { unique_idx: 1 });
  });

  test("Sign with the client party in this process: both parties output the same DER", async () => {
    const digest = randomDigest();
    const opened = await call(
      client!,
      "OpenRoom",
      { account_id: ACCOUNT, operation: "sign" },
      stack!.token,
    );
    const room = String(opened.room_id);
    const ac = new AbortController();
    const local = signAsParty(
      new MemoryKeyStore(accounts[0]),
      { accountId: ACCOUNT, digest: fromHex(digest), path: [0, 7] },
      {
        gateway: createGatewayClient({
          url: stack!.gatewayUrl,
          token: String(opened.gateway_token),
        }),
        room,
        signal: ac.signal,
        roundTimeoutMs: 30_000,
        handshakeTimeoutMs: 30_000,
      },
      new MemoryPresignatureStore(),
      { promoteKeygen: false },
    );
    const remote = call(client!, "Sign", {
      account_id: ACCOUNT,
      digest,
      derivation_path: "m/0/7",
      room_id: room,
    }, stack!.token);
    // Either side failing stops the other (as the client library does).
    remote.catch((e) => ac.abort(e));
    const [mine, theirs] = await bounded(CALL_MS, "the grpc-js Sign", Promise.all([local, remote]));
    const sig = theirs.signature as Record<string, unknown>;
    assert.equal(sig.der, mine.signature.der);
    assert.equal(sig.compact, mine.signature.compact);
    assert.equal(sig.recovery_id, mine.signature.recoveryId);
    assert.equal(theirs.session_id, mine.sessionId);
    assert.equal(theirs.public_key, toHex(mine.publicKey.toBytes(true)));
    assert.ok(
      secp256k1.verify(
        fromHex(String(sig.compact)),
        fromHex(digest),
        mine.publicKey.toBytes(true),
        {
          prehash: false,
        },
      ),
    );
    const line = await waitAudit(
      stack!,
      "the grpc-js Sign",
      (l) => l.session_id === mine.sessionId,
    );
    assert.equal(line.outcome, "ok");
    assert.equal(line.path, "m/0/7");
  });
});
