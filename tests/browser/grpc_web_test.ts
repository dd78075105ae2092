/**
 * The client library in a real browser: `tests/browser/_entry.ts` is bundled with esbuild
 * (ESM, platform browser, ES2022; a `node:` import anywhere in the client would fail the build),
 * served with a page from a loopback server on its own origin, and run in headless Chromium
 * (playwright-core) against a local stack (sign-gateway and sign-service as child processes,
 * under Deno when this file runs under Deno and under Node when it runs under Node). The page
 * calls Health and GetPublicKey and signs a digest over gRPC-web (connect-web): OpenRoom, then its
 * own party talking to the service's party in that room of the gateway (SSE and POST from the
 * page, CORS), every room request with the room token OpenRoom gave (the stack's gateway serves no
 * anonymous room);
 * this process verifies the signature with @noble/curves against the account's public key and
 * checks from the recorded requests that the page used gRPC-web and nothing else.
 * @module
 */
import "../../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import type { Browser, Request as PwRequest, Response as PwResponse } from "playwright-core";
import { encodeAccountsFile } from "../../core/keyshare.ts";
import { startLocalStack } from "../../tools/local_stack.ts";
import { fixtureAccounts } from "../../testing/accounts.ts";
import { bounded } from "../../testing/waits.ts";
import { missing, ROOT } from "../../testing/processes.ts";
import type { BrowserRunRequest, BrowserRunResult } from "./_entry.ts";

const CHROMIUM = "/usr/bin/chromium";
const noChromium = missing(CHROMIUM);
const RUNTIME: "deno" | "node" = typeof Deno !== "undefined" ? "deno" : "node";
const ACCOUNT = "browser-wallet";
/** Bound of the page's whole run (pure-BigInt signing in the page, the service's half). */
const PAGE_RUN_MS = 180_000;
const STEP_MS = 30_000;

/** Bundles the browser entry in memory; throws with esbuild's messages on failure. */
async function bundleEntry(): Promise<Uint8Array> {
  const esbuild = await import("esbuild");
  try {
    const out = await esbuild.build({
      entryPoints: [join(ROOT, "tests/browser/_entry.ts")],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      logLevel: "silent",
      absWorkingDir: ROOT,
    });
    assert.equal(out.outputFiles.length, 1);
    return out.outputFiles[0].contents;
  } finally {
    await esbuild.stop();
  }
}

/** A loopback server for the page and the bundle, on an origin of its own. */
async function pageServer(bundle: Uint8Array): Promise<{ origin: string; close(): Promise<void> }> {
  const html = '<!doctype html><meta charset="utf-8"><title>wallet</title>' +
    '<script type="module" src="/entry.js"></script><p>wallet page</p>';
  const server: Server = createServer((req, res) => {
    if (req.url === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(html);
    } else if (req.url === "/entry.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
      res.end(bundle);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly contentType: string;
  /** Whether the request carried `authorization: Bearer ...` (requests only). */
  readonly bearer?: boolean;
}

test(`a browser signs through the ${RUNTIME} stack over gRPC-web and the signature verifies`, {
  skip: noChromium,
  timeout: 600_000,
}, async () => {
  const parties = await fixtureAccounts([ACCOUNT]);
  const account = parties[0].get(ACCOUNT)!;
  const publicKey = bytesToHex(account.keyShare.publicKey.toBytes(true));
  const page = await pageServer(await bundleEntry());
  let browser: Browser | undefined;
  let stack: Awaited<ReturnType<typeof startLocalStack>> | undefined;
  try {
    stack = await startLocalStack({
      runtime: RUNTIME,
      preset: parties,
      gatewayArgs: ["--cors-origins", page.origin],
    });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: STEP_MS,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
    });
    const tab = await browser.newPage();
    const requests: Seen[] = [];
    const responses: Seen[] = [];
    const pageErrors: string[] = [];
    tab.on("request", (r: PwRequest) => {
      requests.push({
        method: r.method(),
        url: r.url(),
        contentType: r.headers()["content-type"],
        bearer: r.headers()["authorization"]?.startsWith("Bearer ") ?? false,
      });
    });
    tab.on("response", (r: PwResponse) => {
      const req = r.request();
      responses.push({
        method: req.method(),
        url: r.url(),
        contentType: r.headers()["content-type"],
      });
    });
    tab.on("pageerror", (e: Error) => pageErrors.push(e.message));
    await tab.goto(`${page.origin}/`, { timeout: STEP_MS });
    await tab.waitForFunction(() => "walletMpcTest" in globalThis, null, { timeout: STEP_MS });
    assert.deepEqual(pageErrors, []);

    const digest = bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
    const req: BrowserRunRequest = {
      serviceUrl: stack.serviceWebUrl,
      gatewayUrl: stack.gatewayUrl,
      token: stack.token,
      accountsJson: encodeAccountsFile(parties[0]),
      accountId: ACCOUNT,
      digest,
      timeoutMs: PAGE_RUN_MS,
    };
    const got = await bounded(
      PAGE_RUN_MS + STEP_MS,
      "the page's run",
      tab.evaluate(
        (r: BrowserRunRequest) =>
          (globalThis as unknown as {
            walletMpcTest: { run(r: BrowserRunRequest): Promise<BrowserRunResult> };
          }).walletMpcTest.run(r),
        req,
      ),
    );

    // What the page learned over gRPC-web, and what it signed.
    assert.equal(got.serverGlobals, false, "the page has no Deno / Node globals");
    assert.deepEqual(got.health, { status: "serving", partyIndex: 1, accounts: 1 });
    assert.equal(got.servicePublicKey.publicKey, publicKey);
    assert.equal(got.servicePublicKey.derivationPath, "m");
    assert.match(got.servicePublicKey.address, /^0x[0-9a-fA-F]{40}$/);
    assert.equal(got.localPublicKey, publicKey);
    assert.deepEqual(got.rounds, ["sign 1", "sign 2", "sign 3", "sign 4", "sign 5"]);
    assert.equal(got.signature.digest, digest);
    assert.equal(got.signature.publicKey, publicKey);
    const compact = hexToBytes(got.signature.compact);
    assert.ok(
      secp256k1.verify(compact, hexToBytes(digest), hexToBytes(publicKey), { prehash: false }),
      "@noble/curves accepts the browser's signature under the account's public key",
    );
    const sig = secp256k1.Signature.fromBytes(compact);
    assert.equal(bytesToHex(sig.toBytes("der")), got.signature.der);
    assert.equal(
      bytesToHex(
        sig.addRecoveryBit(got.signature.recoveryId).recoverPublicKey(hexToBytes(digest))
          .toBytes(true),
      ),
      publicKey,
      "the recovery id recovers the account's key",
    );

    // The page spoke gRPC-web to the service (and only that), and used the gateway itself.
    const service = requests.filter((r) => r.url.startsWith(`${stack!.serviceWebUrl}/`));
    const rpc = (r: Seen) => new URL(r.url).pathname;
    assert.deepEqual(service.map(rpc).sort(), [
      "/wallet_mpc.v1.SignService/GetPublicKey",
      "/wallet_mpc.v1.SignService/Health",
      "/wallet_mpc.v1.SignService/OpenRoom",
      "/wallet_mpc.v1.SignService/Sign",
    ]);
    for (const r of service) {
      assert.equal(r.method, "POST");
      assert.equal(r.contentType, "application/grpc-web+proto", `${rpc(r)} request`);
    }
    const answered = responses.filter((r) => r.url.startsWith(`${stack!.serviceWebUrl}/`));
    assert.equal(answered.length, 4);
    for (const r of answered) {
      assert.equal(r.contentType, "application/grpc-web+proto", `${rpc(r)} response`);
    }
    const gateway = requests.filter((r) => r.url.startsWith(`${stack!.gatewayUrl}/rooms/`));
    assert.ok(gateway.some((r) => r.method === "GET" && r.url.endsWith("/subscribe")));
    assert.ok(gateway.some((r) => r.method === "POST"), "the page posted its own messages");
    assert.ok(
      gateway.filter((r) => r.method !== "OPTIONS").every((r) => r.bearer),
      "every room request of the page carried its room token",
    );
    assert.deepEqual(pageErrors, []);
    console.log(
      `browser signTx over gRPC-web (${RUNTIME} stack): ${got.signMs.toFixed(0)} ms, ` +
        `${gateway.length} gateway requests`,
    );
  } finally {
    await browser?.close().catch(() => {});
    await stack?.stop();
    await page.close();
  }
});
