/**
 * Harness of the sign API's routes in process: the real implementation (`createSignServiceImpl`
 * with the real authenticator, limiters and audit formatting, an account of dealt fixture
 * shares) behind the real routes, over Connect and gRPC-web (the fetch handler) and gRPC (the
 * routes' universal handler, whose trailers carry the status). The gateway answers every session
 * request 403 at once, so a valid Sign, Keygen, Presign or SignMessage fails fast instead of
 * waiting for a peer.
 *
 * Session rooms: with them on, the service opens rooms (OpenRoom) with a real room token issuer
 * talking to a sign-gateway with access control in process, and every session call must name a
 * room opened for it; with them off, OpenRoom answers FAILED_PRECONDITION and the calls name any
 * room. Presignatures: before each SignMessage input the service's pool holds one dealt
 * presignature of the account (key epoch, root path, keccak256) under the id the seeds name, in a
 * fresh store, so an input reaches the claim and the session, not only the refusal.
 *
 * Input layout: byte 0 picks the method, byte 1 the protocol and content type (values 5 and up
 * send the body without gRPC framing), byte 2 the credential (low 4 bits) and whether session
 * rooms are on (bit 4); the rest is the message body.
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { create, type DescMessage, toBinary, toJsonString } from "@bufbuild/protobuf";
import { createConnectRouter } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { trailerFlag, trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { toHex } from "../../core/bytes.ts";
import type { AccountEntry } from "../../core/keyshare.ts";
import { Q } from "../../core/params.ts";
import { MemoryPresignatureStore, type PresignatureStore } from "../../core/presignature_store.ts";
import { createGatewayHandler } from "../../gateway/handler.ts";
import { MemoryKeyStore } from "../../keystore/memory_key_store.ts";
import {
  GetPublicKeyRequestSchema,
  HealthRequestSchema,
  KeygenRequestSchema,
  ListAccountsRequestSchema,
  OpenRoomRequestSchema,
  PresignRequestSchema,
  RefreshRequestSchema,
  SignMessageRequestSchema,
  SignRequestSchema,
} from "../../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { createAuditLog } from "../../service/audit.ts";
import { createAuthenticator, generateToken, hashToken } from "../../service/auth.ts";
import { createRateLimiter, createSessionLimiter } from "../../service/rate_limit.ts";
import { SessionRooms } from "../../service/rooms.ts";
import { createSignServiceFetchHandler, signServiceRoutes } from "../../service/routes.ts";
import { createSignServiceImpl } from "../../service/sign_service.ts";
import { storedCurrentEpoch } from "../../session/party.ts";
import { PresignaturePool } from "../../session/presignature_pool.ts";
import { dealKeyShares, dealPresignatures } from "../../testing/fixtures/protocol_fixtures.ts";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import { createGatewayClient, createRoomTokenIssuer } from "../../transport/mod.ts";
import { type Harness, OracleFailure } from "../_engine.ts";

/** The id of the presignature the service holds before each input (SignMessage's seeds). */
const PRESIGNATURE_ID = "5a".repeat(32);

const METHODS: [string, DescMessage, Record<string, unknown>][] = [
  ["Sign", SignRequestSchema, {
    accountId: "alice",
    digest: "0x" + "ab".repeat(32),
    derivationPath: "m/0/7",
    roomId: "0123456789abcdef0123456789abcdef",
  }],
  ["GetPublicKey", GetPublicKeyRequestSchema, { accountId: "alice", derivationPath: "m/1" }],
  ["ListAccounts", ListAccountsRequestSchema, {}],
  ["Keygen", KeygenRequestSchema, {
    accountId: "alice-new",
    roomId: "00112233445566778899aabbccddeeff",
    clientIdentityKey: "cd".repeat(32),
    resume: false,
  }],
  ["Refresh", RefreshRequestSchema, {
    accountId: "alice",
    roomId: "ffeeddccbbaa99887766554433221100",
  }],
  ["Health", HealthRequestSchema, {}],
  ["OpenRoom", OpenRoomRequestSchema, { accountId: "alice", operation: "sign_message" }],
  ["Presign", PresignRequestSchema, {
    accountId: "alice",
    derivationPath: "m/0/7",
    hash: "keccak256",
    count: 2,
    roomId: "0123456789abcdef0123456789abcdee",
  }],
  ["SignMessage", SignMessageRequestSchema, {
    accountId: "alice",
    message: toHex(new TextEncoder().encode("transfer 1 wei")),
    hash: "keccak256",
    derivationPath: "",
    presignatureId: PRESIGNATURE_ID,
    roomId: "0123456789abcdef0123456789abcded",
  }],
];

/** Byte 2's bit that turns the session rooms on. */
const ROOMS_ON = 0x10;

const PROTOCOLS = [
  { type: "application/proto", framed: false, grpc: false },
  { type: "application/json", framed: false, grpc: false },
  { type: "application/grpc-web+proto", framed: true, grpc: false },
  { type: "application/grpc-web+json", framed: true, grpc: false },
  { type: "application/grpc+proto", framed: true, grpc: true },
];

/** Connect codes and gRPC statuses that say "the service failed", never "the request did". */
const SERVER_FAULT_CODES = new Set(["internal", "unknown", "data_loss"]);
const SERVER_FAULT_STATUS = new Set(["2", "13", "15"]);

/** The gRPC-web trailer: the last frame of the body, flagged 0x80. */
function trailerOf(body: Uint8Array): Headers | null {
  let trailer: Headers | null = null;
  let o = 0;
  while (o + 5 <= body.length) {
    const size = 5 + new DataView(body.buffer, body.byteOffset + o + 1, 4).getUint32(0);
    if (body[o] === trailerFlag) trailer = trailerParse(body.subarray(o + 5, o + size));
    o += size;
  }
  return trailer;
}

/** The sign API's routes: no request body, header or framing makes the service report a fault. */
export const rpcRoutes: Harness = {
  name: "rpc-routes",
  oracle: "every call answered in time with a code that is not INTERNAL/UNKNOWN/DATA_LOSS " +
    "(Connect, gRPC-web and gRPC), at most one audit line per call (besides a session's " +
    "write-ahead `started` line), never the token in it",
  kind: "bytes",
  fast: false,
  seconds: 20,
  timeoutMs: 5000,
  maxBytes: 4096,
  dictionary: [
    "alice",
    "0x",
    "m/",
    "accountId",
    '"digest"',
    "roomId",
    "keccak256",
    "sha256d",
    "presignatureId",
    "sign_message",
    "presign",
  ],
  async setup() {
    const token = generateToken();
    const shares = dealKeyShares(2);
    const secrets = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
    const identity = {
      secretKey: secrets[1],
      publicKeys: secrets.map((s) => ed25519.getPublicKey(s)),
    };
    const entry: AccountEntry = { keyShare: shares[1], identity };
    const stored = new MemoryKeyStore(new Map([["alice", entry], ["bob", entry]]));
    const auth = createAuthenticator([
      { id: "alice-app", tokenSha256: hashToken(token), accounts: ["alice*"], mayKeygen: true },
    ]);
    const lines: string[] = [];
    const audit = createAuditLog({ write: (l) => void lines.push(l) });
    // Session rooms: a real issuer asking a gateway with access control (in process).
    const issuerSecret = toHex(crypto.getRandomValues(new Uint8Array(32)));
    const roomGateway = createGatewayHandler({
      timers: false,
      access: {
        enabled: true,
        tokenSecret: toHex(crypto.getRandomValues(new Uint8Array(32))),
        issuerSecret,
        allowAnonymous: false,
        tokenTtlS: 3600,
      },
    });
    const rooms = new SessionRooms({
      issuer: createRoomTokenIssuer({
        url: "http://gateway.test",
        secret: issuerSecret,
        fetch: (input, init) => roomGateway(new Request(input, init)),
      }),
    });
    let roomsOn = false;
    // Presignatures: a store swapped for a fresh one before each input (module doc).
    let presignatureStore = new MemoryPresignatureStore();
    const store = new Proxy({} as PresignatureStore, {
      get(_, key) {
        const v = Reflect.get(presignatureStore, key);
        return typeof v === "function" ? v.bind(presignatureStore) : v;
      },
    });
    const presignaturePool = new PresignaturePool(store);
    const refuse = () =>
      Promise.resolve(new Response('{"error":"forbidden","message":"no"}', { status: 403 }));
    let k = 0;
    const impl = createSignServiceImpl({
      partyIndex: 1,
      parties: 2,
      version: "fuzz",
      accounts: {
        ids: () => stored.accounts(),
        get: (id) => stored.entry(id),
        record: (id) => stored.record(id),
        update: (id, f) => stored.update(id, f),
      },
      authenticate: (h) => auth.authenticate(h),
      authorize: (caller, id, action) => auth.authorize(caller, id, action),
      rateLimit: (caller) => rate.take(caller.id),
      acquireSession: (caller) => sessions.acquire(caller.id),
      audit: (r) => audit.record(r),
      gateway: createGatewayClient({
        url: "http://gateway.test",
        fetch: refuse,
        retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      }),
      get rooms() {
        return roomsOn ? rooms : undefined;
      },
      generatePrimes: () => {
        const key = fixturePaillier(k++ % 2);
        return Promise.resolve({ p: key.p, q: key.q });
      },
      presignatures: store,
      presignaturePool,
      roundTimeoutMs: 2000,
      handshakeTimeoutMs: 2000,
    });
    // The service's share of a presignature of alice's key at its epoch (root path, keccak256).
    const x = (shares[0].x + shares[1].x) % Q;
    const binding = { keyId: "alice", epoch: await storedCurrentEpoch(stored, "alice") };
    const held = async () => {
      presignatureStore = new MemoryPresignatureStore();
      const p = dealPresignatures(2, { x, ...binding, hash: "keccak256" })[1];
      await presignaturePool.put({ ...p, id: PRESIGNATURE_ID });
    };
    const rate = createRateLimiter({ perMinute: 1e9, burst: 1e9 });
    const sessions = createSessionLimiter({ maxConcurrent: 64, maxPerCaller: 64 });
    const fetchHandler = createSignServiceFetchHandler(impl);
    const router = createConnectRouter();
    signServiceRoutes(impl)(router);
    const credentials = [null, `Bearer ${token}`, "Bearer not-a-token", `Basic ${token}`, ""];
    const seeds: Uint8Array[] = [];
    METHODS.forEach(([, schema, init], m) => {
      const msg = create(schema, init);
      PROTOCOLS.forEach((p, proto) => {
        const body = p.type.endsWith("json")
          ? new TextEncoder().encode(toJsonString(schema, msg))
          : toBinary(schema, msg);
        seeds.push(Uint8Array.of(m, proto, 1, ...body));
        if (m >= METHODS.length - 3) seeds.push(Uint8Array.of(m, proto, ROOMS_ON | 1, ...body));
      });
    });

    async function call(input: Uint8Array): Promise<{ code: string; status: number }> {
      const [method] = METHODS[input[0] % METHODS.length];
      const p = PROTOCOLS[input[1] % PROTOCOLS.length];
      const framed = p.framed && input[1] < PROTOCOLS.length;
      const credential = credentials[(input[2] & 0x0f) % credentials.length];
      roomsOn = (input[2] & ROOMS_ON) !== 0;
      const raw = input.subarray(3);
      const body = framed ? encodeEnvelope(0, raw) : Uint8Array.from(raw);
      const headers = new Headers({ "content-type": p.type });
      if (credential !== null) headers.set("authorization", credential);
      const path = `/wallet_mpc.v1.SignService/${method}`;
      if (p.grpc) {
        const h = router.handlers.find((x) => x.requestPath === path)!;
        headers.set("te", "trailers");
        const res = await h({
          httpVersion: "2.0",
          method: "POST",
          url: `http://service.test${path}`,
          header: headers,
          body: (async function* () {
            yield body;
          })(),
          signal: new AbortController().signal,
        });
        for await (const _ of res.body ?? []) {
          // drain: the trailer is final once the body ends
        }
        return { code: res.trailer?.get("grpc-status") ?? "missing", status: res.status };
      }
      if (p.type.startsWith("application/grpc-web")) headers.set("x-grpc-web", "1");
      const res = await fetchHandler(
        new Request(`http://service.test${path}`, { method: "POST", headers, body }),
      );
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (p.type.startsWith("application/grpc-web") && res.status === 200) {
        const t = trailerOf(bytes);
        return { code: t?.get("grpc-status") ?? "missing", status: res.status };
      }
      if (res.status === 200) return { code: "ok", status: 200 };
      let code = "unparsable";
      try {
        code = String(JSON.parse(new TextDecoder().decode(bytes)).code);
      } catch {
        // not a Connect error body: kept as "unparsable"
      }
      return { code, status: res.status };
    }

    return {
      seeds,
      allowed: () => false,
      async run(input) {
        if (input.length < 3) return "short";
        const method = METHODS[input[0] % METHODS.length][0];
        if (method === "SignMessage") await held();
        const before = lines.length;
        const { code, status } = await call(input);
        if (SERVER_FAULT_CODES.has(code) || SERVER_FAULT_STATUS.has(code) || status === 500) {
          throw new OracleFailure(`answered ${code} (HTTP ${status})`);
        }
        // One record per call, besides a session's write-ahead `started` record.
        const ends = lines.slice(before).filter((l) => !l.includes('"outcome":"started"'));
        if (ends.length > 1) throw new OracleFailure("more than one audit line");
        if (lines.slice(before).some((l) => l.includes(token))) {
          throw new OracleFailure("the token is in the audit log");
        }
        lines.length = 0;
        return `${method} ${code}`;
      },
    };
  },
};
