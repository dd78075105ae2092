/**
 * `deno task demo`: the whole product on one machine with embedded defaults and no external
 * services. Generates a development 2-of-2 key offline (age-encrypted share files), starts the
 * sign-gateway and the sign-service as child processes (room tokens on: the gateway serves no
 * anonymous room, the service opens the session's room and hands the client its token), signs a
 * random digest from the client library through them, verifies the signature with @noble/curves
 * (and with the `openssl` CLI when it is installed), then makes a presignature ahead and signs a
 * message with it in one round (`signMessage`, verified too), and prints on its LAST line one
 * JSON object (of the digest's signature):
 * `{"publicKey": <compressed hex>, "digest": <hex>, "signature": <DER hex>, "recoveryId": n}`.
 * Progress goes to stderr.
 * @module
 */
import process from "node:process";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { installPlatformBackends } from "../platform/mod.ts";
import { newMpcClient } from "../client/mpc_client.ts";
import { startLocalStack } from "./local_stack.ts";
import { opensslVerify } from "../testing/openssl.ts";
import { toHex } from "../core/bytes.ts";

async function main(): Promise<number> {
  installPlatformBackends();
  const runtime = typeof Deno !== "undefined" ? "deno" : "node";
  const t0 = Date.now();
  const say = (m: string) =>
    console.error(`[demo ${((Date.now() - t0) / 1000).toFixed(1)} s] ${m}`);
  say("generating a DEVELOPMENT 2-of-2 key offline (not for production)");
  const stack = await startLocalStack({ runtime, accounts: ["demo"], onProgress: say });
  try {
    say(
      `gateway ${stack.gatewayUrl} (room tokens on), service ${stack.serviceWebUrl} ` +
        `(gRPC ${stack.serviceGrpcUrl})`,
    );
    const client = newMpcClient({
      ...stack.clientConfig(await stack.clientKeyStore()),
      presignaturePool: { size: 1, lowWater: 1, batch: 1 }, // one is enough to show it
      onProgress: (e) => {
        if (e.type === "round-finished") say(`${e.protocol} round ${e.round} done`);
      },
    });
    const digest = toHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
    say(`signing digest ${digest}`);
    const sig = await client.signTx(digest, "demo");
    const ok = secp256k1.verify(
      Buffer.from(sig.compact, "hex"),
      Buffer.from(digest, "hex"),
      Buffer.from(sig.publicKey, "hex"),
      { prehash: false },
    );
    if (!ok) throw new Error("the signature does not verify");
    say("verified with @noble/curves");
    const o = opensslVerify(sig.publicKey, digest, sig.der, stack.dir);
    if (o === false) throw new Error("openssl refused the signature");
    say(o ? "verified with openssl" : "openssl not installed: skipped its check");
    // The fast path: a presignature made ahead, then a message signed in one round with it.
    const target = { account: "demo", hash: "keccak256" } as const;
    say("presigning ahead (background work of the client and the service)");
    await client.warmPresignatures(target);
    const message = new TextEncoder().encode(`wallet-mpc demo ${digest}`);
    const t1 = performance.now();
    const m = await client.signMessage(message, target);
    const ms = performance.now() - t1;
    await client.close();
    const mOk = secp256k1.verify(
      Buffer.from(m.compact, "hex"),
      Buffer.from(m.digest, "hex"),
      Buffer.from(m.publicKey, "hex"),
      { prehash: false },
    );
    if (!mOk || !m.pooled) throw new Error("the pooled message signature failed");
    say(`signed a message in one round with a presignature in ${ms.toFixed(0)} ms (verified)`);
    console.log(
      JSON.stringify({
        publicKey: sig.publicKey,
        digest,
        signature: sig.der,
        recoveryId: sig.recoveryId,
      }),
    );
    return 0;
  } finally {
    await stack.stop();
  }
}

main().then((code) => process.exit(code), (e) => {
  console.error(`demo failed: ${(e as Error)?.name}: ${(e as Error)?.message}`);
  process.exit(1);
});
