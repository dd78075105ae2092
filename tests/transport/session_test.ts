/**
 * The secure session over the real gateway handler, in process: real protocols of `core/` run
 * to completion through it; identity pinning, learning and context binding; large envelopes;
 * cancellation and close.
 * @module
 */
import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { toHex } from "../../core/bytes.ts";
import { TransportError } from "../../core/errors.ts";
import { auxInfo } from "../../core/protocols/aux_info.ts";
import { runProtocol } from "../../core/protocols/driver.ts";
import { keygen } from "../../core/protocols/keygen.ts";
import type { Message } from "../../core/protocols/types.ts";
import { createRoomTokenAuthority } from "../../gateway/tokens.ts";
import { fixturePaillier } from "../../testing/fixtures/keys.ts";
import {
  createGatewayClient,
  generateIdentity,
  openSecureSession,
  type SecureSession,
} from "../../transport/mod.ts";
import { codeOf, CONTEXT, IDS, keygenPair, PINS, sessionOptions, TestGateway } from "./_helpers.ts";
import { newRoomId } from "../../session/inputs.ts";

const hex = toHex;

async function openAll(
  gw: TestGateway,
  room: string,
  n: number,
  extra: Record<string, unknown> = {},
): Promise<SecureSession[]> {
  const ids = n === 2 ? IDS : Array.from({ length: n }, () => generateIdentity());
  const peers = ids.map((id) => id.publicKey);
  return await Promise.all(
    ids.map((id, i) =>
      openSecureSession({ ...sessionOptions(gw, room, i), n, identity: id, peers, ...extra })
    ),
  );
}

test("two parties run keygen over the real gateway and get the same key and session id", async () => {
  const gw = new TestGateway();
  const sessions: SecureSession[] = [];
  const [a, b] = await keygenPair(gw, newRoomId(), { onOpen: (s, i) => (sessions[i] = s) });
  assert.equal(a.status, "fulfilled");
  assert.equal(b.status, "fulfilled");
  if (a.status !== "fulfilled" || b.status !== "fulfilled") return;
  assert.ok(a.value.publicKey.equals(b.value.publicKey));
  assert.equal(hex(sessions[0].sid), hex(sessions[1].sid));
  assert.equal(sessions[0].sid.length, 32);
  assert.deepEqual(sessions[0].peerIdentities.map(hex), PINS.map(hex));
  assert.equal(hex(sessions[0].protocolSid("keygen")), hex(sessions[1].protocolSid("keygen")));
  assert.notEqual(hex(sessions[0].protocolSid("keygen")), hex(sessions[0].protocolSid("aux-info")));
  // The gateway stored nothing but hellos and ciphertext: no envelope field in clear.
  for (const { line } of gw.stored) assert.doesNotMatch(line, /"payload"|"protocol"|keygen/);
  await gw.close();
});

test("two sessions of the same parties in two rooms get different session ids", async () => {
  const gw = new TestGateway();
  const sids: string[] = [];
  for (const room of [newRoomId(), newRoomId()]) {
    const [s0, s1] = await openAll(gw, room, 2);
    sids.push(hex(s0.sid));
    assert.equal(hex(s0.sid), hex(s1.sid));
    await Promise.all([s0.close(), s1.close()]);
  }
  assert.notEqual(sids[0], sids[1]);
  await gw.close();
});

test("three parties run keygen over the gateway (general n)", async () => {
  const gw = new TestGateway();
  const sessions = await openAll(gw, newRoomId(), 3);
  const shares = await Promise.all(
    sessions.map((s, i) =>
      runProtocol(keygen, { sid: s.protocolSid("keygen"), i, n: 3 }, s, { roundTimeoutMs: 5000 })
    ),
  );
  assert.ok(shares.every((x) => x.publicKey.equals(shares[0].publicKey)));
  await Promise.all(sessions.map((s) => s.close()));
  await gw.close();
});

test("keygen then aux-info in one session (real ~200 KB aux-info frames) completes", async () => {
  const gw = new TestGateway();
  const sessions = await openAll(gw, newRoomId(), 2);
  const outputs = await Promise.all(sessions.map(async (s, i) => {
    const core = await runProtocol(keygen, { sid: s.protocolSid("keygen"), i, n: 2 }, s);
    const key = fixturePaillier(i);
    const aux = await runProtocol(
      auxInfo,
      { sid: s.protocolSid("aux-info"), i, n: 2, primes: { p: key.p, q: key.q } },
      s,
    );
    return { core, aux };
  }));
  assert.ok(outputs[0].core.publicKey.equals(outputs[1].core.publicKey));
  assert.equal(outputs[0].aux.parties[1].N, outputs[1].aux.parties[1].N);
  const largest = Math.max(...gw.stored.map((s) => s.line.length));
  assert.ok(largest > 200_000, `expected aux-info frames over 200 KB, largest ${largest}`);
  await Promise.all(sessions.map((s) => s.close()));
  await gw.close();
});

const bigPayload = (bytes: number) => "ab".repeat(bytes / 2);

test("a 600 KB envelope crosses a gateway with the default 1 MiB body limit", async () => {
  const gw = new TestGateway();
  const [s0, s1] = await openAll(gw, newRoomId(), 2);
  const msg: Message = {
    sid: "00",
    protocol: "aux-info",
    round: 3,
    from: 0,
    to: 1,
    payload: bigPayload(600_000),
  };
  await s0.send(msg);
  assert.deepEqual(await s1.receive(AbortSignal.timeout(5000)), msg);
  await Promise.all([s0.close(), s1.close()]);
  await gw.close();
});

test("a 600 KB broadcast to two peers is split into bodies under the limit", async () => {
  const gw = new TestGateway();
  const sessions = await openAll(gw, newRoomId(), 3);
  const posted: number[] = [];
  gw.onPost = (lines) => {
    posted.push(lines.join("\n").length);
    return lines;
  };
  const msg: Message = {
    sid: "00",
    protocol: "aux-info",
    round: 2,
    from: 0,
    to: null,
    payload: bigPayload(600_000),
  };
  await sessions[0].send(msg);
  for (const s of sessions.slice(1)) {
    assert.deepEqual(await s.receive(AbortSignal.timeout(5000)), msg);
  }
  assert.equal(posted.length, 2);
  assert.ok(posted.every((x) => x <= 1024 * 1024));
  await Promise.all(sessions.map((s) => s.close()));
  await gw.close();
});

test("an envelope larger than the gateway's body limit is fragmented and reassembled", async () => {
  const limit = 64 * 1024;
  const gw = new TestGateway({ limits: { maxBodyBytes: limit } });
  const [s0, s1] = await openAll(gw, newRoomId(), 2, { maxBodyBytes: limit });
  const msg: Message = {
    sid: "00",
    protocol: "sign",
    round: 1,
    from: 1,
    to: null,
    payload: bigPayload(600_000),
  };
  await s1.send(msg);
  assert.deepEqual(await s0.receive(AbortSignal.timeout(5000)), msg);
  const data = gw.stored.filter((s) => s.line.includes('"type":"data"'));
  assert.ok(data.length > 10, `expected many fragments, got ${data.length}`);
  await Promise.all([s0.close(), s1.close()]);
  await gw.close();
});

test("an envelope over maxMessageBytes is refused on send with code limit", async () => {
  const gw = new TestGateway();
  const [s0, s1] = await openAll(gw, newRoomId(), 2, { maxMessageBytes: 10_000 });
  const msg: Message = {
    sid: "00",
    protocol: "sign",
    round: 1,
    from: 0,
    to: 1,
    payload: bigPayload(20_000),
  };
  await assert.rejects(s0.send(msg), (e) => e instanceof TransportError && e.code === "limit");
  await Promise.all([s0.close(), s1.close()]);
  await gw.close();
});

test("a wrong pinned key fails the handshake with identity-mismatch", async () => {
  const gw = new TestGateway();
  const wrong = generateIdentity().publicKey;
  const [a, b] = await keygenPair(gw, newRoomId(), {
    victim: 0,
    extra: (i) => (i === 0 ? { peers: [PINS[0], wrong] } : { handshakeTimeoutMs: 300 }),
  });
  assert.equal(codeOf(a), "identity-mismatch");
  assert.ok(["timeout", "aborted"].includes(codeOf(b)));
  await gw.close();
});

test("a null pin is learned from the hello and reported in peerIdentities", async () => {
  const gw = new TestGateway();
  const sessions: SecureSession[] = [];
  const [a, b] = await keygenPair(gw, newRoomId(), {
    extra: (i) => (i === 0 ? { peers: [PINS[0], null] } : {}),
    onOpen: (s, i) => (sessions[i] = s),
  });
  assert.equal(a.status, "fulfilled");
  assert.equal(b.status, "fulfilled");
  assert.equal(hex(sessions[0].peerIdentities[1]), hex(PINS[1]));
  await gw.close();
});

test("different contexts fail both parties with context-mismatch before any protocol message", async () => {
  const gw = new TestGateway();
  const [a, b] = await keygenPair(gw, newRoomId(), {
    extra: (i) => (i === 1 ? { context: new TextEncoder().encode("another digest") } : {}),
  });
  assert.equal(codeOf(a), "context-mismatch");
  assert.equal(codeOf(b), "context-mismatch");
  // The hellos do not carry the context: the gateway cannot test guesses of it.
  for (const { line } of gw.stored) assert.ok(!line.includes(hex(CONTEXT)));
  await gw.close();
});

test("a peer that never comes fails the handshake with timeout, naming the missing hello", async () => {
  const gw = new TestGateway();
  await assert.rejects(
    openSecureSession(sessionOptions(gw, newRoomId(), 0, { handshakeTimeoutMs: 100 })),
    (e) =>
      e instanceof TransportError && e.code === "timeout" &&
      /no hello from party 1/.test(e.message),
  );
  await gw.close();
});

test("a cancelled signal fails the handshake with aborted", async () => {
  const gw = new TestGateway();
  const ctl = new AbortController();
  const p = openSecureSession(sessionOptions(gw, newRoomId(), 0, { signal: ctl.signal }));
  setTimeout(() => ctl.abort(), 20);
  await assert.rejects(p, (e) => e instanceof TransportError && e.code === "aborted");
  await gw.close();
});

test("close rejects a pending receive and later sends with closed", async () => {
  const gw = new TestGateway();
  const [s0, s1] = await openAll(gw, newRoomId(), 2);
  const pending = s0.receive(new AbortController().signal);
  await s0.close();
  await assert.rejects(pending, (e) => e instanceof TransportError && e.code === "closed");
  const msg: Message = { sid: "00", protocol: "sign", round: 1, from: 0, to: 1, payload: 1 };
  await assert.rejects(s0.send(msg), (e) => e instanceof TransportError && e.code === "closed");
  await s1.close();
  await gw.close();
});

test("a receive whose signal aborts rejects with the signal's reason (the driver maps it)", async () => {
  const gw = new TestGateway();
  const [s0, s1] = await openAll(gw, newRoomId(), 2);
  await assert.rejects(
    s0.receive(AbortSignal.timeout(20)),
    (e) => (e as Error).name === "TimeoutError",
  );
  // The session is still usable afterwards.
  const msg: Message = { sid: "00", protocol: "sign", round: 1, from: 1, to: 0, payload: 2 };
  await s1.send(msg);
  assert.deepEqual(await s0.receive(AbortSignal.timeout(5000)), msg);
  await Promise.all([s0.close(), s1.close()]);
  await gw.close();
});

test("a gateway with access control: room tokens from a function are sent", async () => {
  const secret = "0123456789abcdef0123456789abcdef";
  const gw = new TestGateway({ access: { enabled: true, tokenSecret: secret } });
  const authority = await createRoomTokenAuthority({ secret });
  const room = newRoomId();
  const client = (party: string, bad = false) =>
    createGatewayClient({
      url: "http://gw",
      fetch: gw.fetch,
      token: async (r) => bad ? "v1.x.1.AAAA" : (await authority.issue(r, party, 600)).token,
    });
  const sessions = await Promise.all(
    [0, 1].map((i) =>
      openSecureSession({ ...sessionOptions(gw, room, i), gateway: client(String(i)) })
    ),
  );
  await Promise.all(sessions.map((s) => s.close()));
  await assert.rejects(
    openSecureSession({ ...sessionOptions(gw, newRoomId(), 0), gateway: client("0", true) }),
    (e) => e instanceof TransportError && e.code === "rejected" && /403/.test(e.message),
  );
  await gw.close();
});

test("openSecureSession rejects bad options before any request", async () => {
  const gw = new TestGateway();
  const room = newRoomId();
  const other = generateIdentity();
  const cases: [string, Record<string, unknown>, ErrorConstructor][] = [
    ["uppercase room", { room: room.toUpperCase() }, RangeError],
    ["short room", { room: "abcd" }, RangeError],
    ["n = 1", { n: 1, peers: [PINS[0]] }, RangeError],
    ["i = n", { i: 2 }, RangeError],
    ["peers of the wrong length", { peers: [PINS[0]] }, RangeError],
    ["own pin is another key", { peers: [other.publicKey, PINS[1]] }, RangeError],
    ["own pin null", { peers: [null, PINS[1]] }, RangeError],
    ["the same key pinned twice", { peers: [PINS[0], PINS[0]] }, RangeError],
    ["a pin of 31 bytes", { peers: [PINS[0], new Uint8Array(31)] }, TypeError],
    [
      "identity keys that do not match",
      { identity: { ...IDS[0], publicKey: other.publicKey } },
      RangeError,
    ],
    ["context as a string", { context: "ctx" }, TypeError],
    ["no gateway", { gateway: {} }, TypeError],
    ["tiny body limit", { maxBodyBytes: 100 }, RangeError],
  ];
  for (const [what, patch, type] of cases) {
    await assert.rejects(
      openSecureSession({ ...sessionOptions(gw, room, 0), ...patch } as never),
      type,
      what,
    );
  }
  assert.equal(gw.resumes.length, 0, "no subscribe was made");
  await gw.close();
});
