/**
 * Browser entry of `grpc_web_test.ts`, bundled by esbuild (ESM, platform browser, ES2022) and
 * loaded by a page in headless Chromium. It installs `globalThis.walletMpcTest.run(request)`,
 * which builds the client library with the gRPC-web protocol from a plaintext key share file
 * (`core/keyshare.ts` format) and calls Health, GetPublicKey and Sign (`signTx`) through the
 * stack. Everything it returns is plain JSON so that it crosses `page.evaluate`.
 *
 * TEST CODE ONLY: a real wallet never holds a plaintext share file in a page.
 * @module
 */
import { MemoryKeyStore, newMpcClient } from "../../client/mpc_client.ts";
import { decodeAccountsFile } from "../../core/keyshare.ts";

/** What the test asks the page to do. */
export interface BrowserRunRequest {
  /** The sign-service's gRPC-web / Connect base URL. */
  readonly serviceUrl: string;
  readonly gatewayUrl: string;
  /** Caller token of the service. */
  readonly token: string;
  /** The client's key share file, plaintext JSON (`encodeAccountsFile`). */
  readonly accountsJson: string;
  readonly accountId: string;
  /** 32-byte digest, hex. */
  readonly digest: string;
  /** Bound of the whole run in the page. */
  readonly timeoutMs: number;
}

/** What the page reports back. */
export interface BrowserRunResult {
  readonly health: { status: string; partyIndex: number; accounts: number };
  readonly servicePublicKey: { publicKey: string; address: string; derivationPath: string };
  readonly localPublicKey: string;
  readonly signature: {
    compact: string;
    der: string;
    recoveryId: number;
    publicKey: string;
    digest: string;
    sessionId: string;
  };
  /** Rounds the client finished, in order ("sign 1", ...). */
  readonly rounds: string[];
  /** Wall time of signTx in the page, milliseconds. */
  readonly signMs: number;
  /** Whether the page has Deno or Node globals (it must not). */
  readonly serverGlobals: boolean;
}

async function run(req: BrowserRunRequest): Promise<BrowserRunResult> {
  const signal = AbortSignal.timeout(req.timeoutMs);
  const rounds: string[] = [];
  const client = newMpcClient({
    serviceUrl: req.serviceUrl,
    protocol: "grpc-web",
    gatewayUrl: req.gatewayUrl,
    token: req.token,
    keyStore: new MemoryKeyStore(decodeAccountsFile(req.accountsJson)),
    onProgress: (e) => {
      if (e.type === "round-finished") rounds.push(`${e.protocol} ${e.round}`);
    },
  });
  const headers = { authorization: `Bearer ${req.token}` };
  const h = await client.service.health({}, { signal });
  const pk = await client.service.getPublicKey({ accountId: req.accountId }, { signal, headers });
  const t0 = performance.now();
  const sig = await client.signTx(req.digest, req.accountId, { signal });
  const signMs = performance.now() - t0;
  const g = globalThis as { Deno?: unknown; process?: unknown };
  return {
    health: { status: h.status, partyIndex: h.partyIndex, accounts: h.accounts },
    servicePublicKey: {
      publicKey: pk.publicKey,
      address: pk.address,
      derivationPath: pk.derivationPath,
    },
    localPublicKey: await client.getPublicKey(req.accountId),
    signature: {
      compact: sig.compact,
      der: sig.der,
      recoveryId: sig.recoveryId,
      publicKey: sig.publicKey,
      digest: sig.digest,
      sessionId: sig.sessionId,
    },
    rounds,
    signMs,
    serverGlobals: g.Deno !== undefined || g.process !== undefined,
  };
}

(globalThis as { walletMpcTest?: { run: typeof run } }).walletMpcTest = { run };
