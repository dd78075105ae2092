/**
 * The sign-gateway's command line and environment: the configuration file as the only argument,
 * precedence file < environment < flags, `--x=y`, unknown flags, and the deprecated `GATEWAY_*`
 * names.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GATEWAY_ENV_ALIASES, GATEWAY_USAGE, parseGatewayArgs } from "./config_args.ts";
import { parseConfig } from "./config.ts";
import { UsageError } from "../platform/cli_args.ts";
import { applyEnvAliases } from "../platform/settings_layers.ts";

test("the configuration file is the only argument (deno task gateway config/sign-gateway.yaml)", () => {
  const cli = parseGatewayArgs(["my-gateway.yaml", "--port", "9000"], {});
  assert.deepEqual([cli.configPath, cli.configExplicit], ["my-gateway.yaml", true]);
  const none = parseGatewayArgs([], {});
  assert.deepEqual([none.configPath, none.configExplicit], ["config/sign-gateway.yaml", false]);
  assert.throws(() => parseGatewayArgs(["a.yaml", "b.yaml"], {}), UsageError);
});

test("precedence: file < environment < flags, with --x=y and --x y alike", () => {
  const file = "server: { port: 7000, host: 127.0.0.2 }\nlimits: { max_rooms: 5 }\n";
  const env = {
    WALLET_MPC_GATEWAY_PORT: "7001",
    WALLET_MPC_GATEWAY__LIMITS__MAX_ROOMS: "6",
    WALLET_MPC_GATEWAY_CORS_ORIGINS: "http://a.test, http://b.test",
  };
  const fromEnv = parseConfig(file, parseGatewayArgs([], env).overrides);
  assert.equal(fromEnv.server.port, 7001);
  assert.equal(fromEnv.server.host, "127.0.0.2");
  assert.equal(fromEnv.limits.maxRooms, 6);
  assert.deepEqual(fromEnv.server.corsOrigins, ["http://a.test", "http://b.test"]);
  const flags = ["--port=7002", "--set", "limits.max_rooms=7", "--backend", "redis"];
  const fromFlags = parseConfig(file, parseGatewayArgs(flags, env).overrides);
  assert.equal(fromFlags.server.port, 7002);
  assert.equal(fromFlags.limits.maxRooms, 7);
  assert.equal(fromFlags.backend.kind, "redis");
});

test("an unknown flag is a UsageError naming it; --help asks for the usage", () => {
  assert.throws(
    () => parseGatewayArgs(["--no-such-flag"], {}),
    (e: unknown) =>
      e instanceof UsageError && e.code === "unknown-flag" &&
      /unknown option --no-such-flag/.test(e.message),
  );
  assert.equal(parseGatewayArgs(["--port", "x", "-h"], {}).help, true);
  assert.match(
    GATEWAY_USAGE,
    /--redis-url <url> +backend\.redis\.url \(env WALLET_MPC_GATEWAY_REDIS_URL\)/,
  );
});

test("the deprecated GATEWAY_* names still set the gateway, with a warning each", () => {
  const { env, warnings } = applyEnvAliases({
    GATEWAY_CONFIG: "old.yaml",
    GATEWAY_PORT: "7001",
    GATEWAY_TOKEN_SECRET: "s".repeat(32),
    GATEWAY__LIMITS__MAX_ROOMS: "6",
    GATEWAY_INTERFACE: "CGI/1.1",
  }, GATEWAY_ENV_ALIASES);
  const cli = parseGatewayArgs([], env);
  assert.equal(cli.configPath, "old.yaml");
  assert.deepEqual(cli.overrides, {
    "server.port": 7001,
    "access.token_secret": "s".repeat(32),
    "limits.max_rooms": 6,
  });
  assert.equal(warnings.length, 4, "GATEWAY_INTERFACE is not the gateway's");
});

test("address lists and TLS paths from the environment and --set", () => {
  const cli = parseGatewayArgs(
    ["--set", "limits.quota_exempt_sources=", "--set", "server.trusted_proxies=[10.0.0.1]"],
    {
      WALLET_MPC_GATEWAY__SERVER__TLS__CERT_FILE: "0123.pem",
      WALLET_MPC_GATEWAY__SERVER__TLS__KEY_FILE: "key.pem",
      WALLET_MPC_GATEWAY__LIMITS__MAX_CONNECTIONS_PER_SOURCE: "4",
    },
  );
  const c = parseConfig("", cli.overrides);
  assert.deepEqual(c.limits.quotaExemptSources, []);
  assert.deepEqual(c.server.trustedProxies, ["10.0.0.1"]);
  assert.deepEqual(c.server.tls, { certFile: "0123.pem", keyFile: "key.pem" });
  assert.equal(c.limits.maxConnectionsPerSource, 4);
  const listed = parseGatewayArgs(["--set", "limits.quota_exempt_sources=127.0.0.1, ::1"], {});
  assert.deepEqual(parseConfig("", listed.overrides).limits.quotaExemptSources, [
    "127.0.0.1",
    "::1",
  ]);
});
