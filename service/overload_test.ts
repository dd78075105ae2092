/**
 * The sign API under load, in one process (routes through Connect's in-memory transport, the
 * real gateway handler, the real compute pool): admission refuses at once what could not start
 * before its deadline; a departed client's session stops, its running job cut short (read on
 * the pool's events and its workers' work counter, not timed); a worker that crashes fails its
 * session with a clear error and is replaced; health is answered while every worker computes.
 * Nothing here asserts a duration: waits are for events, bounded only to fail instead of hang.
 * @module
 */
import "../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import type { AccountEntry } from "../core/keyshare.ts";
import { MemoryPresignatureStore } from "../core/presignature_store.ts";
import { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import type { ComputePool } from "../platform/compute_pool.ts";
import { watchedPool as startWatchedPool } from "../testing/compute.ts";
import { bounded } from "../testing/waits.ts";
import { SignService } from "../proto/gen/wallet_mpc/v1/sign_pb.ts";
import { newRoomId } from "../session/inputs.ts";
import { signAsParty } from "../session/party.ts";
import { fixtureAccounts, fixturePrimes, type PartyAccounts } from "../testing/accounts.ts";
import { memoryServiceParts, recordedSurroundings } from "../testing/service_deps.ts";
import { type Admission, createAdmission } from "./admission.ts";
import { createAuthenticator, generateToken, hashToken } from "./auth.ts";
import { createServiceMetrics, type ServiceMetrics } from "./metrics.ts";
import { createRateLimiter, createSessionLimiter } from "./rate_limit.ts";
import { signServiceRoutes } from "./routes.ts";
import { createSignServiceImpl } from "./sign_service.ts";

const TOKEN = generateToken();
const bearer = { authorization: `Bearer ${TOKEN}` };

let accounts: PartyAccounts;
before(async () => {
  accounts = await fixtureAccounts(["alice"]);
});

const pools: ComputePool[] = [];
after(async () => {
  for (const p of pools) await p.close();
});

/** A service in process with the given compute, admission and metrics. */
function service(o: { pool?: ComputePool; admission?: Admission; metrics?: ServiceMetrics }) {
  const stored = new MemoryKeyStore(
    new Map<string, AccountEntry>([["alice", accounts[1].get("alice")!]]),
  );
  const auth = createAuthenticator([
    { id: "app", tokenSha256: hashToken(TOKEN), accounts: ["*"], mayKeygen: true },
  ]);
  const rate = createRateLimiter({ perMinute: 1e6, burst: 1000 });
  const sessions = createSessionLimiter({ maxConcurrent: 64, maxPerCaller: 64 });
  const { lines, audit, gatewayHandler, gatewayCalls, gateway, clientGateway } =
    recordedSurroundings();
  const impl = createSignServiceImpl({
    partyIndex: 1,
    parties: 2,
    version: "test",
    ...memoryServiceParts({ store: stored, auth, rate, sessions, audit }),
    gateway,
    generatePrimes: fixturePrimes(2),
    presignatures: new MemoryPresignatureStore(),
    roundTimeoutMs: 30_000,
    handshakeTimeoutMs: 30_000,
    compute: o.pool,
    admission: o.admission,
    metrics: o.metrics,
  });
  const client = createClient(SignService, createRouterTransport(signServiceRoutes(impl)));
  /** The client party of a signing session in `room` (inline compute, in this process). */
  const party = (room: string, signal: AbortSignal) =>
    signAsParty(
      new MemoryKeyStore(accounts[0]),
      { accountId: "alice", digest: new Uint8Array(32).fill(9), path: [] },
      { gateway: clientGateway, room, signal, roundTimeoutMs: 30_000, handshakeTimeoutMs: 30_000 },
      new MemoryPresignatureStore(),
      { promoteKeygen: false },
    );
  const sign = (room: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}) =>
    client.sign(
      { accountId: "alice", digest: "09".repeat(32), derivationPath: "", roomId: room },
      { headers: bearer, ...options },
    );
  return {
    client,
    sign,
    party,
    lines,
    gatewayCalls,
    audited: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    close: () => gatewayHandler.close(),
  };
}

/** A pool of the test worker, closed after the file. */
async function watchedPool(workers: number, workerData?: unknown, metrics?: ServiceMetrics) {
  const w = await startWatchedPool(workers, { workerData, onEvent: (e) => metrics?.poolEvent(e) });
  pools.push(w.pool);
  return w;
}

const failure = (p: Promise<unknown>) =>
  p.then(() => undefined, (e: unknown) => ConnectError.from(e));

describe("sign service under load", () => {
  test("admission: a request that could not start before its deadline is refused at once with RESOURCE_EXHAUSTED and a retry hint", async () => {
    // One worker, a signature costs 20 s of it: one admitted session is 20 s of backlog.
    const admission = createAdmission({ workers: 1, costMs: { sign: 20_000 } });
    const metrics = createServiceMetrics({ admission: () => admission });
    const s = service({ admission, metrics });
    const first = new AbortController();
    try {
      // Admitted: waits for a client party that never comes (its handshake).
      const admitted = failure(s.sign(newRoomId(), { signal: first.signal }));
      while (admission.active() === 0) await new Promise((r) => setTimeout(r, 0));
      const calls = s.gatewayCalls.length;
      const e = await failure(s.sign(newRoomId(), { timeoutMs: 30_000 }));
      assert.ok(e, "the second request was refused");
      assert.equal(e.code, Code.ResourceExhausted, e.message);
      assert.match(e.message, /the service is busy: a sign session would start in about 20\.0 s/);
      const hintMs = Number(e.metadata.get("retry-after-ms"));
      assert.ok(hintMs >= 10_000, `retry hint ${hintMs} ms: when the backlog will fit`);
      assert.equal(e.metadata.get("retry-after"), String(Math.ceil(hintMs / 1000)));
      assert.equal(s.gatewayCalls.length, calls, "refused before any session work");
      assert.equal(admission.active(), 1, "refused while the first session still runs");
      const refused = s.audited().filter((l) => l.error_code === "overloaded");
      assert.equal(refused.length, 1);
      assert.equal(refused[0].outcome, "rate-limited");
      assert.match(metrics.render(), /sign_service_rejections_total\{reason="overloaded"\} 1/);
      // A request whose deadline fits the backlog is admitted (and waits like the first).
      const fits = new AbortController();
      const third = failure(s.sign(newRoomId(), { timeoutMs: 50_000, signal: fits.signal }));
      while (admission.active() < 2) await new Promise((r) => setTimeout(r, 0));
      fits.abort();
      assert.equal((await third)?.code, Code.Canceled);
      first.abort();
      assert.equal((await admitted)?.code, Code.Canceled);
      assert.equal(admission.active(), 0);
    } finally {
      first.abort();
      await s.close();
    }
  });

  test("cancellation: a departed client's session stops, its running job cut short and nothing queued after it", async () => {
    const metrics = createServiceMetrics({});
    const { pool, events, next } = await watchedPool(1, undefined, metrics);
    const s = service({ pool, metrics });
    const room = newRoomId();
    const departed = new AbortController();
    try {
      const clientParty = s.party(room, departed.signal).catch((e) => e);
      const call = failure(s.sign(room, { signal: departed.signal }));
      // The service's presigning round 2 (its MtA proofs: the heaviest step) is running.
      await next(
        "the service's round 2",
        (e) => e.type === "started" && /round 2/.test(e.label),
        0,
      );
      const before = pool.stats();
      const mark = events.length;
      departed.abort(); // the client goes away
      assert.equal((await bounded(60_000, "the sign call", call))?.code, Code.Canceled);
      await clientParty;
      const stopped = await next("the cut job's stop", (e) => e.type === "stopped", mark);
      assert.ok(
        stopped.type === "stopped" && /round 2/.test(stopped.label),
        JSON.stringify(stopped),
      );
      const st = pool.stats();
      assert.equal(st.cancelledRunning, 1, "the running job was cancelled");
      assert.equal(st.completed, before.completed, "it did not complete");
      assert.equal(st.queued, 0);
      // No job of the departed session runs afterwards: the next job is the only work.
      const work = pool.stats().work;
      const completed = pool.stats().completed;
      await pool.run({ kind: "count", counter: new SharedArrayBuffer(8), slot: 0, n: 1 });
      assert.equal(pool.stats().completed, completed + 1);
      assert.equal(pool.stats().work, work, "no exponentiation for the departed client");
      assert.ok(events.every((e) => e.type !== "worker-stopped"), "no worker was restarted");
      const [started, end] = s.audited();
      assert.equal(started.outcome, "started");
      assert.equal(end.call_id, started.call_id);
      assert.equal(end.error_code, "aborted");
      assert.match(
        metrics.render(),
        /sign_service_sessions_total\{kind="sign",outcome="canceled"\} 1/,
      );
      assert.match(metrics.render(), /sign_service_jobs_total\{outcome="cancelled"\} 1/);
    } finally {
      departed.abort();
      await s.close();
    }
  });

  test("a session whose deadline passes ends DEADLINE_EXCEEDED (audited timeout), not cancelled", async () => {
    const metrics = createServiceMetrics({});
    const s = service({ metrics });
    try {
      // No client party comes: the session waits in its handshake until the call's deadline.
      const e = await failure(s.sign(newRoomId(), { timeoutMs: 1000 }));
      assert.equal(e?.code, Code.DeadlineExceeded, e?.message);
      const end = await bounded(
        30_000,
        "the end record",
        (async () => {
          while (!s.audited().some((l) => l.outcome !== "started")) {
            await new Promise((r) => setTimeout(r, 10));
          }
          return s.audited().find((l) => l.outcome !== "started")!;
        })(),
      );
      assert.equal(end.outcome, "aborted");
      assert.equal(end.error_code, "timeout");
      assert.match(metrics.render(), /sessions_total\{kind="sign",outcome="deadline_exceeded"\} 1/);
    } finally {
      await s.close();
    }
  });

  test("worker failure: a worker that crashes fails its session with a clear error and is replaced", async () => {
    const { pool, next } = await watchedPool(1, { crashOn: { protocol: "full-sign", round: 0 } });
    const s = service({ pool });
    const room = newRoomId();
    const ac = new AbortController();
    try {
      const clientParty = s.party(room, ac.signal).catch((e) => e);
      const e = await bounded(60_000, "the sign call", failure(s.sign(room)));
      ac.abort();
      await clientParty;
      assert.ok(e);
      assert.equal(e.code, Code.Internal, e.message);
      assert.match(
        e.message,
        /compute worker failed during the session \(the worker was replaced\)/,
      );
      const end = s.audited().at(-1)!;
      assert.equal(end.error_code, "worker-crashed");
      assert.equal(pool.stats().crashed, 1);
      // The next job gets a fresh worker.
      const ready = next("the replacement", (e) => e.type === "worker-ready");
      assert.equal(
        await pool.run({ kind: "count", counter: new SharedArrayBuffer(8), slot: 0, n: 2 }),
        2,
      );
      await ready;
      assert.equal(pool.stats().spawned, 2);
    } finally {
      ac.abort();
      await s.close();
    }
  });

  test("health is answered while every worker is busy with a session's step", async () => {
    const { pool, events, next } = await watchedPool(1);
    const s = service({ pool });
    const room = newRoomId();
    const ac = new AbortController();
    try {
      const clientParty = s.party(room, ac.signal).catch((e) => e);
      const call = failure(s.sign(room, { signal: ac.signal }));
      const busy = await next(
        "a busy worker",
        (e) => e.type === "started" && /round 2/.test(e.label),
        0,
      );
      assert.equal(pool.stats().busy, 1, "the only worker computes");
      const health = await s.client.health({});
      assert.equal(health.status, "serving");
      const list = await s.client.listAccounts({}, { headers: bearer });
      assert.equal(list.accounts.length, 1);
      // Both answers came while the step still ran: it has not settled yet.
      const label = busy.type === "started" ? busy.label : "";
      assert.ok(!events.some((e) => e.type === "settled" && e.label === label), "still running");
      assert.equal(pool.stats().busy, 1);
      ac.abort();
      await call;
      await clientParty;
    } finally {
      ac.abort();
      await s.close();
    }
  });
});
