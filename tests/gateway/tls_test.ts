/**
 * TLS on the gateway (`server.tls.cert_file` / `key_file`), under Deno and under Node: a test CA
 * and a server certificate made with `openssl`; `curl --cacert` over HTTP/1.1 and HTTP/2 (health,
 * an SSE stream, a post); the client library's gateway client in a child process of the runtime
 * running the test (the Deno run and the Node run of the suite cover both), trusting the CA the
 * usual way; and a connection that never sends its ClientHello, closed by the header deadline.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { runEntryPoint } from "../../testing/entry_point.ts";
import { missing, startGateway, until } from "../../testing/processes.ts";
import { makeTestCa } from "../../testing/tls_ca.ts";
import { metric, openRaw } from "./_connections.ts";

const skip = missing("openssl", ["version"]) ?? missing("curl");

/** Runs curl; returns its output and the HTTP version and status it reports. */
function curlTls(
  ca: string,
  args: string[],
): Promise<{ body: string; version: string; status: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      "curl",
      ["-s", "--cacert", ca, "-w", "\n%{http_version} %{http_code}", ...args],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    p.stdout!.on("data", (b: Uint8Array) => (out += new TextDecoder().decode(b)));
    p.once("error", reject);
    p.once("exit", () => {
      const i = out.lastIndexOf("\n");
      const [version, status] = out.slice(i + 1).split(" ");
      resolve({ body: out.slice(0, i), version, status: Number(status) });
    });
  });
}

/** `curl -N` on an SSE stream over TLS, parsed with eventsource-parser. */
function curlStreamTls(ca: string, args: string[]) {
  const p = spawn("curl", ["-sN", "--no-buffer", "--cacert", ca, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => events.push(e) });
  const decoder = new TextDecoder();
  p.stdout!.on("data", (b: Uint8Array) => parser.feed(decoder.decode(b, { stream: true })));
  const exited = new Promise<void>((r) => p.once("exit", () => r()));
  return {
    events,
    stop: async () => {
      if (p.exitCode === null) p.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * Runs `_tls_client.ts` under the runtime running this test, trusting `ca` the usual way (Deno:
 * `DENO_CERT`, Node: `NODE_EXTRA_CA_CERTS`); returns its JSON line.
 */
async function libraryClient(
  ca: string,
  url: string,
  room: string,
): Promise<{ got: { id: number; data: string }; idx: number }> {
  const r = await runEntryPoint("tests/gateway/_tls_client.ts", [url, room], {
    DENO_CERT: ca,
    NODE_EXTRA_CA_CERTS: ca,
  });
  if (r.code !== 0) throw new Error(`the client exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

for (const runtime of ["deno", "node"] as const) {
  test(
    `${runtime} gateway over TLS: curl over HTTP/1.1 and HTTP/2, the client library, and the header deadline`,
    {
      skip,
    },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "gw-tls-"));
      const pki = makeTestCa(dir);
      const gw = await startGateway(runtime, [
        "--set",
        `server.tls.cert_file=${pki.certFile}`,
        "--set",
        `server.tls.key_file=${pki.keyFile}`,
        "--set",
        "server.headers_timeout_ms=3000",
      ]);
      const url = `https://localhost:${gw.port}`;
      const streams: ReturnType<typeof curlStreamTls>[] = [];
      try {
        const listening = gw.logs.find((l) => l.msg === "listening")!;
        assert.equal(listening.tls, true);
        assert.equal(listening.serving, "node-http2-tls");
        const h1 = await curlTls(pki.caFile, ["--http1.1", `${url}/healthz`]);
        assert.deepEqual([h1.version, h1.status, JSON.parse(h1.body).status], ["1.1", 200, "ok"]);
        const h2 = await curlTls(pki.caFile, ["--http2", `${url}/healthz`]);
        assert.deepEqual([h2.version, h2.status, JSON.parse(h2.body).status], ["2", 200, "ok"]);
        const plain = await curlTls(pki.caFile, [`http://127.0.0.1:${gw.port}/healthz`]);
        assert.notEqual(plain.status, 200, "no plain HTTP on the TLS port");

        // An SSE stream over each protocol, fed by a post over HTTP/2.
        for (const proto of ["--http1.1", "--http2"]) {
          streams.push(curlStreamTls(pki.caFile, [proto, `${url}/rooms/tls-room/subscribe`]));
        }
        const caPem = readFileSync(pki.caFile, "utf8");
        await until(
          "both streams to connect",
          async () => (await metric(url, "gateway_subscribers", caPem)) === 2,
        );
        const post = await curlTls(pki.caFile, [
          "--http2",
          "-XPOST",
          "--data-binary",
          "line one\nline two",
          `${url}/rooms/tls-room/broadcast`,
        ]);
        assert.deepEqual([post.version, post.status], ["2", 200]);
        for (const s of streams) {
          await until("the event on both streams", () => s.events.length >= 1);
          assert.deepEqual([s.events[0].id, s.events[0].data], ["0", "line one\nline two"]);
        }

        // The client library in a process of this runtime (Deno's fetch speaks HTTP/2 here,
        // Node's HTTP/1.1), trusting the test CA.
        const r = await libraryClient(pki.caFile, url, "library");
        assert.deepEqual(r, { got: { id: 0, data: "over TLS\nsecond line" }, idx: 1 });

        // A connection that never starts its TLS handshake is closed by the header deadline.
        const silent = await openRaw(gw.port);
        await until("the silent TLS connection to be closed", () => silent.isClosed());
      } finally {
        for (const s of streams) await s.stop();
        await gw.stop("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
