/**
 * Several processes on one key file at once (the key store's one-writer rule): each adds its own
 * accounts, stages and promotes a refresh epoch of a shared account and reads, all at the same
 * time; afterwards every account is present, valid, and the shared account holds one epoch.
 * Without the cross-process lock and read-modify-write, puts overwrite each other (lost update).
 * @module
 */
import "../tests/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { encodeAccountsFile } from "../core/keyshare.ts";
import { DENO, NODE, ROOT } from "../tests/gateway/_helpers.ts";
import { detectRuntime } from "../platform/mod.ts";
import { openKeyStore } from "./key_store.ts";
import { fixtureEntries, withDir } from "./_key_store_test_util.ts";

const WRITER = join(ROOT, "keystore/_concurrent_writer.ts");
const PROCESSES = 4;
const ACCOUNTS_EACH = 3;

function run(path: string, k: number): Promise<{ code: number | null; err: string }> {
  const [cmd, pre] = detectRuntime() === "deno"
    ? [DENO, ["run", "-A", "--no-check", WRITER]]
    : [NODE, ["--import", "tsx", WRITER]];
  const p = spawn(cmd, [...pre, path, String(k), String(ACCOUNTS_EACH)], {
    cwd: ROOT,
    env: { ...process.env as Record<string, string>, NO_COLOR: "1" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  p.stderr.on("data", (b: Buffer) => (err += b.toString()));
  return new Promise((resolve) => p.on("exit", (code) => resolve({ code, err })));
}

test(`${PROCESSES} processes add, refresh and read accounts in one key file: nothing is lost`, async () => {
  await withDir(async (dir) => {
    const { party1 } = await fixtureEntries();
    const path = join(dir, "keys.json");
    await fsp.writeFile(path, encodeAccountsFile(new Map([["shared", party1]])));
    const results = await Promise.all(Array.from({ length: PROCESSES }, (_, k) => run(path, k)));
    for (const [k, r] of results.entries()) assert.equal(r.code, 0, `writer ${k}: ${r.err}`);
    const store = await openKeyStore({ path, decryptor: { plaintext: true }, partyIndex: 1 });
    const expected = ["shared"];
    for (let k = 0; k < PROCESSES; k++) {
      for (let j = 0; j < ACCOUNTS_EACH; j++) expected.push(`w${k}-${j}`);
    }
    assert.deepEqual(store.accounts(), expected.sort());
    assert.equal(store.record("shared")?.epochs.length, 1, "every refresh was promoted");
    assert.equal(store.record("shared")?.epochs[0].state, "current");
    assert.deepEqual(
      (await fsp.readdir(dir)).filter((n) => n !== "keys.json"),
      [],
      "no lock or temp file is left",
    );
  });
});
