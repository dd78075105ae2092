/**
 * The settings layers of the entry points: the configuration file as the only argument,
 * precedence file < environment < flags, the one environment scheme, deprecated names as
 * aliases with a warning, and overrides that never touch a prototype.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseArgs, UsageError } from "./cli_args.ts";
import {
  applyEnvAliases,
  applyOverrides,
  envName,
  legacyEnvAliases,
  renamedEnv,
  settingsCommand,
  settingsFromCommandLine,
  type SettingsSpec,
} from "./settings_layers.ts";

const SPEC: SettingsSpec = {
  program: "DEMO",
  defaultConfigPath: "config/demo.yaml",
  settingFlags: {
    port: { setting: "server.port", arg: "n" },
    "log-level": { setting: "logging.level", arg: "level" },
  },
  envOnly: { "token-secret": "access.token_secret" },
  convert: (setting, raw, source) => `${raw} (${setting} from ${source})`,
};

function cli(argv: string[], env: Record<string, string> = {}) {
  return settingsFromCommandLine(parseArgs(argv, settingsCommand(SPEC)), env, SPEC);
}

test("the configuration file is the only positional argument, else --config, else env, else default", () => {
  assert.deepEqual(
    [cli(["my.yaml"]).configPath, cli(["my.yaml"]).configExplicit],
    ["my.yaml", true],
  );
  assert.equal(cli(["--port", "1", "my.yaml"]).configPath, "my.yaml");
  assert.equal(cli(["--config=c.yaml"]).configPath, "c.yaml");
  const env = { WALLET_MPC_DEMO_CONFIG: "e.yaml" };
  assert.equal(cli(["my.yaml"], env).configPath, "my.yaml");
  assert.equal(cli([], env).configPath, "e.yaml");
  assert.deepEqual([cli([]).configPath, cli([]).configExplicit], ["config/demo.yaml", false]);
});

test("the file named twice, two files, or an empty path is a UsageError", () => {
  for (const argv of [["a.yaml", "--config", "b.yaml"], ["a.yaml", "b.yaml"], ["--config="]]) {
    assert.throws(() => cli(argv), UsageError, argv.join(" "));
  }
});

test("precedence: file < environment < flags; later flags win; __ variables after named ones", () => {
  const file = { server: { port: 1, host: "h" }, logging: { level: "info" } };
  const env = {
    WALLET_MPC_DEMO_PORT: "2",
    WALLET_MPC_DEMO__LOGGING__LEVEL: "debug",
    WALLET_MPC_DEMO_LOG_LEVEL: "warn",
    WALLET_MPC_DEMO_TOKEN_SECRET: "s",
  };
  const envOnly = applyOverrides(file, cli([], env).overrides, () => {});
  assert.deepEqual(envOnly, {
    server: { port: "2 (server.port from WALLET_MPC_DEMO_PORT)", host: "h" },
    logging: { level: "debug (logging.level from WALLET_MPC_DEMO__LOGGING__LEVEL)" },
    access: { token_secret: "s (access.token_secret from WALLET_MPC_DEMO_TOKEN_SECRET)" },
  });
  const flags = cli(["--port=3", "--set", "logging.level=error"], env).overrides;
  assert.equal(flags["server.port"], "3 (server.port from --port)");
  assert.equal(flags["logging.level"], "error (logging.level from --set)");
  const order = cli(["--set", "server.port=4", "--port", "5"], env).overrides;
  assert.equal(order["server.port"], "5 (server.port from --port)");
  assert.deepEqual(file, { server: { port: 1, host: "h" }, logging: { level: "info" } });
});

test("--set needs section.key=value", () => {
  assert.throws(
    () => cli(["--set", "server.port"]),
    (e: unknown) => e instanceof UsageError && e.code === "bad-value",
  );
});

test("the variable of a flag is WALLET_MPC_<PROGRAM>_<FLAG>; settingsCommand names each", () => {
  assert.equal(envName("GATEWAY", "redis-url"), "WALLET_MPC_GATEWAY_REDIS_URL");
  const { flags, maxPositionals } = settingsCommand(SPEC);
  assert.equal(maxPositionals, 1);
  assert.equal(flags["log-level"].env, "WALLET_MPC_DEMO_LOG_LEVEL");
  assert.equal(flags.config.env, "WALLET_MPC_DEMO_CONFIG");
  assert.equal(flags.set.kind, "list");
});

test("deprecated names are read under their new names, with a warning; the new name wins", () => {
  const aliases = legacyEnvAliases(SPEC, "OLD");
  const given = {
    OLD_PORT: "1",
    OLD__SERVER__HOST: "h",
    OLD_CONFIG: "c.yaml",
    OLD_LOG_LEVEL: "debug",
    WALLET_MPC_DEMO_LOG_LEVEL: "warn",
    OLDER_PORT: "9",
    UNRELATED: "x",
  };
  const { env, warnings } = applyEnvAliases(given, aliases);
  assert.deepEqual(env, {
    ...given,
    WALLET_MPC_DEMO_PORT: "1",
    WALLET_MPC_DEMO__SERVER__HOST: "h",
    WALLET_MPC_DEMO_CONFIG: "c.yaml",
  });
  assert.deepEqual(warnings.sort(), [
    "warning: OLD_CONFIG is deprecated; use WALLET_MPC_DEMO_CONFIG",
    "warning: OLD_LOG_LEVEL is deprecated and ignored: WALLET_MPC_DEMO_LOG_LEVEL is set",
    "warning: OLD_PORT is deprecated; use WALLET_MPC_DEMO_PORT",
    "warning: OLD__SERVER__HOST is deprecated; use WALLET_MPC_DEMO__SERVER__HOST",
  ]);
  const [token] = renamedEnv("WALLET_MPC", "CLIENT", ["token"]);
  assert.deepEqual(token, { from: "WALLET_MPC_TOKEN", to: "WALLET_MPC_CLIENT_TOKEN" });
});

test("overrides refuse empty parts and prototype keys, after the program's own check", () => {
  const seen: string[] = [];
  const check = (p: string) => void seen.push(p);
  for (const path of ["__proto__.polluted", "constructor.prototype.x", "a..b", "a.prototype"]) {
    assert.throws(() => applyOverrides({}, { [path]: 1 }, check), RangeError, path);
  }
  assert.equal(seen.length, 4, "the program's check ran first");
  assert.throws(
    () =>
      applyOverrides({}, { "x.y": 1 }, () => {
        throw new TypeError("no such setting");
      }),
    TypeError,
  );
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.deepEqual(applyOverrides("not a mapping", { "a.b.c": 1 }, () => {}), {
    a: { b: { c: 1 } },
  });
});
