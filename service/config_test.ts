import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  applyOverrides,
  defaultServiceConfig,
  loadServiceConfig,
  parseServiceArgs,
  parseServiceConfig,
  resolveServiceConfig,
  SERVICE_ENV_ALIASES,
  type ServiceConfig,
  validateServiceConfig,
  wantsHelp,
} from "./config.ts";
import { ConfigError, type ConfigErrorCode } from "./errors.ts";
import { applyEnvAliases } from "../platform/settings_layers.ts";

/** The two settings without a working default. */
const REQUIRED = { auth: { tokens_file: "callers.yaml" }, key_store: { allow_plaintext: true } };
const PASS_ENV = { WALLET_MPC_SERVICE_KEY_PASSPHRASE: "a passphrase of the test" };
const SHIPPED = readFileSync(new URL("../config/sign-service.yaml", import.meta.url), "utf8");

function enoent(): never {
  throw Object.assign(new Error("no such file"), { code: "ENOENT" });
}

test("the shipped config/sign-service.yaml parses and states exactly the defaults", () => {
  const fromFile = parseServiceConfig(SHIPPED, { "auth.tokens_file": "c.yaml" }, { env: PASS_ENV });
  const fromNothing = resolveServiceConfig({ auth: { tokens_file: "c.yaml" } }, { env: PASS_ENV });
  assert.deepEqual(fromFile, fromNothing);
  const d = defaultServiceConfig();
  assert.deepEqual({ ...fromFile, auth: d.auth, keyStore: d.keyStore }, d);
});

test("the shipped file documents every setting of the schema", () => {
  const c = defaultServiceConfig();
  const snake = (k: string) => k.replace(/[A-Z]/g, (x) => `_${x.toLowerCase()}`);
  const keys: string[] = [];
  const walk = (o: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (k === "mode" || k === "configFile") continue; // derived, not settings
      if (typeof v === "object" && v !== null && !Array.isArray(v)) {
        walk(v as Record<string, unknown>, `${prefix}${snake(k)}.`);
      } else keys.push(`${prefix}${snake(k)}`);
    }
  };
  walk(c as unknown as Record<string, unknown>, "");
  for (const key of keys) {
    const leaf = key.split(".").pop() as string;
    assert.match(SHIPPED, new RegExp(`^\\s*${leaf}:.*# `, "m"), `${key} documented`);
  }
});

test("snake_case keys map to camelCase settings, nested tls included", () => {
  const c = resolveServiceConfig({
    ...REQUIRED,
    gateway: { url: "https://gw.example:8443/base", token: "t".repeat(40) },
    server: {
      port: 443,
      web_port: 443,
      index: 0,
      tls: { cert_file: "c.pem", key_file: "k.pem" },
      cors_origins: ["https://wallet.example"],
    },
    mpc: { key_share_file: "/var/lib/s/keys.age", round_timeout_ms: 5000 },
    rate_limit: { per_caller_per_minute: 600, burst: 50, max_sessions_per_caller: 1 },
    audit: { file: "/var/log/s/audit.jsonl", fsync: true },
    logging: { level: "debug", format: "text" },
  });
  assert.equal(c.gateway.url, "https://gw.example:8443/base");
  assert.equal(c.server.index, 0);
  assert.deepEqual(c.server.tls, { certFile: "c.pem", keyFile: "k.pem" });
  assert.deepEqual(c.server.corsOrigins, ["https://wallet.example"]);
  assert.equal(c.mpc.keyShareFile, "/var/lib/s/keys.age");
  assert.equal(c.mpc.roundTimeoutMs, 5000);
  assert.equal(c.rateLimit.perCallerPerMinute, 600);
  assert.equal(c.rateLimit.maxSessionsPerCaller, 1);
  assert.equal(c.rateLimit.maxConcurrentSessions, 16);
  assert.deepEqual(c.compute, { workers: 0, maxQueueWaitMs: 0, allowVariableTimeSecrets: false });
  assert.deepEqual(c.audit, { file: "/var/log/s/audit.jsonl", fsync: true });
  assert.deepEqual(c.logging, { level: "debug", format: "text" });
});

test("the key store mode follows the identity file, the passphrase variable or plaintext", () => {
  const base = { auth: { tokens_file: "c.yaml" } };
  const id = resolveServiceConfig({ ...base, key_store: { age_identity_file: "s.key" } });
  assert.equal(id.keyStore.mode, "identity");
  assert.equal(resolveServiceConfig(base, { env: PASS_ENV }).keyStore.mode, "passphrase");
  const renamed = resolveServiceConfig(
    { ...base, key_store: { passphrase_env: "MY_PASS" } },
    { env: { MY_PASS: "x" } },
  );
  assert.equal(renamed.keyStore.mode, "passphrase");
  assert.equal(resolveServiceConfig(REQUIRED).keyStore.mode, "plaintext");
  // allow_plaintext with a key: plaintext is accepted on read, the mode stays encrypted.
  const migrate = resolveServiceConfig(
    { ...base, key_store: { allow_plaintext: true } },
    { env: PASS_ENV },
  );
  assert.equal(migrate.keyStore.mode, "passphrase");
  assert.equal(migrate.keyStore.allowPlaintext, true);
  // The passphrase itself never enters the configuration.
  assert.doesNotMatch(JSON.stringify(migrate), /a passphrase of the test/);
});

type Bad = [name: string, doc: unknown, code: ConfigErrorCode, setting: string, env?: object];
const BAD: Bad[] = [
  ["unknown section", { ...REQUIRED, nope: {} }, "unknown-key", "nope"],
  ["unknown key", { ...REQUIRED, server: { prot: 1 } }, "unknown-key", "server.prot"],
  ["inherited key", { ...REQUIRED, server: { toString: 1 } }, "unknown-key", "server.toString"],
  ["prototype section", JSON.parse('{"__proto__": {"x": 1}}'), "unknown-key", "__proto__"],
  [
    "unknown tls key",
    { ...REQUIRED, server: { tls: { ca: "x" } } },
    "unknown-key",
    "server.tls.ca",
  ],
  ["section not a mapping", { ...REQUIRED, server: 5 }, "wrong-type", "server"],
  ["tls not a mapping", { ...REQUIRED, server: { tls: "on" } }, "wrong-type", "server.tls"],
  ["string port", { ...REQUIRED, server: { port: "80" } }, "wrong-type", "server.port"],
  ["fractional port", { ...REQUIRED, server: { port: 80.5 } }, "wrong-type", "server.port"],
  ["port too large", { ...REQUIRED, server: { port: 70000 } }, "out-of-range", "server.port"],
  ["negative port", { ...REQUIRED, server: { port: -1 } }, "out-of-range", "server.port"],
  ["bool as string", { ...REQUIRED, audit: { fsync: "yes" } }, "wrong-type", "audit.fsync"],
  ["null value", { ...REQUIRED, server: { host: null } }, "wrong-type", "server.host"],
  ["empty host", { ...REQUIRED, server: { host: "" } }, "out-of-range", "server.host"],
  ["index 2 of 2", { ...REQUIRED, server: { index: 2 } }, "out-of-range", "server.index"],
  [
    "3 participants",
    { ...REQUIRED, mpc: { total_participants: 3 } },
    "out-of-range",
    "mpc.total_participants",
  ],
  ["threshold 1", { ...REQUIRED, mpc: { threshold: 1 } }, "out-of-range", "mpc.threshold"],
  [
    "3-of-3",
    { ...REQUIRED, mpc: { threshold: 3, total_participants: 3 } },
    "out-of-range",
    "mpc.total_participants",
  ],
  [
    "empty key share file",
    { ...REQUIRED, mpc: { key_share_file: "" } },
    "contradictory",
    "mpc.key_share_file",
  ],
  [
    "round timeout 0",
    { ...REQUIRED, mpc: { round_timeout_ms: 0 } },
    "out-of-range",
    "mpc.round_timeout_ms",
  ],
  [
    "origins not a list",
    { ...REQUIRED, server: { cors_origins: "http://a" } },
    "wrong-type",
    "server.cors_origins",
  ],
  [
    "origin with a path",
    { ...REQUIRED, server: { cors_origins: ["http://a/x"] } },
    "out-of-range",
    "server.cors_origins",
  ],
  [
    "half of tls",
    { ...REQUIRED, server: { tls: { cert_file: "c.pem" } } },
    "contradictory",
    "server.tls.key_file",
  ],
  [
    "one port without tls",
    { ...REQUIRED, server: { port: 9000, web_port: 9000 } },
    "contradictory",
    "server.web_port",
  ],
  [
    "gateway url not a url",
    { ...REQUIRED, gateway: { url: "gateway:8080" } },
    "out-of-range",
    "gateway.url",
  ],
  ["gateway url ftp", { ...REQUIRED, gateway: { url: "ftp://h/" } }, "out-of-range", "gateway.url"],
  [
    "gateway url with password",
    { ...REQUIRED, gateway: { url: "http://u:p@h/" } },
    "out-of-range",
    "gateway.url",
  ],
  [
    "gateway url with query",
    { ...REQUIRED, gateway: { url: "http://h/?t=1" } },
    "out-of-range",
    "gateway.url",
  ],
  [
    "gateway token with a newline",
    { ...REQUIRED, gateway: { token: "a\nb" } },
    "out-of-range",
    "gateway.token",
  ],
  ["no tokens file", { key_store: { allow_plaintext: true } }, "contradictory", "auth.tokens_file"],
  [
    "no key and no plaintext",
    { auth: { tokens_file: "c" } },
    "contradictory",
    "key_store.age_identity_file",
  ],
  [
    "identity and passphrase",
    { ...REQUIRED, key_store: { age_identity_file: "k" } },
    "contradictory",
    "key_store.age_identity_file",
    PASS_ENV,
  ],
  [
    "bad passphrase_env name",
    { ...REQUIRED, key_store: { passphrase_env: "A-B" } },
    "out-of-range",
    "key_store.passphrase_env",
  ],
  [
    "recipients with a passphrase",
    {
      ...REQUIRED,
      key_store: { recipients: ["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"] },
    },
    "contradictory",
    "key_store.recipients",
    PASS_ENV,
  ],
  [
    "recipient not age1",
    { ...REQUIRED, key_store: { age_identity_file: "k", recipients: ["ssh-ed25519 AAAA"] } },
    "out-of-range",
    "key_store.recipients",
  ],
  ["zero burst", { ...REQUIRED, rate_limit: { burst: 0 } }, "out-of-range", "rate_limit.burst"],
  [
    "per caller above global",
    { ...REQUIRED, rate_limit: { max_concurrent_sessions: 2, max_sessions_per_caller: 3 } },
    "contradictory",
    "rate_limit.max_sessions_per_caller",
  ],
  ["empty audit file", { ...REQUIRED, audit: { file: "" } }, "contradictory", "audit.file"],
  ["bad level", { ...REQUIRED, logging: { level: "loud" } }, "out-of-range", "logging.level"],
  ["document a list", ["a"], "wrong-type", "config"],
];

for (const [name, doc, code, setting, env] of BAD) {
  test(`config rejects ${name} with a ConfigError naming ${setting}`, () => {
    assert.throws(
      () => resolveServiceConfig(doc, { env: (env ?? {}) as Record<string, string> }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.code, code, e.message);
        assert.equal(e.setting, setting, e.message);
        assert.ok(e.message.startsWith(`${setting}: `), e.message);
        return true;
      },
    );
  });
}

test("config never repeats a secret value in its messages", () => {
  const token = "super-secret-token-value\u0001";
  try {
    resolveServiceConfig({ ...REQUIRED, gateway: { token } });
    assert.fail("expected a ConfigError");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.doesNotMatch(e.message, /super-secret/);
  }
  try {
    resolveServiceConfig({ ...REQUIRED, gateway: { url: "http://user:hunter2@h/" } });
    assert.fail("expected a ConfigError");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.doesNotMatch(e.message, /hunter2/);
  }
  // The YAML parser quotes the bad line; only its first line is kept.
  try {
    parseServiceConfig("gateway:\n  token: hunter2-secret\n  token: again\n");
    assert.fail("expected a ConfigError");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.code, "unparsable");
    assert.doesNotMatch(e.message, /hunter2/);
  }
});

test("config rejects text that is not YAML as unparsable", () => {
  assert.throws(
    () => parseServiceConfig("server: [unclosed"),
    (e: unknown) => e instanceof ConfigError && e.code === "unparsable" && e.setting === "config",
  );
});

test("validateServiceConfig catches settings changed in code", () => {
  const c: ServiceConfig = resolveServiceConfig(REQUIRED);
  c.mpc.threshold = 1;
  assert.throws(() => validateServiceConfig(c), /mpc\.threshold/);
});

test("environment overrides: the named variables and WALLET_MPC_SERVICE__SECTION__KEY", async () => {
  const c = await loadServiceConfig({
    argv: [],
    env: {
      ...PASS_ENV,
      WALLET_MPC_SERVICE_KEY_SHARE_FILE: "/data/keys.age",
      WALLET_MPC_SERVICE_PORT: "6000",
      WALLET_MPC_SERVICE_TOKENS_FILE: "callers.yaml",
      WALLET_MPC_SERVICE_GATEWAY_TOKEN: "tok-from-env",
      WALLET_MPC_SERVICE__SERVER__TLS__CERT_FILE: "c.pem",
      WALLET_MPC_SERVICE__SERVER__TLS__KEY_FILE: "k.pem",
      WALLET_MPC_SERVICE__SERVER__CORS_ORIGINS: "https://a.example, https://b.example",
      WALLET_MPC_SERVICE__AUDIT__FSYNC: "true",
      WALLET_MPC_SERVICE__RATE_LIMIT__BURST: "3",
      UNRELATED: "x",
    },
    readFile: enoent,
  });
  assert.equal(c.mpc.keyShareFile, "/data/keys.age");
  assert.equal(c.server.port, 6000);
  assert.equal(c.gateway.token, "tok-from-env");
  assert.deepEqual(c.server.tls, { certFile: "c.pem", keyFile: "k.pem" });
  assert.deepEqual(c.server.corsOrigins, ["https://a.example", "https://b.example"]);
  assert.equal(c.audit.fsync, true);
  assert.equal(c.rateLimit.burst, 3);
  assert.equal(c.configFile, null);
});

test("precedence is defaults < file < environment < flags", async () => {
  const files: string[] = [];
  const c = await loadServiceConfig({
    argv: ["--port", "7002", "--set=mpc.key_share_file=from-flag.age", "--host=0.0.0.0"],
    env: {
      ...PASS_ENV,
      WALLET_MPC_SERVICE_CONFIG: "/etc/s.yaml",
      WALLET_MPC_SERVICE_PORT: "7001",
      WALLET_MPC_SERVICE_KEY_SHARE_FILE: "from-env.age",
      WALLET_MPC_SERVICE_INDEX: "0",
    },
    readFile: (path) => {
      files.push(path);
      return "server: { port: 7000, index: 1, web_port: 7100 }\nauth: { tokens_file: c.yaml }\n";
    },
  });
  assert.deepEqual(files, ["/etc/s.yaml"]);
  assert.equal(c.configFile, "/etc/s.yaml");
  assert.equal(c.server.port, 7002);
  assert.equal(c.server.webPort, 7100);
  assert.equal(c.server.index, 0);
  assert.equal(c.server.host, "0.0.0.0");
  assert.equal(c.mpc.keyShareFile, "from-flag.age");
});

test("--config beats WALLET_MPC_SERVICE_CONFIG; bytes are read as UTF-8", async () => {
  const c = await loadServiceConfig({
    argv: ["--config", "b.yaml"],
    env: { ...PASS_ENV, WALLET_MPC_SERVICE_CONFIG: "a.yaml" },
    readFile: (path) => {
      assert.equal(path, "b.yaml");
      return new TextEncoder().encode("auth: { tokens_file: c.yaml }\nrate_limit: { burst: 4 }");
    },
  });
  assert.equal(c.rateLimit.burst, 4);
});

test("a missing default file means defaults; a missing named file is an error", async () => {
  const env = { WALLET_MPC_SERVICE_TOKENS_FILE: "c.yaml", ...PASS_ENV };
  const c = await loadServiceConfig({ argv: [], env, readFile: enoent });
  assert.equal(c.configFile, null);
  await assert.rejects(
    loadServiceConfig({ argv: ["--config", "nope.yaml"], env, readFile: enoent }),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "unreadable" && /not found/.test(e.message),
  );
  await assert.rejects(
    loadServiceConfig({
      argv: [],
      env: { ...env, WALLET_MPC_SERVICE_CONFIG: "x.yaml" },
      readFile: enoent,
    }),
    (e: unknown) => e instanceof ConfigError && e.code === "unreadable",
  );
  const denied = () => {
    throw Object.assign(new Error("denied"), { code: "EACCES" });
  };
  await assert.rejects(
    loadServiceConfig({ argv: [], env, readFile: denied }),
    (e: unknown) => e instanceof ConfigError && /cannot be read/.test(e.message),
  );
  const deno = () => {
    throw Object.assign(new Error("missing"), { name: "NotFound" });
  };
  assert.equal((await loadServiceConfig({ argv: [], env, readFile: deno })).configFile, null);
  await assert.rejects(
    loadServiceConfig({ argv: [], env, readFile: () => new Uint8Array([0xff, 0xfe]) }),
    (e: unknown) => e instanceof ConfigError && e.code === "unparsable",
  );
});

test("the configuration file as the only argument (deno task service config/sign-service.yaml)", async () => {
  const files: string[] = [];
  const c = await loadServiceConfig({
    argv: ["my-service.yaml", "--port=7002"],
    env: { ...PASS_ENV, WALLET_MPC_SERVICE_CONFIG: "from-env.yaml" },
    readFile: (path) => {
      files.push(path);
      return "auth: { tokens_file: c.yaml }\nserver: { port: 7000, web_port: 7100 }\n";
    },
  });
  assert.deepEqual(files, ["my-service.yaml"]);
  assert.equal(c.configFile, "my-service.yaml");
  assert.equal(c.server.webPort, 7100);
  assert.equal(c.server.port, 7002);
  await assert.rejects(
    loadServiceConfig({ argv: ["nope.yaml"], env: PASS_ENV, readFile: enoent }),
    (e: unknown) => e instanceof ConfigError && e.code === "unreadable",
  );
});

test("the deprecated SIGN_SERVICE_* names still set the service, with a warning each", async () => {
  const { env, warnings } = applyEnvAliases({
    SIGN_SERVICE_PORT: "6000",
    SIGN_SERVICE__RATE_LIMIT__BURST: "3",
    SIGN_SERVICE_TOKENS_FILE: "callers.yaml",
    SIGN_SERVICE_KEY_PASSPHRASE: "an old passphrase variable",
    WALLET_MPC_SERVICE_INDEX: "0",
    SIGN_SERVICE_INDEX: "1",
  }, SERVICE_ENV_ALIASES);
  const c = await loadServiceConfig({ argv: [], env, readFile: enoent });
  assert.equal(c.server.port, 6000);
  assert.equal(c.rateLimit.burst, 3);
  assert.equal(c.auth.tokensFile, "callers.yaml");
  assert.equal(c.keyStore.mode, "passphrase");
  assert.equal(c.server.index, 0, "the new name wins");
  assert.equal(warnings.length, 5);
  assert.ok(warnings.every((w) => /^warning: SIGN_SERVICE_\w+ is deprecated/.test(w)));
});

type BadArgs = [name: string, argv: string[], env: Record<string, string>, code: ConfigErrorCode];
const BAD_ARGS: BadArgs[] = [
  ["an unknown flag", ["--prot", "1"], {}, "unknown-key"],
  ["a flag without its value", ["--port"], {}, "unparsable"],
  ["--set without =", ["--set", "server.port"], {}, "unparsable"],
  ["--set of an unknown setting", ["--set", "server.nope=1"], {}, "unknown-key"],
  ["--set of a section", ["--set", "server=1"], {}, "unknown-key"],
  ["--set of a prototype path", ["--set", "__proto__.polluted=1"], {}, "unknown-key"],
  ["a non-integer port", ["--port", "80a"], {}, "wrong-type"],
  ["a huge integer", ["--port", "99999999999999999999"], {}, "wrong-type"],
  ["a bad boolean", ["--set", "audit.fsync=maybe"], {}, "wrong-type"],
  ["a bad list", ["--set", "server.cors_origins=[a"], {}, "unparsable"],
  ["an unknown env setting", [], { WALLET_MPC_SERVICE__SERVER__NOPE: "1" }, "unknown-key"],
  ["a non-integer env port", [], { WALLET_MPC_SERVICE_PORT: "eighty" }, "wrong-type"],
  ["an empty --config", ["--config="], {}, "unparsable"],
  ["a second argument", ["a.yaml", "b.yaml"], {}, "unparsable"],
  ["an argument and --config", ["a.yaml", "--config", "b.yaml"], {}, "unparsable"],
  ["--help with a value", ["--help=1"], {}, "unknown-key"],
];

for (const [name, argv, env, code] of BAD_ARGS) {
  test(`command line rejects ${name} (${code})`, () => {
    assert.throws(
      () => parseServiceArgs(argv, env),
      (e: unknown) => e instanceof ConfigError && e.code === code,
    );
  });
}

test("a wrongly typed list from --set is caught by validation", async () => {
  await assert.rejects(
    loadServiceConfig({
      argv: ["--set", "server.cors_origins=[1, 2]"],
      env: { ...PASS_ENV, WALLET_MPC_SERVICE_TOKENS_FILE: "c" },
      readFile: enoent,
    }),
    (e: unknown) => e instanceof ConfigError && e.setting === "server.cors_origins",
  );
});

test("overrides never pollute prototypes", () => {
  assert.throws(() => applyOverrides({}, { "__proto__.polluted": 1 }), ConfigError);
  assert.throws(() => applyOverrides({}, { "constructor.prototype.x": 1 }), ConfigError);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("wantsHelp sees --help and -h before --", () => {
  assert.equal(wantsHelp(["--help"]), true);
  assert.equal(wantsHelp(["--port", "1", "-h"]), true);
  assert.equal(wantsHelp(["--", "--help"]), false);
  assert.equal(wantsHelp([]), false);
  // loadServiceConfig ignores it (main.ts handles it first).
  assert.doesNotThrow(() => parseServiceArgs(["--help"], {}));
});

test("gateway.issuer_secret comes from the environment only and never shows in a refusal", async () => {
  const secret = "issuer-secret-of-the-test-0123456789abcdef";
  const env = { ...PASS_ENV, WALLET_MPC_SERVICE_TOKENS_FILE: "c" };
  const load = (o: { argv?: string[]; env?: Record<string, string>; file?: string }) =>
    loadServiceConfig({
      argv: o.argv ?? [],
      env: { ...env, ...o.env },
      readFile: o.file === undefined ? enoent : () => o.file!,
    });
  const c = await load({ env: { WALLET_MPC_SERVICE_GATEWAY_ISSUER_SECRET: secret } });
  assert.equal(c.gateway.issuerSecret, secret);
  const d = await load({ env: { WALLET_MPC_SERVICE__GATEWAY__ISSUER_SECRET: secret } });
  assert.equal(d.gateway.issuerSecret, secret);
  assert.equal(
    (await load({ file: SHIPPED })).gateway.issuerSecret,
    "",
    "empty in the shipped file",
  );
  const refusals: [string, Parameters<typeof load>[0], string][] = [
    ["in the file", { file: `gateway:\n  issuer_secret: "${secret}"\n` }, "contradictory"],
    ["from --set", { argv: ["--set", `gateway.issuer_secret=${secret}`] }, "contradictory"],
    [
      "shorter than 32 characters",
      { env: { WALLET_MPC_SERVICE_GATEWAY_ISSUER_SECRET: secret.slice(0, 31) } },
      "out-of-range",
    ],
    [
      "with a space",
      { env: { WALLET_MPC_SERVICE_GATEWAY_ISSUER_SECRET: `${secret} x` } },
      "out-of-range",
    ],
    [
      "with a static gateway token",
      {
        env: {
          WALLET_MPC_SERVICE_GATEWAY_ISSUER_SECRET: secret,
          WALLET_MPC_SERVICE_GATEWAY_TOKEN: "static-token",
        },
      },
      "contradictory",
    ],
  ];
  for (const [what, o, code] of refusals) {
    await assert.rejects(async () => await load(o), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `${what}: ${e}`);
      assert.equal(e.code, code, `${what}: ${e.message}`);
      assert.match(e.setting, /^gateway\.(issuer_secret|token)$/, what);
      assert.ok(!e.message.includes(secret.slice(0, 31)), `${what}: the secret in the message`);
      return true;
    }, what);
  }
});
