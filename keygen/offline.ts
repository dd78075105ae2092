/**
 * Offline key generation for DEVELOPMENT: runs every party of a 2-of-2 key in ONE process
 * (dealerless key generation and aux info over an in-memory network, fresh identity keys for
 * each party) and returns each party's accounts. The whole key exists in one process's memory
 * while this runs, so keys made here are NOT FOR PRODUCTION; production keys come from the
 * distributed mode (`MpcClient.keygen` with the running service), where neither share ever
 * leaves its owner.
 *
 * `addOfflineAccounts` adds such accounts to both parties' existing key share files through the
 * key store (keystore/key_store.ts: one `put` per account, under the file's lock), refusing
 * every account either file holds already; `describeAccounts` names each account's public key
 * and Ethereum address.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { generateAgeIdentity, openKeyStore } from "../keystore/key_store.ts";
 * import type { PaillierPrimes } from "../core/protocols/aux_info.ts";
 * import { addOfflineAccounts, describeAccounts, generateOfflineAccounts } from "./offline.ts";
 * // generatePrimes: generatePaillierPrimes (core/protocols/aux_info.ts), fresh 1536-bit safe
 * // primes (seconds each), or the platform's faster one (platform/mod.ts).
 * export async function makeDemo(generatePrimes: () => Promise<PaillierPrimes>) {
 *   const dir = mkdtempSync(join(tmpdir(), "keygen-"));
 *   const stores = await Promise.all(["client", "service"].map(async (party, partyIndex) => {
 *     const { identity } = await generateAgeIdentity();
 *     const path = join(dir, `${party}_key_shares.age`);
 *     return openKeyStore({ path, decryptor: { identity }, partyIndex, allowMissing: true });
 *   }));
 *   const [client, service] = await generateOfflineAccounts(["demo"], { generatePrimes });
 *   await addOfflineAccounts(stores, [client, service]);
 *   console.log(describeAccounts(client)); // [{ account: "demo", publicKey, address }]
 *   rmSync(dir, { recursive: true });
 * }
 * ```
 * @module
 */
import { type AccountRecord, epochDigest } from "../core/account_records.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import type { KeyStore } from "../keystore/key_store.ts";
import { KeyStoreError } from "../keystore/errors.ts";
import { ethereumAddress } from "../session/inputs.ts";
import { auxInfo, type PaillierPrimes } from "../core/protocols/aux_info.ts";
import { runProtocol } from "../core/protocols/driver.ts";
import { keygen } from "../core/protocols/keygen.ts";
import { createMemoryNetwork } from "../core/protocols/memory_transport.ts";
import { generateIdentity } from "../transport/mod.ts";
import { parseAccountId } from "../session/inputs.ts";

/** Label written next to files made offline. */
export const NOT_FOR_PRODUCTION =
  "DEVELOPMENT KEYS, NOT FOR PRODUCTION: both shares were generated in one process";

/** Options of `generateOfflineAccounts`. */
export interface OfflineOptions {
  /** Generates one party's Paillier safe primes (called once per party per account). */
  readonly generatePrimes: () => Promise<PaillierPrimes>;
  /** Number of parties (default 2). */
  readonly n?: number;
  readonly onProgress?: (message: string) => void;
}

/**
 * Generates accounts for every party in one process.
 *
 * @param accountIds the new accounts' ids (distinct).
 * @param options prime generator, party count, progress.
 * @returns one map per party index: account id -> entry (key share, pinned identities).
 * @throws {SyntaxError} for a bad or repeated account id; any protocol error (a bug here).
 */
export async function generateOfflineAccounts(
  accountIds: readonly string[],
  options: OfflineOptions,
): Promise<Map<string, AccountEntry>[]> {
  const n = options.n ?? 2;
  const ids = accountIds.map(parseAccountId);
  if (new Set(ids).size !== ids.length) throw new SyntaxError("repeated account id");
  const say = options.onProgress ?? (() => {});
  const parties = Array.from({ length: n }, () => new Map<string, AccountEntry>());
  for (const id of ids) {
    say(`${id}: generating ${2 * n} safe primes of 1536 bits`);
    const primes: PaillierPrimes[] = [];
    for (let j = 0; j < n; j++) primes.push(await options.generatePrimes());
    const identities = Array.from({ length: n }, () => generateIdentity());
    const publicKeys = identities.map((k) => k.publicKey);
    say(`${id}: key generation`);
    const sid = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const net = createMemoryNetwork(n);
    const cores = await Promise.all(
      net.map((t, i) => runProtocol(keygen, { sid, i, n }, t, { roundTimeoutMs: 600_000 })),
    );
    say(`${id}: aux info (Paillier and ring-Pedersen parameters with their proofs)`);
    const auxSid = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const auxNet = createMemoryNetwork(n);
    const aux = await Promise.all(
      auxNet.map((t, i) =>
        runProtocol(auxInfo, { sid: auxSid, i, n, primes: primes[i] }, t, {
          roundTimeoutMs: 600_000,
        })
      ),
    );
    for (let i = 0; i < n; i++) {
      parties[i].set(id, {
        keyShare: { ...cores[i], aux: aux[i] },
        identity: { secretKey: identities[i].secretKey, publicKeys },
      });
    }
    say(`${id}: public key ${cores[0].publicKey.toHex(true)}`);
  }
  return parties;
}

/** What `addOfflineAccounts` needs of one party's key store (keystore/key_store.ts). */
export type OfflineKeyStore = Pick<KeyStore, "path" | "record" | "reload" | "put" | "update">;

/** One account as `keygen offline` reports it. */
export interface OfflineAccountInfo {
  readonly account: string;
  /** Compressed secp256k1 public key, 33 bytes hex. */
  readonly publicKey: string;
  /** EIP-55 checksummed Ethereum address of the public key. */
  readonly address: string;
}

/**
 * Each account's public key and Ethereum address, in the map's order.
 *
 * @param accounts one party's accounts (both parties' share each public key).
 * @returns one entry per account.
 * @example
 * ```ts
 * import { Point } from "../core/params.ts";
 * import { describeAccounts } from "./offline.ts";
 * const g = { keyShare: { publicKey: Point.BASE } } as never; // the key of secret 1
 * const [info] = describeAccounts(new Map([["demo", g]]));
 * console.assert(info.address === "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
 * ```
 */
export function describeAccounts(
  accounts: ReadonlyMap<string, AccountEntry>,
): OfflineAccountInfo[] {
  return [...accounts].map(([account, { keyShare }]) => ({
    account,
    publicKey: keyShare.publicKey.toHex(true),
    address: ethereumAddress(keyShare.publicKey),
  }));
}

/**
 * The accounts among `ids` that any of the stores holds, committed or not (as loaded: call
 * `reload()` first for what is on disk now).
 *
 * @param stores the parties' key stores.
 * @param ids the account ids to look for.
 * @returns one line per store and account found, `"<id>" in <path>`; empty when none.
 * @example
 * ```ts
 * import { accountsHeld } from "./offline.ts";
 * const store = { path: "c.json", record: (id: string) => (id === "a" ? {} as never : undefined) };
 * console.assert(accountsHeld([store], ["a", "b"]).join() === '"a" in c.json');
 * ```
 */
export function accountsHeld(
  stores: readonly Pick<OfflineKeyStore, "path" | "record">[],
  ids: readonly string[],
): string[] {
  const held: string[] = [];
  for (const s of stores) {
    for (const id of ids) if (s.record(id) !== undefined) held.push(`"${id}" in ${s.path}`);
  }
  return held;
}

/** Whether `rec` is exactly the record `put(entry)` wrote (one epoch of that share). */
function isRecordOf(rec: AccountRecord | undefined, entry: AccountEntry): boolean {
  return rec !== undefined && rec.epochs.length === 1 &&
    rec.epochs[0].digest === epochDigest(entry.keyShare);
}

/**
 * Adds accounts made offline to every party's existing key store: all of them or none. Every
 * store is read again first, and nothing is written when any of them holds any of the accounts
 * (committed or not); then each account is `put` (one locked read-modify-write per account). A
 * put that still fails (another process added the account meanwhile, an I/O error) removes the
 * accounts this call added before it is rethrown, so the files end as they began.
 *
 * @param stores the parties' key stores, by party index (client 0, service 1).
 * @param parties the parties' accounts, as `generateOfflineAccounts` returns them.
 * @returns when every party's file holds every account.
 * @throws {RangeError} when the stores and parties differ in number, or the parties in ids.
 * @throws {KeyStoreError} `account-exists` naming every account found and the file holding it;
 *   any error of `reload` / `put` (nothing is left written then); `io` when undoing failed,
 *   naming what is left.
 */
export async function addOfflineAccounts(
  stores: readonly OfflineKeyStore[],
  parties: readonly ReadonlyMap<string, AccountEntry>[],
): Promise<void> {
  if (stores.length !== parties.length || stores.length === 0) {
    throw new RangeError(
      `expected one key store per party, got ${stores.length} stores for ${parties.length} parties`,
    );
  }
  const ids = [...parties[0].keys()];
  for (const p of parties) {
    if (p.size !== ids.length || ids.some((id) => !p.has(id))) {
      throw new RangeError("expected every party to hold the same accounts");
    }
  }
  for (const s of stores) await s.reload();
  const held = accountsHeld(stores, ids);
  if (held.length > 0) {
    throw new KeyStoreError(
      "account-exists",
      `expected new accounts, got accounts already stored: ${held.join(", ")}; nothing written`,
    );
  }
  const added: [OfflineKeyStore, string, AccountEntry][] = [];
  try {
    for (let i = 0; i < stores.length; i++) {
      for (const id of ids) {
        const entry = parties[i].get(id)!;
        await stores[i].put(id, entry);
        added.push([stores[i], id, entry]);
      }
    }
  } catch (e) {
    // Fresh accounts that no one has used, half of a key each: remove them again, only if the
    // record is still exactly the one written here.
    const left: string[] = [];
    for (const [s, id, entry] of added.reverse()) {
      try {
        await s.update(id, (rec) => (isRecordOf(rec, entry) ? undefined : rec));
      } catch {
        left.push(`"${id}" in ${s.path}`);
      }
    }
    if (left.length > 0) {
      throw new KeyStoreError(
        "io",
        `adding the accounts failed (${(e as Error)?.message ?? "error"}) and undoing it ` +
          `failed too; left written: ${left.join(", ")}`,
        { cause: e },
      );
    }
    throw e;
  }
}
