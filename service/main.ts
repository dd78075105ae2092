/**
 * Entry point of the sign-service: loads its configuration file (`config/sign-service.yaml`, or
 * the file given as the only argument; environment and flag overrides: service/config.ts),
 * opens the age-encrypted key store, and serves the sign API (`startSignService`, service/start.ts):
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
import { readFile } from "node:fs/promises";
import process from "node:process";
import { createLogger } from "../platform/logger.ts";
import { loadServiceConfig, SERVICE_ENV_ALIASES, SERVICE_USAGE, wantsHelp } from "./config.ts";
import { applyEnvAliases } from "../platform/settings_layers.ts";
import { startSignService } from "./start.ts";

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
  const service = await startSignService({ config, logger, env });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      if (signal === "SIGINT") process.exit(1);
      return;
    }
    stopping = true;
    logger.log("info", "signal received, draining", { signal });
    await service.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
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
