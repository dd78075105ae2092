/**
 * The whole product as separate processes, once with the gateway and the service under Deno and
 * once under Node: the client library (Connect over HTTP/1.1) signs through them, the `openssl`
 * command line tool verifies the DER signature over the raw digest, a signature at a derivation
 * path verifies under the key the service's GetPublicKey returns, ListAccounts shows the account,
 * and the audit file holds an `ok` line with the session id and no token or share.
 * @module
 */
import "../../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { newMpcClient } from "../../client/mpc_client.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import { type PartyAccounts, secretsOf } from "../../testing/accounts.ts";
import { opensslMissing, opensslVerify } from "../../testing/openssl.ts";
import { ACCOUNT, auditLines, e2eAccounts, randomDigest, waitAudit } from "./e2e_helpers.ts";
import { bounded } from "../../testing/waits.ts";
import { fromHex } from "../../core/bytes.ts";

const SIGN_MS = 60_000;
const NO_OPENSSL = opensslMissing();

for (const runtime of ["deno", "node"] as const) {
  describe(`the local stack under ${runtime}`, () => {
    let accounts: PartyAccounts;
    let stack: LocalStack | undefined;
    const signed: { digest: string; sessionId: string; der: string }[] = [];

    before(async () => {
      accounts = await e2eAccounts();
      stack = await startLocalStack({ runtime, preset: accounts });
    });

    after(async () => {
      await stack?.stop();
    });

    const client = async () => newMpcClient(stack!.clientConfig(await stack!.clientKeyStore()));

    test("signTx signs; openssl verifies the DER signature over the raw digest", {
      skip: NO_OPENSSL,
    }, async () => {
      const digest = randomDigest();
      const sig = await bounded(SIGN_MS, "signTx", (await client()).signTx(digest, ACCOUNT));
      signed.push({ digest, sessionId: sig.sessionId, der: sig.der });
      assert.equal(sig.publicKey, accounts[0].get(ACCOUNT)!.keyShare.publicKey.toHex(true));
      assert.equal(opensslVerify(sig.publicKey, digest, sig.der), true, "openssl verifies");
      // A flipped digest bit must not verify: openssl is really checking.
      const other = (parseInt(digest[0], 16) ^ 1).toString(16) + digest.slice(1);
      assert.equal(opensslVerify(sig.publicKey, other, sig.der), false, "openssl refuses");
    });

    test("a signature at m/0/7 verifies under the key GetPublicKey returns", async () => {
      const c = await client();
      const headers = { authorization: `Bearer ${stack!.token}` };
      const pk = await c.service.getPublicKey(
        { accountId: ACCOUNT, derivationPath: "m/0/7" },
        { headers },
      );
      assert.equal(pk.derivationPath, "m/0/7");
      assert.equal(pk.publicKey, await c.getPublicKey(ACCOUNT, { path: "m/0/7" }));
      assert.notEqual(pk.publicKey, await c.getPublicKey(ACCOUNT), "a child key, not the root");
      assert.equal(pk.address, await c.getAddress(ACCOUNT, { path: "m/0/7" }));
      const digest = randomDigest();
      const sig = await bounded(
        SIGN_MS,
        "signTx at m/0/7",
        c.signTx(`0x${digest}`, ACCOUNT, { path: "m/0/7" }),
      );
      signed.push({ digest, sessionId: sig.sessionId, der: sig.der });
      assert.equal(sig.publicKey, pk.publicKey);
      assert.ok(
        secp256k1.verify(fromHex(sig.compact), fromHex(digest), fromHex(pk.publicKey), {
          prehash: false,
        }),
      );
      if (!NO_OPENSSL) assert.equal(opensslVerify(pk.publicKey, digest, sig.der), true);
    });

    test("ListAccounts and Health answer", async () => {
      const c = await client();
      const list = await c.service.listAccounts({}, {
        headers: { authorization: `Bearer ${stack!.token}` },
      });
      assert.deepEqual(list.accounts.map((a) => a.accountId), [ACCOUNT]);
      assert.equal(list.accounts[0].publicKey, await c.getPublicKey(ACCOUNT));
      assert.equal(list.accounts[0].address, await c.getAddress(ACCOUNT));
      const health = await c.service.health({});
      assert.equal(health.status, "serving");
      assert.equal(health.partyIndex, 1);
      assert.equal(health.accounts, 1);
    });

    test("the audit file has an ok line per signature and no secret", async () => {
      assert.ok(signed.length > 0, "an earlier test signed");
      for (const s of signed) {
        const line = await waitAudit(
          stack!,
          `sign ok in session ${s.sessionId}`,
          (l) => l.action === "sign" && l.session_id === s.sessionId,
        );
        assert.equal(line.outcome, "ok");
        assert.equal(line.caller, "local-client");
        assert.equal(line.account, ACCOUNT);
        assert.equal(line.digest, s.digest);
      }
      assert.ok(auditLines(stack!).some((l) => l.action === "list_accounts" && l.outcome === "ok"));
      const text = [
        JSON.stringify(auditLines(stack!)),
        stack!.serviceOutput(),
        stack!.gateway.output(),
      ].join("\n");
      for (
        const secret of [
          stack!.token,
          ...secretsOf(accounts[1].get(ACCOUNT)!),
          ...secretsOf(accounts[0].get(ACCOUNT)!),
        ]
      ) {
        assert.ok(!text.includes(secret), "a token or a share leaked into the audit or the logs");
      }
    });
  });
}
