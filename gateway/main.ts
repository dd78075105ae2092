/**
 * Entry point of the sign-gateway: reads its configuration file (`config/sign-gateway.yaml`, or
 * the file given as the only argument), applies environment and command-line overrides
 * (gateway/config_args.ts), builds the backend and the handler, and serves it with `Deno.serve`
 * under Deno or with the `node:http` adapter (platform/node_adapter.ts) under Node. The only file
 * of `gateway/` that touches the environment, the file system or runtime APIs.
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
import { createGatewayHandler } from "./handler.ts";
import { createLogger, type Logger } from "../platform/logger.ts";
import { createMemoryBackend } from "./memory_backend.ts";

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
  shutdown(graceMs: number): Promise<void>;
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
  const handler = createGatewayHandler({
    backend,
    limits: config.limits,
    sse: config.sse,
    corsOrigins: config.server.corsOrigins,
    access: config.access,
    logger,
    shutdownGraceMs: config.server.shutdownGraceMs,
    gauges: () => {
      const m = process.memoryUsage();
      return {
        process_resident_memory_bytes: { help: "Resident set size.", value: m.rss },
        process_heap_used_bytes: { help: "JavaScript heap in use.", value: m.heapUsed },
      };
    },
  });

  let running: Running;
  if (runtime === "deno") {
    const server = Deno.serve({
      hostname: config.server.host,
      port: config.server.port,
      onListen: () => {},
      onError: (e) => {
        logger.log("error", "unhandled error", { error: (e as Error).message });
        return new Response('{"error":"internal","message":"internal error"}', { status: 500 });
      },
    }, (req) => handler(req));
    running = {
      hostname: server.addr.hostname,
      port: server.addr.port,
      shutdown: async (graceMs) => {
        let t: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([server.shutdown(), new Promise((r) => (t = setTimeout(r, graceMs)))]);
        clearTimeout(t);
      },
    };
  } else {
    const { serveNode } = await import("../platform/node_adapter.ts");
    const server = await serveNode(handler, {
      hostname: config.server.host,
      port: config.server.port,
      bufferBodyBytes: config.limits.maxBodyBytes,
      onError: (e) => logger.log("error", "unhandled error", { error: (e as Error).message }),
    });
    running = server;
  }
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
