/**
 * One party's side of a networked session: opens the authenticated, encrypted session of
 * `transport/` in a gateway room, runs the CGGMP21 machines of `core/` through it, and returns
 * the result. The client and the service call the same functions with their own party index, so
 * both sides of every session are one piece of code.
 *
 * - `signAsParty`: full signing of a digest (presigning and signing in one session) with the
 *   account's pinned identities, at an optional non-hardened path.
 * - `keygenAsParty`: distributed key generation then aux info (no dealer), with fresh identity
 *   keys; a peer identity that is not known yet is learned in the handshake and returned, and the
 *   caller confirms it out of band before keeping the share.
 * - `refreshAsParty`: key refresh with the pinned identities.
 *
 * Nothing is persisted here: the caller writes a share only after the whole session succeeded.
 * @module
 */
import { deriveShift } from "../core/hd.ts";
import type { AccountEntry, AccountIdentity } from "../core/keyshare.ts";
import type { RandomSource } from "../core/math/random.ts";
import type { Point } from "../core/params.ts";
import { auxInfo, type PaillierPrimes } from "../core/protocols/aux_info.ts";
import type { ProgressEvent } from "../core/protocols/driver.ts";
import { runProtocol } from "../core/protocols/driver.ts";
import { keygen } from "../core/protocols/keygen.ts";
import { refresh } from "../core/protocols/refresh.ts";
import { signDigest } from "../core/protocols/sign.ts";
import { toHex } from "../core/protocols/types.ts";
import type { KeyShare } from "../core/protocols/types.ts";
import type { PresignatureStore } from "../core/presignature_store.ts";
import type { EcdsaSignature } from "../core/signature.ts";
import { type GatewayClient, identityFromSecret, openSecureSession } from "../transport/mod.ts";
import type { SecureSession } from "../transport/mod.ts";
import { sessionContext, type SessionPurpose } from "./context.ts";

/** What every networked session needs. */
export interface SessionOptions {
  /** The gateway the session's room lives on. */
  readonly gateway: GatewayClient;
  /** The room (32 lowercase hex digits, fresh per session). */
  readonly room: string;
  /** Cancels the session. */
  readonly signal?: AbortSignal;
  /** Time allowed for the peer's hello (default 60 s). */
  readonly handshakeTimeoutMs?: number;
  /** Time allowed for one round's messages (default 60 s). */
  readonly roundTimeoutMs?: number;
  readonly onProgress?: (e: ProgressEvent) => void;
  readonly rng?: RandomSource;
}

async function withSession<T>(
  opts: SessionOptions,
  i: number,
  n: number,
  identity: AccountIdentity,
  peers: readonly (Uint8Array | null)[],
  purpose: SessionPurpose,
  run: (s: SecureSession) => Promise<T>,
): Promise<T> {
  const session = await openSecureSession({
    gateway: opts.gateway,
    room: opts.room,
    i,
    n,
    identity: identityFromSecret(identity.secretKey),
    peers,
    context: sessionContext(purpose),
    signal: opts.signal,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 60_000,
  });
  try {
    return await run(session);
  } finally {
    await session.close();
  }
}

function runOptions(opts: SessionOptions) {
  return {
    signal: opts.signal,
    roundTimeoutMs: opts.roundTimeoutMs ?? 60_000,
    onProgress: opts.onProgress,
    rng: opts.rng,
  };
}

function pinned(entry: AccountEntry, accountId: string): AccountIdentity {
  if (!entry.identity) {
    throw new RangeError(
      `account "${accountId}" has no pinned identity keys (made by an old tool): refresh it ` +
        `offline or generate a new account`,
    );
  }
  return entry.identity;
}

/** Result of a signing session. */
export interface SignResult {
  readonly signature: EcdsaSignature;
  /** The (derived) public key the signature verifies under. */
  readonly publicKey: Point;
  /** The session id both parties agreed on (hex). */
  readonly sessionId: string;
}

/**
 * Signs `digest` with an account's share as this party.
 *
 * @param entry the account (key share and pinned identities).
 * @param req account id (bound into the session context), 32-byte digest, non-hardened path.
 * @param opts gateway, room, cancellation, timeouts.
 * @param store where an invalid partial signature locks the key.
 * @returns the verified, low-S signature and the derived public key.
 * @throws {TransportError} for a gateway or handshake failure (tampering included);
 *   {ProtocolAbort} naming the culprit; {RangeError} for an account without identities.
 */
export async function signAsParty(
  entry: AccountEntry,
  req: {
    readonly accountId: string;
    readonly digest: Uint8Array;
    readonly path: readonly number[];
  },
  opts: SessionOptions,
  store: PresignatureStore,
): Promise<SignResult> {
  const share = entry.keyShare;
  const identity = pinned(entry, req.accountId);
  const purpose: SessionPurpose = {
    op: "sign",
    accountId: req.accountId,
    publicKey: share.publicKey.toBytes(true),
    digest: req.digest,
    path: req.path,
  };
  const derived = deriveShift(share.publicKey, share.chainCode, req.path);
  return await withSession(
    opts,
    share.i,
    share.n,
    identity,
    identity.publicKeys,
    purpose,
    async (s) => {
      const signature = await signDigest(
        {
          share,
          sid: s.protocolSid("sign"),
          keyId: req.accountId,
          digest: req.digest,
          hdPath: req.path,
          shift: derived.shift,
        },
        s,
        { ...runOptions(opts), store },
      );
      return { signature, publicKey: derived.childPublicKey, sessionId: toHex(s.sid) };
    },
  );
}

/** Result of a key generation session. */
export interface KeygenResult {
  /** The new account (share with aux info, and the identities of every party). */
  readonly entry: AccountEntry;
  readonly sessionId: string;
}

/**
 * Runs distributed key generation then aux info for a new account as party `i` of `n`.
 *
 * @param req account id, party index and count, this party's fresh identity secret key, the
 *   peers' identity public keys (null for one to learn in the handshake; the caller must then
 *   confirm it out of band), and this party's pregenerated safe primes.
 * @param opts gateway, room, cancellation, timeouts.
 * @returns the new account entry (not yet stored) and the session id.
 * @throws {TransportError} / {ProtocolAbort} as `signAsParty`.
 */
export async function keygenAsParty(
  req: {
    readonly accountId: string;
    readonly i: number;
    readonly n: number;
    readonly identitySecret: Uint8Array;
    readonly peers: readonly (Uint8Array | null)[];
    readonly primes: PaillierPrimes;
  },
  opts: SessionOptions,
): Promise<KeygenResult> {
  const own = identityFromSecret(req.identitySecret);
  const peers = req.peers.map((k, j) => (j === req.i ? own.publicKey : k));
  const purpose: SessionPurpose = { op: "keygen", accountId: req.accountId, n: req.n };
  const identity = { secretKey: req.identitySecret, publicKeys: [] };
  return await withSession(opts, req.i, req.n, identity, peers, purpose, async (s) => {
    const ro = runOptions(opts);
    const core = await runProtocol(
      keygen,
      { sid: s.protocolSid("keygen"), i: req.i, n: req.n },
      s,
      ro,
    );
    const aux = await runProtocol(
      auxInfo,
      { sid: s.protocolSid("aux-info"), i: req.i, n: req.n, primes: req.primes },
      s,
      ro,
    );
    const keyShare: KeyShare = { ...core, aux };
    const publicKeys = s.peerIdentities.map((k) => Uint8Array.from(k));
    return {
      entry: { keyShare, identity: { secretKey: Uint8Array.from(req.identitySecret), publicKeys } },
      sessionId: toHex(s.sid),
    };
  });
}

/**
 * Refreshes an account's share as this party (same key, new shares and aux info).
 *
 * @param entry the account.
 * @param req account id and this party's new pregenerated safe primes.
 * @param opts gateway, room, cancellation, timeouts.
 * @returns the refreshed entry (identities kept) and the session id.
 * @throws {TransportError} / {ProtocolAbort} as `signAsParty`.
 */
export async function refreshAsParty(
  entry: AccountEntry,
  req: { readonly accountId: string; readonly primes: PaillierPrimes },
  opts: SessionOptions,
): Promise<KeygenResult> {
  const identity = pinned(entry, req.accountId);
  const share = entry.keyShare;
  const purpose: SessionPurpose = {
    op: "refresh",
    accountId: req.accountId,
    publicKey: share.publicKey.toBytes(true),
  };
  return await withSession(
    opts,
    share.i,
    share.n,
    identity,
    identity.publicKeys,
    purpose,
    async (s) => {
      const keyShare = await runProtocol(
        refresh,
        { sid: s.protocolSid("refresh"), keyShare: share, primes: req.primes },
        s,
        runOptions(opts),
      );
      return { entry: { keyShare, identity }, sessionId: toHex(s.sid) };
    },
  );
}
