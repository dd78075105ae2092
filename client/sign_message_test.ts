/**
 * `signMessage` of the client library against the real service in this process (rooms and room
 * tokens on: testing/room_service.ts): background presigning fills both pools, a message signs
 * in one round with a presignature (noble verifies the signature of the message's hash), the
 * pool refills after use, and a message signs in full when the pool is empty or the service no
 * longer holds the presignature (never fails for it).
 * @module
 */
import "../testing/setup.ts";
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { fromHex, toHex } from "../core/bytes.ts";
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import { fixtureAccounts, fixturePrimes, type PartyAccounts } from "../testing/accounts.ts";
import { ROOM_GATEWAY_URL, type RoomService, roomService } from "../testing/room_service.ts";
import { storedCurrentEpoch } from "../session/party.ts";
import { bounded, WAIT_MS } from "../testing/waits.ts";
import { newMpcClient } from "./mpc_client.ts";
import type { MpcClientConfig } from "./mpc_client.ts";

let accounts: PartyAccounts;
before(async () => {
  accounts = await fixtureAccounts(["alice"]);
});

function clientOf(f: RoomService, over: Partial<MpcClientConfig> = {}) {
  return newMpcClient({
    rpcTransport: f.transport,
    gatewayUrl: ROOM_GATEWAY_URL,
    token: f.ALICE,
    keyStore: new MemoryKeyStore(accounts[0]),
    fetch: f.clientFetch as typeof fetch,
    maxRetries: 0,
    ...over,
  });
}

/** Whether noble verifies `sig` over `digest` under its public key. */
function verifies(sig: { compact: string; publicKey: string }, digest: Uint8Array): boolean {
  return secp256k1.verify(fromHex(sig.compact), digest, fromHex(sig.publicKey), {
    prehash: false,
  });
}

/** Resolves once the service has started a session of `action` (its write-ahead audit record). */
async function sessionStarted(f: RoomService, action: string): Promise<void> {
  await bounded(
    WAIT_MS,
    `the service's ${action} session to start`,
    (async () => {
      while (!f.audited().some((a) => a.action === action && a.outcome === "started")) {
        await new Promise((r) => setTimeout(r, 10));
      }
    })(),
  );
}

const trail = (f: RoomService) =>
  f.audited().filter((a) => a.outcome !== "started").map((a) => `${a.action} ${a.outcome}`);

describe("signMessage", () => {
  test("presignatures made in the background sign a message in one round; the pool refills", async () => {
    const f = roomService({ accounts });
    const client = clientOf(f, { presignaturePool: { size: 2, lowWater: 1, batch: 2 } });
    try {
      const target = { account: "alice", hash: "keccak256", path: "m/0/7" } as const;
      await client.warmPresignatures(target);
      assert.equal(client.presignatureStats().pool.held, 2);
      assert.equal(f.presignaturePool.count(), 2, "the service holds the same two");
      const message = new TextEncoder().encode("transfer 1 wei");
      const sig = await client.signMessage(message, target);
      assert.equal(sig.pooled, true);
      assert.equal(sig.digest, toHex(keccak_256(message)));
      assert.ok(verifies(sig, keccak_256(message)));
      assert.equal(sig.publicKey, await client.getPublicKey("alice", { path: "m/0/7" }));
      assert.ok(trail(f).includes("sign_message ok"));
      assert.ok(!trail(f).includes("sign ok"), "no full signing");
      // One left (at the low-water mark): nothing made. Use it: below, the pool refills.
      const again = await client.signMessage("second", target);
      assert.equal(again.pooled, true);
      await client.warmPresignatures(target);
      assert.equal(client.presignatureStats().pool.held, 2);
      assert.equal(client.presignatureStats().pooled, 2);
    } finally {
      await client.close();
      await f.close();
    }
  });

  test("a signTx during background presigning aborts the presigning session and signs", async () => {
    const f = roomService({ accounts });
    const client = clientOf(f, { presignaturePool: { size: 8, lowWater: 8, batch: 8 } });
    try {
      const warming = client.warmPresignatures({ account: "alice", hash: "keccak256" });
      // A session of 8 presignatures takes seconds: wait until it has started.
      await sessionStarted(f, "presign");
      const digest = crypto.getRandomValues(new Uint8Array(32));
      const sig = await client.signTx(digest, "alice");
      assert.ok(verifies(sig, digest));
      assert.ok((client.presignatureStats().refill?.yielded ?? 0) >= 1, "the presigning yielded");
      await client.close();
      await warming;
    } finally {
      await client.close();
      await f.close();
    }
  });

  test("a refresh during background presigning stops it first, then refreshes", async () => {
    const f = roomService({ accounts });
    const client = clientOf(f, {
      presignaturePool: { size: 8, lowWater: 8, batch: 8 },
      generatePrimes: fixturePrimes(6),
    });
    try {
      const publicKey = await client.getPublicKey("alice");
      const warming = client.warmPresignatures({ account: "alice", hash: "keccak256" });
      // The service's presigning session holds the account (a key change is refused meanwhile).
      await sessionStarted(f, "presign");
      const refreshed = await client.refresh("alice");
      assert.equal(refreshed.publicKey, publicKey);
      assert.ok((client.presignatureStats().refill?.yielded ?? 0) >= 1, "the presigning yielded");
      assert.ok(trail(f).includes("refresh ok"));
      await client.close();
      await warming;
    } finally {
      await client.close();
      await f.close();
    }
  });

  test("a refresh while a signature of the account runs on the service waits for it", async () => {
    const f = roomService({ accounts });
    const client = clientOf(f, { presignaturePool: false, generatePrimes: fixturePrimes(6) });
    try {
      const digest = crypto.getRandomValues(new Uint8Array(32));
      const signing = client.signTx(digest, "alice");
      await sessionStarted(f, "sign");
      // Refused as account-busy while the signature runs, retried until it has ended.
      const refreshed = await client.refresh("alice");
      const sig = await signing;
      assert.ok(verifies(sig, digest));
      assert.equal(refreshed.publicKey, sig.publicKey);
      assert.ok(trail(f).includes("refresh ok"));
    } finally {
      await f.close();
    }
  });

  test("with background presigning off, a message is signed in full", async () => {
    const f = roomService({ accounts });
    const client = clientOf(f, { presignaturePool: false });
    try {
      const message = new Uint8Array([1, 2, 3]);
      const sig = await client.signMessage(message, { account: "alice", hash: "sha256" });
      assert.equal(sig.pooled, false);
      assert.ok(verifies(sig, sha256(message)));
      assert.deepEqual(trail(f), ["open_room ok", "sign ok"]);
      await assert.rejects(
        client.warmPresignatures({ account: "alice", hash: "sha256" }),
        /background presigning is off/,
      );
    } finally {
      await f.close();
    }
  });

  test("a presignature the service no longer holds: the message is signed in full, the copy dropped", async () => {
    const f = roomService({ accounts });
    const client = clientOf(f, { presignaturePool: { size: 1, lowWater: 1, batch: 1 } });
    try {
      const target = { account: "alice", hash: "sha256d", path: "" } as const;
      await client.warmPresignatures(target);
      await client.close(); // no refill from here on
      // The service lost its copy (e.g. restarted: its pool is in memory).
      const epoch = await storedCurrentEpoch(new MemoryKeyStore(accounts[1]), "alice");
      const id = f.presignaturePool.pick({ accountId: "alice", path: [], hash: "sha256d" }, epoch);
      assert.ok(id);
      const message = new TextEncoder().encode("m");
      const sig = await client.signMessage(message, target);
      assert.equal(sig.pooled, false);
      assert.ok(verifies(sig, sha256(sha256(message))));
      assert.deepEqual(trail(f).slice(-4), [
        "open_room ok",
        "sign_message error",
        "open_room ok",
        "sign ok",
      ]);
      assert.equal(client.presignatureStats().pool.held, 0, "the client's copy is dropped");
      assert.equal(client.presignatureStats().full, 1);
    } finally {
      await f.close();
    }
  });

  test("a signMessage refused for load keeps the presignature on both sides for the next call", async () => {
    const f = roomService({ accounts });
    const client = clientOf(f, { presignaturePool: { size: 1, lowWater: 1, batch: 1 } });
    try {
      const target = { account: "alice", hash: "keccak256", path: "m/1" } as const;
      await client.warmPresignatures(target);
      await client.close(); // no refill from here on
      const poolTarget = { accountId: "alice", path: [1], hash: "keccak256" } as const;
      const epoch = await storedCurrentEpoch(new MemoryKeyStore(accounts[1]), "alice");
      assert.equal(f.presignaturePool.count(poolTarget, epoch), 1);
      // The caller's two sessions are taken: refused with a retry hint (maxRetries 0 here).
      const held = [f.sessions.acquire("alice-app"), f.sessions.acquire("alice-app")];
      await assert.rejects(client.signMessage("later", target), (e: Error & { code?: unknown }) => {
        assert.match(e.message, /resource_exhausted/);
        return true;
      });
      assert.equal(client.presignatureStats().pool.held, 1, "the client's copy is kept");
      assert.equal(f.presignaturePool.count(poolTarget, epoch), 1, "the service's copy is kept");
      assert.equal(client.presignatureStats().pool.taken, 0);
      for (const release of held) release();
      const sig = await client.signMessage("later", target);
      assert.equal(sig.pooled, true, "the kept presignature signs in one round");
      assert.ok(verifies(sig, keccak_256(new TextEncoder().encode("later"))));
      assert.equal(f.presignaturePool.count(poolTarget, epoch), 0);
    } finally {
      await f.close();
    }
  });

  test("a call's deadline reaches the service as whole milliseconds (signTx and signMessage)", async () => {
    // Connect refuses a fractional timeout header; the time left of a deadline is computed
    // from clock readings, so it must be rounded before it is sent.
    const f = roomService({ accounts });
    const client = clientOf(f, { presignaturePool: false });
    try {
      const digest = crypto.getRandomValues(new Uint8Array(32));
      const a = await client.signTx(digest, "alice", { timeoutMs: 60_000 });
      assert.ok(verifies(a, digest));
      const m = new TextEncoder().encode("deadline");
      const b = await client.signMessage(m, {
        account: "alice",
        hash: "sha256",
        timeoutMs: 60_000,
      });
      assert.ok(verifies(b, sha256(m)));
    } finally {
      await f.close();
    }
  });

  test("bad calls are refused before any request", async () => {
    const f = roomService({ accounts });
    const client = clientOf(f, { presignaturePool: false });
    try {
      const bad: [unknown, unknown][] = [
        [new Uint8Array(1), { account: "alice", hash: "md5" }],
        [new Uint8Array(1), { account: "a b", hash: "sha256" }],
        [new Uint8Array(1), { account: "alice", hash: "sha256", path: "m/0'" }],
        [new Uint8Array(128 * 1024 + 1), { account: "alice", hash: "sha256" }],
        [42, { account: "alice", hash: "sha256" }],
      ];
      for (const [m, o] of bad) {
        await assert.rejects(
          client.signMessage(m as Uint8Array, o as { account: string; hash: "sha256" }),
          (e: unknown) =>
            e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError,
        );
      }
      assert.deepEqual(f.audited(), []);
    } finally {
      await f.close();
    }
  });
});
