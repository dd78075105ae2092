/**
 * The checks a session makes after decryption, against a hand-driven authenticated peer (built
 * from the private frame and key modules) over an in-memory room: only a party holding the keys
 * can send these, so they test the "the other party is hostile too" rules. Gateway-level attacks
 * are in tests/transport/hostile_gateway_test.ts.
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ed25519 } from "@noble/curves/ed25519.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { TransportError } from "../core/errors.ts";
import type { Message } from "../core/protocols/types.ts";
import {
  dataAad,
  decodeFrame,
  encodeFrame,
  type HelloFrame,
  helloSignedBytes,
  seqNonce,
} from "./_frames.ts";
import {
  confirmPlaintext,
  contextHash,
  directionKey,
  ephemeralPublic,
  sessionTag,
  sharedSecret,
  transcriptHash,
} from "./_keys.ts";
import type { GatewayClient, GatewayEvent } from "./gateway_client.ts";
import { generateIdentity } from "./identity.ts";
import {
  openSecureSession,
  type SecureSession,
  type SecureSessionOptions,
} from "./secure_session.ts";

const ROOM = "0123456789abcdef0123456789abcdef";
const CONTEXT = new TextEncoder().encode("ctx");
const code = (c: string) => (e: unknown) => e instanceof TransportError && e.code === c;

/** An in-memory room behind the GatewayClient interface. */
function memoryGateway(): GatewayClient & { bodies: string[] } {
  const bodies: string[] = [];
  let wake: () => void = () => {};
  return {
    bodies,
    async *subscribe(
      _room: string,
      { signal }: { signal: AbortSignal },
    ): AsyncGenerator<GatewayEvent> {
      for (let id = 0;; id++) {
        while (id >= bodies.length) {
          if (signal.aborted) throw new TransportError("aborted", "aborted");
          await new Promise<void>((r) => {
            wake = r;
            signal.addEventListener("abort", () => r(), { once: true });
          });
        }
        yield { id, data: bodies[id] };
      }
    },
    broadcast(_room: string, body: string) {
      bodies.push(body);
      wake();
      return Promise.resolve();
    },
    issueUniqueIdx: () => Promise.resolve(1),
  };
}

const ids = [generateIdentity(), generateIdentity()];

/** Party 1 driven by hand. */
class Peer {
  readonly gw = memoryGateway();
  readonly eph = crypto.getRandomValues(new Uint8Array(32));
  hello: HelloFrame;
  key: Uint8Array = new Uint8Array(0);
  tag: Uint8Array = new Uint8Array(0);
  T: Uint8Array = new Uint8Array(0);
  seq = 0;

  constructor(patch: Partial<HelloFrame> = {}) {
    const h = {
      room: ROOM,
      from: 1,
      n: 2,
      nonce: crypto.getRandomValues(new Uint8Array(32)),
      eph: ephemeralPublic(this.eph),
      identity: ids[1].publicKey,
      ...patch,
    };
    this.hello = { type: "hello", ...h, sig: ed25519.sign(helloSignedBytes(h), ids[1].secretKey) };
  }

  /** Opens party 0's session; answers its hello with a confirmation carrying `confirm`. */
  async open(
    extra: Partial<SecureSessionOptions> = {},
    confirm = confirmPlaintext(contextHash(CONTEXT)),
  ): Promise<SecureSession> {
    await this.gw.broadcast(ROOM, encodeFrame(this.hello));
    const opening = openSecureSession({
      gateway: this.gw,
      room: ROOM,
      i: 0,
      n: 2,
      identity: ids[0],
      peers: ids.map((id) => id.publicKey),
      context: CONTEXT,
      handshakeTimeoutMs: 2000,
      ...extra,
    });
    opening.catch(() => {}); // awaited below; may fail before that
    while (!this.gw.bodies.some((b) => b.includes('"from":0'))) {
      await new Promise((r) => setTimeout(r, 1));
    }
    const h0 = decodeFrame(this.gw.bodies.find((b) => b.includes('"from":0'))!, 1e6) as HelloFrame;
    this.T = transcriptHash([h0, this.hello]);
    this.key = directionKey(sharedSecret(this.eph, h0.eph), this.T, 1, 0);
    this.tag = sessionTag(this.T);
    await this.send(confirm, true);
    return await opening;
  }

  /** Sends one authenticated fragment to party 0. */
  send(pt: Uint8Array, last = true): Promise<void> {
    const head = { from: 1, to: 0, seq: this.seq++, last };
    const ct = chacha20poly1305(this.key, seqNonce(head.seq), dataAad(ROOM, this.T, head)).encrypt(
      pt,
    );
    return this.gw.broadcast(ROOM, encodeFrame({ type: "data", tag: this.tag, ...head, ct }));
  }

  sendEnvelope(m: unknown): Promise<void> {
    return this.send(new TextEncoder().encode(JSON.stringify(m)));
  }
}

const msg = (patch: Partial<Message> = {}): Message => ({
  sid: "ab",
  protocol: "sign",
  round: 1,
  from: 1,
  to: 0,
  payload: { x: "1" },
  ...patch,
});
const wait = () => AbortSignal.timeout(2000);

test("envelopes from an authenticated peer arrive in order, fragmented or not", async () => {
  const p = new Peer();
  const s = await p.open();
  await p.sendEnvelope(msg({ round: 1 }));
  const bytes = new TextEncoder().encode(JSON.stringify(msg({ round: 2, to: null })));
  await p.send(bytes.subarray(0, 10), false);
  await p.send(bytes.subarray(10), true);
  assert.deepEqual(await s.receive(wait()), msg({ round: 1 }));
  assert.deepEqual(await s.receive(wait()), msg({ round: 2, to: null }));
  await s.close();
});

test("an authenticated peer's hostile envelopes fail the session with malformed", async () => {
  const cases: [string, unknown][] = [
    ["from another party", msg({ from: 0 })],
    ["addressed to another party", msg({ to: 1 })],
    ["a party index beyond n", msg({ to: 2 })],
    ["an extra field", { ...msg(), extra: 1 }],
    ["not an object", [1, 2]],
  ];
  for (const [what, m] of cases) {
    const p = new Peer();
    const s = await p.open();
    await p.sendEnvelope(m);
    await assert.rejects(s.receive(wait()), code("malformed"), what);
    await s.close();
  }
  const p = new Peer();
  const s = await p.open();
  await p.send(new Uint8Array([0xff, 0x00]));
  await assert.rejects(
    s.receive(wait()),
    (e) => code("malformed")(e) && /party 1, seq 1/.test((e as Error).message),
  );
  await s.close();
});

test("fragments beyond maxMessageBytes fail with limit", async () => {
  const p = new Peer();
  const s = await p.open({ maxMessageBytes: 1000 });
  for (let k = 0; k < 3; k++) await p.send(new Uint8Array(400), false);
  await assert.rejects(s.receive(wait()), code("limit"));
  await s.close();
});

test("more envelopes than maxQueued waiting fail with limit", async () => {
  const p = new Peer();
  const s = await p.open({ maxQueued: 2 });
  for (let k = 1; k <= 3; k++) await p.sendEnvelope(msg({ round: k }));
  await new Promise((r) => setTimeout(r, 20));
  await assert.rejects(s.receive(wait()), code("limit"));
  await s.close();
});

test("a confirmation for another context fails the handshake with context-mismatch", async () => {
  const p = new Peer();
  await assert.rejects(
    p.open({}, confirmPlaintext(contextHash(new TextEncoder().encode("other")))),
    code("context-mismatch"),
  );
});

test("a seq 0 that is not a confirmation fails the handshake", async () => {
  const p = new Peer();
  await assert.rejects(
    p.open({}, new TextEncoder().encode(JSON.stringify(msg()))),
    code("handshake"),
  );
});

test("a signed hello for another party count fails the handshake", async () => {
  const p = new Peer({ n: 3 });
  await assert.rejects(
    p.open(),
    (e) => code("handshake")(e) && /expects 3 parties/.test((e as Error).message),
  );
});

test("a signed hello with a low-order ephemeral key fails the handshake", async () => {
  const p = new Peer({ eph: new Uint8Array(32) });
  await assert.rejects(
    p.open(),
    (e) => code("handshake")(e) && /low order/.test((e as Error).message),
  );
});

test("the send side refuses misuse: wrong sender, self as receiver, before a peer index", async () => {
  const p = new Peer();
  const s = await p.open();
  await assert.rejects(s.send(msg({ from: 1, to: 0 })), RangeError);
  await assert.rejects(s.send(msg({ from: 0, to: 0 })), RangeError);
  await assert.rejects(s.send(msg({ from: 0, to: 5 })), RangeError);
  await s.send(msg({ from: 0, to: 1 }));
  assert.throws(() => s.protocolSid(""), RangeError);
  assert.throws(() => s.protocolSid(5 as unknown as string), TypeError);
  await s.close();
});
