/**
 * One writer process of `concurrent_writers_test.ts`: opens the plaintext key file given as
 * the first argument and, interleaved, adds accounts `w<k>-<j>`, stages and promotes a refresh
 * epoch of the account "shared" (another epoch per writer and step), and reads. Test data only.
 * @module
 */
import process from "node:process";
import { epochDigest, promote, stagePending } from "../core/account_records.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import { Point, Q } from "../core/params.ts";
import { openKeyStore } from "./key_store.ts";
import { fixtureEntries } from "./_key_store_test_util.ts";

const [path, kText, nText] = process.argv.slice(2);
const k = Number(kText);
const n = Number(nText);
const { party1 } = await fixtureEntries();

/** Another epoch of the same key (x_1 + d, X_0 - dG). */
function reshared(e: AccountEntry, d: bigint): AccountEntry {
  const ks = e.keyShare;
  const D = Point.BASE.multiply(d);
  const publicShares = [ks.publicShares[0].subtract(D), ks.publicShares[1].add(D)];
  return { ...e, keyShare: { ...ks, x: (ks.x + d) % Q, publicShares } };
}

const store = await openKeyStore({ path, decryptor: { plaintext: true }, partyIndex: 1 });
for (let j = 0; j < n; j++) {
  await store.put(`w${k}-${j}`, party1);
  const next = reshared(party1, BigInt(1000 * (k + 1) + j + 1));
  // Stage and promote in one read-modify-write: two refreshes of one account are never run at
  // once (the service excludes them), so only the file's other accounts race here.
  await store.update(
    "shared",
    (r) =>
      promote(
        stagePending(r, next, { kind: "refresh", sessionId: "" }),
        epochDigest(next.keyShare),
      ),
  );
  await store.reload();
  if (!store.has("shared")) throw new Error("the shared account vanished");
}
