/**
 * Session rooms: the table of rooms on its own (single use, expiry, bounds, a refused
 * presentation that leaves the room), and OpenRoom with the session calls through the real
 * routes, the real authenticator, limiter and audit log, and an in-process gateway that serves no
 * request without a room token (testing/room_service.ts).
 * @module
 */
import "../testing/setup.ts";
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { fromHex, toHex } from "../core/bytes.ts";
import { MemoryPresignatureStore } from "../core/presignature_store.ts";
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import { signAsParty } from "../session/party.ts";
import { fixtureAccounts, type PartyAccounts } from "../testing/accounts.ts";
import { ROOM_GATEWAY_URL, type RoomService, roomService } from "../testing/room_service.ts";
import { createGatewayClient } from "../transport/mod.ts";
import { ROOM_OPERATIONS, type RoomTokenSource, SessionRooms } from "./rooms.ts";
import { createAdmission } from "./admission.ts";

/** A token source that counts its calls and answers `expiresAt` = now + ttl. */
function countingIssuer(now: () => number) {
  const issued: string[] = [];
  const issuer: RoomTokenSource = {
    issue: (room, party, ttlS) => {
      issued.push(`${room}/${party}`);
      return Promise.resolve({
        token: `tok-${room}`,
        expiresAt: Math.floor(now() / 1000) + ttlS,
      });
    },
  };
  return { issuer, issued };
}

/** Runs `f`, which must throw a ConnectError with `code`; returns it. */
async function refusedWith(code: Code, f: () => unknown): Promise<ConnectError> {
  let error: unknown;
  try {
    await f();
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected ${Code[code]}, it succeeded`);
  const c = ConnectError.from(error);
  assert.equal(Code[c.code], Code[code], c.message);
  return c;
}

describe("the rooms table", () => {
  test("a room is taken once, by its caller, account and operation", async () => {
    let now = 1_000_000;
    const { issuer, issued } = countingIssuer(() => now);
    const rooms = new SessionRooms({ issuer, clock: () => now });
    const a = await rooms.open("app", "alice", "sign");
    const b = await rooms.open("app", "alice", "sign");
    assert.match(a.roomId, /^[0-9a-f]{32}$/);
    assert.notEqual(a.roomId, b.roomId, "fresh rooms");
    assert.deepEqual(issued, [`${a.roomId}/client`, `${b.roomId}/client`]);
    assert.equal(a.gatewayToken, `tok-${a.roomId}`);
    assert.equal(a.expiresAt, Math.floor(now / 1000) + 3600);
    // Another caller, account or operation is refused, and the room stays for its own call.
    for (
      const [caller, account, op] of [
        ["other", "alice", "sign"],
        ["app", "alice-2", "sign"],
        ["app", "alice", "refresh"],
      ] as const
    ) {
      await refusedWith(Code.PermissionDenied, () => rooms.take(caller, account, op, a.roomId));
    }
    rooms.take("app", "alice", "sign", a.roomId);
    await refusedWith(Code.PermissionDenied, () => rooms.take("app", "alice", "sign", a.roomId));
    await refusedWith(
      Code.PermissionDenied,
      () => rooms.take("app", "alice", "sign", "ab".repeat(16)),
    );
    assert.equal(rooms.size, 1);
    now += 3600_000;
    await refusedWith(Code.PermissionDenied, () => rooms.take("app", "alice", "sign", b.roomId));
  });

  test("a room expires with its token, at the gateway's expiry when that comes first", async () => {
    let now = 5_000_000;
    const rooms = new SessionRooms({
      issuer: {
        issue: () => Promise.resolve({ token: "t", expiresAt: Math.floor(now / 1000) + 60 }),
      },
      clock: () => now,
    });
    const r = await rooms.open("app", "alice", "keygen");
    assert.equal(r.expiresAt, Math.floor(now / 1000) + 60);
    now += 60_000;
    await refusedWith(Code.PermissionDenied, () => rooms.take("app", "alice", "keygen", r.roomId));
    // Expired rooms are forgotten when the next one is opened.
    await rooms.open("app", "alice", "keygen");
    assert.equal(rooms.size, 1);
  });

  test("unused rooms are bounded: a caller's oldest is forgotten, a full table refuses", async () => {
    const now = 0;
    const { issuer } = countingIssuer(() => now);
    const rooms = new SessionRooms({ issuer, clock: () => now, maxOpenPerCaller: 2, maxOpen: 4 });
    const first = await rooms.open("a", "x", "sign");
    await rooms.open("a", "x", "sign");
    await rooms.open("a", "x", "sign");
    assert.equal(rooms.size, 2, "at most 2 of caller a");
    await refusedWith(Code.PermissionDenied, () => rooms.take("a", "x", "sign", first.roomId));
    await rooms.open("b", "x", "sign");
    await rooms.open("b", "x", "sign");
    await refusedWith(Code.ResourceExhausted, () => rooms.open("c", "x", "sign"));
    assert.equal(rooms.size, 4);
  });

  test("no token from the gateway: UNAVAILABLE, and no room is kept", async () => {
    const rooms = new SessionRooms({
      issuer: { issue: () => Promise.reject(new Error("gateway down")) },
    });
    await refusedWith(Code.Unavailable, () => rooms.open("app", "alice", "sign"));
    assert.equal(rooms.size, 0);
  });

  test("every operation names the permission of its session call", () => {
    assert.deepEqual(ROOM_OPERATIONS, {
      sign: "sign",
      keygen: "keygen",
      resume: "keygen",
      refresh: "refresh",
      presign: "sign",
      sign_message: "sign",
    });
  });
});

let accounts: PartyAccounts;
before(async () => {
  accounts = await fixtureAccounts(["alice"]);
});

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
const DIGEST = "ab".repeat(32);

/** Nothing reached the gateway from the service, no room was opened, no session slot held. */
function assertNothingOpened(f: RoomService): void {
  assert.deepEqual(f.serviceRequests, [], "no gateway request");
  assert.equal(f.rooms.size, 0, "no room opened");
  assert.equal(f.sessions.active(), 0, "no session slot held");
}

describe("OpenRoom and the session calls (rooms on, a gateway with room tokens only)", () => {
  test("OpenRoom without credentials or with a wrong token: UNAUTHENTICATED, audited denied", async () => {
    const f = roomService({ accounts });
    try {
      for (const opts of [{}, bearer("x".repeat(43))]) {
        await refusedWith(
          Code.Unauthenticated,
          () => f.client.openRoom({ accountId: "alice", operation: "sign" }, opts),
        );
      }
      assert.deepEqual(f.audited().map((a) => [a.action, a.outcome, a.caller]), [
        ["open_room", "denied", null],
        ["open_room", "denied", null],
      ]);
      assertNothingOpened(f);
    } finally {
      await f.close();
    }
  });

  test("OpenRoom for an account the caller may not use, or keygen without may_keygen: PERMISSION_DENIED", async () => {
    const f = roomService({ accounts });
    try {
      await refusedWith(
        Code.PermissionDenied,
        () => f.client.openRoom({ accountId: "bob", operation: "sign" }, bearer(f.ALICE)),
      );
      for (const operation of ["keygen", "resume"]) {
        await refusedWith(
          Code.PermissionDenied,
          () => f.client.openRoom({ accountId: "bob", operation }, bearer(f.BOB)),
        );
      }
      await refusedWith(
        Code.InvalidArgument,
        () => f.client.openRoom({ accountId: "alice", operation: "export" }, bearer(f.ALICE)),
      );
      const audited = f.audited();
      assert.deepEqual(audited.map((a) => a.outcome), ["denied", "denied", "denied", "invalid"]);
      assert.deepEqual(audited.slice(0, 3).map((a) => a.account), ["bob", "bob", "bob"]);
      assertNothingOpened(f);
    } finally {
      await f.close();
    }
  });

  test("OpenRoom of an overloaded service: RESOURCE_EXHAUSTED with a hint, before any room or token", async () => {
    const admission = createAdmission({ workers: 1, costMs: { sign: 20_000 }, initialLimit: 16 });
    const f = roomService({ accounts, admission });
    const held = admission.admit("sign"); // 20 s of work ahead
    try {
      const e = await refusedWith(
        Code.ResourceExhausted,
        () =>
          f.client.openRoom({ accountId: "alice", operation: "sign" }, {
            ...bearer(f.ALICE),
            timeoutMs: 5_000,
          }),
      );
      assert.ok(Number(e.metadata.get("retry-after-ms")) > 0, "a retry hint");
      assertNothingOpened(f);
      assert.equal(admission.active(), 1, "nothing admitted by the refusal");
    } finally {
      held.finish("ok");
      await f.close();
    }
  });

  test("OpenRoom takes from the caller's bucket: RESOURCE_EXHAUSTED once it is spent", async () => {
    const f = roomService({ accounts, burst: 2 });
    try {
      const req = { accountId: "alice", operation: "sign" };
      await f.client.openRoom(req, bearer(f.ALICE));
      await f.client.getPublicKey({ accountId: "alice" }, bearer(f.ALICE));
      await refusedWith(Code.ResourceExhausted, () => f.client.openRoom(req, bearer(f.ALICE)));
      assert.equal(f.rooms.size, 1, "the refused call opened no room");
      assert.equal(f.audited().at(-1)?.outcome, "rate-limited");
      // Another caller has its own bucket.
      await f.client.openRoom({ accountId: "bob", operation: "sign" }, bearer(f.BOB));
      assert.equal(f.rooms.size, 2);
    } finally {
      await f.close();
    }
  });

  test("the token OpenRoom gives opens that room on the gateway, and no other", async () => {
    const f = roomService({ accounts });
    try {
      const r = await f.client.openRoom({ accountId: "alice", operation: "sign" }, bearer(f.ALICE));
      assert.match(r.roomId, /^[0-9a-f]{32}$/);
      assert.ok(Number(r.expiresAt) > Date.now() / 1000);
      const gw = createGatewayClient({
        url: ROOM_GATEWAY_URL,
        fetch: f.clientFetch,
        token: r.gatewayToken,
        retry: { attempts: 1 },
      });
      assert.equal(await gw.issueUniqueIdx(r.roomId), 1);
      await assert.rejects(gw.issueUniqueIdx("cd".repeat(16)), /403/);
      const anonymous = createGatewayClient({
        url: ROOM_GATEWAY_URL,
        fetch: f.clientFetch,
        retry: { attempts: 1 },
      });
      await assert.rejects(anonymous.issueUniqueIdx(r.roomId), /401/);
      const [a] = f.audited();
      assert.deepEqual([a.action, a.outcome, a.caller, a.account], [
        "open_room",
        "ok",
        "alice-app",
        "alice",
      ]);
      assert.ok(!f.lines.join("\n").includes(r.gatewayToken), "no token in the audit log");
    } finally {
      await f.close();
    }
  });

  test("a session call naming a room the service did not open for it: PERMISSION_DENIED, no session", async () => {
    const f = roomService({ accounts });
    try {
      const open = (accountId: string, operation: string, token = f.ALICE) =>
        f.client.openRoom({ accountId, operation }, bearer(token)).then((r) => r.roomId);
      const sign = (roomId: string, accountId = "alice", token = f.ALICE) =>
        f.client.sign({ accountId, digest: DIGEST, derivationPath: "", roomId }, bearer(token));
      const refreshRoom = await open("alice", "refresh");
      const otherAccount = await open("alice-2", "sign");
      const bobs = await open("bob", "sign", f.BOB);
      const opened = f.rooms.size;
      const before = f.serviceRequests.length;
      for (const room of ["ab".repeat(16), refreshRoom, otherAccount, bobs]) {
        const e = await refusedWith(Code.PermissionDenied, () => sign(room));
        assert.match(e.message, /not opened by OpenRoom/);
      }
      await refusedWith(
        Code.PermissionDenied,
        () => f.client.refresh({ accountId: "alice-2", roomId: otherAccount }, bearer(f.ALICE)),
      );
      const refused = f.audited().filter((a) => a.action !== "open_room");
      assert.equal(refused.length, 5);
      assert.ok(refused.every((a) => a.outcome === "denied" && a.session_id === undefined));
      assert.ok(!refused.some((a) => a.outcome === "started"), "no session started");
      assert.equal(f.serviceRequests.length, before, "the service did not touch the gateway");
      assert.equal(f.sessions.active(), 0);
      assert.equal(f.rooms.size, opened, "a refused room is not spent");
    } finally {
      await f.close();
    }
  });

  test("a room signs once through a gateway that serves no anonymous request; used again: PERMISSION_DENIED", async () => {
    const f = roomService({ accounts });
    try {
      const r = await f.client.openRoom({ accountId: "alice", operation: "sign" }, bearer(f.ALICE));
      const digest = crypto.getRandomValues(new Uint8Array(32));
      const req = {
        accountId: "alice",
        digest: toHex(digest),
        derivationPath: "m/1",
        roomId: r.roomId,
      };
      const [mine, theirs] = await Promise.all([
        signAsParty(
          new MemoryKeyStore(accounts[0]),
          { accountId: "alice", digest, path: [1] },
          {
            gateway: createGatewayClient({
              url: ROOM_GATEWAY_URL,
              fetch: f.clientFetch,
              token: r.gatewayToken,
            }),
            room: r.roomId,
            roundTimeoutMs: 30_000,
            handshakeTimeoutMs: 30_000,
          },
          new MemoryPresignatureStore(),
          { promoteKeygen: false },
        ),
        f.client.sign(req, bearer(f.ALICE)),
      ]);
      assert.equal(theirs.signature?.der, mine.signature.der);
      assert.ok(
        secp256k1.verify(fromHex(theirs.signature!.compact), digest, fromHex(theirs.publicKey), {
          prehash: false,
        }),
      );
      // Both parties presented tokens; the service got its own from the gateway.
      const all = [...f.serviceRequests, ...f.clientRequests];
      assert.ok(all.length > 0 && all.every((q) => q.bearer && q.status === 200));
      assert.ok(f.serviceRequests.some((q) => q.path.endsWith("/subscribe")));
      assert.ok(f.serviceRequests.some((q) => q.path === `/rooms/${r.roomId}/tokens`));

      await refusedWith(Code.PermissionDenied, () => f.client.sign(req, bearer(f.ALICE)));
      assert.deepEqual(f.audited().map((a) => `${a.action} ${a.outcome}`), [
        "open_room ok",
        "sign started",
        "sign ok",
        "sign denied",
      ]);
    } finally {
      await f.close();
    }
  });
});

describe("rooms off (no issuer secret)", () => {
  test("OpenRoom answers FAILED_PRECONDITION and opens nothing", async () => {
    const f = roomService({ accounts, rooms: () => false });
    try {
      const e = await refusedWith(
        Code.FailedPrecondition,
        () => f.client.openRoom({ accountId: "alice", operation: "sign" }, bearer(f.ALICE)),
      );
      assert.match(e.message, /opens no rooms/);
      assertNothingOpened(f);
    } finally {
      await f.close();
    }
  });
});
