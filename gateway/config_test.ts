import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { applyOverrides, defaultConfig, parseConfig, resolveConfig } from "./config.ts";

test("an empty document yields the safe defaults", () => {
  const c = resolveConfig(null);
  assert.deepEqual(c, defaultConfig());
  assert.equal(c.server.host, "127.0.0.1");
  assert.deepEqual(c.server.corsOrigins, []);
  assert.equal(c.access.enabled, false);
  assert.equal(c.backend.kind, "memory");
});

test("the shipped config/sign-gateway.yaml parses and states exactly the defaults", () => {
  const text = readFileSync(new URL("../config/sign-gateway.yaml", import.meta.url), "utf8");
  assert.deepEqual(parseConfig(text), defaultConfig());
});

test("snake_case YAML keys map to camelCase settings", () => {
  const c = parseConfig(`
server:
  port: 9001
  cors_origins: [http://a.test, "https://b.test:8443"]
logging: { level: debug, format: text }
limits:
  max_body_bytes: 2048
  room_idle_ttl_ms: 5000
backend:
  kind: redis
  redis: { url: "redis://10.0.0.1:6380/2", key_prefix: "x:" }
`);
  assert.equal(c.server.port, 9001);
  assert.deepEqual(c.server.corsOrigins, ["http://a.test", "https://b.test:8443"]);
  assert.equal(c.logging.level, "debug");
  assert.equal(c.logging.format, "text");
  assert.equal(c.limits.maxBodyBytes, 2048);
  assert.equal(c.limits.roomIdleTtlMs, 5000);
  assert.equal(c.limits.maxRooms, defaultConfig().limits.maxRooms);
  assert.equal(c.backend.kind, "redis");
  assert.equal(c.backend.redis.url, "redis://10.0.0.1:6380/2");
  assert.equal(c.backend.redis.keyPrefix, "x:");
});

test("TLS, timeouts, per-source quotas and address lists are settings like any other", () => {
  const c = parseConfig(`
server:
  tls: { cert_file: /etc/gw/cert.pem, key_file: /etc/gw/key.pem }
  headers_timeout_ms: 2000
  trusted_proxies: [10.0.0.0/8, "fd00::/8"]
limits: { max_rooms_per_source: 5, quota_exempt_sources: [], empty_room_ttl_ms: 3000 }
access: { allow_anonymous: true }
`);
  assert.deepEqual(c.server.tls, { certFile: "/etc/gw/cert.pem", keyFile: "/etc/gw/key.pem" });
  assert.equal(c.server.headersTimeoutMs, 2000);
  assert.equal(c.server.keepAliveTimeoutMs, defaultConfig().server.keepAliveTimeoutMs);
  assert.deepEqual(c.server.trustedProxies, ["10.0.0.0/8", "fd00::/8"]);
  assert.equal(c.limits.maxRoomsPerSource, 5);
  assert.deepEqual(c.limits.quotaExemptSources, []);
  assert.equal(c.limits.emptyRoomTtlMs, 3000);
  assert.equal(c.access.allowAnonymous, true);
  assert.deepEqual(defaultConfig().limits.quotaExemptSources, ["127.0.0.0/8", "::1/128"]);
});

test("overrides by dotted path win over the file", () => {
  const c = parseConfig("server: { port: 1 }", {
    "server.port": 2,
    "backend.redis.url": "redis://h:1/0",
    "limits.max_rooms": 7,
  });
  assert.equal(c.server.port, 2);
  assert.equal(c.backend.redis.url, "redis://h:1/0");
  assert.equal(c.limits.maxRooms, 7);
});

const BAD: [string, string, RegExp][] = [
  ["unknown section", "nope: {}", /unknown section/],
  ["unknown key", "server: { prot: 1 }", /server\.prot: unknown key/],
  ["string port", "server: { port: '80' }", /server\.port: expected an integer/],
  ["port out of range", "server: { port: 70000 }", /server\.port: expected 0\.\.65535/],
  ["negative limit", "limits: { max_rooms: -1 }", /limits\.max_rooms/],
  ["fractional limit", "limits: { max_rooms: 1.5 }", /expected an integer/],
  ["bad level", "logging: { level: loud }", /expected one of debug, info, warn, error/],
  ["bad backend", "backend: { kind: etcd }", /expected one of memory, redis/],
  ["origins not a list", "server: { cors_origins: http://a }", /expected a list of strings/],
  ["origin with path", "server: { cors_origins: [http://a/x] }", /cors_origins/],
  ["bad regexp", "limits: { room_id_pattern: '(' }", /not a valid regular expression/],
  [
    "body larger than history",
    "limits: { max_body_bytes: 2000, max_history_bytes: 1000 }",
    /must not exceed limits\.max_history_bytes/,
  ],
  ["short token secret", "access: { enabled: true, token_secret: short }", /at least 32 bytes/],
  ["short issuer secret", "access: { issuer_secret: short }", /at least 32 bytes/],
  ["section not a mapping", "server: 5", /server: expected a mapping/],
  ["certificate without key", "server: { tls: { cert_file: c.pem } }", /server\.tls\.key_file/],
  ["key without certificate", "server: { tls: { key_file: k.pem } }", /server\.tls\.cert_file/],
  ["unknown tls key", "server: { tls: { ca_file: x } }", /server\.tls\.ca_file: unknown key/],
  ["tls not a mapping", "server: { tls: on }", /server\.tls: expected a mapping/],
  ["bad exempt range", "limits: { quota_exempt_sources: [10.0.0.0/33] }", /quota_exempt_sources/],
  ["bad trusted proxy", "server: { trusted_proxies: [proxy.local] }", /server\.trusted_proxies/],
  ["tiny header timeout", "server: { headers_timeout_ms: 5 }", /headers_timeout_ms/],
  [
    "body larger than the queue budget",
    "limits: { max_total_queued_bytes: 1024 }",
    /must not exceed limits\.max_total_queued_bytes/,
  ],
  ["document not a mapping", "- a\n- b", /expected a mapping/],
  ["prototype key", "constructor: {}", /unknown section/],
  ["inherited key", "server: { toString: 1 }", /unknown key/],
];

for (const [name, yaml, pattern] of BAD) {
  test(`config rejects ${name} with a message naming the setting`, () => {
    assert.throws(
      () => parseConfig(yaml),
      (e: unknown) =>
        (e instanceof TypeError || e instanceof RangeError) && pattern.test(e.message),
    );
  });
}

test("config rejects text that is not YAML with a SyntaxError", () => {
  assert.throws(() => parseConfig("server: [unclosed"), SyntaxError);
});

test("overrides refuse prototype paths", () => {
  assert.throws(() => applyOverrides({}, { "__proto__.polluted": 1 }), RangeError);
  assert.throws(() => applyOverrides({}, { "port": 1 }), RangeError);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
