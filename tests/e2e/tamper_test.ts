/**
 * A tampering gateway at the system level: a small `node:http` proxy between the client and the
 * real sign-gateway process forwards everything, but flips one byte of the ciphertext of the
 * client's first protocol frame (data frame seq 1, after the handshake and key confirmation) in
 * a POSTed body. The signature must fail on both sides with an error naming the fault, the
 * service must audit `aborted`, and a following honest signature through the same proxy must
 * work (nothing was persisted or locked by the failed session). The transport's own hostile
 * gateway tests (tests/transport/) cover the attack catalogue; this is the whole product.
 * @module
 */
import "../../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as http from "node:http";
import { ConnectError } from "@connectrpc/connect";
import { base64 } from "@scure/base";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { newMpcClient } from "../../client/mpc_client.ts";
import { fromHex } from "../../core/bytes.ts";
import { TransportError } from "../../core/errors.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import {
  ACCOUNT,
  e2eAccounts,
  randomDigest,
  rejection,
  RUNTIME,
  waitAudit,
} from "./e2e_helpers.ts";
import { bounded } from "../../testing/waits.ts";

/** Headers that belong to one hop and are not forwarded. */
const HOP = new Set(["host", "connection", "content-length", "transfer-encoding", "keep-alive"]);

/** A forwarding proxy that can flip a ciphertext byte of one POSTed frame. */
interface TamperProxy {
  readonly url: string;
  /** Arms the proxy: the next POSTed data frame of `from` with sequence `seq` is altered. */
  arm(from: number, seq: number): void;
  /** How many frames were altered so far. */
  tampered(): number;
  close(): Promise<void>;
}

/** Flips one byte in the middle of a data frame's ciphertext; other lines are unchanged. */
function flip(line: string): string {
  const f = JSON.parse(line) as Record<string, unknown>;
  const ct = base64.decode(f.ct as string);
  ct[ct.length >> 1] ^= 0x01;
  return JSON.stringify({ ...f, ct: base64.encode(ct) }); // key order kept: a canonical frame
}

function startTamperProxy(target: string): Promise<TamperProxy> {
  let armed: { from: number; seq: number } | null = null;
  let altered = 0;
  const streams = new Set<AbortController>();
  const server = http.createServer(async (req, res) => {
    const ac = new AbortController();
    streams.add(ac);
    res.on("close", () => {
      ac.abort();
      streams.delete(ac);
    });
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      let body: Uint8Array<ArrayBuffer> | undefined = req.method === "GET"
        ? undefined
        : new Uint8Array(Buffer.concat(chunks));
      if (body && armed && req.method === "POST" && /\/broadcast$/.test(req.url ?? "")) {
        const lines = new TextDecoder().decode(body).split("\n").map((line) => {
          let f: Record<string, unknown>;
          try {
            f = JSON.parse(line);
          } catch {
            return line;
          }
          if (armed && f.type === "data" && f.from === armed.from && f.seq === armed.seq) {
            armed = null;
            altered++;
            return flip(line);
          }
          return line;
        });
        body = new TextEncoder().encode(lines.join("\n"));
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (!HOP.has(k) && typeof v === "string") headers.set(k, v);
      }
      const up = await fetch(`${target}${req.url}`, {
        method: req.method,
        headers,
        body,
        signal: ac.signal,
      });
      const out: Record<string, string> = {};
      up.headers.forEach((v, k) => {
        if (!HOP.has(k)) out[k] = v;
      });
      res.writeHead(up.status, out);
      if (up.body) {
        for await (const c of up.body) res.write(c); // event streams pass through as they come
      }
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        url: `http://127.0.0.1:${port}`,
        arm: (from, seq) => (armed = { from, seq }),
        tampered: () => altered,
        close: () =>
          new Promise<void>((r) => {
            for (const s of streams) s.abort();
            server.close(() => r());
            server.closeAllConnections?.();
          }),
      });
    });
  });
}

describe(`a tampering proxy between the client and the ${RUNTIME} gateway`, () => {
  let stack: LocalStack | undefined;
  let proxy: TamperProxy | undefined;

  before(async () => {
    stack = await startLocalStack({ runtime: RUNTIME, preset: await e2eAccounts() });
    proxy = await startTamperProxy(stack.gatewayUrl);
  });

  after(async () => {
    await proxy?.close();
    await stack?.stop();
  });

  test("a flipped ciphertext byte fails signTx naming the fault; then an honest one signs", async (t) => {
    const s = stack!;
    const client = newMpcClient({
      ...s.clientConfig(await s.clientKeyStore()),
      gatewayUrl: proxy!.url,
    });
    proxy!.arm(0, 1); // the client's first protocol frame (seq 0 is the key confirmation)
    const digest = randomDigest();
    const error = await rejection(
      60_000,
      "signTx through the tampering proxy",
      client.signTx(digest, ACCOUNT),
    );
    assert.equal(proxy!.tampered(), 1, "the proxy altered one frame");
    assert.ok(
      error instanceof TransportError || error instanceof ConnectError,
      `expected a TransportError or a ConnectError, got ${error.name}: ${error.message}`,
    );
    // The service sees an altered frame of party 0 ("tampered"); the client sees its own frame
    // come back altered ("injected"); whichever is first names the fault: in its code
    // (TransportError) or in its message (the service's ABORTED "session failed (tampered)").
    const fault = error instanceof TransportError ? error.code : error.message;
    assert.match(fault, /tampered|injected/, error.message);
    t.diagnostic(`signTx failed with ${error.name} (${fault}): ${error.message}`);
    const line = await waitAudit(
      s,
      "the service's sign of the tampered session",
      // The session's outcome, not its write-ahead "started" record.
      (l) => l.action === "sign" && l.digest === digest && l.outcome !== "started",
    );
    assert.equal(line.outcome, "aborted", JSON.stringify(line));
    t.diagnostic(`the service audited ${line.outcome} (${line.error_code})`);

    const next = randomDigest();
    const sig = await bounded(60_000, "an honest signTx", client.signTx(next, ACCOUNT));
    assert.equal(proxy!.tampered(), 1);
    assert.ok(
      secp256k1.verify(fromHex(sig.compact), fromHex(next), fromHex(sig.publicKey), {
        prehash: false,
      }),
    );
    const ok = await waitAudit(s, "the honest session", (l) => l.session_id === sig.sessionId);
    assert.equal(ok.outcome, "ok");
  });
});
