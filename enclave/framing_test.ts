/**
 * Framing of the provisioning messages over the channel layer's test mode (UNIX sockets in a
 * temporary folder): the good sequence with and without the optional issuer secret, and each
 * way the untrusted parent can get it wrong (truncated, oversized, wrong order, duplicate, wrong
 * kind, garbage, silence, an empty optional message), each a typed error that ends the sequence
 * with every listener closed; a parent with the issuer secret and an enclave that predates it.
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Channels, createChannels, DEFAULT_ENCLAVE_CID, PARENT_CID } from "./channel.ts";
import {
  decodeFrameHeader,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FramingError,
  type FramingErrorCode,
  ISSUER_SECRET_PORT,
  MAX_PAYLOAD_BYTES,
  PROVISIONING,
  type Provisioning,
  readFrame,
  receiveProvisioning,
  sendFrame,
  sendProvisioning,
  writeAll,
} from "./framing.ts";

const deno = typeof Deno !== "undefined";
const skip = deno ? false : "the enclave side runs on Deno only";

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);
const good: Provisioning = {
  credentials: new TextEncoder().encode('{"accessKeyId":"AKIA","secretAccessKey":"s"}'),
  ageKey: bytes(300, 1),
  shares: bytes(100_000, 2),
};

describe("provisioning framing", { skip }, () => {
  let dir: string;
  let enclave: Channels;
  let parent: Channels;
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "wallet-mpc-framing-" });
    enclave = createChannels({ mode: { kind: "unix", dir }, localCid: DEFAULT_ENCLAVE_CID });
    parent = createChannels({ mode: { kind: "unix", dir }, localCid: PARENT_CID });
  });
  after(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  const receive = (o: { messageTimeoutMs?: number; timeoutMs?: number } = {}) =>
    receiveProvisioning({ listen: (p) => enclave.listen(p), messageTimeoutMs: 5_000, ...o });
  const connect = (port: number) => parent.connect(DEFAULT_ENCLAVE_CID, port);

  /**
   * {@link receive}, and a promise of the moment the enclave took a connection on `port`
   * (its turn is decided then): a test that races two ports waits for it.
   */
  const receiveWatching = (port: number) => {
    let took!: () => void;
    const accepted = new Promise<void>((resolve) => (took = resolve));
    const r = receiveProvisioning({
      messageTimeoutMs: 5_000,
      listen: (p) => {
        const l = enclave.listen(p);
        if (p !== port) return l;
        return new Proxy(l, {
          get(target, key) {
            if (key === "accept") {
              return async () => {
                const conn = await target.accept();
                setTimeout(took, 0); // a task later: after the receiver handled the connection
                return conn;
              };
            }
            const v = Reflect.get(target, key);
            return typeof v === "function" ? v.bind(target) : v;
          },
        });
      },
    });
    return { r, accepted };
  };

  /** Sends raw bytes on a port, then half-closes unless told not to. */
  async function raw(port: number, data: Uint8Array, close = true): Promise<Deno.Conn> {
    const c = await connect(port);
    await writeAll(c, data);
    if (close) await c.closeWrite();
    return c;
  }

  async function fails(p: Promise<unknown>, code: FramingErrorCode, msg?: RegExp) {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof FramingError, `expected a FramingError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      if (msg) assert.match(e.message, msg);
      return true;
    });
    // Every listener is closed afterwards.
    for (const { port } of PROVISIONING) {
      await assert.rejects(connect(port), `port ${port} still listening`);
    }
  }

  test("the three messages (no issuer secret) arrive in order, acknowledged; the listeners close", async () => {
    const r = receive();
    await sendProvisioning(good, { connect });
    const got = await r;
    assert.deepEqual(got.credentials, good.credentials);
    assert.deepEqual(got.ageKey, good.ageKey);
    assert.deepEqual(got.shares, good.shares);
    for (const { port } of PROVISIONING) await assert.rejects(connect(port));
  });

  test("with the issuer secret: four messages, 7104 between the age key and the shares", async () => {
    assert.deepEqual(PROVISIONING.map((p) => p.port), [7100, 7101, ISSUER_SECRET_PORT, 7102]);
    const ports: number[] = [];
    const r = receiveProvisioning({
      listen: (p) => enclave.listen(p),
      messageTimeoutMs: 5_000,
      onMessage: (slot) => ports.push(slot.port),
    });
    const issuerSecret = bytes(400, 3);
    await sendProvisioning({ ...good, issuerSecret }, { connect });
    const got = await r;
    assert.deepEqual(got.issuerSecret, issuerSecret);
    assert.deepEqual(got.shares, good.shares);
    assert.deepEqual(ports, [7100, 7101, 7104, 7102]);
    for (const { port } of PROVISIONING) await assert.rejects(connect(port));
  });

  test("without the issuer secret (a parent that predates it): the shares skip it", async () => {
    const r = receive();
    // What an older parent sends: 7100, 7101, 7102 and nothing on 7104.
    await sendFrame(await connect(7100), "credentials", good.credentials);
    await sendFrame(await connect(7101), "age-key", good.ageKey);
    await sendFrame(await connect(7102), "shares", good.shares);
    const got = await r;
    assert.equal(got.issuerSecret, undefined);
    assert.ok(!("issuerSecret" in got));
    assert.deepEqual(got.shares, good.shares);
    await assert.rejects(connect(ISSUER_SECRET_PORT), "7104 closed with the others");
  });

  test("the issuer secret after the shares started is wrong-order, before the age key too", async () => {
    const w = receiveWatching(7102);
    await sendFrame(await connect(7100), "credentials", good.credentials);
    await sendFrame(await connect(7101), "age-key", good.ageKey);
    // The shares' connection is open (their frame not complete): 7104 is skipped already.
    const shares = await raw(7102, encodeFrame("shares", good.shares).subarray(0, 20), false);
    await w.accepted;
    const late = await raw(ISSUER_SECRET_PORT, encodeFrame("issuer-secret", bytes(300)));
    await fails(
      w.r,
      "wrong-order",
      /issuer-secret \(port 7104\): arrived after shares \(port 7102\)/,
    );
    shares.close();
    late.close();
    const r = receive();
    await sendFrame(await connect(7100), "credentials", good.credentials);
    const early = await raw(ISSUER_SECRET_PORT, encodeFrame("issuer-secret", bytes(300)));
    await fails(r, "wrong-order", /issuer-secret \(port 7104\): arrived before age-key/);
    early.close();
  });

  test("an empty issuer-secret message is malformed: a parent without one sends none", async () => {
    const r = receive();
    await sendFrame(await connect(7100), "credentials", good.credentials);
    await sendFrame(await connect(7101), "age-key", good.ageKey);
    const c = await raw(ISSUER_SECRET_PORT, encodeFrame("issuer-secret", new Uint8Array(0)));
    await fails(r, "malformed", /issuer-secret \(port 7104\): an empty message/);
    c.close();
    // The sender refuses it before sending anything.
    await assert.rejects(
      sendProvisioning({ ...good, issuerSecret: new Uint8Array(0) }, { connect }),
      (e: unknown) => e instanceof FramingError && e.code === "malformed",
    );
  });

  test("a parent with the issuer secret and an enclave that predates it: refused at once, named", async () => {
    // An older enclave: listens on 7100-7102 only and acknowledges each frame.
    const old = [7100, 7101, 7102].map((port) => enclave.listen(port));
    const kinds = ["credentials", "age-key", "shares"] as const;
    const served = old.map(async (l, i) => {
      const conn = await l.accept();
      await readFrame(conn, { kind: kinds[i] });
      await writeAll(conn, Uint8Array.of(0x06));
      conn.close();
    });
    try {
      await assert.rejects(
        sendProvisioning({ ...good, issuerSecret: bytes(300) }, { connect }),
        (e: unknown) => {
          assert.ok(e instanceof FramingError && e.code === "refused", String(e));
          assert.match(e.message, /issuer-secret \(port 7104\): cannot connect.*predates/);
          return true;
        },
      );
    } finally {
      for (const l of old) l.close();
      await Promise.allSettled(served);
    }
  });

  test("an empty shares message (no key share file yet) is accepted", async () => {
    const r = receive();
    await sendProvisioning({ ...good, shares: new Uint8Array(0) }, { connect });
    assert.equal((await r).shares.length, 0);
  });

  test("a stream that ends inside the header is truncated", async () => {
    const r = receive();
    const c = await raw(7100, encodeFrame("credentials", good.credentials).subarray(0, 5));
    await fails(r, "truncated", /credentials \(port 7100\).*5 of 10/);
    c.close();
  });

  test("a stream that ends inside the payload is truncated", async () => {
    const r = receive();
    const frame = encodeFrame("credentials", good.credentials);
    const c = await raw(7100, frame.subarray(0, frame.length - 3));
    await fails(r, "truncated");
    c.close();
  });

  test("a length above the bound is refused before any payload byte is read", async () => {
    const r = receive();
    const header = encodeFrame("credentials", new Uint8Array(0));
    new DataView(header.buffer).setUint32(6, MAX_PAYLOAD_BYTES.credentials + 1);
    // No payload follows and the sender keeps its side open: only the header decides.
    const c = await raw(7100, header, false);
    await fails(r, "oversized", /16385 bytes announced, at most 16384/);
    c.close();
  });

  test("bytes after the frame are oversized, a second frame on the connection duplicate", async () => {
    let r = receive();
    const frame = encodeFrame("credentials", good.credentials);
    let c = await raw(7100, Uint8Array.from([...frame, 1, 2]));
    await fails(r, "oversized", /bytes after/);
    c.close();
    r = receive();
    c = await raw(7100, Uint8Array.from([...frame, ...frame]));
    await fails(r, "duplicate", /second frame/);
    c.close();
  });

  test("a message before the one it follows is wrong-order (shares first, age key first)", async () => {
    let r = receive();
    let c = await raw(7102, encodeFrame("shares", good.shares));
    await fails(r, "wrong-order", /shares \(port 7102\).*before credentials/);
    c.close();
    r = receive();
    await sendFrame(await connect(7100), "credentials", good.credentials);
    c = await raw(7102, encodeFrame("shares", good.shares));
    await fails(r, "wrong-order", /before age-key/);
    c.close();
  });

  test("a message on a port while the previous one is still being read is wrong-order", async () => {
    const w = receiveWatching(7100);
    const first = await raw(
      7100,
      encodeFrame("credentials", good.credentials).subarray(0, 4),
      false,
    );
    // Wait until the enclave accepted the first connection; then the second port goes out of
    // turn.
    await w.accepted;
    const second = await raw(7101, encodeFrame("age-key", good.ageKey));
    await fails(w.r, "wrong-order", /age-key \(port 7101\)/);
    first.close();
    second.close();
  });

  test("a second connection on a port already received is a duplicate", async () => {
    const r = receive();
    await sendFrame(await connect(7100), "credentials", good.credentials);
    const c = await raw(7100, encodeFrame("credentials", good.credentials));
    await fails(r, "duplicate", /credentials \(port 7100\): a second connection/);
    c.close();
  });

  test("a frame of another kind than the port carries is wrong-kind", async () => {
    const r = receive();
    const c = await raw(7100, encodeFrame("age-key", good.ageKey));
    await fails(r, "wrong-kind", /expected a credentials frame, got age-key/);
    c.close();
  });

  test("garbage instead of a header is malformed", async () => {
    const r = receive();
    const c = await raw(7100, new TextEncoder().encode("GET / HTTP/1.1\r\n"));
    await fails(r, "malformed");
    c.close();
  });

  test("a connection that sends nothing times out; so does a sequence nobody starts", async () => {
    let r = receive({ messageTimeoutMs: 200 });
    const c = await raw(7100, new Uint8Array(0), false);
    await fails(r, "timeout", /credentials \(port 7100\): no complete message in 200 ms/);
    c.close();
    r = receive({ timeoutMs: 200 });
    await fails(r, "timeout", /provisioning: not complete in 200 ms/);
  });

  test("the sender learns of a refusal: no acknowledgement is refused", async () => {
    const r = receive();
    const sent = sendProvisioning(
      { ...good, credentials: bytes(MAX_PAYLOAD_BYTES.credentials + 1) },
      { connect },
    );
    await assert.rejects(sent, (e: unknown) => e instanceof FramingError && e.code === "oversized");
    // The sender refuses to encode it; the receiver is still waiting: a real frame follows.
    await sendProvisioning(good, { connect });
    await r;
    const r2 = assert.rejects(
      receive(),
      (e: unknown) => e instanceof FramingError && e.code === "wrong-order",
    );
    await sendFrame(await connect(7100), "credentials", good.credentials);
    const late = sendFrame(await connect(7102), "shares", good.shares);
    await assert.rejects(late, (e: unknown) => e instanceof FramingError && e.code === "refused");
    await r2;
  });
});

test("frame headers: hostile table", () => {
  const ok = encodeFrame("shares", bytes(3)).subarray(0, FRAME_HEADER_BYTES);
  assert.deepEqual(decodeFrameHeader(ok), { kind: "shares", length: 3 });
  const cases: [string, Uint8Array][] = [
    ["short", ok.subarray(0, 9)],
    ["long", Uint8Array.from([...ok, 0])],
    ["magic", Uint8Array.from([0x58, ...ok.subarray(1)])],
    ["version 0", Uint8Array.from(ok.map((b, i) => (i === 4 ? 0 : b)))],
    ["version 2", Uint8Array.from(ok.map((b, i) => (i === 4 ? 2 : b)))],
    ["kind 0", Uint8Array.from(ok.map((b, i) => (i === 5 ? 0 : b)))],
    ["kind 7", Uint8Array.from(ok.map((b, i) => (i === 5 ? 7 : b)))],
    ["kind 255", Uint8Array.from(ok.map((b, i) => (i === 5 ? 255 : b)))],
  ];
  for (const [name, h] of cases) {
    assert.throws(
      () => decodeFrameHeader(h),
      (e: unknown) => e instanceof FramingError && e.code === "malformed",
      name,
    );
  }
  assert.throws(
    () => encodeFrame("age-key", bytes(MAX_PAYLOAD_BYTES["age-key"] + 1)),
    (e: unknown) => e instanceof FramingError && e.code === "oversized",
  );
  assert.throws(
    () => encodeFrame("issuer-secret", bytes(MAX_PAYLOAD_BYTES["issuer-secret"] + 1)),
    (e: unknown) => e instanceof FramingError && e.code === "oversized",
  );
  const issuer = encodeFrame("issuer-secret", bytes(2)).subarray(0, FRAME_HEADER_BYTES);
  assert.deepEqual(decodeFrameHeader(issuer), { kind: "issuer-secret", length: 2 });
  assert.equal(issuer[5], 6, "a new kind takes the next code: the older kinds keep theirs");
  assert.throws(() => encodeFrame("nope" as never, bytes(1)), TypeError);
});
