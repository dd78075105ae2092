/**
 * One writer process of `concurrent_writers_test.ts`: opens the plaintext key file given as
 * the first argument and, interleaved, adds accounts `w<k>-<j>` (party 1's entries, read from
 * the seed file given second), stages and promotes a refresh epoch of the account "shared"
 * (another epoch per writer and step), and reads. It starts writing only when the test says
 * "go" on stdin, after every writer has opened the file. Test data only.
 * @module
 */
import process from "node:process";
import * as fsp from "node:fs/promises";
import { currentEntry, epochDigest, promote, stagePending } from "../core/account_records.ts";
import { decodeAccountsFile } from "../core/keyshare.ts";
import { refreshOffset, reshared } from "./_key_store_test_util.ts";
import { openKeyStore } from "./key_store.ts";

const [path, seedPath, kText, nText] = process.argv.slice(2);
const k = Number(kText);
const n = Number(nText);
const seed = decodeAccountsFile(new Uint8Array(await fsp.readFile(seedPath)));

// Contention, not latency, is under test: a loaded machine may make a writer wait long.
const store = await openKeyStore({
  path,
  decryptor: { plaintext: true },
  partyIndex: 1,
  lockTimeoutMs: 300_000,
});
// Every writer has opened (and read) the file before any writes: wait for the test's "go".
process.stdout.write("ready\n");
await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()));
for (let j = 0; j < n; j++) {
  const id = `w${k}-${j}`;
  const entry = seed.get(id);
  if (!entry) throw new Error(`the seed file has no ${id}`);
  await store.put(id, entry);
  // Stage and promote in one read-modify-write: two refreshes of one account are never run
  // at once (the service excludes them), so only the file's other accounts race here.
  await store.update("shared", (r) => {
    const cur = r && currentEntry(r);
    if (!cur) throw new Error("the shared account has no current epoch");
    const next = reshared(cur, refreshOffset(k, j));
    return promote(
      stagePending(r, next, { kind: "refresh", sessionId: "" }),
      epochDigest(next.keyShare),
    );
  });
  await store.reload();
  if (!store.has("shared")) throw new Error("the shared account vanished");
}
