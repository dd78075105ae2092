/**
 * Entry point of the sign-gateway: reads `config/sign-gateway.yaml`, applies environment and
 * command-line overrides, builds the backend and the handler, and serves it with `Deno.serve`
 * under Deno or with the `node:http` adapter under Node. The only file of `gateway/` (with the
 * adapter) that touches the environment, the file system or runtime APIs.
 *
 * ```sh
 * deno task gateway --port 8080 --backend redis --redis-url redis://127.0.0.1:6379/0
 * deno task gateway:node --config config/sign-gateway.yaml --set limits.max_rooms=500
 * ```
 *
 * Precedence: defaults < file < environment < flags. Environment: `GATEWAY_CONFIG`,
 * `GATEWAY_HOST`, `GATEWAY_PORT`, `GATEWAY_BACKEND`, `GATEWAY_REDIS_URL`, `GATEWAY_LOG_LEVEL`,
 * `GATEWAY_LOG_FORMAT`, `GATEWAY_CORS_ORIGINS` (comma separated), `GATEWAY_ACCESS_ENABLED`,
 * `GATEWAY_TOKEN_SECRET`, `GATEWAY_ISSUER_SECRET`, and any key as `GATEWAY__SECTION__KEY`
 * (e.g. `GATEWAY__LIMITS__MAX_ROOMS=500`).
 *
 * @module
 */

import { existsSync, readFileSync } from "node:fs";
import process from "node:process";
import { parse as parseYaml } from "yaml";
import type { Backend } from "./backend.ts";
import { type GatewayConfig, parseConfig } from "./config.ts";
import { createGatewayHandler } from "./handler.ts";
import { createLogger, type Logger } from "../platform/logger.ts";
import { createMemoryBackend } from "./memory_backend.ts";

const USAGE = `sign-gateway: SSE relay for wallet-mpc sessions

Usage: main.ts [options]
  --config <path>        YAML configuration (default config/sign-gateway.yaml)
  --host <addr>          server.host
  --port <n>             server.port (0: any free port)
  --backend <kind>       backend.kind: memory | redis
  --redis-url <url>      backend.redis.url
  --log-level <level>    logging.level: debug | info | warn | error
  --log-format <fmt>     logging.format: json | text
  --cors-origins <list>  server.cors_origins, comma separated
  --set <path>=<value>   any setting, e.g. --set limits.max_rooms=500 (value parsed as YAML)
  --help                 this text
`;

const FLAGS: Record<string, string> = {
  "--host": "server.host",
  "--port": "server.port",
  "--backend": "backend.kind",
  "--redis-url": "backend.redis.url",
  "--log-level": "logging.level",
  "--log-format": "logging.format",
  "--cors-origins": "server.cors_origins",
};

const ENV: Record<string, string> = {
  GATEWAY_HOST: "server.host",
  GATEWAY_PORT: "server.port",
  GATEWAY_BACKEND: "backend.kind",
  GATEWAY_REDIS_URL: "backend.redis.url",
  GATEWAY_LOG_LEVEL: "logging.level",
  GATEWAY_LOG_FORMAT: "logging.format",
  GATEWAY_CORS_ORIGINS: "server.cors_origins",
  GATEWAY_ACCESS_ENABLED: "access.enabled",
  GATEWAY_TOKEN_SECRET: "access.token_secret",
  GATEWAY_ISSUER_SECRET: "access.issuer_secret",
};

/** Settings whose values are taken verbatim (never parsed as YAML). */
const VERBATIM = new Set([
  "access.token_secret",
  "access.issuer_secret",
  "backend.redis.url",
  "backend.redis.key_prefix",
  "server.host",
]);

function value(path: string, raw: string): unknown {
  if (path === "server.cors_origins") {
    return raw.trim() === "" ? [] : raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  }
  if (VERBATIM.has(path)) return raw;
  try {
    return parseYaml(raw);
  } catch {
    return raw;
  }
}

interface Cli {
  configPath: string;
  configExplicit: boolean;
  overrides: Record<string, unknown>;
}

function parseCli(argv: string[], env: Record<string, string | undefined>): Cli {
  const overrides: Record<string, unknown> = {};
  let configPath = env.GATEWAY_CONFIG ?? "config/sign-gateway.yaml";
  let configExplicit = env.GATEWAY_CONFIG !== undefined;
  for (const [name, path] of Object.entries(ENV)) {
    const v = env[name];
    if (v !== undefined) overrides[path] = value(path, v);
  }
  for (const [name, v] of Object.entries(env)) {
    if (!name.startsWith("GATEWAY__") || v === undefined) continue;
    const path = name.slice("GATEWAY__".length).toLowerCase().split("__").join(".");
    overrides[path] = value(path, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const next = (): string => {
      if (eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new RangeError(`${flag}: expected a value`);
      return v;
    };
    if (arg === "--") continue;
    if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else if (flag === "--config") {
      configPath = next();
      configExplicit = true;
    } else if (flag === "--set") {
      const kv = next();
      const k = kv.indexOf("=");
      if (k <= 0) throw new RangeError(`--set: expected path=value, got ${kv}`);
      const path = kv.slice(0, k);
      overrides[path] = value(path, kv.slice(k + 1));
    } else if (Object.hasOwn(FLAGS, flag)) {
      overrides[FLAGS[flag]] = value(FLAGS[flag], next());
    } else {
      throw new RangeError(`unknown option ${arg}; see --help`);
    }
  }
  return { configPath, configExplicit, overrides };
}

function loadConfig(cli: Cli): GatewayConfig {
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
  const env = process.env as Record<string, string | undefined>;
  const cli = parseCli(process.argv.slice(2), env);
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
