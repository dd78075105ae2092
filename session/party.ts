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
 * - `resumeAsParty`: finishes a key generation that did not commit on both sides.
 * - `presignAsParty`: makes presignatures for later messages (bound to the account's key epoch,
 *   an HD path and a hash) into this party's pool (session/presignature_pool.ts).
 * - `signMessageAsParty`: signs a MESSAGE in one round with a presignature both parties hold
 *   (the fast path; a digest always takes `signAsParty`).
 *
 * Every session of an existing account starts by reconciling the key epochs, and key
 * generation and refresh end with the two-phase commit (session/lifecycle.ts,
 * docs/key-lifecycle.md): the store passed in is written only there.
 * @module
 */
import { toHex } from "../core/bytes.ts";
import { deriveShift } from "../core/hd.ts";
import type { AccountRecord, EpochRecord } from "../core/account_records.ts";
import { KeyEpochError } from "../core/errors.ts";
import type { AccountEntry, AccountIdentity } from "../core/keyshare.ts";
import type { RandomSource } from "../core/math/random.ts";
import type { Point } from "../core/params.ts";
import { auxInfo, type PaillierPrimes } from "../core/protocols/aux_info.ts";
import type { ProgressEvent, StepCompute } from "../core/protocols/driver.ts";
import { runProtocol } from "../core/protocols/driver.ts";
import { keygen } from "../core/protocols/keygen.ts";
import { refresh } from "../core/protocols/refresh.ts";
import { presignProtocol } from "../core/protocols/presign.ts";
import { signDigest, signMessageWithPresignature } from "../core/protocols/sign.ts";
import { currentEpoch } from "../core/key_epochs.ts";
import { hashMessage, type HashName } from "../core/signature.ts";
import { ProtocolAbort } from "../core/errors.ts";
import type { KeyShare } from "../core/protocols/types.ts";
import type { PresignatureStore } from "../core/presignature_store.ts";
import type { EcdsaSignature } from "../core/signature.ts";
import { type GatewayClient, identityFromSecret, openSecureSession } from "../transport/mod.ts";
import type { SecureSession } from "../transport/mod.ts";
import { sessionContext, type SessionPurpose } from "./context.ts";
import { parsePresignCount } from "./inputs.ts";
import { type AccountStore, commitEpoch, type CrashHook, reconcile } from "./lifecycle.ts";

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
  /**
   * Where the protocol machines compute (default inline; the service gives a compute pool's
   * stepper, platform/compute_pool.ts). The session's `signal` cancels its jobs.
   */
  readonly compute?: StepCompute;
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

/**
 * The signal of a session's protocol runs: the caller's, and the session's own failure, so a
 * compute job in flight stops as soon as the peer or the gateway fails the session.
 */
function runSignal(opts: SessionOptions, s: SecureSession): AbortSignal {
  return opts.signal ? AbortSignal.any([opts.signal, s.failed]) : s.failed;
}

function runOptions(opts: SessionOptions, s: SecureSession) {
  return {
    signal: runSignal(opts, s),
    roundTimeoutMs: opts.roundTimeoutMs ?? 60_000,
    onProgress: opts.onProgress,
    rng: opts.rng,
    compute: opts.compute,
  };
}

function pinned(rec: AccountRecord | undefined, accountId: string): AccountIdentity {
  if (!rec) throw new KeyEpochError("unknown-epoch", `account "${accountId}" is not stored`);
  if (!rec.identity) {
    throw new RangeError(
      `account "${accountId}" has no pinned identity keys (made by an old tool): refresh it ` +
        `offline or generate a new account`,
    );
  }
  return rec.identity;
}

/**
 * An account's pinned identities and the public facts every epoch shares (party index and
 * count, public key, chain code).
 */
async function stored(store: AccountStore, accountId: string) {
  const rec = await store.record(accountId);
  const identity = pinned(rec, accountId);
  const { i, n, publicKey, chainCode } = rec!.epochs[0].keyShare;
  return { identity, i, n, publicKey, chainCode, rec: rec! };
}

/** The key lifecycle settings of a party (session/lifecycle.ts). */
export interface PartyLifecycle {
  /** Whether a key-generation epoch may be promoted on the peer's word alone (the service). */
  readonly promoteKeygen: boolean;
  /** Test hook at the named crash points. */
  readonly crashPoint?: CrashHook;
  /**
   * This party's presignature store: every session purges the account's presignatures of
   * epochs other than the one it uses, and a refresh purges them to the new epoch once it is
   * promoted (presignatures never outlive their key epoch: SECURITY.md).
   */
  readonly presignatures?: PresignatureStore;
}

function lifecycleOptions(opts: SessionOptions, life: PartyLifecycle) {
  return {
    signal: opts.signal,
    timeoutMs: opts.roundTimeoutMs ?? 60_000,
    crashPoint: life.crashPoint,
  };
}

/** Reconciles the epochs and returns the chosen one, which must be committed (sign, refresh). */
async function committedEpoch(
  s: SecureSession,
  i: number,
  accountId: string,
  store: AccountStore,
  opts: SessionOptions,
  life: PartyLifecycle,
  presignatures = life.presignatures,
): Promise<EpochRecord> {
  const epoch = await reconcile(s, i, accountId, store, {
    ...lifecycleOptions(opts, life),
    promoteKeygen: life.promoteKeygen,
  });
  if (epoch.state !== "current") {
    throw new KeyEpochError(
      "uncommitted",
      `account "${accountId}": its key generation is not confirmed yet: run keygen again`,
    );
  }
  await presignatures?.purgeOtherEpochs(accountId, epoch.digest);
  return epoch;
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
 * Signs `digest` with an account's share as this party: opens the session, reconciles the
 * key epochs (session/lifecycle.ts), then runs full signing with the chosen epoch's share.
 *
 * @param store this party's key store (the account must be stored).
 * @param req account id (bound into the session context), 32-byte digest, non-hardened path.
 * @param opts gateway, room, cancellation, timeouts.
 * @param presignatures where an invalid partial signature locks the key.
 * @param life lifecycle settings.
 * @returns the verified, low-S signature and the derived public key.
 * @throws {TransportError} for a gateway or handshake failure (tampering included);
 *   {ProtocolAbort} naming the culprit; {KeyEpochError} `no-common-epoch` / `uncommitted`;
 *   {RangeError} for an account without identities.
 */
export async function signAsParty(
  store: AccountStore,
  req: {
    readonly accountId: string;
    readonly digest: Uint8Array;
    readonly path: readonly number[];
  },
  opts: SessionOptions,
  presignatures: PresignatureStore,
  life: PartyLifecycle,
): Promise<SignResult> {
  const { identity, i, n, publicKey, chainCode } = await stored(store, req.accountId);
  const purpose: SessionPurpose = {
    op: "sign",
    accountId: req.accountId,
    publicKey: publicKey.toBytes(true),
    digest: req.digest,
    path: req.path,
  };
  const derived = deriveShift(publicKey, chainCode, req.path);
  return await withSession(opts, i, n, identity, identity.publicKeys, purpose, async (s) => {
    const epoch = await committedEpoch(s, i, req.accountId, store, opts, life, presignatures);
    const signature = await signDigest(
      {
        share: epoch.keyShare,
        sid: s.protocolSid("sign"),
        keyId: req.accountId,
        digest: req.digest,
        hdPath: req.path,
        shift: derived.shift,
      },
      s,
      { ...runOptions(opts, s), store: presignatures },
    );
    return { signature, publicKey: derived.childPublicKey, sessionId: toHex(s.sid) };
  });
}

/** Result of a key generation or refresh session. */
export interface KeygenResult {
  /** The new account entry (share with aux info, and the identities of every party). */
  readonly entry: AccountEntry;
  readonly sessionId: string;
  /** The new epoch's digest (stored pending, or current when promoted). */
  readonly epoch: string;
}

/**
 * Runs distributed key generation then aux info for a new account as party `i` of `n`, then
 * the two-phase commit: the new epoch is stored pending, both parties confirm, and it is
 * promoted when `life.promoteKeygen` (the service); the client promotes it only after the
 * service confirmed the session over the API (`promoteEpoch`).
 *
 * @param store this party's key store.
 * @param req account id, party index and count, this party's fresh identity secret key, the
 *   peers' identity public keys (null for one to learn in the handshake; the caller must then
 *   confirm it out of band), and this party's pregenerated safe primes.
 * @param opts gateway, room, cancellation, timeouts.
 * @param life lifecycle settings.
 * @returns the new account entry, the session id and the epoch digest.
 * @throws {TransportError} / {ProtocolAbort} as `signAsParty`; {KeyEpochError}.
 */
export async function keygenAsParty(
  store: AccountStore,
  req: {
    readonly accountId: string;
    readonly i: number;
    readonly n: number;
    readonly identitySecret: Uint8Array;
    readonly peers: readonly (Uint8Array | null)[];
    readonly primes: PaillierPrimes;
  },
  opts: SessionOptions,
  life: PartyLifecycle,
): Promise<KeygenResult> {
  const own = identityFromSecret(req.identitySecret);
  const peers = req.peers.map((k, j) => (j === req.i ? own.publicKey : k));
  const purpose: SessionPurpose = { op: "keygen", accountId: req.accountId, n: req.n };
  const identity = { secretKey: req.identitySecret, publicKeys: [] };
  return await withSession(opts, req.i, req.n, identity, peers, purpose, async (s) => {
    const ro = runOptions(opts, s);
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
    const entry = {
      keyShare,
      identity: { secretKey: Uint8Array.from(req.identitySecret), publicKeys },
    };
    const epoch = await commitEpoch(s, req.i, req.accountId, entry, store, {
      ...lifecycleOptions(opts, life),
      kind: "keygen",
      promote: life.promoteKeygen,
    });
    return { entry, sessionId: toHex(s.sid), epoch };
  });
}

/**
 * Refreshes an account's share as this party (same key, new shares and aux info): reconciles
 * the epochs, runs the refresh on the chosen one, then commits the new epoch in two phases.
 *
 * @param store this party's key store.
 * @param req account id and this party's new pregenerated safe primes.
 * @param opts gateway, room, cancellation, timeouts.
 * @param life lifecycle settings.
 * @returns the refreshed entry (identities kept), the session id and the new epoch.
 * @throws {TransportError} / {ProtocolAbort} as `signAsParty`; {KeyEpochError}.
 */
export async function refreshAsParty(
  store: AccountStore,
  req: { readonly accountId: string; readonly primes: PaillierPrimes },
  opts: SessionOptions,
  life: PartyLifecycle,
): Promise<KeygenResult> {
  const { identity, i, n, publicKey } = await stored(store, req.accountId);
  const purpose: SessionPurpose = {
    op: "refresh",
    accountId: req.accountId,
    publicKey: publicKey.toBytes(true),
  };
  return await withSession(opts, i, n, identity, identity.publicKeys, purpose, async (s) => {
    const lo = lifecycleOptions(opts, life);
    const epoch = await committedEpoch(s, i, req.accountId, store, opts, life);
    const keyShare = await runProtocol(
      refresh,
      { sid: s.protocolSid("refresh"), keyShare: epoch.keyShare, primes: req.primes },
      s,
      runOptions(opts, s),
    );
    const entry = { keyShare, identity };
    const next = await commitEpoch(s, i, req.accountId, entry, store, {
      ...lo,
      kind: "refresh",
      promote: true,
    });
    await life.presignatures?.purgeOtherEpochs(req.accountId, next);
    return { entry, sessionId: toHex(s.sid), epoch: next };
  });
}

/**
 * Finishes a key generation that did not commit on both sides: a session with the identities
 * pinned by it, in which the parties reconcile (session/lifecycle.ts).
 *
 * @param store this party's key store (holding the account, pending or committed).
 * @param accountId the account.
 * @param opts gateway, room, cancellation, timeouts.
 * @param life lifecycle settings (the client keeps the epoch pending: `promoteKeygen: false`).
 * @returns the chosen epoch's entry, its digest and state, and the session id.
 * @throws {KeyEpochError} `no-common-epoch`; {TransportError} / {ProtocolAbort}.
 */
export async function resumeAsParty(
  store: AccountStore,
  accountId: string,
  opts: SessionOptions,
  life: PartyLifecycle,
): Promise<KeygenResult & { readonly state: "current" | "pending" }> {
  const { identity, i, n, publicKey } = await stored(store, accountId);
  const purpose: SessionPurpose = { op: "resume", accountId, publicKey: publicKey.toBytes(true) };
  return await withSession(opts, i, n, identity, identity.publicKeys, purpose, async (s) => {
    const epoch = await reconcile(s, i, accountId, store, {
      ...lifecycleOptions(opts, life),
      promoteKeygen: life.promoteKeygen,
    });
    return {
      entry: { keyShare: epoch.keyShare, identity },
      sessionId: toHex(s.sid),
      epoch: epoch.digest,
      state: epoch.state,
    };
  });
}

/** Result of a presigning session. */
export interface PresignResult {
  /** The new presignatures' ids (equal for both parties), in the order they were made. */
  readonly ids: readonly string[];
  /** The key epoch they are bound to. */
  readonly epoch: string;
  readonly sessionId: string;
}

/**
 * Makes `count` presignatures for an account, bound to its committed key epoch (reconciled
 * first, as every session of an existing account), the HD path and the hash, and puts them into
 * `pool`. Each is a full run of presigning (Figure 7) with its own session id.
 *
 * @param store this party's key store.
 * @param req account id, non-hardened path, hash, how many (1 to 8, `MAX_PRESIGN_BATCH`).
 * @param opts gateway, room, cancellation, timeouts, compute.
 * @param pool where the presignatures go (and where the key lock is read).
 * @param life lifecycle settings.
 * @returns the ids made, the epoch and the session id.
 * @throws {RangeError} for a count out of range; {ProtocolAbort} "key-locked" or an abort of the
 *   protocol naming its culprit; {TransportError}; {KeyEpochError}.
 */
export async function presignAsParty(
  store: AccountStore,
  req: {
    readonly accountId: string;
    readonly path: readonly number[];
    readonly hash: HashName;
    readonly count: number;
  },
  opts: SessionOptions,
  pool: PresignatureStore,
  life: PartyLifecycle,
): Promise<PresignResult> {
  parsePresignCount(req.count);
  const { identity, i, n, publicKey, chainCode } = await stored(store, req.accountId);
  const purpose: SessionPurpose = {
    op: "presign",
    accountId: req.accountId,
    publicKey: publicKey.toBytes(true),
    path: req.path,
    hash: req.hash,
    count: req.count,
  };
  const { shift } = deriveShift(publicKey, chainCode, req.path);
  return await withSession(opts, i, n, identity, identity.publicKeys, purpose, async (s) => {
    const epoch = await committedEpoch(s, i, req.accountId, store, opts, life, pool);
    if (await pool.keyLock(req.accountId)) {
      throw new ProtocolAbort(
        "presign",
        1,
        "key-locked",
        [],
        "presigning refused: the key is locked",
      );
    }
    const ids: string[] = [];
    for (let k = 0; k < req.count; k++) {
      const p = await runProtocol(
        presignProtocol,
        {
          share: epoch.keyShare,
          sid: s.protocolSid(`presign/${k}`),
          keyId: req.accountId,
          epoch: epoch.digest,
          hdPath: req.path,
          shift,
          hash: req.hash,
        },
        s,
        runOptions(opts, s),
      );
      await pool.put(p);
      ids.push(p.id);
    }
    return { ids, epoch: epoch.digest, sessionId: toHex(s.sid) };
  });
}

/**
 * The committed (current) key epoch of an account as this party stores it, without a session.
 * @throws {KeyEpochError} "unknown-epoch" for an account not stored, "uncommitted" without one.
 */
export async function storedCurrentEpoch(store: AccountStore, accountId: string): Promise<string> {
  return committedDigest(await store.record(accountId), accountId);
}

/** The digest of a record's committed epoch (`storedCurrentEpoch` of a record read already). */
function committedDigest(rec: AccountRecord | undefined, accountId: string): string {
  if (!rec) throw new KeyEpochError("unknown-epoch", `account "${accountId}" is not stored`);
  const cur = currentEpoch(rec);
  if (!cur) {
    throw new KeyEpochError("uncommitted", `account "${accountId}" has no committed key epoch`);
  }
  return cur.digest;
}

/**
 * Signs a MESSAGE with a presignature both parties hold, in one round after the handshake:
 * the presignature is taken from `pool` (consumed durably, its binding to the account, the
 * committed epoch, the path and the hash checked) before this party's partial signature leaves,
 * and the message is hashed here with the bound hash. The session context binds the
 * presignature id and the message digest, so parties meaning different presignatures or
 * messages fail the handshake before any protocol message; parties whose presignatures differ
 * under one id fail the echo of the signing round (both have consumed theirs).
 *
 * No reconciliation round: the presignature names its epoch, and a party whose committed epoch
 * is another refuses to take it (the caller then signs in full, which reconciles).
 *
 * @param store this party's key store.
 * @param req account, message, hash, path and the presignature's id.
 * @param opts gateway, room, cancellation, timeouts, compute.
 * @param pool the presignature store (or pool).
 * @returns the verified signature, the derived public key and the session id.
 * @throws {ProtocolAbort} "key-locked", "presignature-used", "bad-signature-share" (the key is
 *   then locked), an echo fault for a mismatched presignature; {RangeError} for a presignature
 *   this party does not hold for that use; {TransportError}; {KeyEpochError}.
 */
export async function signMessageAsParty(
  store: AccountStore,
  req: {
    readonly accountId: string;
    readonly message: Uint8Array;
    readonly hash: HashName;
    readonly path: readonly number[];
    readonly presignatureId: string;
  },
  opts: SessionOptions,
  pool: PresignatureStore,
): Promise<SignResult> {
  const { identity, i, n, publicKey, chainCode, rec } = await stored(store, req.accountId);
  const epoch = committedDigest(rec, req.accountId); // one read of the store
  const purpose: SessionPurpose = {
    op: "sign-message",
    accountId: req.accountId,
    publicKey: publicKey.toBytes(true),
    path: req.path,
    hash: req.hash,
    digest: hashMessage(req.hash, req.message),
    presignatureId: req.presignatureId,
  };
  const derived = deriveShift(publicKey, chainCode, req.path);
  return await withSession(opts, i, n, identity, identity.publicKeys, purpose, async (s) => {
    const signature = await signMessageWithPresignature(
      {
        presignatureId: req.presignatureId,
        keyId: req.accountId,
        epoch,
        hdPath: req.path,
        hash: req.hash,
        message: req.message,
      },
      s,
      { ...runOptions(opts, s), store: pool },
    );
    return { signature, publicKey: derived.childPublicKey, sessionId: toHex(s.sid) };
  });
}
