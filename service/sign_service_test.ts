/**
 * The sign API in one process, without sockets: the real implementation (`createSignServiceImpl`)
 * with the real authenticator, rate and session limiters and audit formatting, served by the real
 * routes (`signServiceRoutes`) through Connect's in-memory router transport. The gateway is the
 * real gateway handler behind a fetch that records every call, so a hostile request can be shown
 * to start no session at all.
 *
 * Every hostile request is refused with its Connect code, writes exactly one audit line with the
 * matching outcome, starts no session (no gateway call, no prime generation, no session slot
 * held) and leaves no token or secret in the audit log.
 * @module
 */
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import "../testing/setup.ts";
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { deriveShift } from "../core/hd.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import { MemoryPresignatureStore } from "../core/presignature_store.ts";
import { epochDigest } from "../core/account_records.ts";
import { dealPresignatures } from "../testing/fixtures/protocol_fixtures.ts";
import { fromHex, toHex } from "../core/bytes.ts";
import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { ethereumAddress, newRoomId } from "../session/inputs.ts";
import { signAsParty } from "../session/party.ts";
import {
  fixtureAccounts,
  fixturePrimes,
  type PartyAccounts,
  secretsOf,
} from "../testing/accounts.ts";
import { generateIdentity } from "../transport/mod.ts";
import { memoryServiceParts, recordedSurroundings } from "../testing/service_deps.ts";
import { createAuthenticator, generateToken, hashToken } from "./auth.ts";
import { createRateLimiter, createSessionLimiter } from "./rate_limit.ts";
import { MAX_REQUEST_BYTES, signServiceRoutes } from "./routes.ts";
import { createSignServiceImpl } from "./sign_service.ts";

const ALICE = generateToken(); // caller "alice-app": accounts alice*, may create accounts
const BOB = generateToken(); // caller "bob-app": account bob only, may not create accounts
const BURST = 5;

let accounts: PartyAccounts;

before(async () => {
  accounts = await fixtureAccounts(["alice"]);
});

/** One service with fresh limits, audit log and gateway recorder. */
function fixture(options: { burst?: number; maxPerCaller?: number } = {}) {
  const presignatures = new MemoryPresignatureStore();
  const stored = new MemoryKeyStore(
    new Map<string, AccountEntry>([
      ["alice", accounts[1].get("alice")!],
      ["alice-2", accounts[1].get("alice")!],
      ["bob", accounts[1].get("alice")!], // any party-1 entry: bob's is only ever refused
    ]),
  );
  const auth = createAuthenticator([
    { id: "alice-app", tokenSha256: hashToken(ALICE), accounts: ["alice*"], mayKeygen: true },
    { id: "bob-app", tokenSha256: hashToken(BOB), accounts: ["bob"], mayKeygen: false },
  ]);
  const now = 0; // a frozen clock: the bucket never refills during a test
  const rate = createRateLimiter({
    perMinute: 60,
    burst: options.burst ?? BURST,
    clock: () => now,
  });
  const sessions = createSessionLimiter({
    maxConcurrent: 4,
    maxPerCaller: options.maxPerCaller ?? 2,
  });
  const { lines, audit, gatewayHandler, gatewayCalls, gateway, clientGateway } =
    recordedSurroundings();
  let primeCalls = 0;
  const primes = fixturePrimes(4);
  const impl = createSignServiceImpl({
    partyIndex: 1,
    parties: 2,
    version: "test",
    ...memoryServiceParts({ store: stored, auth, rate, sessions, audit }),
    gateway,
    generatePrimes: () => {
      primeCalls++;
      return primes();
    },
    presignatures,
    roundTimeoutMs: 30_000,
    handshakeTimeoutMs: 30_000,
  });
  const client = createClient(SignService, createRouterTransport(signServiceRoutes(impl)));
  return {
    client,
    presignatures,
    lines,
    gatewayCalls,
    gatewayHandler,
    sessions,
    primeCalls: () => primeCalls,
    /** The gateway as the client party sees it (same in-process gateway, not recorded). */
    clientGateway,
    audited: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

type Fixture = ReturnType<typeof fixture>;

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

/** Awaits a call that must fail with `code`; returns the error. */
async function refused(call: Promise<unknown>, code: Code): Promise<ConnectError> {
  let error: ConnectError | undefined;
  try {
    await call;
  } catch (e) {
    error = ConnectError.from(e);
  }
  assert.ok(error, `expected ${Code[code]}, the call succeeded`);
  assert.equal(
    Code[error.code],
    Code[code],
    `expected ${Code[code]}, got ${Code[error.code]}: ${error.message}`,
  );
  return error;
}

/** No session started, no secret or token in the audit log. */
function assertNothingStarted(f: Fixture): void {
  assert.deepEqual(f.gatewayCalls, [], "no gateway call");
  assert.equal(f.primeCalls(), 0, "no prime generation");
  assert.equal(f.sessions.active(), 0, "no session slot held");
  assertNoSecrets(f.lines);
}

function assertNoSecrets(lines: readonly string[]): void {
  const text = lines.join("\n");
  const entry = accounts[1].get("alice")!;
  for (const s of [ALICE, BOB, hashToken(ALICE), hashToken(BOB), ...secretsOf(entry)]) {
    assert.ok(!text.includes(s), "the audit log holds a token or a secret");
  }
}

const DIGEST = "ab".repeat(32);
const ROOM = "0123456789abcdef0123456789abcdef";
const signReq = (o: Record<string, string> = {}) => ({
  accountId: "alice",
  digest: DIGEST,
  derivationPath: "",
  roomId: ROOM,
  ...o,
});

interface Case {
  readonly name: string;
  readonly call: (f: Fixture) => Promise<unknown>;
  readonly code: Code;
  readonly outcome: string;
  /** The audit line's caller (null when authentication failed). */
  readonly caller: string | null;
  readonly action: string;
  readonly account?: string | null;
  readonly errorCode?: string;
}

const HOSTILE: readonly Case[] = [
  {
    name: "sign without credentials",
    call: (f) => f.client.sign(signReq()),
    code: Code.Unauthenticated,
    outcome: "denied",
    caller: null,
    action: "sign",
    account: null,
    errorCode: "unauthenticated",
  },
  ...[
    "Basic " + btoa(`alice-app:${ALICE}`),
    `Bearer`,
    `Bearer ${ALICE} extra`,
    `Bearer short`,
    `Token ${ALICE}`,
    `Bearer ${ALICE}\u00e9`,
    `Bearer ${"x".repeat(600)}`,
  ].map((h): Case => ({
    name: `sign with a malformed authorization header (${h.slice(0, 12)}...)`,
    call: (f) => f.client.sign(signReq(), { headers: { authorization: h } }),
    code: Code.Unauthenticated,
    outcome: "denied",
    caller: null,
    action: "sign",
    errorCode: "unauthenticated",
  })),
  {
    name: "sign with a wrong token",
    call: (f) => f.client.sign(signReq(), bearer(generateToken())),
    code: Code.Unauthenticated,
    outcome: "denied",
    caller: null,
    action: "sign",
    errorCode: "unauthenticated",
  },
  {
    name: "get_public_key without credentials",
    call: (f) => f.client.getPublicKey({ accountId: "alice" }),
    code: Code.Unauthenticated,
    outcome: "denied",
    caller: null,
    action: "get_public_key",
  },
  {
    name: "list_accounts with a wrong token",
    call: (f) => f.client.listAccounts({}, bearer(generateToken())),
    code: Code.Unauthenticated,
    outcome: "denied",
    caller: null,
    action: "list_accounts",
  },
  {
    name: "sign for another caller's account",
    call: (f) => f.client.sign(signReq({ accountId: "bob" }), bearer(ALICE)),
    code: Code.PermissionDenied,
    outcome: "denied",
    caller: "alice-app",
    action: "sign",
    account: "bob",
    errorCode: "permission-denied",
  },
  {
    name: "get_public_key of another caller's account",
    call: (f) => f.client.getPublicKey({ accountId: "alice" }, bearer(BOB)),
    code: Code.PermissionDenied,
    outcome: "denied",
    caller: "bob-app",
    action: "get_public_key",
    account: "alice",
  },
  {
    name: "refresh of another caller's account",
    call: (f) => f.client.refresh({ accountId: "bob", roomId: ROOM }, bearer(ALICE)),
    code: Code.PermissionDenied,
    outcome: "denied",
    caller: "alice-app",
    action: "refresh",
    account: "bob",
  },
  ...([
    ["a digest of bad hex", { digest: "zz".repeat(32) }],
    ["a digest of 31 bytes", { digest: "ab".repeat(31) }],
    ["a digest of 33 bytes", { digest: "ab".repeat(33) }],
    ["an empty digest", { digest: "" }],
    ["a hardened path m/44'/0", { derivationPath: "m/44'/0" }],
    ["a hardened path m/0h", { derivationPath: "m/0h" }],
    ["a path of depth 256", { derivationPath: "m" + "/0".repeat(256) }],
    ["a path index of 2^31", { derivationPath: "m/2147483648" }],
    ["a path that is not a path", { derivationPath: "m//1" }],
    ["an uppercase room id", { roomId: ROOM.toUpperCase() }],
    ["a short room id", { roomId: ROOM.slice(1) }],
    ["a room id with a slash", { roomId: "../" + ROOM.slice(3) }],
    ["an account id with a slash", { accountId: "alice/../bob" }],
  ] as const).map(([what, o]): Case => ({
    name: `sign with ${what}`,
    call: (f) => f.client.sign(signReq(o), bearer(ALICE)),
    code: Code.InvalidArgument,
    outcome: "invalid",
    caller: "alice-app",
    action: "sign",
    errorCode: "invalid-argument",
  })),
  {
    name: "sign for an unknown account",
    call: (f) => f.client.sign(signReq({ accountId: "alice-unknown" }), bearer(ALICE)),
    code: Code.NotFound,
    outcome: "invalid",
    caller: "alice-app",
    action: "sign",
    account: "alice-unknown",
    errorCode: "not-found",
  },
  {
    name: "get_public_key at a hardened path",
    call: (f) =>
      f.client.getPublicKey({ accountId: "alice", derivationPath: "m/1'" }, bearer(ALICE)),
    code: Code.InvalidArgument,
    outcome: "invalid",
    caller: "alice-app",
    action: "get_public_key",
  },
  {
    name: "keygen of an existing account",
    call: (f) =>
      f.client.keygen({
        accountId: "alice",
        roomId: ROOM,
        clientIdentityKey: toHex(generateIdentity().publicKey),
      }, bearer(ALICE)),
    code: Code.AlreadyExists,
    outcome: "invalid",
    caller: "alice-app",
    action: "keygen",
    account: "alice",
    errorCode: "already-exists",
  },
  {
    name: "keygen by a caller without may_keygen",
    call: (f) =>
      f.client.keygen({
        accountId: "bob",
        roomId: ROOM,
        clientIdentityKey: toHex(generateIdentity().publicKey),
      }, bearer(BOB)),
    code: Code.PermissionDenied,
    outcome: "denied",
    caller: "bob-app",
    action: "keygen",
    account: "bob",
    errorCode: "permission-denied",
  },
  {
    name: "keygen with a bad client identity key",
    call: (f) =>
      f.client.keygen(
        { accountId: "alice-new", roomId: ROOM, clientIdentityKey: "00" },
        bearer(ALICE),
      ),
    code: Code.InvalidArgument,
    outcome: "invalid",
    caller: "alice-app",
    action: "keygen",
  },
  {
    name: "refresh of an unknown account",
    call: (f) => f.client.refresh({ accountId: "alice-nope", roomId: ROOM }, bearer(ALICE)),
    code: Code.NotFound,
    outcome: "invalid",
    caller: "alice-app",
    action: "refresh",
  },
];

describe("sign service: hostile requests", () => {
  for (const c of HOSTILE) {
    test(`${c.name}: ${Code[c.code]}, audited "${c.outcome}", no session`, async () => {
      const f = fixture();
      await refused(c.call(f), c.code);
      const audited = f.audited();
      assert.equal(audited.length, 1, "exactly one audit line");
      const a = audited[0];
      assert.equal(a.outcome, c.outcome);
      assert.equal(a.caller, c.caller);
      assert.equal(a.action, c.action);
      if (c.account !== undefined) assert.equal(a.account, c.account);
      if (c.errorCode !== undefined) assert.equal(a.error_code, c.errorCode);
      assert.equal(a.session_id, undefined);
      assertNothingStarted(f);
    });
  }

  test("a request flood is refused with RESOURCE_EXHAUSTED once the burst is spent", async () => {
    const f = fixture();
    // Each refused-but-authenticated request takes a token, whatever the method.
    for (let k = 0; k < BURST; k++) {
      const call = k % 2 === 0
        ? f.client.sign(signReq({ digest: "zz" }), bearer(ALICE))
        : f.client.getPublicKey({ accountId: "alice" }, bearer(ALICE));
      await call.catch(() => {});
    }
    for (
      const call of [
        () => f.client.sign(signReq(), bearer(ALICE)),
        () => f.client.getPublicKey({ accountId: "alice" }, bearer(ALICE)),
        () => f.client.listAccounts({}, bearer(ALICE)),
        () => f.client.sign(signReq({ accountId: "bob" }), bearer(ALICE)),
      ]
    ) {
      await refused(call(), Code.ResourceExhausted);
    }
    const last = f.audited().slice(-4);
    assert.deepEqual(last.map((a) => a.outcome), Array(4).fill("rate-limited"));
    assert.deepEqual(last.map((a) => a.caller), Array(4).fill("alice-app"));
    // Another caller has its own bucket.
    await f.client.getPublicKey({ accountId: "bob" }, bearer(BOB));
    assertNothingStarted(f);
  });

  test("a caller at its session limit is refused with RESOURCE_EXHAUSTED", async () => {
    const f = fixture({ maxPerCaller: 1 });
    const release = f.sessions.acquire("alice-app"); // a session of alice-app is running
    try {
      await refused(f.client.sign(signReq(), bearer(ALICE)), Code.ResourceExhausted);
      const [a] = f.audited();
      assert.equal(a.outcome, "rate-limited");
      assert.equal(a.error_code, "too-many-caller-sessions");
      assert.deepEqual(f.gatewayCalls, []);
    } finally {
      release();
    }
    assert.equal(f.sessions.active(), 0);
  });

  test("an oversized request is refused before it reaches the implementation", async () => {
    const f = fixture();
    await refused(
      f.client.sign(signReq({ accountId: "a".repeat(MAX_REQUEST_BYTES + 10) }), bearer(ALICE)),
      Code.ResourceExhausted,
    );
    assert.equal(f.lines.length, 0);
    assertNothingStarted(f);
  });
});

describe("sign service: allowed requests", () => {
  test("health needs no credentials and writes no audit line", async () => {
    const f = fixture();
    const h = await f.client.health({});
    assert.equal(h.status, "serving");
    assert.equal(h.partyIndex, 1);
    assert.equal(h.accounts, 3);
    assert.equal(h.version, "test");
    assert.equal(f.lines.length, 0);
  });

  test("list_accounts shows only the caller's accounts, sorted", async () => {
    const f = fixture();
    const r = await f.client.listAccounts({}, bearer(ALICE));
    assert.deepEqual(r.accounts.map((a) => a.accountId), ["alice", "alice-2"]);
    const X = accounts[0].get("alice")!.keyShare.publicKey;
    assert.equal(r.accounts[0].publicKey, toHex(X.toBytes(true)));
    assert.equal(r.accounts[0].address, ethereumAddress(X));
    const [a] = f.audited();
    assert.equal(a.outcome, "ok");
    assert.equal(a.action, "list_accounts");
    assertNothingStarted(f);
  });

  test("get_public_key derives the same key as the client's share", async () => {
    const f = fixture();
    const r = await f.client.getPublicKey(
      { accountId: "alice", derivationPath: "0/7" },
      bearer(ALICE),
    );
    const share = accounts[0].get("alice")!.keyShare;
    const child = deriveShift(share.publicKey, share.chainCode, [0, 7]).childPublicKey;
    assert.equal(r.publicKey, toHex(child.toBytes(true)));
    assert.equal(r.derivationPath, "m/0/7");
    const [a] = f.audited();
    assert.equal(a.outcome, "ok");
    assert.equal(a.path, "m/0/7");
    assertNothingStarted(f);
  });

  test("sign runs a session with the client party; audited ok with the session id; presignatures of other epochs are purged", async () => {
    const f = fixture();
    try {
      // Each side holds a presignature of another (older) epoch and one of the current one.
      const clientPresignatures = new MemoryPresignatureStore();
      const current = epochDigest(accounts[0].get("alice")!.keyShare);
      for (const epoch of ["0f".repeat(32), current]) {
        const [p0, p1] = dealPresignatures(2, { keyId: "alice", epoch });
        await clientPresignatures.put(p0);
        await f.presignatures.put(p1);
      }
      const digest = crypto.getRandomValues(new Uint8Array(32));
      const room = newRoomId();
      const [mine, theirs] = await Promise.all([
        signAsParty(
          new MemoryKeyStore(accounts[0]),
          { accountId: "alice", digest, path: [0, 7] },
          { gateway: f.clientGateway, room, roundTimeoutMs: 30_000, handshakeTimeoutMs: 30_000 },
          clientPresignatures,
          { promoteKeygen: false },
        ),
        f.client.sign(
          signReq({ digest: toHex(digest), derivationPath: "m/0/7", roomId: room }),
          bearer(ALICE),
        ),
      ]);
      assert.equal(theirs.signature?.der, mine.signature.der);
      assert.equal(theirs.sessionId, mine.sessionId);
      assert.equal(theirs.publicKey, toHex(mine.publicKey.toBytes(true)));
      assert.ok(
        secp256k1.verify(
          fromHex(theirs.signature!.compact),
          digest,
          fromHex(theirs.publicKey),
          { prehash: false },
        ),
      );
      const [started, a] = f.audited();
      assert.equal(started.outcome, "started", "a write-ahead record before the session");
      assert.equal(started.digest, toHex(digest));
      assert.equal(a.outcome, "ok");
      assert.equal(a.call_id, started.call_id, "the end record names the started one");
      assert.equal(a.action, "sign");
      assert.equal(a.session_id, mine.sessionId);
      assert.equal(a.digest, toHex(digest));
      assert.equal(a.path, "m/0/7");
      assert.ok(f.gatewayCalls.length > 0, "the service used the gateway");
      assert.equal(f.sessions.active(), 0, "the session slot was released");
      assertNoSecrets(f.lines);
      assert.equal(clientPresignatures.size, 1, "the client purged the other epoch's");
      assert.equal(f.presignatures.size, 1, "the service purged the other epoch's");
    } finally {
      await f.gatewayHandler.close();
    }
  });
});
