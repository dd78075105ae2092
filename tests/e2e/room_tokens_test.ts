/**
 * Room tokens as the default path, the whole product as processes (tools/local_stack.ts, under
 * the runtime of this test): a sign-gateway with `access.enabled` and no anonymous rooms, a
 * sign-service with the gateway's issuer secret. The gateway refuses a request without a token;
 * the client library signs (OpenRoom, then the session in the service's room with its token),
 * and so does the client CLI with no new flag; neither process prints a secret.
 * @module
 */
import "../../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { fromHex } from "../../core/bytes.ts";
import { newMpcClient } from "../../client/mpc_client.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import { bounded } from "../../testing/waits.ts";
import {
  ACCOUNT,
  auditLines,
  e2eAccounts,
  randomDigest,
  runClientCli,
  RUNTIME,
  waitAudit,
} from "./e2e_helpers.ts";

const SIGN_MS = 60_000;

describe(`room tokens end to end (${RUNTIME}: gateway access on, no anonymous rooms)`, () => {
  let stack: LocalStack | undefined;

  before(async () => {
    stack = await startLocalStack({ runtime: RUNTIME, preset: await e2eAccounts() });
  });

  after(async () => {
    await stack?.stop();
  });

  test("the gateway refuses a room request without a token (401): access is on", async () => {
    const res = await fetch(`${stack!.gatewayUrl}/rooms/${"ab".repeat(16)}/issue_unique_idx`, {
      method: "POST",
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error, "unauthorized");
    assert.ok(stack!.gatewayEnv.WALLET_MPC_GATEWAY_ISSUER_SECRET, "the stack made the secrets");
    assert.match(stack!.serviceOutput(), /"msg":"session rooms".*"opened_by":"service"/);
  });

  test("the client library signs: OpenRoom, then the session in the service's room", async () => {
    const s = stack!;
    const client = newMpcClient(s.clientConfig(await s.clientKeyStore()));
    const digest = randomDigest();
    const sig = await bounded(SIGN_MS, "signTx", client.signTx(digest, ACCOUNT));
    assert.ok(
      secp256k1.verify(fromHex(sig.compact), fromHex(digest), fromHex(sig.publicKey), {
        prehash: false,
      }),
    );
    const end = await waitAudit(s, "the sign", (l) => l.session_id === sig.sessionId);
    assert.equal(end.outcome, "ok");
    const lines = auditLines(s);
    const at = lines.findIndex((l) => l.session_id === sig.sessionId);
    const opened = lines.findIndex((l) => l.action === "open_room" && l.outcome === "ok");
    assert.ok(opened >= 0 && opened < at, "the client opened its room with the service first");
  });

  test("the client CLI signs with no new flag", async () => {
    const digest = randomDigest();
    const identityFile = join(stack!.dir, "client.age");
    writeFileSync(identityFile, `${stack!.clientAgeIdentity}\n`, { mode: 0o600 });
    const r = await runClientCli(
      stack!,
      identityFile,
      ["sign", "--account", ACCOUNT, "--digest", digest],
      {},
      SIGN_MS,
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    assert.ok(
      secp256k1.verify(fromHex(out.compact), fromHex(digest), fromHex(out.publicKey), {
        prehash: false,
      }),
      r.stdout,
    );
    const end = await waitAudit(stack!, "the CLI's sign", (l) => l.session_id === out.sessionId);
    assert.equal(end.outcome, "ok");
  });

  test("neither the gateway nor the service prints a room secret", () => {
    const s = stack!;
    const text = s.serviceOutput() + s.gateway.output();
    for (const [name, v] of Object.entries(s.gatewayEnv)) {
      if (name.endsWith("_SECRET")) assert.ok(!text.includes(v), `${name} in a process's output`);
    }
  });
});
