/**
 * Entry point of the sign-gateway: reads its configuration file (`config/sign-gateway.yaml`, or
 * the file given as the only argument), applies environment and command-line overrides
 * (gateway/config_args.ts), builds the backend and the handler, and serves it under a connection
 * guard (platform/connection_guard.ts: connection limits, header and keep-alive deadlines):
 *
 * - plain HTTP under Deno: platform/deno_server.ts (Deno's per-connection HTTP server on
 *   connections it accepts itself), else the `node:http` adapter (platform/node_adapter.ts);
 * - plain HTTP under Node: the `node:http` adapter;
 * - TLS (`server.tls.cert_file` / `key_file`), under either runtime: the adapter on a
 *   `node:http2` secure server, HTTP/2 and HTTP/1.1 by ALPN.
 *
 * The only file of `gateway/` that touches the environment, the file system or runtime APIs.
 *
 * ```sh
 * deno task gateway --port 8080 --backend redis --redis-url redis://127.0.0.1:6379/0
 * deno task gateway:node config/sign-gateway.yaml --set limits.max_rooms=500
 * ```
 *
 * Precedence: defaults < file < environment < flags. Environment: `WALLET_MPC_GATEWAY_CONFIG`,
 * one variable per flag (`WALLET_MPC_GATEWAY_PORT`, `WALLET_MPC_GATEWAY_REDIS_URL`, ...),
 * `WALLET_MPC_GATEWAY_ACCESS_ENABLED`, `WALLET_MPC_GATEWAY_TOKEN_SECRET`,
 * `WALLET_MPC_GATEWAY_ISSUER_SECRET`, and any key as `WALLET_MPC_GATEWAY__SECTION__KEY`
 * (e.g. `WALLET_MPC_GATEWAY__LIMITS__MAX_ROOMS=500`). The older `GATEWAY_*` names still work,
 * with a warning on standard error.
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import type { Backend } from "./backend.ts";
import { type GatewayConfig, parseConfig } from "./config.ts";
import {
  GATEWAY_ENV_ALIASES,
  GATEWAY_USAGE,
  type GatewayCommandLine,
  parseGatewayArgs,
} from "./config_args.ts";
import { applyEnvAliases } from "../platform/settings_layers.ts";
import { createGatewayHandler, type GatewayHandler } from "./handler.ts";
import { createLogger, type Logger } from "../platform/logger.ts";
import { createMemoryBackend } from "./memory_backend.ts";
import { ConnectionGuard } from "../platform/connection_guard.ts";
import { denoConnectionServer, serveDeno } from "../platform/deno_server.ts";
import { AddressSet } from "../platform/net_address.ts";

function loadConfig(cli: GatewayCommandLine): GatewayConfig {
  let text = "";
  if (existsSync(cli.configPath)) text = readFileSync(cli.configPath, "utf8");
  else if (cli.configExplicit) throw new RangeError(`config file not found: ${cli.configPath}`);
  return parseConfig(text, cli.overrides);
}

async function makeBackend(config: GatewayConfig, logger: Logger): Promise<Backend> {
  if (config.backend.kind === "memory") return createMemoryBackend({ limits: config.limits });
  const { createRedisBackend } = await import("./redis_backend.ts");
  const backend = createRedisBackend({
    url: config.backend.redis.url,
    keyPrefix: config.backend.redis.keyPrefix,
    commandTimeoutMs: config.backend.redis.commandTimeoutMs,
    limits: config.limits,
    logger,
  });
  try {
    await backend.ready(5000);
  } catch {
    logger.log("warn", "redis not reachable at start; serving 503 until it is", {});
  }
  return backend;
}

interface Running {
  hostname: string;
  port: number;
  /** How it serves: `deno-connections`, `node-http`, or `node-http2-tls`. */
  serving: string;
  shutdown(graceMs: number): Promise<void>;
}

/** Serves the handler as the module doc says; logs a fallback. */
async function listen(
  handler: GatewayHandler,
  config: GatewayConfig,
  guard: ConnectionGuard,
  logger: Logger,
): Promise<Running> {
  const { server, limits } = config;
  const onError = (e: unknown) =>
    logger.log("error", "unhandled error", { error: (e as Error)?.message ?? String(e) });
  const tls = server.tls.certFile === "" ? undefined : {
    cert: readFileSync(server.tls.certFile, "utf8"),
    key: readFileSync(server.tls.keyFile, "utf8"),
  };
  if (tls === undefined && typeof Deno !== "undefined") {
    if (denoConnectionServer() !== null) {
      const s = serveDeno(handler, { hostname: server.host, port: server.port, guard, onError });
      return { ...s, serving: "deno-connections", shutdown: (g) => s.shutdown(g) };
    }
    logger.log("warn", "this Deno has no per-connection HTTP server; serving with node:http", {});
  }
  const { serveNode } = await import("../platform/node_adapter.ts");
  const s = await serveNode(handler, {
    hostname: server.host,
    port: server.port,
    bufferBodyBytes: limits.maxBodyBytes,
    onError,
    tls,
    guard,
    timeouts: {
      headersMs: server.headersTimeoutMs,
      keepAliveMs: server.keepAliveTimeoutMs,
      requestMs: server.requestTimeoutMs,
    },
  });
  return {
    hostname: s.hostname,
    port: s.port,
    serving: tls ? "node-http2-tls" : "node-http",
    shutdown: (g) => s.shutdown(g),
  };
}

async function main(): Promise<void> {
  const { env, warnings } = applyEnvAliases(process.env, GATEWAY_ENV_ALIASES);
  const cli = parseGatewayArgs(process.argv.slice(2), env);
  if (cli.help) {
    console.log(GATEWAY_USAGE);
    process.exit(0);
  }
  for (const w of warnings) console.error(w);
  const config = loadConfig(cli);
  const runtime = typeof Deno !== "undefined" ? "deno" : "node";
  const logger = createLogger({
    level: config.logging.level,
    format: config.logging.format,
    base: { service: "sign-gateway", pid: process.pid },
  });
  const backend = await makeBackend(config, logger);
  const guard = new ConnectionGuard({
    maxConnections: config.limits.maxConnections,
    maxConnectionsPerSource: config.limits.maxConnectionsPerSource,
    headersTimeoutMs: config.server.headersTimeoutMs,
    keepAliveTimeoutMs: config.server.keepAliveTimeoutMs,
    exempt: AddressSet.parse(config.limits.quotaExemptSources),
  });
  const handler = createGatewayHandler({
    backend,
    limits: config.limits,
    sse: config.sse,
    corsOrigins: config.server.corsOrigins,
    access: config.access,
    logger,
    shutdownGraceMs: config.server.shutdownGraceMs,
    requestTimeoutMs: config.server.requestTimeoutMs,
    trustedProxies: config.server.trustedProxies,
    connections: () => guard.stats(),
    banSource: (peer) => guard.ban(peer, config.limits.sourceBanMs),
    gauges: () => {
      const m = process.memoryUsage();
      return {
        process_resident_memory_bytes: { help: "Resident set size.", value: m.rss },
        process_heap_used_bytes: { help: "JavaScript heap in use.", value: m.heapUsed },
      };
    },
  });

  const running = await listen(handler, config, guard, logger);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // A second Ctrl-C forces the exit; a repeated SIGTERM (often delivered twice, to the
      // process and its group) does not cut the drain, which is bounded by the grace period.
      if (signal !== "SIGINT") return;
      logger.log("warn", "second signal, exiting now", { signal });
      process.exit(1);
    }
    stopping = true;
    logger.log("info", "signal received, draining", { signal });
    const grace = config.server.shutdownGraceMs;
    await handler.close();
    await running.shutdown(grace);
    guard.stop();
    await backend.close();
    logger.log("info", "stopped", {});
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
  logger.log("info", "listening", {
    host: running.hostname,
    port: running.port,
    runtime,
    serving: running.serving,
    tls: config.server.tls.certFile !== "",
    backend: backend.kind,
    access: config.access.enabled,
  });
}

main().catch((e) => {
  console.error(
    JSON.stringify({
      ts: new Date().toISOString(),
      level: "error",
      msg: "startup failed",
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    }),
  );
  process.exit(2);
});
