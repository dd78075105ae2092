/**
 * Entry point of the sign-service: loads its configuration file (`config/sign-service.yaml`, or
 * the file given as the only argument; environment and flag overrides: service/config.ts),
 * opens the age-encrypted key store, and serves the sign API:
 *
 * - without TLS, two ports: `server.port` speaks real gRPC over HTTP/2 cleartext (h2c, with
 *   trailers; the same port also answers gRPC-web and Connect to HTTP/2 clients), and
 *   `server.web_port` serves gRPC-web and Connect over HTTP/1.1 to browsers from the
 *   Web-standard fetch handler (`Deno.serve` under Deno, the `node:http` adapter of
 *   platform/node_adapter.ts under Node, which the gateway uses too);
 * - with TLS (`server.tls.cert_file` and `key_file`), one port: ALPN picks HTTP/2 for gRPC
 *   clients and HTTP/1.1 for browsers; the fetch handler's CORS rules apply to both.
 *
 * A port of 0 binds a free port the system picks; the `listening` log line names the ports bound
 * (`grpc_port` and `web_port`, or `port` with TLS), so a parent process (tools/local_stack.ts)
 * reads them from there instead of guessing a free port beforehand.
 *
 * `SIGTERM` / `SIGINT`: new sessions are refused (UNAVAILABLE, health "not_serving"), running
 * ones get `server.shutdown_grace_ms` to finish, then the process exits. Key share writes are
 * atomic (temp file, fsync, rename), so an exit at any point leaves the old or the new file.
 *
 * ```sh
 * deno task service config/sign-service.yaml
 * WALLET_MPC_SERVICE_KEY_SHARE_FILE=service_key_shares.json deno task service:node
 * ```
 * @module
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as http2 from "node:http2";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Server as NetServer } from "node:net";
import process from "node:process";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { openPresignatureJournal } from "../platform/presignature_journal.ts";
import { generatePaillierPrimes } from "../core/protocols/aux_info.ts";
import { crashHookFrom } from "../platform/crash_hook.ts";
import { detectRuntime, installPlatformBackends, platformSafePrime } from "../platform/mod.ts";
import { createLogger } from "../platform/logger.ts";
import { createNodeListener, serveNode } from "../platform/node_adapter.ts";
import { createGatewayClient } from "../transport/mod.ts";
import { loadServiceConfig, SERVICE_ENV_ALIASES, SERVICE_USAGE, wantsHelp } from "./config.ts";
import { applyEnvAliases } from "../platform/settings_layers.ts";
import { openKeyStore, resolveDecryptor } from "../keystore/key_store.ts";
import { createAuthenticator, parseCallersFile } from "./auth.ts";
import { createRateLimiter, createSessionLimiter } from "./rate_limit.ts";
import { createAuditLog } from "./audit.ts";
import { openAuditFile } from "./audit_file.ts";
import { createSignServiceImpl } from "./sign_service.ts";
import { createSignServiceFetchHandler, signServiceRoutes } from "./routes.ts";

const VERSION = "0.1.0";

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (wantsHelp(argv)) {
    console.log(SERVICE_USAGE);
    return;
  }
  const { env, warnings } = applyEnvAliases(process.env, SERVICE_ENV_ALIASES);
  for (const w of warnings) console.error(w);
  const config = await loadServiceConfig({ argv, env, readFile: (p) => readFile(p, "utf8") });
  const logger = createLogger({
    level: config.logging.level,
    format: config.logging.format,
    base: { service: "sign-service", pid: process.pid },
  });
  installPlatformBackends();
  logger.log("info", "starting", { version: VERSION, runtime: detectRuntime() });

  const decryptor = await resolveDecryptor(config.keyStore, {
    env,
    readFile: (p) => readFile(p, "utf8"),
  });
  // Test mechanism only: the crash points of the key lifecycle (platform/crash_hook.ts).
  const crashPoint = crashHookFrom(env.WALLET_MPC_CRASH_AT);
  if (crashPoint) {
    logger.log("warn", "crash point armed (tests only)", { point: env.WALLET_MPC_CRASH_AT });
  }
  const store = await openKeyStore({
    crashPoint,
    path: config.mpc.keyShareFile,
    decryptor,
    partyIndex: config.server.index,
    parties: config.mpc.totalParticipants,
    allowPlaintext: config.keyStore.allowPlaintext,
    allowMissing: true,
    recipients: config.keyStore.recipients,
  });
  logger.log("info", "key store loaded", {
    accounts: store.accounts().length,
    format: store.format(),
    file: config.mpc.keyShareFile,
  });
  if (store.format() === "plaintext") {
    logger.log("warn", "the key share file is NOT encrypted (development only)", {});
  }
  // Used presignatures and signing key locks survive restarts (platform/presignature_journal.ts),
  // beside the key share file.
  const presignatures = await openPresignatureJournal({
    path: `${config.mpc.keyShareFile}.presignatures.journal`,
  });
  const auth = createAuthenticator(parseCallersFile(readFileSync(config.auth.tokensFile, "utf8")));
  const rate = createRateLimiter({
    perMinute: config.rateLimit.perCallerPerMinute,
    burst: config.rateLimit.burst,
  });
  const sessions = createSessionLimiter({
    maxConcurrent: config.rateLimit.maxConcurrentSessions,
    maxPerCaller: config.rateLimit.maxSessionsPerCaller,
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
  const gateway = createGatewayClient({
    url: config.gateway.url,
    token: config.gateway.token === "" ? undefined : config.gateway.token,
  });
  let draining = false;
  const impl = createSignServiceImpl({
    partyIndex: config.server.index,
    parties: config.mpc.totalParticipants,
    version: VERSION,
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
    generatePrimes: () => generatePaillierPrimes((bits) => platformSafePrime(bits)),
    presignatures,
    roundTimeoutMs: config.mpc.roundTimeoutMs,
    handshakeTimeoutMs: config.mpc.roundTimeoutMs,
    draining: () => draining,
    logError: (what, e) =>
      logger.log("error", "unexpected error", { call: what, error: (e as Error)?.name ?? "error" }),
  });

  const routes = signServiceRoutes(impl);
  const fetchHandler = createSignServiceFetchHandler(impl, {
    corsOrigins: config.server.corsOrigins,
  });
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
      if (req.httpVersionMajor === 1) {
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

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      if (signal === "SIGINT") process.exit(1);
      return;
    }
    stopping = true;
    draining = true;
    logger.log("info", "signal received, draining", { signal });
    const grace = new Promise((r) => setTimeout(r, config.server.shutdownGraceMs));
    const idle = (async () => {
      while (sessions.active() > 0) await new Promise((r) => setTimeout(r, 50));
    })();
    await Promise.race([idle, grace]);
    await Promise.race([
      Promise.all(closers.map((c) => c())),
      new Promise((r) => setTimeout(r, 1000)),
    ]);
    await auditFile?.close();
    await presignatures.close();
    logger.log("info", "stopped", {});
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
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

main().catch((e) => {
  const err = e as Error & { code?: unknown };
  console.error(
    JSON.stringify({
      level: "error",
      msg: "sign-service failed to start",
      error: err?.name ?? "Error",
      code: err?.code !== undefined ? String(err.code) : undefined,
      message: err?.message,
    }),
  );
  process.exit(1);
});
