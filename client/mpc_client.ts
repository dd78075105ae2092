/**
 * The client party as a library, for browser wallets, Deno and Node: `newMpcClient(config)`
 * returns an `MpcClient` whose `signTx(txHash, accountId)` runs the client's side of a 2-of-2
 * CGGMP21 signing session with the sign-service through the sign-gateway, and whose
 * `getPublicKey(accountId)` answers from the local share.
 *
 * A call asks the service for a session room first (`OpenRoom`: the room id the service chose
 * and this caller's room token for the gateway), starts its own party in the room (authenticated,
 * encrypted session: `transport/`) presenting that token, and asks the service over Connect /
 * gRPC-web to join; when either side fails the other is cancelled. The client never sends its
 * share anywhere; the service's signature must equal the client's own (both are verified by the
 * protocol).
 *
 * Session rooms (docs/gateway.md, "Room capability"): a service that opens no rooms answers
 * `OpenRoom` FAILED_PRECONDITION (no gateway issuer secret), and a service older than the RPC
 * UNIMPLEMENTED; the client then picks a fresh random room itself, presents
 * `config.gatewayToken` if any, and does not ask again, until a session call of such a room is
 * refused with PERMISSION_DENIED or FAILED_PRECONDITION (the service may have been restarted
 * with room tokens): the next call asks `OpenRoom` again. A room from the service is used for one
 * session call only; a retry after a refusal for load opens a new one.
 *
 * Calls beyond the caller's allowance of sessions at the service (`maxConcurrentSessions`,
 * default 2 as the service's `rate_limit.max_sessions_per_caller`) wait in a bounded local
 * queue, and a call the service refuses for load or rate with a retry hint tries again when
 * the hint fits before the call's deadline (`timeoutMs`; `_call_queue.ts`). A service or
 * gateway that cannot be reached fails the call with a `ConnectError` naming its URL:
 * UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED as Connect defines them
 * (`_call_errors.ts`).
 *
 * Key shares live behind `ClientKeyStore` (a file in Deno/Node: `file_key_store.ts`; IndexedDB
 * in browsers: `browser_key_store.ts`; memory for tests). Public keys, Ethereum addresses and the
 * account's extended public key (`getXpub`) come from the local share; `p2wpkhAddress` gives a
 * key's Bitcoin address. This module installs no big-integer backend: in Node and Deno,
 * `wallet-mpc/client` resolves to `native.ts`, which does (README "Packages").
 *
 * @example
 * ```ts
 * import { type ClientKeyStore, newMpcClient } from "./mpc_client.ts";
 * // Needs a running service and gateway: a function, type-checked, not run here.
 * export async function pay(keyStore: ClientKeyStore, token: string, tx: Uint8Array) {
 *   const client = newMpcClient({
 *     serviceUrl: "http://127.0.0.1:50052",
 *     gatewayUrl: "http://127.0.0.1:8080",
 *     token,
 *     keyStore,
 *   });
 *   try {
 *     const digest = await client.signTx("0x" + "ab".repeat(32), "alice"); // full signing
 *     // One round with a presignature once the pool holds one (made in the background):
 *     const sig = await client.signMessage(tx, { account: "alice", hash: "keccak256" });
 *     return [digest.der, sig.r, sig.s, sig.v, sig.pooled];
 *   } finally {
 *     await client.close(); // stops the background presigning
 *   }
 * }
 * ```
 * @module
 */
import {
  type Client,
  Code,
  ConnectError,
  createClient,
  type Transport as RpcTransport,
} from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { deriveShift, deriveXpub, keyShareXpub, TPUB_VERSION, XPUB_VERSION } from "../core/hd.ts";
import { currentEpoch, discard } from "../core/account_records.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import type { PaillierPrimes } from "../core/protocols/aux_info.ts";
import type { ProgressEvent } from "../core/protocols/driver.ts";
import { encodePoint, toHex } from "../core/bytes.ts";
import { MemoryPresignatureStore, type PresignatureStore } from "../core/presignature_store.ts";
import { hashMessage, type HashName, type RecoveryId } from "../core/signature.ts";
import { ProtocolAbort } from "../core/errors.ts";
import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import {
  ethereumAddress,
  formatPath,
  MAX_MESSAGE_BYTES,
  newRoomId,
  parseAccountId,
  parseDerivationPath,
  parseDigest,
  parseHash,
  parseRoomId,
} from "../session/inputs.ts";
import { type AccountStore, type CrashHook, promoteEpoch } from "../session/lifecycle.ts";
import {
  keygenAsParty,
  type PartyLifecycle,
  presignAsParty,
  refreshAsParty,
  resumeAsParty,
  signAsParty,
  signMessageAsParty,
  type SignResult,
  storedCurrentEpoch,
} from "../session/party.ts";
import { type PoolLimits, type PoolStats, PresignaturePool } from "../session/presignature_pool.ts";
import {
  createPresignatureRefiller,
  type PresignatureRefiller,
  type RefillOptions,
  type RefillStats,
} from "./presignature_refill.ts";
import { createGatewayClient, type GatewayClient, generateIdentity } from "../transport/mod.ts";
import { type CallEndpoints, gatewayFailure, serviceFailure } from "./_call_errors.ts";
import { createCallQueue, retryHintMs } from "./_call_queue.ts";

/**
 * Where the client keeps its key shares: committed accounts (`ids`, `get`) and the epoch
 * records of the key lifecycle (`record`, `update`: session/lifecycle.ts).
 */
export interface ClientKeyStore extends AccountStore {
  /** Committed accounts, sorted. */
  ids(): Promise<string[]>;
  /** A committed account's current entry. */
  get(accountId: string): Promise<AccountEntry | undefined>;
}

export { MemoryKeyStore } from "../keystore/memory_key_store.ts";
/** The retry hint (ms) of a RESOURCE_EXHAUSTED refusal: `retry-after-ms`, else `retry-after`. */
export { retryHintMs } from "./_call_queue.ts";
export { BECH32_PREFIX, type BitcoinNetwork, p2wpkhAddress } from "./addresses.ts";

/** Configuration of `newMpcClient`. */
export interface MpcClientConfig {
  /** Base URL of the sign-service's gRPC-web / Connect endpoint (e.g. http://127.0.0.1:50052). */
  readonly serviceUrl?: string;
  /** Wire protocol to the service (default "connect"; "grpc-web" for gRPC-web proxies). */
  readonly protocol?: "connect" | "grpc-web";
  /** A ready Connect transport instead of `serviceUrl` (e.g. real gRPC over HTTP/2 in Node). */
  readonly rpcTransport?: RpcTransport;
  /** Base URL of the sign-gateway. */
  readonly gatewayUrl: string;
  /** Caller credential for the service (`authorization: Bearer <token>`). */
  readonly token: string;
  /**
   * Room token for a gateway with access control, for the rooms the client picks itself (a
   * service that opens no rooms); a room from `OpenRoom` comes with its own token.
   */
  readonly gatewayToken?: string | ((room: string) => string | Promise<string>);
  readonly keyStore: ClientKeyStore;
  /** fetch for the gateway and the service (default the global one). */
  readonly fetch?: typeof fetch;
  /** Generates this party's Paillier primes (needed by keygen and refresh only). */
  readonly generatePrimes?: () => Promise<PaillierPrimes>;
  readonly roundTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
  readonly onProgress?: (e: ProgressEvent | { type: "status"; message: string }) => void;
  /**
   * Presignatures, their used set and the key locks of signing (default: in memory; a
   * persistent store must keep the used set durably: core/presignature_store.ts).
   */
  readonly presignatures?: PresignatureStore;
  /**
   * Background presigning for `signMessage` (presignature_refill.ts): each (account, path, hash)
   * `signMessage` was called with, or `warmPresignatures` named, is kept between `lowWater` and
   * `size` presignatures (default 4 / 2, in sessions of `batch` 2, on at most `cpuShare` 0.5 of
   * the time, never while a signing call runs), within the pool's bounds. `false`: no background
   * presigning (every `signMessage` signs in full). `close()` stops it.
   */
  readonly presignaturePool?: false | (RefillOptions & PoolLimits);
  /** Test hook at the named crash points of the key lifecycle (docs/key-lifecycle.md). */
  readonly crashPoint?: CrashHook;
  /**
   * Signing sessions run at once: the caller's allowance at the service (default 2, the
   * service's default `rate_limit.max_sessions_per_caller`). More `signTx` calls wait.
   */
  readonly maxConcurrentSessions?: number;
  /** `signTx` calls waiting at most (default 64); one more fails with RESOURCE_EXHAUSTED. */
  readonly maxQueuedCalls?: number;
  /**
   * Tries of a `signTx` after the first when the service refuses it for load or rate with a
   * retry hint that fits the call's deadline (default 8; 0: the refusal is the call's error).
   */
  readonly maxRetries?: number;
}

/** A signature as `signTx` returns it. */
export interface TxSignature {
  /** r and s, 64 hex digits each (s is low). */
  readonly r: string;
  readonly s: string;
  readonly recoveryId: RecoveryId;
  /** Ethereum legacy v = 27 + recovery id. */
  readonly v: number;
  /** DER encoding, hex. */
  readonly der: string;
  /** r || s, hex. */
  readonly compact: string;
  /** The (derived) public key the signature verifies under, compressed hex. */
  readonly publicKey: string;
  readonly digest: string;
  readonly sessionId: string;
}

/** A signature as `signMessage` returns it. */
export interface MessageSignature extends TxSignature {
  /** Whether it was made in one round with a presignature (else full signing of the digest). */
  readonly pooled: boolean;
}

/** Options of `signMessage`. */
export interface SignMessageOptions extends CallOptions {
  /** The account id. */
  readonly account: string;
  /** The hash each party applies to the message (`keccak256` for Ethereum). */
  readonly hash: HashName;
}

/** Counters of the client's presignatures. */
export interface PresignatureStats {
  readonly pool: PoolStats;
  readonly refill: RefillStats | undefined;
  /** Messages signed in one round with a presignature / in full (the pool was empty). */
  readonly pooled: number;
  readonly full: number;
}

/** Options of one call. */
export interface CallOptions {
  /** Non-hardened derivation path (`m/0/1`); default the account's root key. */
  readonly path?: string;
  readonly signal?: AbortSignal;
  /**
   * Time allowed for the whole call, ms: the wait in the local queue, retries after a refusal
   * for load, and the session (the service gets what is left as the call's deadline).
   */
  readonly timeoutMs?: number;
}

/** The client party. */
export interface MpcClient {
  /**
   * Signs a MESSAGE (bytes, or a string as UTF-8), hashed by both parties with `options.hash`: in
   * one round with a presignature of the pool when there is one for the account's key epoch,
   * the path and the hash, else in full (the digest through `Sign`); never fails for an empty
   * pool. The presignature rules hold: the message is hashed inside, the path was bound when the
   * presignature was made, a presignature is used once and never across a refresh.
   */
  signMessage(message: Uint8Array | string, options: SignMessageOptions): Promise<MessageSignature>;
  /**
   * Keeps presignatures ready for an account, path and hash (as `signMessage` does after its
   * first call) and resolves when the pool is full.
   */
  warmPresignatures(target: { account: string; hash: HashName; path?: string }): Promise<void>;
  /** Counters of the presignature pool and its background refill. */
  presignatureStats(): PresignatureStats;
  /** Stops the background presigning (resolves when its running session ended). */
  close(): Promise<void>;
  /** Signs a 32-byte transaction hash (hex, optional 0x) with an account's key. */
  signTx(
    txHash: string | Uint8Array,
    accountId: string,
    options?: CallOptions,
  ): Promise<TxSignature>;
  /** The account's public key (compressed hex) at an optional path, from the local share. */
  getPublicKey(accountId: string, options?: { path?: string }): Promise<string>;
  /** The account's Ethereum address (EIP-55, `0x`) at an optional path. */
  getAddress(accountId: string, options?: { path?: string }): Promise<string>;
  /**
   * The account's BIP-32 extended public key: the threshold key with its joint chain code is the
   * root (depth 0, fingerprint of its parent 0); with `path`, the child's (non-hardened) extended
   * key. Any BIP-32 library derives from it the keys the account signs with at non-hardened paths
   * (`signTx(..., { path })`). `version` "tpub" for test networks (default "xpub").
   */
  getXpub(
    accountId: string,
    options?: { path?: string; version?: "xpub" | "tpub" },
  ): Promise<string>;
  /** Accounts with a local share. */
  listAccounts(): Promise<string[]>;
  /** Distributed key generation with the service for a new account; stores the share. */
  keygen(accountId: string, options?: { signal?: AbortSignal }): Promise<{ publicKey: string }>;
  /**
   * Key refresh with the service; stores the refreshed share. Background presigning stops
   * first (its presignatures end with the old epoch), and a refusal because another session of
   * the account still runs on the service (`ABORTED` `account-busy`) is retried with a backoff.
   */
  refresh(accountId: string, options?: { signal?: AbortSignal }): Promise<{ publicKey: string }>;
  /** The service client itself (health, listAccounts on the service, ...). */
  readonly service: Client<typeof SignService>;
}

/** A client-side failure that is not a protocol or transport error. */
export class MpcClientError extends Error {
  override readonly name = "MpcClientError";
  readonly code: "unknown-account" | "mismatch" | "config" | "uncommitted";
  /** @param code what failed. @param message details (no secrets). */
  constructor(code: MpcClientError["code"], message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * Whether a failed one-round signing may fall back to full signing: the service does not hold
 * the presignature, or this party's copy is gone (used, purged by a refresh) or bound otherwise.
 */
function presignatureUnavailable(e: unknown): boolean {
  if (e instanceof ConnectError) {
    return e.code === Code.FailedPrecondition &&
      e.rawMessage.includes("presignature-unavailable:");
  }
  if (e instanceof ProtocolAbort) return e.code === "presignature-used";
  return e instanceof RangeError && e.message.startsWith("presignature:");
}

/** Retries of a key change the service refused because a session of the account was running. */
const BUSY_RETRIES = 7;

/**
 * Whether the service refused a session because another session of the account runs there
 * (`ABORTED` "account-busy:", before any session: docs/service.md, Errors).
 */
function accountBusy(e: unknown): boolean {
  return e instanceof ConnectError && e.code === Code.Aborted &&
    e.rawMessage.includes("account-busy:");
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
function pauseFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", stop);
    };
    const stop = () => {
      done();
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener("abort", stop, { once: true });
  });
}

/** A session kind the service opens rooms for (the service's `ROOM_OPERATIONS`). */
type RoomOperation = "sign" | "keygen" | "resume" | "refresh" | "presign" | "sign_message";

/** The room of one session and the gateway client presenting its token. */
interface SessionRoom {
  readonly room: string;
  readonly gateway: GatewayClient;
  /** Rethrows a failure of the session call, noting a refused room the client picked. */
  readonly failed: (e: unknown) => never;
}

const ROOM_TOKEN = /^[\x21-\x7e]{1,512}$/;

/**
 * Runs our party and the service's call together: the first failure cancels the other side.
 * @returns both results.
 */
async function together<A, B>(
  signal: AbortSignal | undefined,
  local: (s: AbortSignal) => Promise<A>,
  remote: (s: AbortSignal) => Promise<B>,
): Promise<[A, B]> {
  const ac = new AbortController();
  const s = signal ? AbortSignal.any([signal, ac.signal]) : ac.signal;
  // The first failure in time is the cause; the other side's failure is its echo (cancelled).
  let first: { error: unknown } | undefined;
  const fail = (e: unknown): never => {
    first ??= { error: e };
    ac.abort(e);
    throw e;
  };
  const settled = await Promise.allSettled([local(s).catch(fail), remote(s).catch(fail)]);
  if (first) throw first.error;
  return [
    (settled[0] as PromiseFulfilledResult<A>).value,
    (settled[1] as PromiseFulfilledResult<B>).value,
  ];
}

/**
 * Creates the client party.
 *
 * @param config service and gateway endpoints, credential, key store.
 * @returns the client.
 * @throws {MpcClientError} "config" without a service URL or transport.
 */
export function newMpcClient(config: MpcClientConfig): MpcClient {
  const fetchFn = config.fetch ?? globalThis.fetch.bind(globalThis);
  let transport = config.rpcTransport;
  if (!transport) {
    if (!config.serviceUrl) {
      throw new MpcClientError("config", "expected serviceUrl or rpcTransport");
    }
    const make = config.protocol === "grpc-web" ? createGrpcWebTransport : createConnectTransport;
    transport = make({ baseUrl: config.serviceUrl, fetch: fetchFn });
  }
  const service = createClient(SignService, transport);
  const gateway: GatewayClient = createGatewayClient({
    url: config.gatewayUrl,
    fetch: fetchFn,
    token: config.gatewayToken,
  });
  const headers = { authorization: `Bearer ${config.token}` };
  /** Whether to ask the service for rooms (false once it answered that it opens none). */
  let askForRooms = true;
  const poolOptions = config.presignaturePool === false ? undefined : config.presignaturePool ?? {};
  const pool = new PresignaturePool(config.presignatures ?? new MemoryPresignatureStore(), {
    maxPerTarget: poolOptions?.maxPerTarget,
    maxPerAccount: poolOptions?.maxPerAccount,
    maxTotal: poolOptions?.maxTotal,
  });
  const store: PresignatureStore = pool;
  const counts = { pooled: 0, full: 0 };
  const progress = config.onProgress;

  const life: PartyLifecycle = {
    promoteKeygen: false,
    crashPoint: config.crashPoint,
    presignatures: store,
  };
  const keyStore = config.keyStore;
  const where: CallEndpoints = { serviceUrl: config.serviceUrl, gatewayUrl: config.gatewayUrl };
  const calls = createCallQueue({
    maxConcurrent: config.maxConcurrentSessions,
    maxQueued: config.maxQueuedCalls,
    maxRetries: config.maxRetries,
  });
  /** The client's own party, its failures to reach the gateway named (`_call_errors.ts`). */
  const party = <T>(p: Promise<T>, signal: AbortSignal): Promise<T> =>
    p.catch((e) => {
      const r = signal.reason as { name?: string } | undefined;
      if (signal.aborted && r?.name === "TimeoutError") {
        throw new ConnectError(
          `the call's deadline passed during the session (gateway ${config.gatewayUrl})`,
          Code.DeadlineExceeded,
          undefined,
          undefined,
          e,
        );
      }
      throw gatewayFailure(e, where);
    });
  /** A call to the service, its failures named (`_call_errors.ts`). */
  const rpc = <T>(p: Promise<T>, signal?: AbortSignal): Promise<T> =>
    p.catch((e) => {
      throw serviceFailure(e, where, signal);
    });

  /** A committed account's entry (for public keys). */
  async function account(id: string): Promise<AccountEntry> {
    const entry = await keyStore.get(parseAccountId(id));
    if (!entry) throw new MpcClientError("unknown-account", `no local share for account "${id}"`);
    return entry;
  }

  /**
   * Makes sure the account is committed locally: a key generation interrupted after this
   * client stored its pending share is finished with the service first (resume).
   * @returns the digest of the committed epoch.
   */
  async function committed(id: string, signal?: AbortSignal): Promise<string> {
    const rec = await keyStore.record(parseAccountId(id));
    if (!rec) throw new MpcClientError("unknown-account", `no local share for account "${id}"`);
    const current = currentEpoch(rec);
    if (current) return current.digest;
    await resume(id, signal);
    return await storedCurrentEpoch(keyStore, id);
  }

  /**
   * The room of one session: from the service (`OpenRoom`) with its token, or picked here when
   * the service opens no rooms (module doc).
   * @throws {ConnectError} what OpenRoom answered, but FAILED_PRECONDITION and UNIMPLEMENTED;
   *   INTERNAL for an answer that is not a room and a token.
   */
  async function sessionRoom(
    operation: RoomOperation,
    accountId: string,
    signal?: AbortSignal,
    timeoutMs?: number,
  ): Promise<SessionRoom> {
    if (askForRooms) {
      try {
        const r = await rpc(
          service.openRoom({ accountId, operation }, { signal, headers, timeoutMs }),
          signal,
        );
        let room: string;
        try {
          room = parseRoomId(r.roomId);
          if (!ROOM_TOKEN.test(r.gatewayToken)) throw new TypeError("gateway_token: malformed");
        } catch (e) {
          throw new ConnectError(
            `sign-service at ${where.serviceUrl ?? "(the configured transport)"}: OpenRoom ` +
              "answered no valid room id and token",
            Code.Internal,
            undefined,
            undefined,
            e,
          );
        }
        const token = r.gatewayToken;
        const roomGateway = createGatewayClient({ url: config.gatewayUrl, fetch: fetchFn, token });
        return {
          room,
          gateway: roomGateway,
          failed: (e) => {
            throw e;
          },
        };
      } catch (e) {
        const off = e instanceof ConnectError &&
          (e.code === Code.FailedPrecondition || e.code === Code.Unimplemented);
        if (!off) throw e;
        askForRooms = false;
      }
    }
    return {
      room: newRoomId(),
      gateway,
      failed: (e) => {
        const refused = e instanceof ConnectError &&
          (e.code === Code.PermissionDenied || e.code === Code.FailedPrecondition);
        if (refused) askForRooms = true;
        throw e;
      },
    };
  }

  function opts(at: SessionRoom, signal: AbortSignal) {
    return {
      gateway: at.gateway,
      room: at.room,
      signal,
      roundTimeoutMs: config.roundTimeoutMs,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      onProgress: progress,
    };
  }

  function primes(): Promise<PaillierPrimes> {
    if (!config.generatePrimes) {
      throw new MpcClientError("config", "keygen and refresh need config.generatePrimes");
    }
    progress?.({ type: "status", message: "generating Paillier safe primes" });
    return config.generatePrimes();
  }

  /**
   * Finishes a key generation this client stored as pending: a reconciliation session with the
   * service (`Keygen` with `resume`), promoted only when the service confirms the pinned
   * identity, the session and the public key over the API. When the service holds nothing to
   * resume, the pending share is discarded and "uncommitted" is thrown (run keygen again).
   */
  async function resume(accountId: string, signal?: AbortSignal): Promise<{ publicKey: string }> {
    const rec = await keyStore.record(accountId);
    if (!rec?.identity) {
      throw new MpcClientError("unknown-account", `no local share for account "${accountId}"`);
    }
    const ks = rec.epochs[0].keyShare;
    const serviceIndex = ks.i === 0 ? 1 : 0;
    progress?.({ type: "status", message: `finishing the key generation of ${accountId}` });
    let mine, theirs;
    try {
      const at = await sessionRoom("resume", accountId, signal);
      [mine, theirs] = await together(
        signal,
        (s) => party(resumeAsParty(keyStore, accountId, opts(at, s), life), s),
        (s) =>
          rpc(service.keygen({
            accountId,
            roomId: at.room,
            clientIdentityKey: toHex(rec.identity!.publicKeys[ks.i]),
            resume: true,
          }, { signal: s, headers })).catch(at.failed),
      );
    } catch (e) {
      if (e instanceof ConnectError && e.code === Code.NotFound) {
        await keyStore.update(accountId, (r) => {
          const pending = r?.epochs.find((x) => x.state === "pending" && x.kind === "keygen");
          return r && pending && !currentEpoch(r) ? discard(r, pending.digest) : r;
        });
        throw new MpcClientError(
          "uncommitted",
          `account "${accountId}": the service never committed its key generation; the ` +
            "pending local share was discarded: run keygen again",
        );
      }
      throw e;
    }
    const publicKey = encodePoint(ks.publicKey);
    if (
      theirs.serviceIdentityKey !== toHex(rec.identity.publicKeys[serviceIndex]) ||
      theirs.sessionId !== mine.sessionId || theirs.publicKey !== publicKey
    ) {
      throw new MpcClientError("mismatch", "the service confirmed another key generation");
    }
    if (mine.state === "pending") {
      await promoteEpoch(accountId, mine.epoch, keyStore, "keygen", config.crashPoint);
    }
    return { publicKey };
  }

  /**
   * Full signing of a digest (presigning and signing in one session), inside a call's budget.
   */
  async function signFull(
    accountId: string,
    digest: Uint8Array,
    path: number[],
    { signal, timeoutMs }: { signal: AbortSignal; timeoutMs?: number },
  ): Promise<TxSignature> {
    await committed(accountId, signal);
    const t0 = performance.now();
    const at = await sessionRoom("sign", accountId, signal, timeoutMs);
    // The session gets what is left of the call's deadline.
    const left = timeoutMs === undefined
      ? undefined
      : Math.max(1, Math.floor(timeoutMs - (performance.now() - t0))); // whole ms (Connect)
    progress?.({ type: "status", message: `signing in room ${at.room}` });
    const [mine, theirs] = await together(
      signal,
      (s) => party(signAsParty(keyStore, { accountId, digest, path }, opts(at, s), store, life), s),
      (s) =>
        rpc(
          service.sign(
            { accountId, digest: toHex(digest), derivationPath: formatPath(path), roomId: at.room },
            { signal: s, headers, timeoutMs: left },
          ),
          signal,
        ).catch(at.failed),
    );
    return agreed(mine, theirs, digest);
  }

  /** One round with presignature `id`, inside a call's budget. */
  async function signPooled(
    target: { accountId: string; path: number[]; hash: HashName },
    message: Uint8Array,
    id: string,
    { signal, timeoutMs }: { signal: AbortSignal; timeoutMs?: number },
  ): Promise<TxSignature> {
    const { accountId, path, hash } = target;
    const at = await sessionRoom("sign_message", accountId, signal, timeoutMs);
    const [mine, theirs] = await together(
      signal,
      (s) =>
        party(
          signMessageAsParty(
            keyStore,
            { accountId, message, hash, path, presignatureId: id },
            opts(at, s),
            store,
          ),
          s,
        ),
      (s) =>
        rpc(
          service.signMessage({
            accountId,
            message: toHex(message),
            hash,
            derivationPath: formatPath(path),
            presignatureId: id,
            roomId: at.room,
          }, { signal: s, headers, timeoutMs }),
          signal,
        ).catch(at.failed),
    );
    return agreed(mine, theirs, hashMessage(hash, message));
  }

  /** The client's signature, once the service reported the same signature and session. */
  function agreed(
    mine: SignResult,
    theirs: { signature?: { der: string }; sessionId: string },
    digest: Uint8Array,
  ): TxSignature {
    const sig = mine.signature;
    if (theirs.signature?.der !== sig.der || theirs.sessionId !== mine.sessionId) {
      throw new MpcClientError("mismatch", "the service reported another signature or session");
    }
    return {
      r: sig.compact.slice(0, 64),
      s: sig.compact.slice(64),
      recoveryId: sig.recoveryId,
      v: 27 + sig.recoveryId,
      der: sig.der,
      compact: sig.compact,
      publicKey: encodePoint(mine.publicKey),
      digest: toHex(digest),
      sessionId: mine.sessionId,
    };
  }

  /** The background presigning (undefined when off). */
  const refiller: PresignatureRefiller | undefined = poolOptions === undefined
    ? undefined
    : createPresignatureRefiller({
      count: async (t) => pool.count(t, await storedCurrentEpoch(keyStore, t.accountId)),
      presign: (t, count, signal) =>
        calls.run({ signal }, async (b) => {
          await committed(t.accountId, b.signal);
          const at = await sessionRoom("presign", t.accountId, b.signal);
          await together(
            b.signal,
            (s) =>
              party(
                presignAsParty(keyStore, { ...t, count }, opts(at, s), store, life),
                s,
              ),
            (s) =>
              rpc(
                service.presign({
                  accountId: t.accountId,
                  derivationPath: formatPath(t.path),
                  hash: t.hash,
                  count,
                  roomId: at.room,
                }, { signal: s, headers }),
                b.signal,
              ).catch(at.failed),
          );
        }),
      retryHintMs,
      onError: (e) =>
        progress?.({
          type: "status",
          message: `background presigning failed: ${(e as Error)?.message ?? String(e)}`,
        }),
    }, poolOptions);

  return {
    service,

    async signTx(txHash, accountId, options = {}) {
      const digest = txHash instanceof Uint8Array
        ? parseDigest(toHex(txHash))
        : parseDigest(txHash);
      const path = parseDerivationPath(options.path ?? "");
      const budget = { signal: options.signal, timeoutMs: options.timeoutMs };
      const release = refiller?.yieldToSigning(); // background presigning waits for it
      try {
        return await calls.run(budget, (b) => signFull(accountId, digest, path, b));
      } finally {
        release?.();
      }
    },

    async signMessage(message, options) {
      const bytes = typeof message === "string"
        ? new TextEncoder().encode(message)
        : message instanceof Uint8Array
        ? Uint8Array.from(message)
        : (() => {
          throw new TypeError("message: expected bytes or a string");
        })();
      if (bytes.length > MAX_MESSAGE_BYTES) {
        throw new RangeError(`message: expected at most ${MAX_MESSAGE_BYTES} bytes`);
      }
      const accountId = parseAccountId(options?.account);
      const hash = parseHash(options.hash);
      const path = parseDerivationPath(options.path ?? "");
      const target = { accountId, path, hash };
      const release = refiller?.yieldToSigning();
      const budget = { signal: options.signal, timeoutMs: options.timeoutMs };
      try {
        return await calls.run(budget, async (b) => {
          const epoch = await committed(accountId, b.signal);
          refiller?.add(target); // an account held and committed: keep a pool for it
          const id = pool.pick(target, epoch);
          if (id !== undefined) {
            let kept = false;
            try {
              const sig = await signPooled(target, bytes, id, b);
              counts.pooled++;
              return { ...sig, pooled: true };
            } catch (e) {
              // Refused for load before any session (the retry after the hint names it
              // again): listed again if this party never took it.
              if (retryHintMs(e) !== undefined) kept = await pool.release(id);
              if (!presignatureUnavailable(e)) throw e;
              progress?.({ type: "status", message: "presignature unavailable: signing in full" });
            } finally {
              if (!kept) await pool.discard(id, target, epoch); // used or not, never offered again
            }
          }
          const sig = await signFull(accountId, hashMessage(hash, bytes), path, b);
          counts.full++;
          return { ...sig, pooled: false };
        });
      } finally {
        release?.();
      }
    },

    async warmPresignatures(t) {
      if (!refiller) throw new MpcClientError("config", "background presigning is off");
      const accountId = parseAccountId(t.account);
      await account(accountId);
      refiller.add({ accountId, path: parseDerivationPath(t.path ?? ""), hash: parseHash(t.hash) });
      await refiller.idle();
    },

    presignatureStats() {
      return { pool: pool.stats(), refill: refiller?.stats(), ...counts };
    },

    async close() {
      await refiller?.close();
    },

    async getPublicKey(accountId, options = {}) {
      const share = (await account(accountId)).keyShare;
      const path = parseDerivationPath(options.path ?? "");
      return toHex(
        deriveShift(share.publicKey, share.chainCode, path).childPublicKey.toBytes(true),
      );
    },

    async getAddress(accountId, options = {}) {
      const share = (await account(accountId)).keyShare;
      const path = parseDerivationPath(options.path ?? "");
      return ethereumAddress(deriveShift(share.publicKey, share.chainCode, path).childPublicKey);
    },

    async getXpub(accountId, options = {}) {
      const share = (await account(accountId)).keyShare;
      const path = parseDerivationPath(options.path ?? "");
      const version = options.version ?? "xpub";
      if (version !== "xpub" && version !== "tpub") {
        throw new TypeError(`version: expected "xpub" or "tpub", got ${String(version)}`);
      }
      const root = keyShareXpub(share, version === "xpub" ? XPUB_VERSION : TPUB_VERSION);
      return path.length === 0 ? root : deriveXpub(root, path);
    },

    listAccounts() {
      return config.keyStore.ids();
    },

    async keygen(accountId, options = {}) {
      parseAccountId(accountId);
      const rec = await keyStore.record(accountId);
      if (rec && currentEpoch(rec)) {
        throw new MpcClientError("mismatch", `account "${accountId}" exists locally already`);
      }
      if (rec) {
        // A key generation of this account stopped after our pending write: finish it.
        const resumed = await resume(accountId, options.signal).catch((e) => e);
        if (!(resumed instanceof Error)) return resumed;
        if (!(resumed instanceof MpcClientError && resumed.code === "uncommitted")) throw resumed;
      }
      const info = await rpc(service.health({}));
      const n = 2;
      const i = info.partyIndex === 0 ? 1 : 0;
      const own = generateIdentity();
      const p = await primes();
      const at = await sessionRoom("keygen", accountId, options.signal);
      const peers: (Uint8Array | null)[] = [null, null];
      const [mine, theirs] = await together(
        options.signal,
        (signal) =>
          party(
            keygenAsParty(
              keyStore,
              { accountId, i, n, identitySecret: own.secretKey, peers, primes: p },
              opts(at, signal),
              life,
            ),
            signal,
          ),
        (signal) =>
          rpc(service.keygen(
            { accountId, roomId: at.room, clientIdentityKey: toHex(own.publicKey) },
            { signal, headers },
          )).catch(at.failed),
      );
      // The service's identity was learned in the handshake through the untrusted gateway:
      // promote the share only if the service, over its own channel, confirms the same session.
      const learned = toHex(mine.entry.identity!.publicKeys[info.partyIndex]);
      const publicKey = encodePoint(mine.entry.keyShare.publicKey);
      if (
        theirs.serviceIdentityKey !== learned || theirs.sessionId !== mine.sessionId ||
        theirs.publicKey !== publicKey
      ) {
        await keyStore.update(accountId, (r) => (r ? discard(r, mine.epoch) : r));
        throw new MpcClientError(
          "mismatch",
          "the service confirmed another key generation session",
        );
      }
      await promoteEpoch(accountId, mine.epoch, keyStore, "keygen", config.crashPoint);
      return { publicKey };
    },

    async refresh(accountId, options = {}) {
      await committed(accountId, options.signal);
      const p = await primes();
      // The service refuses a key change while any session of the account runs there: the
      // background presigning stops first, and a refusal for a session still ending is retried.
      const resume = await refiller?.pause();
      try {
        for (let attempt = 0;; attempt++) {
          try {
            return await refreshOnce(accountId, p, options.signal);
          } catch (e) {
            if (!accountBusy(e) || attempt >= BUSY_RETRIES) throw e;
            progress?.({ type: "status", message: "account busy on the service: retrying" });
            await pauseFor(Math.min(1_000, 50 * 2 ** attempt), options.signal);
          }
        }
      } finally {
        resume?.();
      }
    },
  };

  /** One refresh session (the retries are the caller's). */
  async function refreshOnce(
    accountId: string,
    p: Awaited<ReturnType<typeof primes>>,
    signal?: AbortSignal,
  ): Promise<{ publicKey: string }> {
    const at = await sessionRoom("refresh", accountId, signal);
    const [mine, theirs] = await together(
      signal,
      (signal) =>
        party(
          refreshAsParty(keyStore, { accountId, primes: p }, opts(at, signal), life),
          signal,
        ),
      (signal) =>
        rpc(service.refresh({ accountId, roomId: at.room }, { signal, headers })).catch(
          at.failed,
        ),
    );
    if (theirs.sessionId !== mine.sessionId) {
      throw new MpcClientError("mismatch", "the service confirmed another refresh session");
    }
    return { publicKey: encodePoint(mine.entry.keyShare.publicKey) };
  }
}
