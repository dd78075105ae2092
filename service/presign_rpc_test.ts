/**
 * Presign and SignMessage through the real service implementation and routes (Connect's
 * in-memory transport) against the client's party in the same process, over the real gateway
 * handler: the pools fill on both sides, a message signs in one round (noble verifies), a
 * presignature the service does not hold is refused before any session, a digest never uses a
 * presignature, and hostile requests are INVALID_ARGUMENT without a session.
 * @module
 */
import "../testing/setup.ts";
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { fromHex, toHex } from "../core/bytes.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import { MemoryPresignatureStore } from "../core/presignature_store.ts";
import { hashMessage } from "../core/signature.ts";
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { newRoomId } from "../session/inputs.ts";
import {
  presignAsParty,
  signAsParty,
  signMessageAsParty,
  storedCurrentEpoch,
} from "../session/party.ts";
import { PresignaturePool } from "../session/presignature_pool.ts";
import { fixtureAccounts, fixturePrimes, type PartyAccounts } from "../testing/accounts.ts";
import { memoryServiceParts, recordedSurroundings } from "../testing/service_deps.ts";
import { createAuthenticator, generateToken, hashToken } from "./auth.ts";
import { createRateLimiter, createSessionLimiter } from "./rate_limit.ts";
import { signServiceRoutes } from "./routes.ts";
import { createSignServiceImpl } from "./sign_service.ts";

const TOKEN = generateToken();
const bearer = { headers: { authorization: `Bearer ${TOKEN}` } };
const TIMEOUTS = { roundTimeoutMs: 30_000, handshakeTimeoutMs: 30_000 };
const TARGET = { accountId: "alice", path: [0, 7], hash: "keccak256" } as const;

let accounts: PartyAccounts;

before(async () => {
  accounts = await fixtureAccounts(["alice"]);
});

function fixture() {
  const serviceRaw = new MemoryPresignatureStore();
  const servicePool = new PresignaturePool(serviceRaw);
  const store = new MemoryKeyStore(
    new Map<string, AccountEntry>([["alice", accounts[1].get("alice")!]]),
  );
  const auth = createAuthenticator([
    { id: "app", tokenSha256: hashToken(TOKEN), accounts: ["alice"], mayKeygen: false },
  ]);
  const rate = createRateLimiter({ perMinute: 600, burst: 100, clock: () => 0 });
  const sessions = createSessionLimiter({ maxConcurrent: 4, maxPerCaller: 2 });
  const { lines, audit, gateway, gatewayCalls, clientGateway } = recordedSurroundings();
  const impl = createSignServiceImpl({
    partyIndex: 1,
    parties: 2,
    version: "test",
    ...memoryServiceParts({ store, auth, rate, sessions, audit }),
    gateway,
    generatePrimes: fixturePrimes(4),
    presignatures: serviceRaw,
    presignaturePool: servicePool,
    ...TIMEOUTS,
  });
  const service = createClient(SignService, createRouterTransport(signServiceRoutes(impl)));
  const clientStore = new MemoryKeyStore(accounts[0]);
  const clientRaw = new MemoryPresignatureStore();
  const clientPool = new PresignaturePool(clientRaw);
  return {
    service,
    sessions,
    servicePool,
    serviceRaw,
    clientStore,
    clientPool,
    clientRaw,
    clientGateway,
    gatewayCalls,
    audited: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

type Fixture = ReturnType<typeof fixture>;

async function presign(f: Fixture, count: number) {
  const room = newRoomId();
  const [mine, theirs] = await Promise.all([
    presignAsParty(
      f.clientStore,
      { ...TARGET, count },
      { gateway: f.clientGateway, room, ...TIMEOUTS },
      f.clientPool,
      { promoteKeygen: false },
    ),
    f.service.presign(
      { accountId: "alice", derivationPath: "m/0/7", hash: "keccak256", count, roomId: room },
      bearer,
    ),
  ]);
  return { mine, theirs };
}

/** Both parties sign `message` (keccak256, m/0/7) in one round with presignature `id`. */
async function signBoth(f: Fixture, id: string, message: Uint8Array) {
  const room = newRoomId();
  return await Promise.all([
    signMessageAsParty(
      f.clientStore,
      { ...TARGET, message, presignatureId: id },
      { gateway: f.clientGateway, room, ...TIMEOUTS },
      f.clientPool,
    ),
    f.service.signMessage(signRequest(id, message, room), bearer),
  ]);
}

/** The SignMessage request of {@link signBoth}. */
function signRequest(id: string, message: Uint8Array, room: string) {
  return {
    accountId: "alice",
    message: toHex(message),
    hash: "keccak256",
    derivationPath: "m/0/7",
    presignatureId: id,
    roomId: room,
  };
}

async function refused(p: Promise<unknown>, code: Code): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    const c = ConnectError.from(e);
    assert.equal(c.code, code, c.message);
    return c;
  }
  assert.fail(`expected ${Code[code]}`);
}

test("Presign fills both pools; SignMessage signs a message in one round", async () => {
  const f = fixture();
  const { mine, theirs } = await presign(f, 2);
  assert.deepEqual(theirs.presignatureIds, mine.ids);
  assert.equal(theirs.epoch, mine.epoch);
  assert.equal(theirs.sessionId, mine.sessionId);
  assert.equal(f.servicePool.count(TARGET, mine.epoch), 2);

  const epoch = await storedCurrentEpoch(f.clientStore, "alice");
  const id = f.clientPool.pick(TARGET, epoch)!;
  const message = new TextEncoder().encode("\x19Ethereum Signed Message:\n5hello");
  const [mySig, answer] = await signBoth(f, id, message);
  const digest = hashMessage("keccak256", message);
  assert.equal(answer.digest, toHex(digest));
  assert.equal(answer.signature?.der, mySig.signature.der);
  assert.ok(
    secp256k1.verify(fromHex(answer.signature!.compact), digest, fromHex(answer.publicKey), {
      prehash: false,
      format: "compact",
    }),
  );
  assert.ok(await f.serviceRaw.isUsed(id));
  assert.equal(f.servicePool.count(TARGET, epoch), 1);
  const actions = f.audited().filter((r) => r.outcome !== "started").map((
    r,
  ) => [r.action, r.outcome]);
  assert.deepEqual(actions, [["presign", "ok"], ["sign_message", "ok"]]);

  // The same presignature again: the service no longer holds it, refused before any session.
  const calls = f.gatewayCalls.length;
  const e = await refused(
    f.service.signMessage(signRequest(id, message, newRoomId()), bearer),
    Code.FailedPrecondition,
  );
  assert.match(e.message, /presignature-unavailable/);
  assert.equal(f.gatewayCalls.length, calls, "no session started");
});

test("a SignMessage refused for load before its session keeps the presignature for the retry", async () => {
  const f = fixture();
  const { mine } = await presign(f, 1);
  const id = mine.ids[0];
  const message = new TextEncoder().encode("retried");
  // The caller's two sessions are taken: the call is refused with a retry hint, no session.
  const held = [f.sessions.acquire("app"), f.sessions.acquire("app")];
  const calls = f.gatewayCalls.length;
  const e = await refused(
    f.service.signMessage(signRequest(id, message, newRoomId()), bearer),
    Code.ResourceExhausted,
  );
  assert.ok(e.metadata.get("retry-after"), "a retry hint");
  assert.equal(f.gatewayCalls.length, calls, "no session started");
  assert.equal(f.servicePool.count(TARGET, mine.epoch), 1, "listed again");
  assert.equal(await f.serviceRaw.isUsed(id), false);
  for (const release of held) release();

  // The retry names it again and signs in one round; then it is consumed.
  const epoch = await storedCurrentEpoch(f.clientStore, "alice");
  assert.equal(f.clientPool.pick(TARGET, epoch), id);
  const [mySig, answer] = await signBoth(f, id, message);
  assert.equal(answer.signature?.der, mySig.signature.der);
  assert.ok(await f.serviceRaw.isUsed(id));
  assert.equal(f.servicePool.count(TARGET, epoch), 0);
  assert.equal(await f.servicePool.release(id), false, "a used presignature is never listed again");
});

test("a presignature held for another path or hash is unavailable, and stays held", async () => {
  const f = fixture();
  const { mine } = await presign(f, 1);
  const id = mine.ids[0];
  for (const [path, hash] of [["m/0/8", "keccak256"], ["m/0/7", "sha256"], ["", "keccak256"]]) {
    await refused(
      f.service.signMessage({
        accountId: "alice",
        message: "00",
        hash,
        derivationPath: path,
        presignatureId: id,
        roomId: newRoomId(),
      }, bearer),
      Code.FailedPrecondition,
    );
  }
  assert.equal(f.servicePool.count(TARGET, mine.epoch), 1, "not consumed by a wrong request");
  assert.equal(await f.serviceRaw.isUsed(id), false);
});

test("a digest is always signed in full: no presignature is used", async () => {
  const f = fixture();
  const { mine } = await presign(f, 1);
  const before = f.servicePool.stats();
  const digest = crypto.getRandomValues(new Uint8Array(32));
  const room = newRoomId();
  await Promise.all([
    signAsParty(
      f.clientStore,
      { accountId: "alice", digest, path: [0, 7] },
      { gateway: f.clientGateway, room, ...TIMEOUTS },
      f.clientPool,
      { promoteKeygen: false },
    ),
    f.service.sign({
      accountId: "alice",
      digest: toHex(digest),
      derivationPath: "m/0/7",
      roomId: room,
    }, bearer),
  ]);
  assert.equal(f.servicePool.stats().taken, before.taken);
  assert.equal(f.servicePool.count(TARGET, mine.epoch), 1);
  assert.equal(await f.serviceRaw.isUsed(mine.ids[0]), false);
});

test("hostile Presign and SignMessage requests are INVALID_ARGUMENT before any session", async () => {
  const f = fixture();
  const good = {
    accountId: "alice",
    message: "00",
    hash: "keccak256",
    derivationPath: "m/0/7",
    presignatureId: "ab".repeat(32),
    roomId: newRoomId(),
  };
  const cases: [string, Partial<typeof good>][] = [
    ["odd message hex", { message: "abc" }],
    ["non-hex message", { message: "zz" }],
    ["a message over 128 KiB", { message: "00".repeat(128 * 1024 + 1) }],
    ["unknown hash", { hash: "md5" }],
    ["upper-case presignature id", { presignatureId: "AB".repeat(32) }],
    ["short presignature id", { presignatureId: "ab".repeat(8) }],
    ["hardened path", { derivationPath: "m/0'" }],
    ["bad room", { roomId: "x" }],
  ];
  for (const [name, over] of cases) {
    const e = await refused(
      f.service.signMessage({ ...good, ...over }, bearer),
      Code.InvalidArgument,
    );
    assert.ok(e.message.length < 300, name);
  }
  for (const count of [0, 9]) {
    await refused(
      f.service.presign({
        accountId: "alice",
        derivationPath: "",
        hash: "sha256",
        count,
        roomId: newRoomId(),
      }, bearer),
      Code.InvalidArgument,
    );
  }
  assert.equal(f.gatewayCalls.length, 0);
});
