/**
 * The client library's session rooms, in one process: `newMpcClient` against the real service
 * routes (Connect's in-memory router transport) and an in-process gateway with room tokens
 * (testing/room_service.ts). With rooms the client opens each session's room with the service
 * and presents the token it got; against a service that opens no rooms (FAILED_PRECONDITION) or
 * predates OpenRoom (UNIMPLEMENTED) it picks its room itself, asks once, and asks again after
 * such a service refused a room it picked.
 * @module
 */
import "../testing/setup.ts";
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createRouterTransport, type ServiceImpl } from "@connectrpc/connect";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { fromHex } from "../core/bytes.ts";
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import type { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { signServiceRoutes } from "../service/routes.ts";
import { fixtureAccounts, type PartyAccounts } from "../testing/accounts.ts";
import { ROOM_GATEWAY_URL, type RoomService, roomService } from "../testing/room_service.ts";
import { newMpcClient } from "./mpc_client.ts";

let accounts: PartyAccounts;
before(async () => {
  accounts = await fixtureAccounts(["alice"]);
});

/** A client of `f` (or of another transport to it), as the caller alice-app. */
function clientOf(f: RoomService, transport = f.transport) {
  return newMpcClient({
    rpcTransport: transport,
    gatewayUrl: ROOM_GATEWAY_URL,
    token: f.ALICE,
    keyStore: new MemoryKeyStore(accounts[0]),
    fetch: f.clientFetch as typeof fetch,
    maxRetries: 0,
  });
}

const digest = () => crypto.getRandomValues(new Uint8Array(32));

function verifies(sig: { compact: string; digest: string; publicKey: string }): boolean {
  return secp256k1.verify(fromHex(sig.compact), fromHex(sig.digest), fromHex(sig.publicKey), {
    prehash: false,
  });
}

/** The actions and outcomes of the service's audit lines. */
const trail = (f: RoomService) => f.audited().map((a) => `${a.action} ${a.outcome}`);

describe("the client library's session rooms", () => {
  test("with rooms: OpenRoom first, then the session in that room with its token; no anonymous request", async () => {
    const f = roomService({ accounts });
    try {
      const client = clientOf(f);
      const sig = await client.signTx(digest(), "alice", { path: "m/0/7" });
      assert.ok(verifies(sig));
      assert.deepEqual(trail(f), ["open_room ok", "sign started", "sign ok"]);
      assert.ok(f.clientRequests.length > 0);
      assert.ok(
        f.clientRequests.every((q) => q.bearer && q.status === 200),
        "every request of the client's party carried its room token and was served",
      );
      assert.equal(f.rooms.size, 0, "the room was used");
    } finally {
      await f.close();
    }
  });

  test("a service without rooms: asked once (FAILED_PRECONDITION), then the client picks its rooms", async () => {
    const f = roomService({ accounts, rooms: () => false, allowAnonymous: true });
    try {
      const client = clientOf(f);
      for (let k = 0; k < 2; k++) assert.ok(verifies(await client.signTx(digest(), "alice")));
      assert.deepEqual(trail(f), [
        "open_room error",
        "sign started",
        "sign ok",
        "sign started",
        "sign ok",
      ]);
      assert.ok(f.clientRequests.every((q) => !q.bearer), "no room token: none was given");
    } finally {
      await f.close();
    }
  });

  test("a service that predates OpenRoom (UNIMPLEMENTED): the client picks its room", async () => {
    const f = roomService({ accounts, rooms: () => false, allowAnonymous: true });
    try {
      const { openRoom: _, ...older } = f.impl;
      const transport = createRouterTransport(
        signServiceRoutes(older as ServiceImpl<typeof SignService>),
      );
      assert.ok(verifies(await clientOf(f, transport).signTx(digest(), "alice")));
      assert.deepEqual(trail(f), ["sign started", "sign ok"]);
    } finally {
      await f.close();
    }
  });

  test("a service restarted with rooms refuses a picked room; the next call opens one", async () => {
    let on = false;
    const f = roomService({ accounts, rooms: () => on, allowAnonymous: true });
    try {
      const client = clientOf(f);
      assert.ok(verifies(await client.signTx(digest(), "alice")));
      on = true;
      await assert.rejects(
        client.signTx(digest(), "alice"),
        (e: unknown) => e instanceof ConnectError && e.code === Code.PermissionDenied,
      );
      assert.ok(verifies(await client.signTx(digest(), "alice")));
      assert.deepEqual(trail(f), [
        "open_room error",
        "sign started",
        "sign ok",
        "sign denied",
        "open_room ok",
        "sign started",
        "sign ok",
      ]);
    } finally {
      await f.close();
    }
  });
});
