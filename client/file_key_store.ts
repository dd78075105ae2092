/**
 * The client's key shares in a file (Deno and Node): the same age-encrypted, atomically written
 * key share file as the service's (`keystore/key_store.ts`: epoch records, one writer across
 * processes), behind the `ClientKeyStore`
 * interface of `mpc_client.ts`. Browsers get another store later; this file needs `node:fs`.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { generateAgeIdentity } from "../keystore/key_store.ts";
 * import { openFileKeyStore } from "./file_key_store.ts";
 * import { newMpcClient } from "./mpc_client.ts";
 * const dir = mkdtempSync(join(tmpdir(), "client-"));
 * const { identity } = await generateAgeIdentity(); // an operator's: the contents of client.age
 * const path = join(dir, "client_key_shares.json");
 * const keyStore = await openFileKeyStore({ path, identity, create: true });
 * const client = newMpcClient({
 *   serviceUrl: "http://127.0.0.1:50052",
 *   gatewayUrl: "http://127.0.0.1:8080",
 *   token: "<the caller's token>",
 *   keyStore,
 * });
 * console.assert((await client.listAccounts()).length === 0); // until client.keygen("alice")
 * rmSync(dir, { recursive: true });
 * ```
 * @module
 */
import { type KeyStoreOptions, openKeyStore } from "../keystore/key_store.ts";
import type { ClientKeyStore } from "./mpc_client.ts";

/** Options of `openFileKeyStore`. */
export interface FileKeyStoreOptions {
  readonly path: string;
  /** An age X25519 identity (`AGE-SECRET-KEY-1...`) that opens the file (and encrypts writes). */
  readonly identity?: string;
  /** Or a passphrase (scrypt). */
  readonly passphrase?: string;
  /** Development only: a plaintext file. */
  readonly plaintext?: boolean;
  /** Create the file on the first write when it does not exist (key generation). */
  readonly create?: boolean;
  /** The client's party index in its shares (default 0). */
  readonly partyIndex?: number;
  /** Test hook at the key store's crash points (docs/key-lifecycle.md). */
  readonly crashPoint?: KeyStoreOptions["crashPoint"];
  /**
   * Once, for a file of an earlier release (no record MACs): accept it and rewrite it with MACs
   * (docs/key-lifecycle.md, "File format"). Without it such a file is refused.
   */
  readonly migrateLegacy?: boolean;
}

/**
 * Opens (and validates) the client's key share file.
 * @param o path, how to decrypt it, whether it may be missing.
 * @returns the store.
 * @throws {KeyStoreError} as `openKeyStore` (wrong key: "decrypt-failed"; plaintext without
 *   `plaintext`: "not-encrypted"); {InvalidKeyShare} for invalid contents.
 */
export async function openFileKeyStore(o: FileKeyStoreOptions): Promise<ClientKeyStore> {
  const decryptor = o.identity
    ? { identity: o.identity }
    : o.passphrase
    ? { passphrase: o.passphrase }
    : { plaintext: true as const };
  const store = await openKeyStore({
    path: o.path,
    decryptor,
    partyIndex: o.partyIndex ?? 0,
    parties: 2,
    allowPlaintext: o.plaintext === true,
    allowMissing: o.create === true,
    crashPoint: o.crashPoint,
    migrateLegacy: o.migrateLegacy === true,
  });
  // Another process (a second client on the same file) may have written: read again first.
  return {
    ids: () => store.reload().then(() => store.accounts()),
    get: (id) => store.reload().then(() => store.get(id)),
    record: (id) => store.reload().then(() => store.record(id)),
    update: (id, f) => store.update(id, f),
  };
}
