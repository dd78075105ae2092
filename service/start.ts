/**
 * The sign-service started in this process, from its validated configuration: opens the key
 * store (or takes one already open), the presignature journal beside it, the callers, limits
 * and audit log, and serves the sign API on its ports (service/main.ts's module doc: two ports
 * without TLS, one with). `service/main.ts` is this plus the command line and the signals; the
 * enclave's boot program (enclave/boot.ts) starts it on a key store it decrypted itself, in
 * memory, instead of from files.
 *
 * @example
 * ```ts
 * import { startSignService, type StartSignServiceOptions } from "./start.ts";
 * // Needs a key store, callers and a gateway: a function, type-checked, not run here.
 * export async function serveOnce(options: StartSignServiceOptions) {
 *   const svc = await startSignService(options);
 *   console.log(svc.ports.grpc_port, svc.ports.web_port);
 *   await svc.stop();
 * }
 * ```
 * @module
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as http2 from "node:http2";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Server as NetServer } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { openPresignatureJournal } from "../platform/presignature_journal.ts";
import { PresignaturePool } from "../session/presignature_pool.ts";
import { crashHookFrom } from "../platform/crash_hook.ts";
import {
  detectRuntime,
  installPlatformBackends,
  platformBackendsInfo,
  sizeModPowCaches,
} from "../platform/mod.ts";
import { ConfigError } from "./errors.ts";
import type { Logger } from "../platform/logger.ts";
import { createNodeListener, serveNode } from "../platform/node_adapter.ts";
import { createGatewayClient, createRoomTokenIssuer } from "../transport/mod.ts";
import type { ServiceConfig } from "./config.ts";
import {
  type Decryptor,
  type KeyStore,
  openKeyStore,
  resolveDecryptor,
} from "../keystore/key_store.ts";
import { createAuthenticator, parseCallersFile } from "./auth.ts";
import { createRateLimiter, createSessionLimiter } from "./rate_limit.ts";
import { createAuditLog } from "./audit.ts";
import { openAuditFile, recoverAuditFile } from "./audit_file.ts";
import { startServiceCompute } from "./compute.ts";
import { withMetricsRoute } from "./metrics.ts";
import { createSignServiceImpl } from "./sign_service.ts";
import { SessionRooms } from "./rooms.ts";
import { createSignServiceFetchHandler, signServiceRoutes } from "./routes.ts";

/** The service's version, in its `starting` line and its health answer. */
export const SERVICE_VERSION = "0.1.0";

/** Options of {@link startSignService}. */
export interface StartSignServiceOptions {
  /** The validated configuration (service/config.ts). */
  readonly config: ServiceConfig;
  /** Where the log lines go. */
  readonly logger: Logger;
  /** The environment: only the test crash point (`WALLET_MPC_CRASH_AT`) and the passphrase. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How to open the key share file (default: from `config.keyStore`, reading the identity file). */
  readonly decryptor?: Decryptor;
  /** A key store already open: `config.mpc.keyShareFile` and the decryptor are then unused. */
  readonly store?: KeyStore;
  /** The callers file's text (default: read from `config.auth.tokensFile`). */
  readonly callers?: string;
}

/** A running sign-service. */
export interface RunningSignService {
  /** The bound address. */
  readonly host: string;
  /** The ports bound: `grpc_port` and `web_port`, or `port` with TLS (as the listening line). */
  readonly ports: Readonly<Record<string, number>>;
  /** The key store it serves. */
  readonly store: KeyStore;
  /**
   * Refuses new sessions, waits for running ones (at most `server.shutdown_grace_ms`), closes
   * the listeners, the audit file and the journal, and logs `stopped`.
   */
  stop(): Promise<void>;
}

/**
 * Starts the sign-service (module doc).
 *
 * @param options configuration, logger, and an optional decryptor, key store or callers text.
 * @returns the running service once it listens.
 * @throws {KeyStoreError} the key store does not open; the bind or file errors otherwise.
 */
export async function startSignService(
  options: StartSignServiceOptions,
): Promise<RunningSignService> {
  const { config, logger } = options;
  const env = options.env ?? {};
  installPlatformBackends(undefined, { warn: (msg, f) => logger.log("warn", msg, f) });
  logger.log("info", "starting", { version: SERVICE_VERSION, runtime: detectRuntime() });
  const be = platformBackendsInfo();
  logger.log("info", "exponentiation backends", {
    public: be.public,
    secret: be.secret,
    secret_constant_time: be.secretConstantTime,
    library: be.library,
  });
  if (!be.secretConstantTime && !config.compute.allowVariableTimeSecrets) {
    throw new ConfigError(
      "contradictory",
      "compute.allow_variable_time_secrets",
      `the secret exponentiation backend "${be.secret}" is not constant-time: run under Node, or ` +
        "Deno with --allow-ffi and a system libcrypto, or set this to true",
    );
  }

  const decryptor = options.store ? undefined : options.decryptor ??
    await resolveDecryptor(config.keyStore, { env, readFile: (p) => readFile(p, "utf8") });
  // Test mechanism only: the crash points of the key lifecycle (platform/crash_hook.ts).
  const crashPoint = crashHookFrom(env.WALLET_MPC_CRASH_AT);
  if (crashPoint) {
    logger.log("warn", "crash point armed (tests only)", { point: env.WALLET_MPC_CRASH_AT });
  }
  const store = options.store ?? await openKeyStore({
    crashPoint,
    path: config.mpc.keyShareFile,
    decryptor: decryptor as Decryptor,
    partyIndex: config.server.index,
    parties: config.mpc.totalParticipants,
    allowPlaintext: config.keyStore.allowPlaintext,
    allowMissing: true,
    recipients: config.keyStore.recipients,
  });
  sizeModPowCaches(store.accounts().length);
  logger.log("info", "key store loaded", {
    accounts: store.accounts().length,
    format: store.format(),
    file: store.path,
  });
  if (store.format() === "plaintext") {
    logger.log("warn", "the key share file is NOT encrypted (development only)", {});
  }
  // Used presignatures and signing key locks survive restarts (platform/presignature_journal.ts),
  // beside the key share file.
  const presignatures = await openPresignatureJournal({
    path: `${store.path}.presignatures.journal`,
  });
  const presignaturePool = new PresignaturePool(presignatures, {
    maxPerTarget: config.presignatures.maxPerTarget,
    maxPerAccount: config.presignatures.maxPerAccount,
    maxTotal: config.presignatures.maxTotal,
  });
  const auth = createAuthenticator(
    parseCallersFile(options.callers ?? readFileSync(config.auth.tokensFile, "utf8")),
  );
  const rate = createRateLimiter({
    perMinute: config.rateLimit.perCallerPerMinute,
    burst: config.rateLimit.burst,
  });
  // Protocol compute on worker threads, admission control and metrics (service/compute.ts).
  const compute = await startServiceCompute(config, {
    logger,
    accounts: Math.max(1, store.accounts().length),
  });
  compute.metrics.watchPresignatures(() => presignaturePool.stats());
  const sessions = createSessionLimiter({
    maxConcurrent: config.rateLimit.maxConcurrentSessions,
    maxPerCaller: config.rateLimit.maxSessionsPerCaller,
    retryAfterMs: compute.sessionRetryAfterMs,
  });
  const auditFile = config.audit.file === "-" ? null : await openAuditFile(config.audit.file, {
    fsync: config.audit.fsync,
  });
  const audit = createAuditLog({
    write: (line) => {
      if (auditFile) return auditFile.write(line);
      console.log(line);
      return undefined;
    },
  });
  if (auditFile) {
    // Sessions a dead process left without an end record (audit.ts, write-ahead records).
    const interrupted = await recoverAuditFile(config.audit.file, audit);
    if (interrupted > 0) {
      logger.log("warn", "sessions interrupted by the last stop, audited", { interrupted });
    }
  }
  // Room tokens (docs/gateway.md, "Room capability"): with the gateway's issuer secret the
  // service opens the session rooms and presents its own token of each room.
  const issuer = config.gateway.issuerSecret === ""
    ? undefined
    : createRoomTokenIssuer({ url: config.gateway.url, secret: config.gateway.issuerSecret });
  const gateway = createGatewayClient({
    url: config.gateway.url,
    token: issuer
      ? (room) => issuer.token(room, "service")
      : config.gateway.token === ""
      ? undefined
      : config.gateway.token,
  });
  const rooms = issuer ? new SessionRooms({ issuer }) : undefined;
  logger.log("info", "session rooms", {
    opened_by: rooms ? "service" : "client",
    room_tokens: rooms !== undefined,
  });
  let draining = false;
  const impl = createSignServiceImpl({
    partyIndex: config.server.index,
    parties: config.mpc.totalParticipants,
    version: SERVICE_VERSION,
    accounts: {
      ids: () => store.accounts(),
      get: (id) => store.get(id),
      record: async (id) => {
        await store.reload();
        return store.record(id);
      },
      update: (id, f) => store.update(id, f),
    },
    crashPoint,
    authenticate: (h) => auth.authenticate(h),
    authorize: (caller, id, action) => auth.authorize(caller as never, id, action),
    rateLimit: (caller) => rate.take(caller.id),
    acquireSession: (caller) => sessions.acquire(caller.id),
    audit: (r) => audit.record(r),
    gateway,
    rooms,
    generatePrimes: compute.generatePrimes,
    compute: compute.pool,
    admission: compute.admission,
    metrics: compute.metrics,
    presignatures,
    presignaturePool,
    onAccountsChanged: () => {
      // The per-modulus caches of this thread and of the workers follow the accounts held.
      const n = Math.max(1, store.accounts().length);
      sizeModPowCaches(n);
      compute.pool.setAccounts(n);
    },
    roundTimeoutMs: config.mpc.roundTimeoutMs,
    handshakeTimeoutMs: config.mpc.roundTimeoutMs,
    draining: () => draining,
    logError: (what, e) =>
      logger.log("error", "unexpected error", {
        call: what,
        error: (e as Error)?.name ?? "error",
        // The cause's code (a gateway refusing the issuer secret: `rejected`); never a message.
        cause: causeCode(e),
      }),
  });

  const routes = signServiceRoutes(impl);
  const fetchHandler = withMetricsRoute(
    createSignServiceFetchHandler(impl, { corsOrigins: config.server.corsOrigins }),
    compute.metrics,
  );
  const nodeHandler = connectNodeAdapter({ routes });
  const logAdapterError = (e: unknown) =>
    logger.log("error", "unexpected error", { call: "http", error: (e as Error)?.name ?? "error" });
  const { host } = config.server;
  const closers: (() => Promise<void>)[] = [];
  const listening: Record<string, number> = {};

  const tls = config.server.tls;
  if (tls.certFile !== "") {
    const server = http2.createSecureServer({
      cert: readFileSync(tls.certFile),
      key: readFileSync(tls.keyFile),
      allowHTTP1: true,
    });
    const http1 = createNodeListener(fetchHandler, {
      scheme: "https",
      defaultHost: () => host,
      onError: logAdapterError,
    });
    server.on("request", (req, res) => {
      // HTTP/1.1 (browsers) goes through the fetch handler for CORS; HTTP/2 to the adapter.
      if (req.httpVersionMajor !== 1 && req.method === "GET" && req.url === "/metrics") {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        res.end(compute.metrics.render());
      } else if (req.httpVersionMajor === 1) {
        http1(req as unknown as IncomingMessage, res as unknown as ServerResponse);
      } else nodeHandler(req, res);
    });
    listening.port = await listen(server, config.server.port, host);
    closers.push(() => new Promise((r) => server.close(() => r())));
  } else {
    const grpc = http2.createServer(nodeHandler);
    listening.grpc_port = await listen(grpc, config.server.port, host);
    closers.push(() => new Promise((r) => grpc.close(() => r())));
    if (typeof Deno !== "undefined") {
      const server = Deno.serve(
        { hostname: host, port: config.server.webPort, onListen: () => {} },
        fetchHandler,
      );
      listening.web_port = server.addr.port;
      closers.push(() => server.shutdown());
    } else {
      const web = await serveNode(fetchHandler, {
        hostname: host,
        port: config.server.webPort,
        onError: logAdapterError,
      });
      listening.web_port = web.port;
      closers.push(() => web.shutdown(1000));
    }
  }
  logger.log("info", "listening", { host, ...listening, party_index: config.server.index });

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      draining = true;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise((r) => (timer = setTimeout(r, config.server.shutdownGraceMs)));
      const idle = (async () => {
        while (sessions.active() > 0) await new Promise((r) => setTimeout(r, 50));
      })();
      await Promise.race([idle, grace]);
      clearTimeout(timer);
      await Promise.race([
        Promise.all(closers.map((c) => c())),
        new Promise((r) => setTimeout(r, 1000)),
      ]);
      await compute.close();
      await auditFile?.close();
      await presignatures.close();
      logger.log("info", "stopped", {});
    })();
    return stopped;
  };
  return { host, ports: listening, store, stop };
}

/** The `code` of an error's cause when it is a short word, for the operator log. */
function causeCode(e: unknown): string | undefined {
  const code = ((e as { cause?: { code?: unknown } })?.cause)?.code;
  return typeof code === "string" && /^[a-z-]{1,32}$/.test(code) ? code : undefined;
}

/**
 * Binds `server` to `port` (0: a free port the system picks) and returns the port it got; a
 * failed bind (EADDRINUSE) rejects, so startup fails with a logged reason instead of an
 * unhandled error event.
 */
function listen(server: NetServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
