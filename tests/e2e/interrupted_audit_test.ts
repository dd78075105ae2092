/**
 * A signing session cut by a crash of the sign-service is audited: its write-ahead `started`
 * line is on disk before the session computes, the process is killed with SIGKILL while the
 * session runs, and the restarted service writes an `interrupted` line with the same `call_id`
 * before it takes requests (service/audit.ts, "Write-ahead records of sessions"). Real
 * processes (tools/local_stack.ts): slow tier.
 * @module
 */
import { SLOW } from "../../testing/setup.ts";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { newMpcClient } from "../../client/mpc_client.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import {
  ACCOUNT,
  auditLines,
  e2eAccounts,
  randomDigest,
  RUNTIME,
  waitAudit,
} from "./e2e_helpers.ts";
import { bounded } from "../../testing/waits.ts";

describe("audit of a session cut by a crash", { skip: !SLOW }, () => {
  let stack: LocalStack | undefined;
  after(async () => {
    await stack?.stop();
  });

  test("SIGKILL mid-session: the restarted service audits the session interrupted", async () => {
    stack = await startLocalStack({ runtime: RUNTIME, preset: await e2eAccounts() });
    const s = stack;
    const client = newMpcClient(s.clientConfig(await s.clientKeyStore()));
    const digest = randomDigest();
    const call = client.signTx(digest, ACCOUNT).then(() => undefined, (e: unknown) => e);
    const started = await waitAudit(
      s,
      "the session's started line",
      (l) => l.digest === digest && l.outcome === "started",
      60_000,
    );
    assert.equal(typeof started.call_id, "string");
    await s.stopService("SIGKILL");
    const failed = await bounded(120_000, "the client's call after the crash", call);
    assert.ok(failed instanceof Error, "the call failed with the service");
    assert.ok(
      !auditLines(s).some((l) => l.call_id === started.call_id && l.outcome !== "started"),
      "no end line: the process died",
    );
    await s.startService();
    const interrupted = await waitAudit(
      s,
      "the interrupted line",
      (l) => l.call_id === started.call_id && l.outcome === "interrupted",
    );
    assert.equal(interrupted.digest, digest);
    assert.equal(interrupted.action, "sign");
    assert.equal(interrupted.error_code, "process-died");
    const lines = auditLines(s);
    const k = lines.findIndex((l) => l.call_id === started.call_id && l.outcome === "interrupted");
    assert.equal(lines[k + 1]?.action, "service_start", "then the start record");
    // The restarted service signs.
    const sig = await client.signTx(randomDigest(), ACCOUNT);
    assert.match(sig.der, /^30/);
  });
});
