/**
 * TEST-ONLY: a sign-service in this process, served by its real routes over Connect's in-memory
 * router transport, with session rooms (OpenRoom) behind an in-process sign-gateway with access
 * control (room tokens; by default no anonymous request is served). The service's and the
 * client party's gateway requests go through separate recording fetches, so a test can show who
 * asked what and how the gateway answered.
 * @module
 */
import { createClient, createRouterTransport, type Transport } from "@connectrpc/connect";
import { toHex } from "../core/bytes.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import { MemoryPresignatureStore } from "../core/presignature_store.ts";
import { createGatewayHandler } from "../gateway/handler.ts";
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { PresignaturePool } from "../session/presignature_pool.ts";
import { createAuditLog } from "../service/audit.ts";
import { createAuthenticator, generateToken, hashToken } from "../service/auth.ts";
import { createRateLimiter, createSessionLimiter } from "../service/rate_limit.ts";
import { SessionRooms } from "../service/rooms.ts";
import { signServiceRoutes } from "../service/routes.ts";
import { createSignServiceImpl, type SignServiceDeps } from "../service/sign_service.ts";
import { createGatewayClient, createRoomTokenIssuer, type FetchLike } from "../transport/mod.ts";
import type { PartyAccounts } from "./accounts.ts";
import { fixturePrimes } from "./accounts.ts";
import { memoryServiceParts } from "./service_deps.ts";

/** The gateway's URL in these tests (never resolved: the fetches call the handler). */
export const ROOM_GATEWAY_URL = "http://gateway.rooms.test";

/** One gateway request as a recording fetch saw it. */
export interface GatewayRequest {
  readonly method: string;
  /** `/rooms/<room>/<action>`. */
  readonly path: string;
  /** Whether it carried `authorization`. */
  readonly bearer: boolean;
  readonly status: number;
}

/** Options of {@link roomService}. */
export interface RoomServiceOptions {
  /** Both parties' accounts holding "alice" (testing/accounts.ts). */
  readonly accounts: PartyAccounts;
  /** Whether the service opens rooms (read at every call; default always). */
  readonly rooms?: () => boolean;
  /** The gateway serves requests without a token (access.allow_anonymous; default false). */
  readonly allowAnonymous?: boolean;
  /** Each caller's request bucket (default 50); the bucket never refills. */
  readonly burst?: number;
  /** The rooms' clock, ms (default `Date.now`). */
  readonly clock?: () => number;
  /** Admission control of the service (default none). */
  readonly admission?: SignServiceDeps["admission"];
}

/**
 * The service, its gateway and the recorders. Callers: `alice` (token `ALICE`: accounts
 * `alice*`, may create accounts) and `bob` (`BOB`: account `bob` only, may not).
 * @param o accounts, rooms on or off, anonymous requests, bucket, clock.
 * @returns the service's transport and client, its rooms, audit lines, the gateway recorders,
 *   the client party's fetch, and `close`.
 */
export function roomService(o: RoomServiceOptions) {
  const ALICE = generateToken();
  const BOB = generateToken();
  const issuerSecret = toHex(crypto.getRandomValues(new Uint8Array(32)));
  const handler = createGatewayHandler({
    timers: false,
    access: {
      enabled: true,
      tokenSecret: toHex(crypto.getRandomValues(new Uint8Array(32))),
      issuerSecret,
      allowAnonymous: o.allowAnonymous ?? false,
      tokenTtlS: 3600,
    },
  });
  const recorder = (into: GatewayRequest[]): FetchLike => async (input, init) => {
    const res = await handler(new Request(input, init));
    into.push({
      method: init.method ?? "GET",
      path: new URL(input).pathname,
      bearer: new Headers(init.headers).has("authorization"),
      status: res.status,
    });
    return res;
  };
  const serviceRequests: GatewayRequest[] = [];
  const clientRequests: GatewayRequest[] = [];
  const serviceFetch = recorder(serviceRequests);
  const issuer = createRoomTokenIssuer({
    url: ROOM_GATEWAY_URL,
    secret: issuerSecret,
    fetch: serviceFetch,
  });
  const rooms = new SessionRooms({ issuer, clock: o.clock });
  const on = o.rooms ?? (() => true);
  const store = new MemoryKeyStore(
    new Map<string, AccountEntry>([
      ["alice", o.accounts[1].get("alice")!],
      ["alice-2", o.accounts[1].get("alice")!],
      ["bob", o.accounts[1].get("alice")!], // any party-1 entry: bob's is only ever refused
    ]),
  );
  const auth = createAuthenticator([
    { id: "alice-app", tokenSha256: hashToken(ALICE), accounts: ["alice*"], mayKeygen: true },
    { id: "bob-app", tokenSha256: hashToken(BOB), accounts: ["bob"], mayKeygen: false },
  ]);
  const rate = createRateLimiter({ perMinute: 60, burst: o.burst ?? 50, clock: () => 0 });
  const sessions = createSessionLimiter({ maxConcurrent: 4, maxPerCaller: 2 });
  const presignatures = new MemoryPresignatureStore();
  const presignaturePool = new PresignaturePool(presignatures);
  const lines: string[] = [];
  const audit = createAuditLog({ write: (l) => void lines.push(l) });
  const deps: SignServiceDeps = {
    partyIndex: 1,
    parties: 2,
    version: "test",
    ...memoryServiceParts({ store, auth, rate, sessions, audit }),
    gateway: createGatewayClient({
      url: ROOM_GATEWAY_URL,
      fetch: serviceFetch,
      token: (room) => issuer.token(room, "service"),
    }),
    get rooms() {
      return on() ? rooms : undefined;
    },
    generatePrimes: fixturePrimes(4),
    presignatures,
    presignaturePool,
    admission: o.admission,
    roundTimeoutMs: 30_000,
    handshakeTimeoutMs: 30_000,
  };
  const impl = createSignServiceImpl(deps);
  const transport: Transport = createRouterTransport(signServiceRoutes(impl));
  return {
    ALICE,
    BOB,
    impl,
    transport,
    client: createClient(SignService, transport),
    rooms,
    sessions,
    /** The service's presignature pool and the store under it. */
    presignaturePool,
    presignatures,
    lines,
    audited: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    serviceRequests,
    clientRequests,
    /** The client party's fetch to the gateway (recorded in `clientRequests`). */
    clientFetch: recorder(clientRequests),
    close: () => handler.close(),
  };
}

/** What {@link roomService} returns. */
export type RoomService = ReturnType<typeof roomService>;
