/**
 * Several processes on one key file at once (the key store's one-writer rule): each adds its own
 * accounts, stages and promotes refresh epochs of a shared account and reads, all at the same
 * time; afterwards every account is present with exactly the share that was put, the shared
 * account holds one current epoch that carries every writer's refresh, and the accounts sign
 * with the other party's shares (noble verifies). Without the cross-process lock and
 * read-modify-write, puts overwrite each other (lost update) and refreshes are lost.
 * @module
 */
import "../testing/setup.ts";
import { SLOW } from "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { fromHex } from "../core/bytes.ts";
import { type AccountEntry, encodeAccountsFile } from "../core/keyshare.ts";
import { encodeAccountEntries } from "../core/account_records.ts";
import { Q } from "../core/params.ts";
import { MemoryPresignatureStore } from "../core/presignature_store.ts";
import { createMemoryNetwork } from "../core/protocols/memory_transport.ts";
import { signDigest } from "../core/protocols/sign.ts";
import type { KeyShare } from "../core/protocols/types.ts";
import { dealKeyShares, freshSid } from "../testing/fixtures/protocol_fixtures.ts";
import { DENO, NODE, ROOT } from "../testing/processes.ts";
import { detectRuntime } from "../platform/mod.ts";
import { openKeyStore } from "./key_store.ts";
import { refreshOffset, reshared, withDir } from "./_key_store_test_util.ts";

const WRITER = join(ROOT, "keystore/_concurrent_writer.ts");
const PROCESSES = 4;
const ACCOUNTS_EACH = 3;

interface Writer {
  readonly ready: Promise<void>;
  readonly exit: Promise<{ code: number | null; err: string }>;
  go(): void;
}

/** Starts writer `k`; it opens the file, says "ready", and writes once told "go". */
function start(path: string, seed: string, k: number): Writer {
  const [cmd, pre] = detectRuntime() === "deno"
    ? [DENO, ["run", "-A", "--no-check", WRITER]]
    : [NODE, ["--import", "tsx", WRITER]];
  const p = spawn(cmd, [...pre, path, seed, String(k), String(ACCOUNTS_EACH)], {
    cwd: ROOT,
    env: { ...process.env as Record<string, string>, NO_COLOR: "1" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let err = "";
  p.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const exit = new Promise<{ code: number | null; err: string }>((resolve) =>
    p.on("exit", (code) => resolve({ code, err }))
  );
  const ready = new Promise<void>((resolve, reject) => {
    let out = "";
    p.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("ready\n")) resolve();
    });
    exit.then((r) => reject(new Error(`writer ${k} exited before ready: ${r.err}`)));
  });
  return { ready, exit, go: () => p.stdin.end("go\n") };
}

/** Signs a digest with both parties' shares (full protocol) and has noble verify it. */
async function assertSigns(shares: readonly KeyShare[], label: string): Promise<void> {
  const digest = crypto.getRandomValues(new Uint8Array(32));
  const net = createMemoryNetwork(2);
  const sid = freshSid();
  const [a, b] = await Promise.all(
    shares.map((share, i) =>
      signDigest({ share, sid, keyId: label, digest }, net[i], {
        store: new MemoryPresignatureStore(),
      })
    ),
  );
  assert.deepEqual(a, b, label);
  const compact = fromHex(a.compact);
  const publicKey = shares[0].publicKey.toBytes(true);
  assert.ok(secp256k1.verify(compact, digest, publicKey, { prehash: false }), label);
}

test(`${PROCESSES} processes add, refresh and read accounts in one key file: nothing is lost, the accounts sign`, async () => {
  await withDir(async (dir) => {
    // Party 0 keeps its shares here; party 1's go through the contended file.
    const party0 = new Map<string, AccountEntry>();
    const seed = new Map<string, AccountEntry>();
    const [shared0, shared1] = dealKeyShares(2);
    for (let k = 0; k < PROCESSES; k++) {
      for (let j = 0; j < ACCOUNTS_EACH; j++) {
        const [s0, s1] = dealKeyShares(2);
        party0.set(`w${k}-${j}`, { keyShare: s0 });
        seed.set(`w${k}-${j}`, { keyShare: s1 });
      }
    }
    const path = join(dir, "keys.json");
    const seedPath = join(dir, "seed.json");
    await fsp.writeFile(seedPath, encodeAccountsFile(seed));
    await fsp.writeFile(path, encodeAccountEntries(new Map([["shared", { keyShare: shared1 }]])));

    // All writers open the file first, then write at once (a barrier, not a sleep).
    const writers = Array.from({ length: PROCESSES }, (_, k) => start(path, seedPath, k));
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.go();
    const results = await Promise.all(writers.map((w) => w.exit));
    for (const [k, r] of results.entries()) assert.equal(r.code, 0, `writer ${k}: ${r.err}`);

    const store = await openKeyStore({ path, decryptor: { plaintext: true }, partyIndex: 1 });
    assert.deepEqual(store.accounts(), ["shared", ...seed.keys()].sort());
    for (const [id, entry] of seed) {
      assert.equal(store.get(id)?.keyShare.x, entry.keyShare.x, `${id} holds the share put`);
    }
    // Every refresh of every writer is in the shared account's one current epoch.
    const rec = store.record("shared");
    assert.equal(rec?.epochs.length, 1, "every refresh was promoted");
    assert.equal(rec?.epochs[0].state, "current");
    let d = 0n;
    for (let k = 0; k < PROCESSES; k++) {
      for (let j = 0; j < ACCOUNTS_EACH; j++) d += refreshOffset(k, j);
    }
    const shared = store.get("shared")!.keyShare;
    assert.equal(shared.x, (shared1.x + d) % Q, "no refresh was lost");
    assert.deepEqual(await fsp.readdir(dir), ["keys.json", "seed.json"], "no lock or temp file");

    // Signing: the shared account at its new epoch (party 0 refreshed the same way) and the
    // added accounts (all of them in the slow tier, the first one in the fast tier: each costs
    // a full Paillier signing run, and the share equality above covers the rest).
    const peerShared = reshared({ keyShare: shared0 }, d).keyShare;
    await assertSigns([peerShared, shared], "shared");
    for (let k = 0; k < PROCESSES; k++) {
      for (let j = 0; j < ACCOUNTS_EACH; j++) {
        if (!SLOW && (k > 0 || j > 0)) break;
        const id = `w${k}-${j}`;
        await assertSigns([party0.get(id)!.keyShare, store.get(id)!.keyShare], id);
      }
    }
  });
});
