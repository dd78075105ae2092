import { test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionGuard, type GuardedConnection } from "./connection_guard.ts";
import { AddressSet } from "./net_address.ts";

function setup(exempt: string[] = []) {
  let t = 1000;
  const closed: string[] = [];
  const guard = new ConnectionGuard({
    maxConnections: 5,
    maxConnectionsPerSource: 2,
    headersTimeoutMs: 100,
    keepAliveTimeoutMs: 50,
    exempt: AddressSet.parse(exempt),
    now: () => t,
    timers: false,
  });
  const admit = (address: string, name = address) => {
    const c = guard.admit(address, () => closed.push(name));
    return c;
  };
  return { guard, closed, admit, at: (ms: number) => (t = ms) };
}

test("connections beyond the per-source and total limits are refused; exempt sources only count in total", () => {
  const g = setup(["127.0.0.0/8"]);
  assert.equal(typeof g.admit("192.0.2.1"), "object");
  assert.equal(typeof g.admit("::ffff:192.0.2.1"), "object", "the same IPv4 source");
  assert.equal(g.admit("192.0.2.1"), "max_connections_per_source");
  assert.equal(typeof g.admit("2001:db8::1"), "object");
  assert.equal(typeof g.admit("2001:db8::2"), "object");
  assert.equal(g.admit("2001:db8::3"), "max_connections_per_source", "one /64 is one source");
  assert.equal(typeof g.admit("127.0.0.1"), "object", "exempt from the per-source limit");
  assert.equal(g.admit("127.0.0.1"), "max_connections");
  const s = g.guard.stats();
  assert.deepEqual([s.open, s.sources], [5, 2]);
  assert.deepEqual(s.refused, {
    max_connections: 1,
    max_connections_per_source: 2,
    source_ban: 0,
  });
  assert.equal(s.lastRefusedAt.max_connections, 1000);
});

test("a connection is closed without a request head in time, or when idle between requests", () => {
  const g = setup();
  const silent = g.admit("192.0.2.1", "silent") as GuardedConnection;
  const busy = g.admit("192.0.2.2", "busy") as GuardedConnection;
  const idle = g.admit("192.0.2.3", "idle") as GuardedConnection;
  busy.requestStarted(); // a long stream
  idle.requestStarted();
  g.at(1040);
  idle.requestEnded(); // idle from 1040: closed at 1090
  g.at(1099);
  assert.equal(g.guard.sweep(), 1);
  assert.deepEqual(g.closed, ["idle"]);
  g.at(1100);
  assert.equal(g.guard.sweep(), 1);
  assert.deepEqual(g.closed, ["idle", "silent"]);
  g.at(10_000);
  assert.equal(
    g.guard.sweep(),
    0,
    "a request in progress has no deadline; closed ones are not closed again",
  );
  assert.deepEqual(g.guard.stats().timedOut, { headers: 1, keep_alive: 1 });
  for (const c of [silent, idle]) c.release();
  silent.release();
  assert.equal(g.guard.size, 1);
  assert.equal(typeof g.admit("192.0.2.1"), "object", "released connections free their source");
});

test("a banned source loses its connections and is refused until the ban ends; exempt ones are not banned", () => {
  const g = setup(["127.0.0.0/8"]);
  const a = g.admit("192.0.2.1", "a") as GuardedConnection;
  g.admit("192.0.2.2", "other");
  assert.equal(g.guard.ban("::ffff:192.0.2.1", 500), "192.0.2.1");
  assert.deepEqual(g.closed, ["a"]);
  a.release();
  assert.equal(g.admit("192.0.2.1"), "source_ban");
  assert.equal(typeof g.admit("192.0.2.3"), "object", "other sources are not affected");
  assert.equal(g.guard.stats().banned, 1);
  assert.equal(g.guard.ban("127.0.0.1", 500), null);
  g.at(1500);
  g.guard.sweep();
  assert.equal(g.guard.stats().banned, 0);
  assert.equal(typeof g.admit("192.0.2.1"), "object", "the ban is over");
  assert.equal(g.guard.stats().refused.source_ban, 1);
});
