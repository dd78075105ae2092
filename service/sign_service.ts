/**
 * The sign API's implementation: every RPC of `wallet_mpc.v1.SignService`, independent of how it
 * is served (real gRPC, gRPC-web or Connect: see `routes.ts`). Each call is authenticated,
 * authorized per account, rate limited, validated, run, audited (one JSON line, no secrets), and
 * answered with a Connect code on failure:
 *
 * | failure | code |
 * |---|---|
 * | no or wrong credential | `UNAUTHENTICATED` |
 * | account of another caller, keygen not allowed | `PERMISSION_DENIED` |
 * | a session room the service did not open for this caller, account and operation, or used | `PERMISSION_DENIED` |
 * | bad hex, wrong length, hardened path, bad room id | `INVALID_ARGUMENT` |
 * | unknown account / account exists already (keygen) | `NOT_FOUND` / `ALREADY_EXISTS` |
 * | request flood, too many sessions | `RESOURCE_EXHAUSTED` |
 * | the peer or the gateway broke the session (blame in the message) | `ABORTED` |
 * | the peer did not answer in time | `DEADLINE_EXCEEDED` |
 * | gateway unreachable, shutting down | `UNAVAILABLE` |
 * | anything else | `INTERNAL` (details only in the operator log) |
 *
 * | the parties hold no common key epoch, an uncommitted account | `FAILED_PRECONDITION` |
 * | OpenRoom on a service without room tokens (no `gateway.issuer_secret`) | `FAILED_PRECONDITION` |
 *
 * Session rooms (rooms.ts, docs/gateway.md "Room capability"): with room tokens (`deps.rooms`),
 * `OpenRoom` opens the gateway room of one session for the caller, with the caller's room
 * token, and each session call must name a room opened for its caller, account and operation,
 * once; the service's own gateway client presents the service's token of the room. Without,
 * the client picks the room (any well-formed id) and OpenRoom answers FAILED_PRECONDITION.
 *
 * Key generation and refresh commit in two phases with the client, and every session of an
 * account starts by reconciling the key epochs (session/lifecycle.ts, docs/key-lifecycle.md);
 * a key change excludes every other session of its account.
 *
 * A protocol session (sign, keygen, refresh) passes, in order: the caller's rate limit, the
 * draining check, the session counts (global and per caller), admission control
 * (admission.ts: refused at once when it could not start before its deadline), the account's
 * lock; then a write-ahead `started` audit record, and the session itself, whose protocol
 * compute runs on the compute pool (platform/compute_pool.ts) at the priority of its admission.
 * The call's signal (the client gone, its deadline passed) cancels the session and its compute
 * jobs, queued or running. A refusal by a limit carries a retry hint: the `retry-after` header
 * (seconds) and `retry-after-ms`.
 * @module
 */
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { encodePoint, toHex } from "../core/bytes.ts";
import { deriveShift } from "../core/hd.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import type { PaillierPrimes } from "../core/protocols/aux_info.ts";
import type { StepCompute } from "../core/protocols/driver.ts";
import { InvalidKeyShare, KeyEpochError, ProtocolAbort, TransportError } from "../core/errors.ts";
import type { PresignatureStore } from "../core/presignature_store.ts";
import type { EcdsaSignature } from "../core/signature.ts";
import type { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import {
  ethereumAddress,
  formatPath,
  parseAccountId,
  parseDerivationPath,
  parseDigest,
  parseHash,
  parseIdentityKey,
  parseMessage,
  parsePresignatureId,
  parsePresignCount,
  parseRoomId,
} from "../session/inputs.ts";
import { hashMessage } from "../core/signature.ts";
import type { AccountStore, CrashHook } from "../session/lifecycle.ts";
import {
  keygenAsParty,
  presignAsParty,
  refreshAsParty,
  resumeAsParty,
  signAsParty,
  signMessageAsParty,
  storedCurrentEpoch,
} from "../session/party.ts";
import { PresignaturePool } from "../session/presignature_pool.ts";
import type { PartyLifecycle } from "../session/party.ts";
import type { GatewayClient } from "../transport/mod.ts";
import type { ComputePool, JobTimes } from "../platform/compute_pool.ts";
import { AccountLocks } from "./_account_locks.ts";
import type { Admission, AdmissionTicket, SessionKind } from "./admission.ts";
import type { AuditRecord as AuditLine } from "./audit.ts";
import type { RejectionReason, ServiceMetrics } from "./metrics.ts";
import {
  parseRoomOperation,
  ROOM_OPERATIONS,
  type RoomOperation,
  type SessionRooms,
} from "./rooms.ts";

/** The caller an authenticator recognised. */
export interface Caller {
  readonly id: string;
}

/** Actions authorized per account. */
export type Action = "sign" | "read" | "keygen" | "refresh";

/** What the service needs from its surroundings (all injected; see main.ts). */
export interface SignServiceDeps {
  /** This party's index in its key shares. */
  readonly partyIndex: number;
  /** Number of parties (2). */
  readonly parties: number;
  readonly version: string;
  /**
   * The key store: committed accounts (`ids`, `get`) and the epoch records the key lifecycle
   * reads and writes (session/lifecycle.ts).
   */
  readonly accounts: AccountStore & {
    ids(): string[];
    get(id: string): AccountEntry | undefined;
  };
  /** Test hook at the named crash points of the key lifecycle (never set from the network). */
  readonly crashPoint?: CrashHook;
  /** Recognises the caller from the `authorization` header, or throws. */
  authenticate(authorization: string | null): Caller;
  /** Throws when `caller` may not do `action` on `accountId`. */
  authorize(caller: Caller, accountId: string, action: Action): void;
  /** Throws when `caller` exceeds its request rate. */
  rateLimit(caller: Caller): void;
  /** Reserves a protocol session slot or throws; returns its release. */
  acquireSession(caller: Caller): () => void;
  /** Appends one audit record. */
  audit(record: AuditRecord): void | Promise<void>;
  /**
   * The gateway, for this party's side of the sessions; with `rooms`, it presents the service's
   * room token of each room (`createRoomTokenIssuer`'s `token(room, "service")`).
   */
  readonly gateway: GatewayClient;
  /**
   * The session rooms the service opens (OpenRoom) and the session calls must name; without,
   * clients pick their rooms and OpenRoom answers FAILED_PRECONDITION.
   */
  readonly rooms?: SessionRooms;
  /**
   * Generates this party's Paillier safe primes (keygen, refresh); `options` carry the session's
   * signal, the priority of its jobs and where their worker time is counted.
   */
  generatePrimes(options?: PrimeOptions): Promise<PaillierPrimes>;
  /** Where the sessions' protocol compute runs (default: inline, on the event loop). */
  readonly compute?: ComputePool;
  /** Admission control of sessions (default: the session counts only). */
  readonly admission?: Admission;
  /** Counters of sessions and refusals (`/metrics`). */
  readonly metrics?: ServiceMetrics;
  /**
   * Holds the key locks of signing (an invalid partial signature locks the key), the used
   * presignatures (durably: platform/presignature_journal.ts) and the unused ones.
   */
  readonly presignatures: PresignatureStore;
  /**
   * The bounded pool over `presignatures` that Presign fills and SignMessage claims from
   * (default: one over `presignatures` with the pool's default bounds).
   */
  readonly presignaturePool?: PresignaturePool;
  /** Called after a key generation added an account (the service sizes its caches). */
  readonly onAccountsChanged?: () => void;
  readonly roundTimeoutMs?: number;
  readonly handshakeTimeoutMs?: number;
  /** Whether the service is draining (answers UNAVAILABLE to new sessions). */
  readonly draining?: () => boolean;
  /** Operator log for unexpected errors (never given secrets). */
  readonly logError?: (what: string, e: unknown) => void;
  readonly clock?: () => number;
}

/** What a prime generator gets from the session it works for. */
export interface PrimeOptions {
  readonly signal?: AbortSignal;
  readonly priority?: number;
  readonly onSettled?: (t: JobTimes) => void;
}

/** What an audit line of the sign API records. */
export type AuditAction =
  | "sign"
  | "get_public_key"
  | "list_accounts"
  | "keygen"
  | "refresh"
  | "open_room"
  | "presign"
  | "sign_message";

/**
 * One audit line of the sign API (audit.ts's record, its caller an id, its action one of the
 * API's, its digest hex). Only these fields are ever written.
 */
export type AuditRecord =
  & Omit<AuditLine, "caller" | "action" | "digest">
  & {
    readonly caller: string | null;
    readonly action: AuditAction;
    readonly digest?: string;
  };

/** A request value that failed decoding: INVALID_ARGUMENT with the decoder's message. */
function arg<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TypeError || e instanceof SyntaxError || e instanceof RangeError) {
      throw new ConnectError(e.message, Code.InvalidArgument);
    }
    throw e;
  }
}

/** Whether an error carries a `code` and a `name` of the service's typed errors. */
function named(e: unknown, name: string): e is Error & { code: string } {
  return e instanceof Error && e.name === name &&
    typeof (e as { code?: unknown }).code === "string";
}

/** A Connect code in the audit log's kebab-case style (`InvalidArgument` -> `invalid-argument`). */
function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1-$2").toLowerCase();
}

/**
 * Maps any error of a call to a ConnectError and an audit outcome.
 * @returns the ConnectError to throw, the outcome, an error code and the blamed parties.
 */
export function classify(e: unknown): {
  error: ConnectError;
  outcome: AuditRecord["outcome"];
  code: string;
  blame?: number[];
} {
  if (e instanceof ConnectError) {
    const outcome = e.code === Code.InvalidArgument || e.code === Code.NotFound ||
        e.code === Code.AlreadyExists
      ? "invalid"
      : e.code === Code.ResourceExhausted
      ? "rate-limited"
      : e.code === Code.Unauthenticated || e.code === Code.PermissionDenied
      ? "denied"
      : "error";
    return { error: e, outcome, code: codeName(e.code) };
  }
  if (named(e, "AuthError")) {
    const code = e.code === "permission-denied" ? Code.PermissionDenied : Code.Unauthenticated;
    return { error: new ConnectError(e.message, code), outcome: "denied", code: e.code };
  }
  if (named(e, "RateLimited")) {
    const ms = (e as Error & { retryAfterMs?: unknown }).retryAfterMs;
    const hint = typeof ms === "number" && Number.isFinite(ms) && ms > 0
      ? { "retry-after": String(Math.ceil(ms / 1000)), "retry-after-ms": String(Math.ceil(ms)) }
      : undefined;
    return {
      error: new ConnectError(e.message, Code.ResourceExhausted, hint),
      outcome: "rate-limited",
      code: e.code,
    };
  }
  if (named(e, "ComputeWorkerError")) {
    const msg = e.code === "crashed"
      ? "the service's compute worker failed during the session (the worker was replaced); retry"
      : "the service's compute workers are unavailable";
    const code = e.code === "crashed" ? Code.Internal : Code.Unavailable;
    return { error: new ConnectError(msg, code), outcome: "error", code: `worker-${e.code}` };
  }
  if (e instanceof ProtocolAbort) {
    const msg =
      `${e.protocol} round ${e.round} aborted (${e.code}), blamed parties [${e.culprits}]: ${e.message}`;
    return {
      error: new ConnectError(msg, Code.Aborted),
      outcome: "aborted",
      code: e.code,
      blame: [...e.culprits],
    };
  }
  if (e instanceof TransportError) {
    const code = e.code === "timeout"
      ? Code.DeadlineExceeded
      : e.code === "aborted"
      ? Code.Canceled
      : e.code === "io" || e.code === "closed" || e.code === "gone" || e.code === "rejected" ||
          e.code === "limit"
      ? Code.Unavailable
      : Code.Aborted;
    return {
      error: new ConnectError(`session failed (${e.code}): ${e.message}`, code),
      outcome: "aborted",
      code: e.code,
    };
  }
  if (e instanceof KeyEpochError) {
    return {
      error: new ConnectError(e.message, Code.FailedPrecondition),
      outcome: "error",
      code: e.code,
    };
  }
  if (e instanceof InvalidKeyShare) {
    return {
      error: new ConnectError(`key share unusable (${e.code})`, Code.FailedPrecondition),
      outcome: "error",
      code: e.code,
    };
  }
  return {
    error: new ConnectError("internal error", Code.Internal),
    outcome: "error",
    code: "internal",
  };
}

/**
 * Creates the implementation of every RPC of the sign API.
 *
 * @param deps the service's key store, auth, limits, audit log, gateway and prime generator.
 * @returns a Connect service implementation (`router.service(SignService, impl)`).
 * @example
 * ```ts
 * import type { ConnectRouter } from "@connectrpc/connect";
 * import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
 * import { createSignServiceImpl, type SignServiceDeps } from "./sign_service.ts";
 * export function routesOf(deps: SignServiceDeps) {
 *   const impl = createSignServiceImpl(deps);
 *   return (router: ConnectRouter) => router.service(SignService, impl);
 * }
 * ```
 */
export function createSignServiceImpl(deps: SignServiceDeps): ServiceImpl<typeof SignService> {
  const clock = deps.clock ?? Date.now;
  const pool = deps.presignaturePool ?? new PresignaturePool(deps.presignatures);
  const s: Rpc = {
    deps,
    pool,
    locks: new AccountLocks(),
    life: { promoteKeygen: true, crashPoint: deps.crashPoint, presignatures: pool },
  };
  const audited = <T>(ctx: HandlerContext, action: AuditRecord["action"], body: RpcBody<T>) =>
    runAudited(deps, clock, ctx, action, body);
  return {
    health: () => health(deps),
    listAccounts: (_req, ctx) => audited(ctx, "list_accounts", (c) => listAccounts(deps, c)),
    getPublicKey: (req, ctx) => audited(ctx, "get_public_key", (c) => getPublicKey(deps, req, c)),
    openRoom: (req, ctx) => audited(ctx, "open_room", (c) => openRoom(deps, req, c)),
    sign: (req, ctx) => audited(ctx, "sign", (c) => sign(s, req, c)),
    keygen: (req, ctx) => audited(ctx, "keygen", (c) => keygen(s, req, c)),
    refresh: (req, ctx) => audited(ctx, "refresh", (c) => refresh(s, req, c)),
    presign: (req, ctx) => audited(ctx, "presign", (c) => presign(s, req, c)),
    signMessage: (req, ctx) => audited(ctx, "sign_message", (c) => signMessage(s, req, c)),
  };
}

type Impl = ServiceImpl<typeof SignService>;
/** The request of an RPC. */
type Req<M extends keyof Impl> = Parameters<Impl[M]>[0];
/** The answer of an RPC. */
type Answer<M extends keyof Impl> = Awaited<ReturnType<Impl[M]>>;

/** What the RPC handlers share: the service's surroundings, the account locks, the lifecycle. */
interface Rpc {
  readonly deps: SignServiceDeps;
  /** The presignature pool (over `deps.presignatures`). */
  readonly pool: PresignaturePool;
  readonly locks: AccountLocks;
  readonly life: PartyLifecycle;
}

/** One authenticated call: who makes it, its context, and where its audit fields go. */
interface Call {
  readonly caller: Caller;
  readonly ctx: HandlerContext;
  /** Adds fields to the call's audit record. */
  readonly note: (f: Partial<AuditRecord>) => void;
  /**
   * Writes the write-ahead `started` record of a session (the fields noted so far and a fresh
   * call id, which the final record repeats), before the session does anything.
   */
  readonly started: () => Promise<void>;
}

/** The body of an audited call. */
type RpcBody<T> = (call: Call) => Promise<T>;

/**
 * Runs one audited call: authenticate, rate limit, then `body`; audits the outcome and maps every
 * failure to a ConnectError ({@link classify}).
 */
async function runAudited<T>(
  deps: SignServiceDeps,
  clock: () => number,
  ctx: HandlerContext,
  action: AuditRecord["action"],
  body: RpcBody<T>,
): Promise<T> {
  const t0 = clock();
  let caller: Caller | null = null;
  let extra: Partial<AuditRecord> = { account: null };
  const note = (f: Partial<AuditRecord>) => (extra = { ...extra, ...f });
  try {
    caller = deps.authenticate(ctx.requestHeader.get("authorization"));
    // Every authenticated request takes from the caller's bucket, refused or not, so a flood
    // of reads or of denied / invalid requests is limited like a flood of signatures.
    deps.rateLimit(caller);
    const who = caller.id;
    const started = async () => {
      note({ callId: randomCallId() });
      await deps.audit({
        caller: who,
        action,
        account: extra.account ?? null,
        ...extra,
        outcome: "started",
        durationMs: clock() - t0,
      });
    };
    const out = await body({ caller, ctx, note, started });
    await deps.audit({
      caller: caller.id,
      action,
      account: extra.account ?? null,
      ...extra,
      outcome: "ok",
      durationMs: clock() - t0,
    });
    return out;
  } catch (e) {
    const c = classify(deadlineOrCause(e, ctx));
    if (c.code === "internal" || c.code === "worker-crashed") deps.logError?.(action, e);
    const reason = rejectionReason(e);
    if (reason) deps.metrics?.rejected(reason);
    await deps.audit({
      caller: caller?.id ?? null,
      action,
      account: extra.account ?? null,
      ...extra,
      outcome: c.outcome,
      errorCode: c.code,
      ...(c.blame ? { blame: c.blame } : {}),
      durationMs: clock() - t0,
    });
    throw c.error;
  }
}

/**
 * A session cancelled because the call's deadline passed fails as DEADLINE_EXCEEDED (Connect
 * aborts the call's signal with that error), not as a cancellation.
 * @returns the deadline's error, or `e`.
 */
function deadlineOrCause(e: unknown, ctx: HandlerContext): unknown {
  const reason = ctx.signal.aborted ? ctx.signal.reason : undefined;
  const cancelled = e instanceof TransportError && e.code === "aborted";
  if (cancelled && reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) {
    return new TransportError("timeout", `the call's deadline passed (${e.message})`, { cause: e });
  }
  return e;
}

/** The random id pairing a session's audit records (16 hex digits). */
function randomCallId(): string {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(8)));
}

/** The metrics label of a refusal before any work, or undefined for any other failure. */
function rejectionReason(e: unknown): RejectionReason | undefined {
  if (named(e, "RateLimited")) return e.code.replaceAll("-", "_") as RejectionReason;
  if (e instanceof ConnectError && e.code === Code.Unavailable && e.rawMessage === DRAINING) {
    return "draining";
  }
  return undefined;
}

/** How one admitted session runs: its compute, the priority of its jobs, its signal. */
interface SessionRun {
  /** The session's `RunOptions.compute` (undefined: inline). */
  readonly compute?: StepCompute;
  /** Options for its prime generation. */
  readonly primes: PrimeOptions;
}

/**
 * Runs a protocol session under the service's limits: refused while draining, one of the
 * caller's session slots, admission (refused at once when it could not start before its
 * deadline), and the account's lock (`lock` returns its release); then the write-ahead audit
 * record and the session, its compute on the pool at the priority of its admission. Everything
 * is released when the session ends, and its outcome counted.
 */
async function underLimits<T>(
  s: Rpc,
  call: Call,
  kind: SessionKind,
  lock: () => () => void,
  session: (run: SessionRun) => Promise<T>,
): Promise<T> {
  const { deps } = s;
  notDraining(deps);
  const release = deps.acquireSession(call.caller);
  let ticket: AdmissionTicket | undefined;
  let unlock: () => void;
  try {
    ticket = deps.admission?.admit(kind, call.ctx.timeoutMs());
    unlock = lock();
  } catch (e) {
    ticket?.finish("failed");
    release();
    throw e;
  }
  const charge = (t: JobTimes) => ticket?.charge(t.busyMs);
  const signal = call.ctx.signal;
  const run: SessionRun = {
    compute: deps.compute?.stepper({ priority: ticket?.priority, label: kind, onJob: charge }),
    primes: { signal, priority: ticket?.priority, onSettled: charge },
  };
  let outcome = "ok";
  try {
    await call.started();
    return await session(run);
  } catch (e) {
    const cause = deadlineOrCause(e, call.ctx);
    outcome = codeName(classify(cause).error.code).replaceAll("-", "_");
    throw cause;
  } finally {
    ticket?.finish(outcome === "ok" ? "ok" : outcome === "deadline_exceeded" ? "late" : "failed");
    deps.metrics?.sessionEnded(kind, outcome);
    unlock();
    release();
  }
}

/** The account named by a request, checked, audited and authorized for `action`. */
function authorizedAccount(deps: SignServiceDeps, call: Call, accountId: string, action: Action) {
  const id = arg(() => parseAccountId(accountId));
  call.note({ account: id });
  deps.authorize(call.caller, id, action);
  return id;
}

/**
 * The session room a call names, once checked: with room tokens, one the service opened for
 * this caller, account and operation, not used before (rooms.ts); without, any room id.
 * @throws {ConnectError} PERMISSION_DENIED for another room.
 */
function useRoom(deps: SignServiceDeps, call: Call, id: string, op: RoomOperation, room: string) {
  deps.rooms?.take(call.caller.id, id, op, room);
}

function account(deps: SignServiceDeps, id: string): AccountEntry {
  const entry = deps.accounts.get(id);
  if (!entry) throw new ConnectError(`account "${id}" not found`, Code.NotFound);
  return entry;
}

const DRAINING = "the service is shutting down";

function notDraining(deps: SignServiceDeps): void {
  if (deps.draining?.()) throw new ConnectError(DRAINING, Code.Unavailable);
}

function sessionOptions(
  deps: SignServiceDeps,
  ctx: HandlerContext,
  room: string,
  run: SessionRun,
) {
  return {
    gateway: deps.gateway,
    room,
    signal: ctx.signal,
    roundTimeoutMs: deps.roundTimeoutMs,
    handshakeTimeoutMs: deps.handshakeTimeoutMs,
    compute: run.compute,
  };
}

function health(deps: SignServiceDeps): Answer<"health"> {
  const serving = !deps.draining?.();
  return {
    status: serving ? "serving" : "not_serving",
    partyIndex: deps.partyIndex,
    accounts: deps.accounts.ids().length,
    version: deps.version,
  };
}

function listAccounts(deps: SignServiceDeps, call: Call): Promise<Answer<"listAccounts">> {
  const accounts = deps.accounts.ids().sort().flatMap((id) => {
    try {
      deps.authorize(call.caller, id, "read");
    } catch {
      return [];
    }
    const X = account(deps, id).keyShare.publicKey;
    return [{ accountId: id, publicKey: encodePoint(X), address: ethereumAddress(X) }];
  });
  return Promise.resolve({ accounts });
}

function getPublicKey(
  deps: SignServiceDeps,
  req: Req<"getPublicKey">,
  call: Call,
): Promise<Answer<"getPublicKey">> {
  const id = authorizedAccount(deps, call, req.accountId, "read");
  const path = arg(() => parseDerivationPath(req.derivationPath));
  call.note({ path: formatPath(path) });
  const share = account(deps, id).keyShare;
  const X = deriveShift(share.publicKey, share.chainCode, path).childPublicKey;
  return Promise.resolve({
    publicKey: encodePoint(X),
    address: ethereumAddress(X),
    derivationPath: formatPath(path),
  });
}

const NO_ROOMS = "this service opens no rooms (no gateway.issuer_secret): pick a fresh random " +
  "room_id for the session call";

/**
 * OpenRoom: a fresh room for one session of the caller on an account, authorised as that
 * session is (rooms.ts).
 */
/** The admission kind of the session a room is opened for. */
const ROOM_KINDS: Readonly<Record<RoomOperation, SessionKind>> = {
  sign: "sign",
  keygen: "keygen",
  resume: "keygen",
  refresh: "refresh",
  presign: "presign",
  sign_message: "sign_message",
};

async function openRoom(
  deps: SignServiceDeps,
  req: Req<"openRoom">,
  call: Call,
): Promise<Answer<"openRoom">> {
  if (!deps.rooms) throw new ConnectError(NO_ROOMS, Code.FailedPrecondition);
  const op = arg(() => parseRoomOperation(req.operation));
  const id = authorizedAccount(deps, call, req.accountId, ROOM_OPERATIONS[op]);
  notDraining(deps);
  // Refused now what its session call would be refused: an overloaded service answers the
  // first call of a session, before it costs a room and a gateway token.
  deps.admission?.probe(ROOM_KINDS[op], call.ctx.timeoutMs());
  try {
    const r = await deps.rooms.open(call.caller.id, id, op);
    return { roomId: r.roomId, gatewayToken: r.gatewayToken, expiresAt: BigInt(r.expiresAt) };
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.Unavailable) deps.logError?.("open_room", e);
    throw e;
  }
}

async function sign(s: Rpc, req: Req<"sign">, call: Call): Promise<Answer<"sign">> {
  const { deps } = s;
  const id = authorizedAccount(deps, call, req.accountId, "sign");
  const digest = arg(() => parseDigest(req.digest));
  const path = arg(() => parseDerivationPath(req.derivationPath));
  const room = arg(() => parseRoomId(req.roomId));
  call.note({ digest: toHex(digest), path: formatPath(path) });
  account(deps, id);
  useRoom(deps, call, id, "sign", room);
  return await underLimits(s, call, "sign", () => s.locks.shared(id), async (run) => {
    const r = await signAsParty(
      deps.accounts,
      { accountId: id, digest, path },
      sessionOptions(deps, call.ctx, room, run),
      s.pool,
      s.life,
    );
    call.note({ sessionId: r.sessionId });
    return {
      signature: signatureAnswer(r.signature),
      publicKey: encodePoint(r.publicKey),
      sessionId: r.sessionId,
    };
  });
}

async function keygen(s: Rpc, req: Req<"keygen">, call: Call): Promise<Answer<"keygen">> {
  const { deps } = s;
  const id = authorizedAccount(deps, call, req.accountId, "keygen");
  const room = arg(() => parseRoomId(req.roomId));
  const clientKey = arg(() => parseIdentityKey(req.clientIdentityKey, "client_identity_key"));
  const clientIndex = deps.partyIndex === 0 ? 1 : 0;
  const rec = await deps.accounts.record(id);
  if (req.resume) {
    // Only the client that made the interrupted key generation can finish it.
    const pinnedKey = rec?.identity?.publicKeys[clientIndex];
    if (!pinnedKey || toHex(pinnedKey) !== toHex(clientKey)) {
      throw new ConnectError(
        `account "${id}": no key generation with this client identity to resume; ` +
          "discard the local pending share and run keygen again",
        Code.NotFound,
      );
    }
  } else if (deps.accounts.get(id)) {
    throw new ConnectError(`account "${id}" exists already`, Code.AlreadyExists);
  }
  useRoom(deps, call, id, req.resume ? "resume" : "keygen", room);
  const lock = () => {
    try {
      return s.locks.exclusive(id);
    } catch (e) {
      throw new ConnectError(
        `account "${id}" exists already or is being made`,
        Code.AlreadyExists,
        undefined,
        undefined,
        e,
      );
    }
  };
  return await underLimits(s, call, "keygen", lock, async (run) => {
    const opts = sessionOptions(deps, call.ctx, room, run);
    if (req.resume) {
      const r = await resumeAsParty(deps.accounts, id, opts, s.life);
      call.note({ sessionId: r.sessionId });
      return {
        accountId: id,
        publicKey: encodePoint(r.entry.keyShare.publicKey),
        serviceIdentityKey: toHex(r.entry.identity!.publicKeys[deps.partyIndex]),
        sessionId: r.sessionId,
      };
    }
    const primes = await deps.generatePrimes(run.primes);
    const identitySecret = globalThis.crypto.getRandomValues(new Uint8Array(32));
    const peers: (Uint8Array | null)[] = new Array(deps.parties).fill(null);
    peers[clientIndex] = clientKey;
    const r = await keygenAsParty(
      deps.accounts,
      { accountId: id, i: deps.partyIndex, n: deps.parties, identitySecret, peers, primes },
      opts,
      s.life,
    );
    deps.onAccountsChanged?.();
    call.note({ sessionId: r.sessionId });
    const own = r.entry.identity!.publicKeys[deps.partyIndex];
    return {
      accountId: id,
      publicKey: encodePoint(r.entry.keyShare.publicKey),
      serviceIdentityKey: toHex(own),
      sessionId: r.sessionId,
    };
  });
}

async function refresh(s: Rpc, req: Req<"refresh">, call: Call): Promise<Answer<"refresh">> {
  const { deps } = s;
  const id = authorizedAccount(deps, call, req.accountId, "refresh");
  const room = arg(() => parseRoomId(req.roomId));
  account(deps, id);
  useRoom(deps, call, id, "refresh", room);
  return await underLimits(s, call, "refresh", () => s.locks.exclusive(id), async (run) => {
    const primes = await deps.generatePrimes(run.primes);
    const r = await refreshAsParty(
      deps.accounts,
      { accountId: id, primes },
      sessionOptions(deps, call.ctx, room, run),
      s.life,
    );
    call.note({ sessionId: r.sessionId });
    return {
      accountId: id,
      publicKey: encodePoint(r.entry.keyShare.publicKey),
      sessionId: r.sessionId,
    };
  });
}

/** The wire form of a signature. */
function signatureAnswer(sig: EcdsaSignature) {
  return {
    r: sig.compact.slice(0, 64),
    s: sig.compact.slice(64),
    recoveryId: sig.recoveryId,
    der: sig.der,
    compact: sig.compact,
  };
}

/**
 * Presign: background work of the caller's client (admission: only when the service is idle,
 * on its share of the workers, its jobs after every other session's).
 */
async function presign(s: Rpc, req: Req<"presign">, call: Call): Promise<Answer<"presign">> {
  const { deps } = s;
  const id = authorizedAccount(deps, call, req.accountId, "sign");
  const path = arg(() => parseDerivationPath(req.derivationPath));
  const hash = arg(() => parseHash(req.hash));
  const count = arg(() => parsePresignCount(req.count));
  const room = arg(() => parseRoomId(req.roomId));
  call.note({ path: formatPath(path) });
  account(deps, id);
  useRoom(deps, call, id, "presign", room);
  return await underLimits(s, call, "presign", () => s.locks.shared(id), async (run) => {
    const r = await presignAsParty(
      deps.accounts,
      { accountId: id, path, hash, count },
      sessionOptions(deps, call.ctx, room, run),
      s.pool,
      s.life,
    );
    call.note({ sessionId: r.sessionId });
    return { presignatureIds: [...r.ids], epoch: r.epoch, sessionId: r.sessionId };
  });
}

/** Refusal of a presignature the service does not hold for the request (the client signs in full). */
const PRESIGNATURE_UNAVAILABLE = "presignature-unavailable";

/**
 * SignMessage: one round with a presignature both parties hold. The service claims the named
 * presignature from its pool before anything else (FAILED_PRECONDITION
 * "presignature-unavailable" when it holds none for this account, epoch, path and hash), and
 * from then on consumes it whatever happens once the session starts, so it is never used
 * twice; a call refused before its session (load, rate, draining) lists it again.
 */
async function signMessage(
  s: Rpc,
  req: Req<"signMessage">,
  call: Call,
): Promise<Answer<"signMessage">> {
  const { deps } = s;
  const id = authorizedAccount(deps, call, req.accountId, "sign");
  const message = arg(() => parseMessage(req.message));
  const hash = arg(() => parseHash(req.hash));
  const path = arg(() => parseDerivationPath(req.derivationPath));
  const presignatureId = arg(() => parsePresignatureId(req.presignatureId));
  const room = arg(() => parseRoomId(req.roomId));
  const digest = hashMessage(hash, message);
  call.note({ digest: toHex(digest), path: formatPath(path) });
  account(deps, id);
  useRoom(deps, call, id, "sign_message", room);
  const epoch = await storedCurrentEpoch(deps.accounts, id);
  const target = { accountId: id, path, hash };
  if (!s.pool.claim(presignatureId, target, epoch)) {
    throw new ConnectError(
      `${PRESIGNATURE_UNAVAILABLE}: the service holds no such presignature for account "${id}" ` +
        "at this key epoch, path and hash; sign the digest instead",
      Code.FailedPrecondition,
    );
  }
  let started = false;
  try {
    return await underLimits(s, call, "sign_message", () => s.locks.shared(id), async (run) => {
      started = true;
      const r = await signMessageAsParty(
        deps.accounts,
        { accountId: id, message, hash, path, presignatureId },
        sessionOptions(deps, call.ctx, room, run),
        s.pool,
      );
      call.note({ sessionId: r.sessionId });
      return {
        signature: signatureAnswer(r.signature),
        publicKey: encodePoint(r.publicKey),
        sessionId: r.sessionId,
        digest: toHex(digest),
      };
    });
  } finally {
    // Refused before its session (load, rate, draining): kept for the client's retry, which
    // names it again. Otherwise consumed, a no-op when it was used.
    if (started || !(await s.pool.release(presignatureId))) {
      await s.pool.discard(presignatureId, target, epoch);
    }
  }
}
