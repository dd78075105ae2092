/**
 * One client process of the load benchmark (bench/load_bench.ts starts a few): `clients`
 * independent signing clients (the client library, one session each at a time, no automatic
 * retry), each signing random digests in a loop until the process is killed. A refusal for
 * load (RESOURCE_EXHAUSTED) is waited out for its retry hint, then the client tries again.
 * Every attempt is printed as one JSON line on stdout:
 * `{"t": <epoch ms at the end>, "ev": "ok" | "refused" | "error", "ms": <duration>, ...}`.
 *
 * ```sh
 * node --import tsx bench/load/client_main.ts '{"serviceUrl":"http://127.0.0.1:50052",...}'
 * ```
 * @module
 */
import "../../testing/setup.ts";
import process from "node:process";
import { Code, ConnectError } from "@connectrpc/connect";
import { newMpcClient, retryHintMs } from "../../client/mpc_client.ts";
import { MemoryKeyStore } from "../../keystore/memory_key_store.ts";
import { fixtureAccounts } from "../../testing/accounts.ts";

interface Args {
  readonly serviceUrl: string;
  readonly gatewayUrl: string;
  readonly token: string;
  readonly account: string;
  /** Concurrent clients in this process. */
  readonly clients: number;
  /** Deadline of each signTx, ms. */
  readonly timeoutMs: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as Args;
const accounts = await fixtureAccounts([args.account]);
const out = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function loop(k: number): Promise<never> {
  const client = newMpcClient({
    serviceUrl: args.serviceUrl,
    gatewayUrl: args.gatewayUrl,
    token: args.token,
    keyStore: new MemoryKeyStore(accounts[0]),
    maxConcurrentSessions: 1,
    maxRetries: 0,
  });
  for (;;) {
    const digest = crypto.getRandomValues(new Uint8Array(32));
    const t0 = performance.now();
    try {
      await client.signTx(digest, args.account, { timeoutMs: args.timeoutMs });
      out({ t: Date.now(), ev: "ok", ms: performance.now() - t0, k });
    } catch (e) {
      const ms = performance.now() - t0;
      const err = ConnectError.from(e);
      if (err.code === Code.ResourceExhausted) {
        const hint = retryHintMs(err) ?? 1000;
        out({ t: Date.now(), ev: "refused", ms, hint, k });
        await new Promise((r) => setTimeout(r, hint * (1 + Math.random() / 4)));
      } else {
        out({ t: Date.now(), ev: "error", ms, code: Code[err.code], msg: err.rawMessage, k });
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

out({ t: Date.now(), ev: "ready" });
await Promise.all(Array.from({ length: args.clients }, (_, k) => loop(k)));
