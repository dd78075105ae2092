import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { toHexInt } from "../bytes.ts";
import { dealKeyShares, freshSid, recording } from "../../testing/fixtures/protocol_fixtures.ts";
import { signAndVerify } from "../../testing/presignatures.ts";
import { type AbortCode, InvalidKeyShare, ProtocolAbort } from "../errors.ts";
import { deriveShift } from "../hd.ts";
import {
  getRandomizerSource,
  inlineRandomizers,
  PaillierSecretKey,
  RandomizerRegistry,
  type RandomizerSource,
  setRandomizerSource,
} from "../paillier.ts";
import { Point, Q } from "../params.ts";
import { assertConsistent, MemoryPresignatureStore } from "../presignature_store.ts";
import { hashMessage, verifySignature } from "../signature.ts";
import { runProtocol } from "./driver.ts";
import { createMemoryNetwork } from "./memory_transport.ts";
import {
  generatePresignature,
  type Presignature,
  type PresignInput,
  presignProtocol,
  type PresignState,
  startPresign,
} from "./presign.ts";
import { signMessageWithPresignature } from "./sign.ts";
import { encodeValue } from "./state_codec.ts";
import type { Message } from "./types.ts";

const KEY = "account-presign";
const EPOCH = "e1".repeat(32);
const shares = dealKeyShares(2);
const x = (shares[0].x + shares[1].x) % Q;
const sid = freshSid();
const input = (i: number): PresignInput => ({
  share: shares[i],
  sid,
  keyId: KEY,
  epoch: EPOCH,
  hash: "sha256",
});

/** One honest 2-party presigning over the memory network, recorded for the replays below. */
const honest = (() => {
  const rec = recording(presignProtocol);
  const net = createMemoryNetwork(2);
  const run = Promise.all([0, 1].map((i) => runProtocol(rec.protocol, input(i), net[i])));
  return { log: rec.log, run };
})();

/** Party 0's recorded state and inbox before `round` (after the honest run). */
async function victim(round: number): Promise<{ state: PresignState; inbox: Message[] }> {
  await honest.run;
  const entry = honest.log.get(0)?.get(round);
  assert.ok(entry, `no recorded step for round ${round}`);
  return { state: entry.state, inbox: structuredClone(entry.inbox) };
}

/** The inbox with the payload of party `from`'s message rewritten by `edit`. */
function tamper(
  inbox: Message[],
  from: number,
  edit: (p: Record<string, unknown>) => void,
): Message[] {
  return inbox.map((m) => {
    if (m.from !== from) return m;
    const payload = structuredClone(m.payload) as Record<string, unknown>;
    edit(payload);
    return { ...m, payload };
  });
}

/** Changes the last hex digit of an integer field (keeps it canonical and in range). */
function flip(h: unknown): string {
  const s = h as string;
  return s.slice(0, -1) + (s.endsWith("0") ? "1" : "0");
}

function assertAbort(
  f: () => unknown,
  expected: { code: AbortCode; culprits: number[]; round?: number },
): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ProtocolAbort, `expected a ProtocolAbort, got ${e}`);
    assert.equal(e.code, expected.code, e.message);
    assert.deepEqual(e.culprits, expected.culprits, e.message);
    if (expected.round !== undefined) assert.equal(e.round, expected.round);
    return true;
  });
}

function replay(inbox: Message[], state: PresignState) {
  return () => presignProtocol.step(state, inbox, crypto.getRandomValues.bind(crypto));
}

test("presign for 2 parties over the memory network gives one R = k^-1 G and shares of k x", async () => {
  const [p0, p1] = await honest.run;
  assert.equal(p0.id, p1.id);
  assert.ok(p0.R.equals(p1.R));
  assert.ok(p0.Gamma.equals(p1.Gamma));
  assert.deepEqual(p0.view, p1.view);
  const k = (p0.k + p1.k) % Q;
  // R = delta^-1 Gamma = (k gamma)^-1 gamma G = k^-1 G, and chi_0 + chi_1 = k x.
  assert.ok(p0.R.multiply(k).equals(Point.BASE));
  assert.equal((p0.chi + p1.chi) % Q, (k * x) % Q);
  for (const p of [p0, p1]) {
    assertConsistent(p);
    assert.deepEqual(p.binding, {
      keyId: KEY,
      epoch: EPOCH,
      hdPath: [],
      shift: 0n,
      hash: "sha256",
    });
    assert.ok(p.publicKey.equals(shares[0].publicKey));
    // In affine form (Z = 1): the signing round reads x(R), y(R) and the key's encoding without
    // a field inversion.
    assert.equal(p.R.Z, 1n);
    assert.equal(p.publicKey.Z, 1n);
  }
});

test("presignatures of a real run sign a message once through the store and never twice", async () => {
  const pres = await honest.run;
  const stores = [new MemoryPresignatureStore(), new MemoryPresignatureStore()];
  await Promise.all(pres.map((p, i) => stores[i].put(p)));
  const message = new TextEncoder().encode("pay 1 BTC to Alice");
  const req = {
    presignatureId: pres[0].id,
    keyId: KEY,
    epoch: EPOCH,
    hdPath: [],
    hash: "sha256" as const,
  };
  const net = createMemoryNetwork(2);
  const sigs = await Promise.all(
    [0, 1].map((i) =>
      signMessageWithPresignature({ ...req, message }, net[i], { store: stores[i] })
    ),
  );
  assert.deepEqual(sigs[0], sigs[1]);
  const digest = hashMessage("sha256", message);
  assert.ok(verifySignature(shares[0].publicKey, digest, sigs[0].r, sigs[0].s, sigs[0].recoveryId));
  const sent: Message[] = [];
  const spy = { send: (m: Message) => (sent.push(m), Promise.resolve()), receive: net[0].receive };
  await assert.rejects(
    signMessageWithPresignature({ ...req, message }, spy, { store: stores[0] }),
    (e: unknown) => e instanceof ProtocolAbort && e.code === "presignature-used",
  );
  assert.equal(sent.length, 0, "nothing leaves before the presignature is refused");
});

test("presign aborts in the echo round when party 1 binds another key epoch", async () => {
  const s2 = freshSid();
  const net = createMemoryNetwork(2);
  const epochs = [EPOCH, "e2".repeat(32)];
  const runs = [0, 1].map((i) =>
    runProtocol(presignProtocol, { ...input(i), sid: s2, epoch: epochs[i] }, net[i])
  );
  const results = await Promise.allSettled(runs);
  for (const [i, r] of results.entries()) {
    assert.equal(r.status, "rejected");
    const e = (r as PromiseRejectedResult).reason;
    assert.ok(e instanceof ProtocolAbort, String(e));
    assert.equal(e.code, "invalid-value");
    assert.equal(e.round, 2);
    assert.deepEqual(e.culprits, [1 - i]);
  }
});

test("presign round 1 rejects a tampered pi-enc proof and blames party 1", async () => {
  const { state, inbox } = await victim(1);
  const bad = tamper(inbox, 1, (p) => {
    const psi0 = p.psi0 as Record<string, unknown>;
    psi0.A = flip(psi0.A);
  });
  assertAbort(replay(bad, state), { code: "proof-failed", culprits: [1], round: 1 });
});

test("presign round 1 rejects malformed and degenerate K, G and blames party 1 quickly", async () => {
  const { state, inbox } = await victim(1);
  const N1 = shares[1].aux.parties[1].N;
  const edits: [string, (p: Record<string, unknown>) => void][] = [
    ["K = 0", (p) => (p.K = "00")],
    ["K = 1 (not a proper ciphertext range: still a unit, proof fails)", (p) => (p.K = "01")],
    ["K = N1 (not a unit)", (p) => (p.K = toHexInt(N1))],
    ["K = 2 N1 (not a unit)", (p) => (p.K = toHexInt(2n * N1))],
    ["K = N1^2 (out of range)", (p) => (p.K = toHexInt(N1 * N1))],
    ["K with a leading zero byte", (p) => (p.K = "00" + (p.K as string))],
    ["G huge (1 MB)", (p) => (p.G = "f".repeat(2_000_000))],
    ["G negative", (p) => (p.G = "-01")],
    ["G not hex", (p) => (p.G = "zz")],
    ["missing psi0", (p) => delete p.psi0],
    ["extra field", (p) => (p.extra = "00")],
    ["psi0 with a missing field", (p) => delete (p.psi0 as Record<string, unknown>).z1],
    ["payload null", (p) => Object.keys(p).forEach((k) => delete p[k])],
  ];
  for (const [what, edit] of edits) {
    const t0 = performance.now();
    assert.throws(replay(tamper(inbox, 1, edit), state), (e: unknown) => {
      assert.ok(e instanceof ProtocolAbort, `${what}: ${e}`);
      assert.deepEqual(e.culprits, [1], `${what}: ${e.message}`);
      return true;
    });
    assert.ok(performance.now() - t0 < 20_000, `${what}: refused without unbounded work`);
  }
});

test("presign round 2 (echo) blames party 1 when its echo of its own K, G differs", async () => {
  const { state, inbox } = await victim(2);
  const bad = tamper(inbox, 1, (p) => {
    (p.echo as string[])[1] = "00".repeat(32);
  });
  assertAbort(replay(bad, state), { code: "inconsistent-broadcast", culprits: [1], round: 2 });
  const misreport = tamper(inbox, 1, (p) => {
    (p.echo as string[])[0] = "11".repeat(32);
  });
  assertAbort(replay(misreport, state), { code: "inconsistent-broadcast", culprits: [1] });
});

test("presign round 2 blames party 1 when it signs with other inputs (key, path, hash, aux)", async () => {
  const { state, inbox } = await victim(2);
  const bad = tamper(inbox, 1, (p) => {
    (p.echo as string[])[2] = "22".repeat(32);
  });
  assertAbort(replay(bad, state), { code: "invalid-value", culprits: [1], round: 2 });
});

for (
  const [field, proof] of [["psi", "pi-aff-g"], ["psiHat", "pi-aff-g"], ["psiPrime", "pi-log*"]]
) {
  test(`presign round 3 rejects a tampered ${proof} (${field}) and blames party 1`, async () => {
    const { state, inbox } = await victim(3);
    const bad = tamper(inbox, 1, (p) => {
      const psi = p[field] as Record<string, unknown>;
      psi.A = flip(psi.A);
    });
    assertAbort(replay(bad, state), { code: "proof-failed", culprits: [1], round: 3 });
  });
}

test("presign round 3 rejects an MtA ciphertext D that does not match its proof", async () => {
  const { state, inbox } = await victim(3);
  const swapped = tamper(inbox, 1, (p) => {
    [p.D, p.DHat] = [p.DHat, p.D];
  });
  assertAbort(replay(swapped, state), { code: "proof-failed", culprits: [1] });
  const identity = tamper(inbox, 1, (p) => (p.Gamma = "00"));
  assertAbort(replay(identity, state), { code: "malformed-message", culprits: [1] });
});

test("presign round 4 rejects a tampered pi-log* (psi'') and blames party 1", async () => {
  const { state, inbox } = await victim(4);
  const bad = tamper(inbox, 1, (p) => {
    const psi = p.psiPrimePrime as Record<string, unknown>;
    psi.A = flip(psi.A);
  });
  assertAbort(replay(bad, state), { code: "proof-failed", culprits: [1], round: 4 });
  const wrongDelta = tamper(inbox, 1, (p) => (p.Delta = Point.BASE.toHex(true)));
  assertAbort(replay(wrongDelta, state), { code: "proof-failed", culprits: [1], round: 4 });
});

test("presign round 4 blames party 1 for a wrong delta_1 (delta G differs from sum Delta)", async () => {
  const { state, inbox } = await victim(4);
  const bad = tamper(inbox, 1, (p) => {
    p.delta = ((BigInt("0x" + p.delta) + 1n) % Q).toString(16).padStart(64, "0");
  });
  assertAbort(replay(bad, state), { code: "invalid-value", culprits: [1], round: 4 });
});

test("presign round 4 blames party 1 for a wrong S_1 (sum S differs from delta X)", async () => {
  const { state, inbox } = await victim(4);
  const bad = tamper(inbox, 1, (p) => {
    p.S = Point.fromHex(p.S as string).add(Point.BASE).toHex(true);
  });
  assertAbort(replay(bad, state), { code: "invalid-value", culprits: [1], round: 4 });
});

test("presign round 4 blames party 1 when its echo shows another Gamma_1 (equivocation)", async () => {
  const { state, inbox } = await victim(4);
  const bad = tamper(inbox, 1, (p) => {
    (p.echo as string[])[1] = "33".repeat(32);
  });
  assertAbort(replay(bad, state), { code: "inconsistent-broadcast", culprits: [1], round: 4 });
});

test("presign rejects a round-1 message replayed from another session and blames the sender", async () => {
  const { inbox } = await victim(1);
  const other = startPresign(
    { ...input(0), sid: freshSid() },
    crypto.getRandomValues.bind(crypto),
    "presign",
  );
  const otherSid = (other.state.sid as Uint8Array).reduce(
    (s, b) => s + b.toString(16).padStart(2, "0"),
    "",
  );
  // As recorded: the envelope names the old session.
  assertAbort(replay(inbox, other.state), { code: "unexpected-message", culprits: [1] });
  // Re-addressed to the new session: the proof is bound to the old one and fails.
  const readdressed = inbox.map((m) => ({ ...m, sid: otherSid }));
  assertAbort(replay(readdressed, other.state), { code: "proof-failed", culprits: [1] });
});

test("presign rejects a reflection of this party's own message", async () => {
  const { state, inbox } = await victim(1);
  await honest.run;
  // Party 0's own round-1 message (recorded as party 1's inbox) sent back to party 0.
  const own = honest.log.get(1)!.get(1)!.inbox.filter((m) => m.from === 0);
  assert.equal(own.length, 1);
  assertAbort(replay([...inbox, ...own], state), { code: "unexpected-message", culprits: [] });
  // Party 1 passes party 0's payload off as its own: blamed.
  const passedOff = inbox.map((m) => ({ ...m, payload: structuredClone(own[0].payload) }));
  assert.throws(replay(passedOff, state), (e: unknown) => {
    assert.ok(e instanceof ProtocolAbort);
    assert.deepEqual(e.culprits, [1]);
    return true;
  });
});

test("presign blames equivocation: two different round-1 messages from party 1", async () => {
  const { state, inbox } = await victim(1);
  const second = tamper(inbox, 1, (p) => (p.K = flip(p.K)));
  assertAbort(replay([...inbox, ...second], state), { code: "equivocation", culprits: [1] });
});

test("presign over a hostile network: party 0 aborts naming party 1 when its proof is altered", async () => {
  const net = createMemoryNetwork(2, (m, to) => {
    if (m.round === 1 && m.from === 1 && to === 0) {
      const p = m.payload as Record<string, Record<string, unknown>>;
      p.psi0.z1 = flip(p.psi0.z1);
    }
    return [m];
  });
  const cancel = new AbortController();
  const s2 = freshSid();
  const runs = [0, 1].map((i) =>
    runProtocol(presignProtocol, { ...input(i), sid: s2 }, net[i], { signal: cancel.signal })
  );
  await assert.rejects(runs[0], (e: unknown) => {
    assert.ok(e instanceof ProtocolAbort);
    assert.equal(e.code, "proof-failed");
    assert.deepEqual(e.culprits, [1]);
    assert.equal(e.round, 1);
    return true;
  });
  cancel.abort();
  await assert.rejects(runs[1]);
});

test("presign refuses bad local inputs before sending anything", () => {
  const rng = crypto.getRandomValues.bind(crypto);
  const otherShift = deriveShift(shares[0].publicKey, shares[0].chainCode, [2]).shift;
  const bad: [string, Partial<PresignInput>, unknown][] = [
    ["short sid", { sid: new Uint8Array(8) }, RangeError],
    ["hardened index", { hdPath: [0x80000000] }, RangeError],
    ["negative index", { hdPath: [-1] }, RangeError],
    ["shift without path", { shift: 5n }, RangeError],
    ["shift = q", { hdPath: [1], shift: Q }, RangeError],
    ["shift of another path", { hdPath: [1], shift: otherShift }, RangeError],
    ["unknown hash", { hash: "md5" as never }, TypeError],
    ["empty key id", { keyId: "" }, TypeError],
    ["no epoch", { epoch: undefined }, TypeError],
    ["null epoch with a hash", { epoch: null as never }, TypeError],
    ["short epoch", { epoch: "e1" }, TypeError],
    ["uppercase epoch", { epoch: "E1".repeat(32) }, TypeError],
    ["x of another party", { share: { ...shares[0], x: shares[1].x } }, InvalidKeyShare],
    ["aux of another party", { share: { ...shares[0], aux: shares[1].aux } }, InvalidKeyShare],
  ];
  for (const [what, patch, cls] of bad) {
    assert.throws(
      () => startPresign({ ...input(0), ...patch }, rng, "presign"),
      cls as never,
      what,
    );
  }
});

test("generatePresignature refuses a key locked for signing before sending anything", async () => {
  const store = new MemoryPresignatureStore();
  await store.lockKey({
    keyId: KEY,
    protocol: "sign",
    round: 5,
    culprits: [1],
    sid: "00".repeat(16),
    reason: "bad partial signature",
    at: 0,
  });
  const sent: Message[] = [];
  const spy = {
    send: (m: Message) => (sent.push(m), Promise.resolve()),
    receive: () => Promise.reject(new Error("nothing to receive")),
  };
  await assert.rejects(
    generatePresignature(input(0), spy, { store }),
    (e: unknown) => e instanceof ProtocolAbort && e.code === "key-locked",
  );
  assert.equal(sent.length, 0);
});

// ---------------------------------------------------------------------------------------------
// Precomputed Paillier randomizers (core/paillier.ts RandomizerRegistry).

/** One presigning of both parties in this process (fresh session), under the thread's source. */
function presignBoth(): Promise<Presignature[]> {
  const s = freshSid();
  const net = createMemoryNetwork(2);
  return Promise.all(
    [0, 1].map((i) => runProtocol(presignProtocol, { ...input(i), sid: s }, net[i])),
  );
}

/** Signs `text` with the presignatures through memory stores; @noble/curves checks it. */
async function signsWith(pres: readonly Presignature[], text: string): Promise<void> {
  const message = new TextEncoder().encode(text);
  await signAndVerify(pres, { keyId: KEY, epoch: EPOCH }, message, shares[0].publicKey);
}

test("presigning with a randomizer pool and without one: both presignatures sign, noble verifies", async () => {
  await honest.run; // made without a source: nothing below may change its draws
  assert.equal(getRandomizerSource(), inlineRandomizers);
  await signsWith(await presignBoth(), "no pool");
  const registry = new RandomizerRegistry();
  const prev = setRandomizerSource(registry);
  try {
    await presignBoth(); // the moduli come into use
    registry.refill(1000);
    const pooled = await presignBoth();
    assert.equal(registry.stats().fromPool, 2 * 13, "the second run took only ready entries");
    await signsWith(pooled, "from the pool");
  } finally {
    setRandomizerSource(prev);
  }
});

test("presigning takes each randomizer once: 9 under a party's own N, 4 under its peer's, never one twice (counted)", async () => {
  await honest.run;
  const registry = new RandomizerRegistry();
  const handed: { N: bigint; own: boolean; rho: bigint; rhoN: bigint }[] = [];
  const counting: RandomizerSource = {
    take(key, rng) {
      const r = registry.take(key, rng);
      handed.push({ N: key.N, own: key instanceof PaillierSecretKey, rho: r[0], rhoN: r[1] });
      return r;
    },
  };
  const rec = recording(presignProtocol);
  const prev = setRandomizerSource(counting);
  try {
    for (let run = 0; run < 2; run++) {
      const s = freshSid();
      const net = createMemoryNetwork(2);
      const pres = await Promise.all(
        [0, 1].map((i) => runProtocol(rec.protocol, { ...input(i), sid: s }, net[i])),
      );
      await signsWith(pres, `run ${run}`);
      registry.refill(1000);
    }
  } finally {
    setRandomizerSource(prev);
  }
  const [N0, N1] = shares.map((sh) => sh.aux!.parties[sh.i].N);
  const count = (N: bigint, own: boolean) =>
    handed.filter((h) => h.N === N && h.own === own).length;
  // Per run and party: K_i, G_i, and per peer F, F-hat, A of Pi-enc, B_y of psi and psi-hat, A
  // of psi' and psi'' under its own N (2 + 7); D, D-hat and A of psi, psi-hat under the peer's.
  assert.equal(count(N0, true), 2 * 9);
  assert.equal(count(N1, true), 2 * 9);
  assert.equal(count(N0, false), 2 * 4);
  assert.equal(count(N1, false), 2 * 4);
  assert.equal(new Set(handed.map((h) => h.rho)).size, handed.length, "no rho twice");
  assert.equal(new Set(handed.map((h) => h.rhoN)).size, handed.length, "no rho^N twice");
  const stats = registry.stats();
  assert.equal(stats.fromPool + stats.inline, handed.length);
  assert.equal(stats.fromPool, 2 * 13, "the second run from the pools");
  // The pools live in the registry, never in a state: every state moves through the codec of
  // the compute workers, which refuses the registry itself.
  for (const perParty of rec.log.values()) {
    for (const { state } of perParty.values()) encodeValue(state);
  }
  assert.throws(() => encodeValue({ registry }), TypeError);
});
