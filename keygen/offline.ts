/**
 * Offline key generation for DEVELOPMENT: runs every party of a 2-of-2 key in ONE process
 * (dealerless key generation and aux info over an in-memory network, fresh identity keys for
 * each party) and returns each party's accounts. The whole key exists in one process's memory
 * while this runs, so keys made here are NOT FOR PRODUCTION; production keys come from the
 * distributed mode (`MpcClient.keygen` with the running service), where neither share ever
 * leaves its owner.
 *
 * @example
 * ```ts ignore
 * const [client, service] = await generateOfflineAccounts(["demo"], { generatePrimes });
 * ```
 * @module
 */
import type { AccountEntry } from "../core/keyshare.ts";
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
