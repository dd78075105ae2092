/**
 * The client party as a library, for browser wallets, Deno and Node: `newMpcClient(config)`
 * returns an `MpcClient` whose `signTx(txHash, accountId)` runs the client's side of a 2-of-2
 * CGGMP21 signing session with the sign-service through the sign-gateway, and whose
 * `getPublicKey(accountId)` answers from the local share.
 *
 * A call picks a fresh random room, starts its own party in the room (authenticated, encrypted
 * session: `transport/`), and asks the service over Connect / gRPC-web to join; when either side
 * fails the other is cancelled. The client never sends its share anywhere; the service's
 * signature must equal the client's own (both are verified by the protocol).
 *
 * Key shares live behind `ClientKeyStore` (a file in Deno/Node: `file_key_store.ts`; memory for
 * tests; a browser store comes later).
 *
 * @example
 * ```ts ignore
 * import { newMpcClient } from "./mpc_client.ts";
 * const client = newMpcClient({ serviceUrl, gatewayUrl, token, keyStore });
 * const sig = await client.signTx("0x" + "ab".repeat(32), "alice");
 * console.log(sig.r, sig.s, sig.v, sig.der);
 * ```
 * @module
 */
import { type Client, createClient, type Transport as RpcTransport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { deriveShift } from "../core/hd.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import type { PaillierPrimes } from "../core/protocols/aux_info.ts";
import type { ProgressEvent } from "../core/protocols/driver.ts";
import { toHex } from "../core/protocols/types.ts";
import { MemoryPresignatureStore, type PresignatureStore } from "../core/presignature_store.ts";
import type { RecoveryId } from "../core/signature.ts";
import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import {
  ethereumAddress,
  formatPath,
  newRoomId,
  parseAccountId,
  parseDerivationPath,
  parseDigest,
} from "../session/inputs.ts";
import { keygenAsParty, refreshAsParty, signAsParty } from "../session/party.ts";
import { createGatewayClient, type GatewayClient, generateIdentity } from "../transport/mod.ts";

/** Where the client keeps its key shares. */
export interface ClientKeyStore {
  ids(): Promise<string[]>;
  get(accountId: string): Promise<AccountEntry | undefined>;
  /** Stores a new or refreshed account atomically. */
  put(accountId: string, entry: AccountEntry): Promise<void>;
}

/** An in-memory key store (tests, short-lived tools). */
export class MemoryKeyStore implements ClientKeyStore {
  readonly #m = new Map<string, AccountEntry>();
  /** @param initial accounts to start with. */
  constructor(initial?: ReadonlyMap<string, AccountEntry>) {
    for (const [k, v] of initial ?? []) this.#m.set(k, v);
  }
  ids(): Promise<string[]> {
    return Promise.resolve([...this.#m.keys()].sort());
  }
  get(accountId: string): Promise<AccountEntry | undefined> {
    return Promise.resolve(this.#m.get(accountId));
  }
  put(accountId: string, entry: AccountEntry): Promise<void> {
    this.#m.set(accountId, entry);
    return Promise.resolve();
  }
}

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
  /** Room token for a gateway with access control (optional). */
  readonly gatewayToken?: string | ((room: string) => string | Promise<string>);
  readonly keyStore: ClientKeyStore;
  /** fetch for the gateway and the service (default the global one). */
  readonly fetch?: typeof fetch;
  /** Generates this party's Paillier primes (needed by keygen and refresh only). */
  readonly generatePrimes?: () => Promise<PaillierPrimes>;
  readonly roundTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
  readonly onProgress?: (e: ProgressEvent | { type: "status"; message: string }) => void;
  /** Key locks of signing (default: in memory). */
  readonly presignatures?: PresignatureStore;
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

/** Options of one call. */
export interface CallOptions {
  /** Non-hardened derivation path (`m/0/1`); default the account's root key. */
  readonly path?: string;
  readonly signal?: AbortSignal;
}

/** The client party. */
export interface MpcClient {
  /** Signs a 32-byte transaction hash (hex, optional 0x) with an account's key. */
  signTx(
    txHash: string | Uint8Array,
    accountId: string,
    options?: CallOptions,
  ): Promise<TxSignature>;
  /** The account's public key (compressed hex) at an optional path, from the local share. */
  getPublicKey(accountId: string, options?: { path?: string }): Promise<string>;
  /** The account's Ethereum address at an optional path. */
  getAddress(accountId: string, options?: { path?: string }): Promise<string>;
  /** Accounts with a local share. */
  listAccounts(): Promise<string[]>;
  /** Distributed key generation with the service for a new account; stores the share. */
  keygen(accountId: string, options?: { signal?: AbortSignal }): Promise<{ publicKey: string }>;
  /** Key refresh with the service; stores the refreshed share. */
  refresh(accountId: string, options?: { signal?: AbortSignal }): Promise<{ publicKey: string }>;
  /** The service client itself (health, listAccounts on the service, ...). */
  readonly service: Client<typeof SignService>;
}

/** A client-side failure that is not a protocol or transport error. */
export class MpcClientError extends Error {
  override readonly name = "MpcClientError";
  readonly code: "unknown-account" | "mismatch" | "config";
  /** @param code what failed. @param message details (no secrets). */
  constructor(code: MpcClientError["code"], message: string) {
    super(message);
    this.code = code;
  }
}

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
  const store = config.presignatures ?? new MemoryPresignatureStore();
  const progress = config.onProgress;

  async function account(id: string): Promise<AccountEntry> {
    const entry = await config.keyStore.get(parseAccountId(id));
    if (!entry) throw new MpcClientError("unknown-account", `no local share for account "${id}"`);
    return entry;
  }

  function opts(room: string, signal: AbortSignal) {
    return {
      gateway,
      room,
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

  return {
    service,

    async signTx(txHash, accountId, options = {}) {
      const digest = txHash instanceof Uint8Array
        ? parseDigest(toHex(txHash))
        : parseDigest(txHash);
      const path = parseDerivationPath(options.path ?? "");
      const entry = await account(accountId);
      const room = newRoomId();
      progress?.({ type: "status", message: `signing in room ${room}` });
      const [mine, theirs] = await together(
        options.signal,
        (signal) => signAsParty(entry, { accountId, digest, path }, opts(room, signal), store),
        (signal) =>
          service.sign(
            { accountId, digest: toHex(digest), derivationPath: formatPath(path), roomId: room },
            { signal, headers },
          ),
      );
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
        publicKey: toHex(mine.publicKey.toBytes(true)),
        digest: toHex(digest),
        sessionId: mine.sessionId,
      };
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

    listAccounts() {
      return config.keyStore.ids();
    },

    async keygen(accountId, options = {}) {
      parseAccountId(accountId);
      if (await config.keyStore.get(accountId)) {
        throw new MpcClientError("mismatch", `account "${accountId}" exists locally already`);
      }
      const info = await service.health({});
      const n = 2;
      const i = info.partyIndex === 0 ? 1 : 0;
      const own = generateIdentity();
      const p = await primes();
      const room = newRoomId();
      const peers: (Uint8Array | null)[] = [null, null];
      const [mine, theirs] = await together(
        options.signal,
        (signal) =>
          keygenAsParty(
            { accountId, i, n, identitySecret: own.secretKey, peers, primes: p },
            opts(room, signal),
          ),
        (signal) =>
          service.keygen(
            { accountId, roomId: room, clientIdentityKey: toHex(own.publicKey) },
            { signal, headers },
          ),
      );
      // The service's identity was learned in the handshake through the untrusted gateway:
      // keep the share only if the service, over its own channel, confirms the same session.
      const learned = toHex(mine.entry.identity!.publicKeys[info.partyIndex]);
      const publicKey = toHex(mine.entry.keyShare.publicKey.toBytes(true));
      if (
        theirs.serviceIdentityKey !== learned || theirs.sessionId !== mine.sessionId ||
        theirs.publicKey !== publicKey
      ) {
        throw new MpcClientError(
          "mismatch",
          "the service confirmed another key generation session",
        );
      }
      await config.keyStore.put(accountId, mine.entry);
      return { publicKey };
    },

    async refresh(accountId, options = {}) {
      const entry = await account(accountId);
      const p = await primes();
      const room = newRoomId();
      const [mine, theirs] = await together(
        options.signal,
        (signal) => refreshAsParty(entry, { accountId, primes: p }, opts(room, signal)),
        (signal) => service.refresh({ accountId, roomId: room }, { signal, headers }),
      );
      if (theirs.sessionId !== mine.sessionId) {
        throw new MpcClientError("mismatch", "the service confirmed another refresh session");
      }
      await config.keyStore.put(accountId, mine.entry);
      return { publicKey: toHex(mine.entry.keyShare.publicKey.toBytes(true)) };
    },
  };
}
