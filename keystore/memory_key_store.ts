/**
 * A key store in memory with the key store's record semantics (epochs, validated updates), for
 * tests, the browser session and short-lived tools. It implements the client's
 * `ClientKeyStore` and, through `accounts()` / `entry()`, what the service's implementation
 * reads synchronously.
 *
 * @example
 * ```ts
 * import { MemoryKeyStore } from "./memory_key_store.ts";
 * const store = new MemoryKeyStore();
 * console.assert((await store.ids()).length === 0);
 * ```
 * @module
 */
import {
  type AccountRecord,
  assertRecord,
  currentEntry,
  currentEpoch,
  fromEntry,
} from "../core/account_records.ts";
import type { AccountEntry } from "../core/keyshare.ts";

/** An in-memory key store. */
export class MemoryKeyStore {
  readonly #m = new Map<string, AccountRecord>();
  /** @param initial committed accounts to start with. */
  constructor(initial?: ReadonlyMap<string, AccountEntry>) {
    for (const [k, v] of initial ?? []) this.#m.set(k, fromEntry(v));
  }
  /** Committed account ids, sorted (synchronous). */
  accounts(): string[] {
    return [...this.#m].filter(([, r]) => currentEpoch(r)).map(([id]) => id).sort();
  }
  /** A committed account's current entry (synchronous). */
  entry(accountId: string): AccountEntry | undefined {
    const r = this.#m.get(accountId);
    return r && currentEntry(r);
  }
  ids(): Promise<string[]> {
    return Promise.resolve(this.accounts());
  }
  get(accountId: string): Promise<AccountEntry | undefined> {
    return Promise.resolve(this.entry(accountId));
  }
  record(accountId: string): Promise<AccountRecord | undefined> {
    return Promise.resolve(this.#m.get(accountId));
  }
  update(
    accountId: string,
    f: (rec: AccountRecord | undefined) => AccountRecord | undefined,
  ): Promise<AccountRecord | undefined> {
    try {
      const next = f(this.#m.get(accountId));
      if (next) {
        assertRecord(next);
        this.#m.set(accountId, next);
      } else this.#m.delete(accountId);
      return Promise.resolve(next);
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
