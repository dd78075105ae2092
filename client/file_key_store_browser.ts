/**
 * `wallet-mpc/client/file_key_store` under the `browser` condition: the same export, without
 * `node:fs`, so that one import list bundles for Node and for browsers alike. Opening a file key
 * store in a browser fails with an error naming the browser's store (`browser_key_store.ts`).
 *
 * @example
 * ```ts
 * import { openFileKeyStore } from "./file_key_store_browser.ts";
 * const e = await openFileKeyStore({ path: "x" }).catch((e) => e);
 * console.assert(e instanceof TypeError);
 * ```
 * @module
 */
import type { ClientKeyStore } from "./mpc_client.ts";
import type { FileKeyStoreOptions } from "./file_key_store.ts";

export type { FileKeyStoreOptions } from "./file_key_store.ts";

/**
 * Refuses: browsers have no files. Use `openBrowserKeyStore` (IndexedDB).
 * @param _o ignored.
 * @returns never.
 * @throws {TypeError} always.
 */
export function openFileKeyStore(_o: FileKeyStoreOptions): Promise<ClientKeyStore> {
  return Promise.reject(
    new TypeError(
      "openFileKeyStore needs a file system (Node, Deno); in a browser use openBrowserKeyStore " +
        "from wallet-mpc/client/browser_key_store",
    ),
  );
}
