/**
 * A bounded pool of presignatures on top of a {@link PresignatureStore}: the store keeps the
 * rules (binding, single use, the durable used set, key locks, epochs), the pool keeps the
 * inventory a signer picks from and the bounds.
 *
 * - **Targets.** A presignature is made for one account, key epoch, HD path and hash
 *   (core/presignature_store.ts), so the pool is kept per target (account, path, hash) and
 *   answers for one epoch: entries of another epoch of the account are dropped as soon as it
 *   is asked for the current one (a refresh makes them useless; the store refuses them anyway).
 * - **Bounds.** At most `maxPerTarget` entries per target, `maxPerAccount` per account and
 *   `maxTotal` in all. A presignature that would go beyond a bound evicts the oldest entry of
 *   the bound: it is taken from the store (so recorded as used, never served) and dropped.
 * - **Picking.** `pick` removes the oldest entry of a target from the inventory synchronously,
 *   so two concurrent signers never pick the same presignature; the signer then takes it from
 *   the store (`take`, through this pool), which consumes it durably before any partial
 *   signature leaves.
 * - **Claiming.** The party that did not pick (the service) `claim`s the id its peer names:
 *   listed for that target and epoch, or refused, before any session starts.
 * - **Releasing.** A picked or claimed entry whose session never started (refused for load
 *   before it ran) goes back to the inventory with `release`, as the newest entry, as long as
 *   the store never gave it out and its epoch is still current; otherwise it is dropped. No
 *   partial signature can have left for it: that needs `take`, which marks it used.
 *
 * The pool is itself a `PresignatureStore` (every call goes to the wrapped store, the
 * inventory follows), so the sessions, the key locks and the epoch purges of the key
 * lifecycle use it where they used the store.
 *
 * @example
 * ```ts
 * import { MemoryPresignatureStore } from "../core/presignature_store.ts";
 * import { PresignaturePool } from "./presignature_pool.ts";
 * const pool = new PresignaturePool(new MemoryPresignatureStore(), { maxPerTarget: 8 });
 * const target = { accountId: "alice", path: [], hash: "keccak256" } as const;
 * console.assert(pool.count(target, "ab".repeat(32)) === 0);
 * console.assert(pool.pick(target, "ab".repeat(32)) === undefined);
 * ```
 * @module
 */
import type {
  KeyLock,
  PresignatureRequest,
  PresignatureStore,
} from "../core/presignature_store.ts";
import { assertKeyEpoch, type Presignature } from "../core/protocols/presign.ts";
import type { HashName } from "../core/signature.ts";

/** What a pool entry is for: an account, a non-hardened HD path and the hash of the message. */
export interface PoolTarget {
  readonly accountId: string;
  readonly path: readonly number[];
  readonly hash: HashName;
}

/** Bounds of a pool. */
export interface PoolLimits {
  /** Entries per target (account, path, hash); default 16. */
  readonly maxPerTarget?: number;
  /** Entries per account over its targets; default 64. */
  readonly maxPerAccount?: number;
  /** Entries in all; default 4096. */
  readonly maxTotal?: number;
}

/** Counters of a pool, for metrics. */
export interface PoolStats {
  /** Entries held now. */
  readonly held: number;
  /** Presignatures added since start. */
  readonly added: number;
  /** Presignatures taken to sign. */
  readonly taken: number;
  /** Entries evicted by a bound. */
  readonly evicted: number;
  /** Entries dropped because their key epoch ended. */
  readonly expired: number;
}

interface Entry {
  readonly id: string;
  readonly epoch: string;
  readonly target: string;
  readonly accountId: string;
  readonly request: PresignatureRequest;
}

/** The key of a target in the inventory (injective: JSON of its parts). */
export function targetKey(t: PoolTarget): string {
  return JSON.stringify([t.accountId, [...t.path], t.hash]);
}

function limit(v: number | undefined, fallback: number, name: string): number {
  const x = v ?? fallback;
  if (!Number.isSafeInteger(x) || x < 1) {
    throw new RangeError(`${name}: expected a positive integer, got ${String(v)}`);
  }
  return x;
}

/** A bounded inventory of presignatures over a store (module doc). */
export class PresignaturePool implements PresignatureStore {
  readonly #store: PresignatureStore;
  /** Insertion order is age order: the first entry of a Map is the oldest. */
  readonly #entries = new Map<string, Entry>();
  /** Entries picked or claimed and not yet taken, discarded or released. */
  readonly #out = new Map<string, Entry>();
  readonly #maxPerTarget: number;
  readonly #maxPerAccount: number;
  readonly #maxTotal: number;
  #added = 0;
  #taken = 0;
  #evicted = 0;
  #expired = 0;

  /**
   * @param store the store holding the presignatures and their rules.
   * @param limits the bounds (module doc).
   * @throws {RangeError} for a bound that is not a positive integer.
   */
  constructor(store: PresignatureStore, limits: PoolLimits = {}) {
    this.#store = store;
    this.#maxPerTarget = limit(limits.maxPerTarget, 16, "maxPerTarget");
    this.#maxPerAccount = limit(limits.maxPerAccount, 64, "maxPerAccount");
    this.#maxTotal = limit(limits.maxTotal, 4096, "maxTotal");
  }

  /** The wrapped store. */
  get store(): PresignatureStore {
    return this.#store;
  }

  /**
   * Entries held for a target at `epoch` (all entries without a target); entries of the
   * account at another epoch are dropped first.
   */
  count(target?: PoolTarget, epoch?: string): number {
    if (!target) return this.#entries.size;
    if (epoch !== undefined) this.#expire(target.accountId, epoch);
    const key = targetKey(target);
    let n = 0;
    for (const e of this.#entries.values()) if (e.target === key) n++;
    return n;
  }

  /** Entries held for an account (any target, any epoch). */
  countAccount(accountId: string): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.accountId === accountId) n++;
    return n;
  }

  /** The pool's counters. */
  stats(): PoolStats {
    return {
      held: this.#entries.size,
      added: this.#added,
      taken: this.#taken,
      evicted: this.#evicted,
      expired: this.#expired,
    };
  }

  /**
   * Removes the oldest entry of `target` at `epoch` from the inventory and returns its id
   * (undefined when there is none). The caller then signs with it (`take`).
   */
  pick(target: PoolTarget, epoch: string): string | undefined {
    this.#expire(target.accountId, epoch);
    const key = targetKey(target);
    for (const e of this.#entries.values()) {
      if (e.target === key) {
        this.#entries.delete(e.id);
        this.#out.set(e.id, e);
        return e.id;
      }
    }
    return undefined;
  }

  /**
   * Removes `id` from the inventory if it is listed for `target` at `epoch`.
   * @returns whether it was (the peer named a presignature this party holds for that use).
   */
  claim(id: string, target: PoolTarget, epoch: string): boolean {
    this.#expire(target.accountId, epoch);
    const e = this.#entries.get(id);
    if (!e || e.target !== targetKey(target)) return false;
    this.#entries.delete(id);
    this.#out.set(id, e);
    return true;
  }

  /**
   * Lists a picked or claimed entry again, as the newest of its target, when its session never
   * started: only if the store has not given it out (`take`), it was not discarded and its key
   * epoch was not purged meanwhile.
   * @returns whether it is listed again.
   */
  async release(id: string): Promise<boolean> {
    const e = this.#out.get(id);
    if (!e) return false;
    const used = await this.#store.isUsed(id);
    // Taken, discarded or purged while the store answered: #out no longer holds it.
    if (this.#out.get(id) !== e) return false;
    this.#out.delete(id);
    if (used) return false; // taken from the store directly, not through the pool
    this.#entries.set(id, e);
    await this.#bound((x) => x.target === e.target, this.#maxPerTarget);
    await this.#bound((x) => x.accountId === e.accountId, this.#maxPerAccount);
    await this.#bound(() => true, this.#maxTotal);
    return this.#entries.has(id);
  }

  /**
   * Consumes a picked or claimed entry without signing (the peer could not sign with it):
   * taken from the store, so it is never served.
   */
  async discard(id: string, target: PoolTarget, epoch: string): Promise<void> {
    this.#entries.delete(id);
    this.#out.delete(id);
    try {
      await this.#store.take(id, {
        keyId: target.accountId,
        epoch,
        hdPath: target.path,
        hash: target.hash,
      });
    } catch {
      // already used, purged or locked: not served either way
    }
  }

  /** Stores a fresh presignature and lists it; evicts beyond the bounds (module doc). */
  async put(p: Presignature): Promise<void> {
    await this.#store.put(p);
    const b = p.binding;
    if (b.hash === null || b.epoch === null) return; // the store refuses these; never listed
    const target = targetKey({ accountId: b.keyId, path: b.hdPath, hash: b.hash });
    const request = { keyId: b.keyId, epoch: b.epoch, hdPath: [...b.hdPath], hash: b.hash };
    this.#entries.set(p.id, { id: p.id, epoch: b.epoch, target, accountId: b.keyId, request });
    this.#added++;
    await this.#bound((e) => e.target === target, this.#maxPerTarget);
    await this.#bound((e) => e.accountId === b.keyId, this.#maxPerAccount);
    await this.#bound(() => true, this.#maxTotal);
  }

  async take(id: string, expected: PresignatureRequest): Promise<Presignature> {
    this.#entries.delete(id);
    this.#out.delete(id);
    const p = await this.#store.take(id, expected);
    this.#taken++;
    return p;
  }

  async purgeOtherEpochs(keyId: string, epoch: string): Promise<number> {
    const dropped = await this.#store.purgeOtherEpochs(keyId, epoch);
    this.#expire(keyId, epoch);
    return dropped;
  }

  isUsed(id: string): Promise<boolean> {
    return this.#store.isUsed(id);
  }

  lockKey(lock: KeyLock): Promise<void> {
    return this.#store.lockKey(lock);
  }

  keyLock(keyId: string): Promise<KeyLock | undefined> {
    return this.#store.keyLock(keyId);
  }

  unlockKey(keyId: string): Promise<void> {
    return this.#store.unlockKey(keyId);
  }

  /** Drops the listed entries of `accountId` whose epoch is not `epoch`. */
  #expire(accountId: string, epoch: string): void {
    assertKeyEpoch(epoch);
    for (const e of [...this.#entries.values()]) {
      if (e.accountId === accountId && e.epoch !== epoch) {
        this.#entries.delete(e.id);
        this.#expired++;
      }
    }
    for (const e of [...this.#out.values()]) {
      if (e.accountId === accountId && e.epoch !== epoch) this.#out.delete(e.id);
    }
  }

  /** Evicts the oldest entries matching `match` while more than `max` match. */
  async #bound(match: (e: Entry) => boolean, max: number): Promise<void> {
    const matching = [...this.#entries.values()].filter(match);
    for (const e of matching.slice(0, Math.max(0, matching.length - max))) {
      this.#entries.delete(e.id);
      this.#evicted++;
      try {
        await this.#store.take(e.id, e.request);
      } catch {
        // locked or purged: not listed, so never served by this pool
      }
    }
  }
}
