/**
 * Distributed key generation with the RUNNING service (separate gateway and service processes):
 * the client and the service run key generation and aux info through the gateway, each keeps its
 * own share; the new account then signs (verified with @noble/curves), the service's share
 * survives a restart (it was written encrypted, atomically, and loads again), a second keygen of
 * the same id is ALREADY_EXISTS, and a refresh keeps the public key and still signs.
 *
 * This is the one distributed key generation of the project: `deno task client keygen`
 * (client/cli.ts) runs this `client.keygen` (the former `keygen distributed` duplicate is gone).
 *
 * The client uses fixture primes (testing/fixtures); the service generates real 1536-bit safe
 * primes itself (four: keygen and refresh), about 1.5 minutes per runtime, so this is slow tier.
 * @module
 */
import { SLOW } from "../../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { MemoryKeyStore, newMpcClient } from "../../client/mpc_client.ts";
import { fromHex, toHex } from "../../core/bytes.ts";
import type { AccountEntry } from "../../core/keyshare.ts";
import { fixturePrimes } from "../../testing/accounts.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";

for (const runtime of ["deno", "node"] as const) {
  describe(`distributed keygen with a ${runtime} service`, {
    skip: SLOW ? false : "slow tier (the service generates real safe primes)",
  }, () => {
    let stack: LocalStack;
    const keyStore = new MemoryKeyStore();
    const primes = fixturePrimes();
    const empty = () => new Map<string, AccountEntry>();
    before(async () => {
      stack = await startLocalStack({ runtime, preset: [empty(), empty()] });
    });
    after(async () => {
      await stack?.stop();
    });

    const client = () => newMpcClient({ ...stack.clientConfig(keyStore), generatePrimes: primes });

    test("keygen makes an account both parties hold; it signs, survives a restart, refreshes", async () => {
      const { publicKey } = await client().keygen("fresh-1");
      assert.match(publicKey, /^0[23][0-9a-f]{64}$/);
      const entry = await keyStore.get("fresh-1");
      assert.ok(entry?.identity, "the client pinned both identities");
      assert.equal(toHex(entry.keyShare.publicKey.toBytes(true)), publicKey);

      const digest = toHex(crypto.getRandomValues(new Uint8Array(32)));
      const sig = await client().signTx(digest, "fresh-1");
      assert.equal(sig.publicKey, publicKey);
      assert.ok(
        secp256k1.verify(fromHex(sig.compact), fromHex(digest), fromHex(publicKey), {
          prehash: false,
        }),
      );

      // The service wrote its share: after a restart it still signs with it.
      await stack.stopService();
      await stack.startService();
      const again = await client().signTx(digest, "fresh-1", { path: "m/3" });
      assert.notEqual(again.publicKey, publicKey);

      await assert.rejects(
        client().keygen("fresh-1"),
        (e: unknown) => e instanceof Error && /exists locally/.test(e.message),
      );
      await assert.rejects(
        client().service.keygen(
          { accountId: "fresh-1", roomId: "ab".repeat(16), clientIdentityKey: "11".repeat(32) },
          { headers: { authorization: `Bearer ${stack.token}` } },
        ),
        (e: unknown) => e instanceof ConnectError && e.code === Code.AlreadyExists,
      );

      const refreshed = await client().refresh("fresh-1");
      assert.equal(refreshed.publicKey, publicKey);
      const after = await keyStore.get("fresh-1");
      assert.notEqual(after!.keyShare.x, entry.keyShare.x, "the share changed");
      const sig3 = await client().signTx(digest, "fresh-1");
      assert.ok(
        secp256k1.verify(fromHex(sig3.compact), fromHex(digest), fromHex(publicKey), {
          prehash: false,
        }),
      );
    });
  });
}
