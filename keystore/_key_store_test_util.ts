/**
 * Test helpers of the key store tests: fixture entries, temp directories, and a file system
 * that fails on purpose at one step of an atomic write. Test data only.
 * @module
 */
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AccountEntry, decodeAccountsFile } from "../core/keyshare.ts";
import { Point, Q } from "../core/params.ts";

const FIXTURE = new URL("../testing/fixtures/keyshare_v1.json", import.meta.url);

let cache: { party0: AccountEntry; party1: AccountEntry; party1Other: AccountEntry } | undefined;

/**
 * Fixture entries: `party1` is party 1's share of one key, `party0` party 0's share of another
 * key, `party1Other` a share of party 1 with the same aux info but another public key.
 */
export async function fixtureEntries(): Promise<NonNullable<typeof cache>> {
  if (cache) return cache;
  const all = decodeAccountsFile(new Uint8Array(await fsp.readFile(FIXTURE)));
  const party0 = all.get("TEST-ONLY-fixture-a") as AccountEntry;
  const party1 = all.get("TEST-ONLY-fixture-b") as AccountEntry;
  const ks = party1.keyShare;
  const x = (ks.x * 2n) % Q;
  const X1 = Point.BASE.multiply(x);
  const publicShares = [ks.publicShares[0], X1];
  const party1Other: AccountEntry = {
    keyShare: { ...ks, x, publicShares, publicKey: publicShares[0].add(X1) },
  };
  cache = { party0, party1, party1Other };
  return cache;
}

/** Runs `f` in a fresh temp directory, removed afterwards. */
export async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "wallet-mpc-key-store-"));
  try {
    await f(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The directory's entries other than `keep` (stray temp files). */
export async function strays(dir: string, keep: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n !== keep);
}

export { failingFs } from "../testing/failing_fs.ts";

/** The refresh offset writer `k` of the concurrent-writers test applies at its step `j`. */
export function refreshOffset(k: number, j: number): bigint {
  return BigInt(1000 * (k + 1) + j + 1);
}

/** Another epoch of the same 2-party key (x_1 + d, X_0 - dG), as a refresh makes it. */
export function reshared(e: AccountEntry, d: bigint): AccountEntry {
  const ks = e.keyShare;
  const D = Point.BASE.multiply(d);
  const sign = ks.i === 1 ? 1n : -1n;
  const publicShares = [ks.publicShares[0].subtract(D), ks.publicShares[1].add(D)];
  const x = (((ks.x + sign * d) % Q) + Q) % Q;
  return { ...e, keyShare: { ...ks, x, publicShares } };
}
