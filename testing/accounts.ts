/**
 * Development accounts for the end-to-end tests: the project's own offline key generation
 * (`keygen/offline.ts`: dealerless keygen and aux info with every proof) fed with the committed
 * fixture safe primes instead of fresh ones, so no test of the fast tier generates a prime.
 *
 * Aux info still proves and verifies both parties' Paillier and ring-Pedersen parameters, about
 * 20 s per account under Deno and 12 s under Node on two cores: the slowest step of every test
 * file. So each file asks once, and the result is kept in a cache file in the temporary
 * directory (plaintext, mode 0600, test keys only) named after the account ids, the fixture
 * primes and the file format: the first test file of a run pays, the others load it. A cache
 * that does not decode and validate is regenerated; `WALLET_MPC_E2E_FRESH=1` always
 * regenerates.
 * @module
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex } from "../core/bytes.ts";
import { type AccountEntry, decodeAccountsFile, encodeAccountsFile } from "../core/keyshare.ts";
import type { PaillierPrimes } from "../core/protocols/aux_info.ts";
import { generateOfflineAccounts } from "../keygen/offline.ts";
import { FIXTURE_KEY_COUNT, FIXTURE_SAFE_PRIMES, fixturePaillier } from "./fixtures/keys.ts";

/** Both parties' accounts: index 0 is the client's, index 1 the service's. */
export type PartyAccounts = readonly [Map<string, AccountEntry>, Map<string, AccountEntry>];

/**
 * A prime source cycling through the fixture Paillier keys, so the two parties of one account
 * get different moduli.
 * @param first the fixture key to start with.
 * @returns a `generatePrimes` for key generation, aux info or refresh.
 */
export function fixturePrimes(first = 0): () => Promise<PaillierPrimes> {
  let k = first;
  return () => {
    const key = fixturePaillier(k++ % FIXTURE_KEY_COUNT);
    return Promise.resolve({ p: key.p, q: key.q });
  };
}

/**
 * Generates accounts for both parties offline, with fixture primes.
 * @param ids the account ids.
 * @returns the client's and the service's accounts.
 */
export async function fixtureAccounts(ids: readonly string[]): Promise<PartyAccounts> {
  const name = toHex(
    sha256(new TextEncoder().encode(JSON.stringify({
      format: 1,
      ids,
      primes: FIXTURE_SAFE_PRIMES.map((p) => p.toString(16)),
    }))),
  ).slice(0, 24);
  const path = join(tmpdir(), `wallet-mpc-e2e-accounts-${name}.json`);
  if (process.env.WALLET_MPC_E2E_FRESH !== "1") {
    try {
      const o = JSON.parse(readFileSync(path, "utf8"));
      const cached: PartyAccounts = [decodeAccountsFile(o.client), decodeAccountsFile(o.service)];
      if (ids.every((id) => cached[0].has(id) && cached[1].has(id))) return cached;
    } catch {
      // missing or unusable: generate
    }
  }
  const [client, service] = await generateOfflineAccounts(ids, { generatePrimes: fixturePrimes() });
  const text = JSON.stringify({
    client: encodeAccountsFile(client),
    service: encodeAccountsFile(service),
  });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path); // atomic: a parallel test file reads the old or the new cache
  return [client, service];
}

/** Lowercase hex of a bigint (how a share's secrets would look if they leaked into text). */
export function bigHex(v: bigint): string {
  return v.toString(16);
}

/**
 * Strings that must never appear in a log, an audit line or an error: an entry's secret share,
 * Paillier primes and identity secret key, as hex.
 * @param entry the account.
 * @returns the secret strings.
 */
export function secretsOf(entry: AccountEntry): string[] {
  const ks = entry.keyShare;
  const out = [bigHex(ks.x), bigHex(ks.aux.p), bigHex(ks.aux.q)];
  if (entry.identity) {
    out.push(toHex(entry.identity.secretKey));
  }
  return out;
}
