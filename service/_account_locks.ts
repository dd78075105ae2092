/**
 * The exclusion between the sessions of one account (private to `service/`): a key change
 * (keygen, refresh) excludes every other session of its account, and signing sessions exclude a
 * key change but not each other (docs/key-lifecycle.md).
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * The prefix of the message of both refusals (`ABORTED`, before any session): a client may
 * retry after the other session has ended (docs/service.md, Errors).
 */
export const ACCOUNT_BUSY = "account-busy";

/** The accounts with a key change or signing sessions running on this service. */
export class AccountLocks {
  /** Accounts with a keygen / refresh running. */
  readonly #busy = new Set<string>();
  /** Accounts with signing sessions running, and how many. */
  readonly #signing = new Map<string, number>();

  /**
   * Takes the account for a key change.
   *
   * @param id the account
   * @returns the release (idempotent)
   * @throws {ConnectError} `ABORTED` when any session of the account runs
   */
  exclusive(id: string): () => void {
    if (this.#busy.has(id) || (this.#signing.get(id) ?? 0) > 0) {
      throw new ConnectError(
        `${ACCOUNT_BUSY}: account "${id}" is busy with another session; retry`,
        Code.Aborted,
      );
    }
    this.#busy.add(id);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#busy.delete(id);
    };
  }

  /**
   * Takes the account for a signing session.
   *
   * @param id the account
   * @returns the release (idempotent)
   * @throws {ConnectError} `ABORTED` when a key change of the account runs
   */
  shared(id: string): () => void {
    if (this.#busy.has(id)) {
      throw new ConnectError(
        `${ACCOUNT_BUSY}: account "${id}" is being changed (keygen or refresh); retry`,
        Code.Aborted,
      );
    }
    this.#signing.set(id, (this.#signing.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const k = (this.#signing.get(id) ?? 1) - 1;
      if (k === 0) this.#signing.delete(id);
      else this.#signing.set(id, k);
    };
  }
}
