/**
 * A hostile gateway: a fetch handler in front of the real one that alters, drops, reorders,
 * replays, injects and reflects frames, cuts streams and goes away. Every attack fails the run
 * with the TransportError code that names it and no output; benign faults (duplicates, a cut
 * stream) are absorbed and the protocol completes.
 * @module
 */
import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import { base64 } from "@scure/base";
import { generateIdentity } from "../../transport/mod.ts";
import {
  codeOf,
  deferred,
  errorOf,
  flipByte,
  frameOf,
  isData,
  keygenPair,
  lineOf,
  PINS,
  TestGateway,
  type Wire,
} from "./_helpers.ts";
import { newRoomId } from "../../session/inputs.ts";
import { toHex } from "../../core/bytes.ts";

// Frame numbering of a two-party keygen: seq 0 is the key confirmation, seq 1..3 are the
// broadcasts of rounds 1..3 (one copy per peer, so one frame each way).

function assertBothComplete(
  r: PromiseSettledResult<{ publicKey: { equals(o: unknown): boolean } }>[],
) {
  for (const x of r) {
    if (x.status === "rejected") throw x.reason;
  }
  const [a, b] = r as PromiseFulfilledResult<{ publicKey: { equals(o: unknown): boolean } }>[];
  assert.ok(a.value.publicKey.equals(b.value.publicKey));
}

/** Asserts the victim's code and that the other party produced no output either. */
function assertFails(r: PromiseSettledResult<unknown>[], victim: number, code: string): void {
  assert.equal(codeOf(r[victim]), code, errorOf(r[victim]).message);
  assert.equal(r[1 - victim].status, "rejected", "the other party must not output either");
}

const randomCt = (bytes: number) => base64.encode(crypto.getRandomValues(new Uint8Array(bytes)));

/** A keygen run in which `edit` sees every frame party 1 posts. */
async function attackParty1(
  edit: (line: string, room: string) => string[] | Promise<string[]>,
  victim = 0,
  gw = new TestGateway(),
  room = newRoomId(),
) {
  gw.onPost = async (lines, r) => {
    const out: string[] = [];
    for (const l of lines) out.push(...(frameOf(l).from === 1 ? await edit(l, r) : [l]));
    return out;
  };
  const r = await keygenPair(gw, room, { victim });
  await gw.close();
  return r;
}

test("an altered ciphertext byte fails the receiver with tampered", async () => {
  const r = await attackParty1((l) => [isData(l, 1, 1) ? flipByte(l) : l]);
  assertFails(r, 0, "tampered");
  assert.match(errorOf(r[0]).message, /party 1, seq 1/);
});

test("the sender sees its own altered frame come back and fails with injected", async () => {
  const r = await attackParty1((l) => [isData(l, 1, 1) ? flipByte(l) : l], 1);
  assertFails(r, 1, "injected");
});

test("an altered header (seq / last / to) fails with tampered (the AAD binds it)", async () => {
  const r = await attackParty1((
    l,
  ) => [isData(l, 1, 1) ? lineOf({ ...frameOf(l), last: false }) : l]);
  assertFails(r, 0, "tampered");
});

test("a dropped frame fails the receiver with out-of-order at the next frame", async () => {
  const r = await attackParty1((l) => (isData(l, 1, 1) ? [] : [l]));
  assertFails(r, 0, "out-of-order");
  assert.match(errorOf(r[0]).message, /party 1, seq 2: expected seq 1/);
});

test("two reordered frames fail the receiver with out-of-order", async () => {
  let held = "";
  const r = await attackParty1((l) => {
    if (isData(l, 1, 1)) {
      held = l;
      return [];
    }
    return isData(l, 1, 2) ? [l, held] : [l];
  });
  assertFails(r, 0, "out-of-order");
});

test("an exact copy of an old frame (a retried post) is dropped and the run completes", async () => {
  let first = "";
  const r = await attackParty1((l) => {
    if (isData(l, 1, 1)) first = l;
    return isData(l, 1, 2) ? [l, first, l] : [l];
  });
  assertBothComplete(r);
});

test("every post stored twice (retries) still completes", async () => {
  const r = await attackParty1((l) => [l, l]);
  assertBothComplete(r);
});

test("a different frame under an already used seq fails with replayed", async () => {
  const r = await attackParty1((
    l,
  ) => (isData(l, 1, 2) ? [l, lineOf({ ...frameOf(l), seq: 1 })] : [l]));
  assertFails(r, 0, "replayed");
  assert.match(errorOf(r[0]).message, /party 1, seq 1/);
});

/** Records the frames of one complete keygen session of the same identities. */
async function recordSession(): Promise<{ room: string; lines: string[] }> {
  const gw = new TestGateway();
  const room = newRoomId();
  assertBothComplete(await keygenPair(gw, room));
  await gw.close();
  return { room, lines: gw.stored.map((s) => s.line) };
}

test("a frame recorded in another session fails with replayed (session tag)", async () => {
  const old = await recordSession();
  const oldFrame = old.lines.find((l) => isData(l, 1, 1))!;
  const r = await attackParty1((l) => (isData(l, 1, 1) ? [oldFrame, l] : [l]));
  assertFails(r, 0, "replayed");
  assert.match(errorOf(r[0]).message, /another session/);
});

test("a frame of another session relabelled with this session's tag fails with tampered", async () => {
  const old = await recordSession();
  const oldFrame = frameOf(old.lines.find((l) => isData(l, 1, 1))!);
  const r = await attackParty1((l) => {
    if (!isData(l, 1, 1)) return [l];
    return [lineOf({ ...oldFrame, tag: frameOf(l).tag }), l];
  });
  assertFails(r, 0, "tampered");
});

test("a hello recorded in another session (same identities) fails with replayed", async () => {
  const old = await recordSession();
  const oldHello = old.lines.find((l) => frameOf(l).type === "hello" && frameOf(l).from === 1)!;
  const gw = new TestGateway();
  const room = newRoomId();
  await gw.append(room, oldHello);
  const r = await keygenPair(gw, room, { victim: 0 });
  await gw.close();
  assertFails(r, 0, "replayed");
  assert.match(errorOf(r[0]).message, /hello of party 1: signed for another room/);
});

/** A hello for `room` from party `from`, signed by `secretKey`, claiming `identity`. */
function forgedHello(room: string, from: number, secretKey: Uint8Array, identity: Uint8Array) {
  const f: Wire = {
    v: 1,
    type: "hello",
    room,
    from,
    n: 2,
    nonce: toHex(crypto.getRandomValues(new Uint8Array(32))),
    eph: toHex(crypto.getRandomValues(new Uint8Array(32))),
    id: toHex(identity),
  };
  const enc = new TextEncoder();
  const lp = (
    b: Uint8Array,
  ) => [...new Uint8Array(new Uint32Array([b.length]).buffer).reverse(), ...b];
  const u = (x: number, w: number) => [...Array(w)].map((_, k) => (x >> (8 * (w - 1 - k))) & 0xff);
  const fromHex = (h: string) => Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
  const signed = Uint8Array.from([
    ...lp(enc.encode("wallet-mpc/transport/v1/hello")),
    ...lp(Uint8Array.from(u(1, 1))),
    ...lp(enc.encode(room)),
    ...lp(Uint8Array.from(u(from, 2))),
    ...lp(Uint8Array.from(u(2, 2))),
    ...lp(fromHex(f.nonce as string)),
    ...lp(fromHex(f.eph as string)),
    ...lp(identity),
  ]);
  f.sig = toHex(ed25519.sign(signed, secretKey));
  return lineOf(f);
}

test("a forged hello signed by another key fails the pinning party with identity-mismatch", async () => {
  const gw = new TestGateway();
  const room = newRoomId();
  const mallory = generateIdentity();
  await gw.append(room, forgedHello(room, 1, mallory.secretKey, mallory.publicKey));
  const r = await keygenPair(gw, room, { victim: 0 });
  await gw.close();
  assertFails(r, 0, "identity-mismatch");
});

test("a forged hello with the pinned key and a bad signature fails with tampered", async () => {
  const gw = new TestGateway();
  const room = newRoomId();
  const mallory = generateIdentity();
  await gw.append(room, forgedHello(room, 1, mallory.secretKey, PINS[1]));
  const r = await keygenPair(gw, room, { victim: 0 });
  await gw.close();
  assertFails(r, 0, "tampered");
  assert.match(errorOf(r[0]).message, /hello of party 1: the signature does not verify/);
});

test("a forged data frame at the next seq fails with tampered", async () => {
  const r = await attackParty1((l) => {
    if (!isData(l, 1, 1)) return [l];
    return [lineOf({ ...frameOf(l), ct: randomCt(64) }), l];
  });
  assertFails(r, 0, "tampered");
});

test("a frame claiming to come from the receiver itself fails with injected", async () => {
  const r = await attackParty1((l) => {
    if (!isData(l, 1, 1)) return [l];
    return [lineOf({ ...frameOf(l), from: 0, to: 1, ct: randomCt(64) }), l];
  });
  assertFails(r, 0, "injected");
});

test("a party's own frame reflected back as the peer's fails with tampered (directional keys)", async () => {
  const own = deferred<string>();
  const gw = new TestGateway();
  gw.onPost = async (lines) => {
    const out: string[] = [];
    for (const l of lines) {
      if (isData(l, 0, 1)) own.resolve(l);
      if (isData(l, 1, 1)) {
        // Replace the peer's frame with party 0's own frame of the same seq, relabelled.
        out.push(lineOf({ ...frameOf(await own.promise), from: 1, to: 0 }));
      } else out.push(l);
    }
    return out;
  };
  const r = await keygenPair(gw, newRoomId(), { victim: 0 });
  await gw.close();
  assertFails(r, 0, "tampered");
});

test("a frame that does not parse fails with malformed", async () => {
  for (const bad of ['{"v":2,"type":"data"}', "not json", '{"v":1,"type":"data","tag":"00"}']) {
    const r = await attackParty1((l) => (isData(l, 1, 1) ? [bad, l] : [l]));
    assertFails(r, 0, "malformed");
  }
});

test("a data frame before the hellos fails with out-of-order", async () => {
  const old = await recordSession();
  const gw = new TestGateway();
  const room = newRoomId();
  await gw.append(room, old.lines.find((l) => isData(l, 1, 1))!);
  const r = await keygenPair(gw, room, { victim: 0 });
  await gw.close();
  assertFails(r, 0, "out-of-order");
});

test("a stream closed mid-session is resumed with Last-Event-ID and the run completes", async () => {
  const gw = new TestGateway();
  gw.cutAfterBytes = 1500; // inside the first protocol frames
  const r = await keygenPair(gw, newRoomId());
  await gw.close();
  assertBothComplete(r);
  const resumed = gw.resumes.filter((h) => h !== null);
  assert.ok(resumed.length >= 2, `expected resumptions, got ${JSON.stringify(gw.resumes)}`);
  assert.ok(resumed.every((h) => /^[0-9]+$/.test(h!)));
});

test("a resume refused with 410 (history gone) fails with gone", async () => {
  const gw = new TestGateway();
  gw.onPost = (lines) => {
    if (lines.some((l) => isData(l, 1, 1))) {
      gw.onSubscribe = () =>
        new Response('{"error":"history_gone","message":"gone"}', { status: 410 });
      queueMicrotask(() => gw.cutAll());
    }
    return lines;
  };
  const r = await keygenPair(gw, newRoomId(), { victim: 0 });
  await gw.close();
  assertFails(r, 0, "gone");
});

test("a gateway unreachable beyond the retry budget fails both parties with io", async () => {
  const gw = new TestGateway();
  gw.onPost = (lines) => {
    if (lines.some((l) => isData(l, 1, 2))) {
      gw.down = true;
      queueMicrotask(() => gw.cutAll());
    }
    return lines;
  };
  const r = await keygenPair(gw, newRoomId());
  await gw.close();
  assert.equal(codeOf(r[0]), "io");
  assert.equal(codeOf(r[1]), "io");
  assert.match(errorOf(r[0]).message, /gave up after 3/);
});
