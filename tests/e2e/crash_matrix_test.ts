/**
 * The crash-point matrix of the key lifecycle (docs/key-lifecycle.md): real processes (a
 * gateway, a sign-service, the client CLI), one of them killed with SIGKILL at a named point of
 * key generation, refresh or a key store write (`WALLET_MPC_CRASH_AT`, platform/crash_hook.ts).
 * After each crash the killed process is started again with no point armed and the next attempt
 * of the client CLI signs, verified by the `openssl` CLI, with no manual step: `sign`, or, when
 * a key generation never reached the client durably, the `keygen` its error names, then `sign`.
 * Both parties then hold exactly one epoch, the same one.
 *
 * The processes generate real safe primes for key generation and refresh (about a minute per row
 * on two cores), so CI runs one row in the fast tier and eight (one per kind of state after the
 * crash) in the slow tier, under the Deno runner only (its processes are Deno's; the Node runner
 * would repeat the same processes). `WALLET_MPC_CRASH_MATRIX=all` runs all 22 rows,
 * `WALLET_MPC_CRASH_ROWS="<op> <side> <point>,..."` the rows named.
 * @module
 */
import { SLOW } from "../../testing/setup.ts";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { statement } from "../../core/account_records.ts";
import type { CrashPoint } from "../../core/account_records.ts";
import { openKeyStore } from "../../keystore/key_store.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import { opensslMissing, opensslVerify } from "../../testing/openssl.ts";
import {
  ACCOUNT,
  e2eAccounts,
  randomDigest,
  runClientCli,
  RUNTIME,
  serviceAgeIdentity,
} from "./e2e_helpers.ts";

interface Case {
  readonly op: "keygen" | "refresh";
  readonly side: "client" | "service";
  readonly point: CrashPoint | `${CrashPoint}#${number}`;
}

const STEPS = [
  "after-pending-write",
  "after-commit-sent",
  "after-commit-received",
  "after-promote",
];
const ALL: Case[] = [
  ...(["refresh", "keygen"] as const).flatMap((op) =>
    (["client", "service"] as const).flatMap((side) =>
      STEPS.map((s): Case => ({ op, side, point: `${op}:${s}` as CrashPoint }))
    )
  ),
  // Key store writes: the pending write (#1) and the promotion (#2), mid-rename and after it
  // (the lock file is then left behind by a dead process: stale-lock recovery).
  ...(["client", "service"] as const).flatMap((side) =>
    (["keystore:before-rename#1", "keystore:after-rename#1", "keystore:before-rename#2"] as const)
      .map((point): Case => ({ op: "refresh", side, point }))
  ),
];
/** The fast tier's row, and the slow tier's (one per kind of state after the crash). */
const FAST = ["refresh client refresh:after-commit-sent"];
const SLOW_ROWS = [
  ...FAST,
  "refresh client refresh:after-pending-write",
  "refresh service refresh:after-commit-received",
  "refresh service refresh:after-promote",
  "keygen client keygen:after-pending-write",
  "keygen service keygen:after-commit-sent",
  "refresh service keystore:before-rename#1",
  "refresh client keystore:after-rename#1",
  // The client dies before its pending write lands: caught only if the service waits for the
  // client's commit confirmation before promoting (checked by promoting early: no common epoch).
  "refresh client keystore:before-rename#1",
];
const FULL = process.env.WALLET_MPC_CRASH_MATRIX === "all";
/** `WALLET_MPC_CRASH_ROWS="refresh service refresh:after-promote,..."` runs the rows named. */
const ROWS = process.env.WALLET_MPC_CRASH_ROWS?.split(",").map((r) => r.trim());
const CASES = ROWS
  ? ALL.filter((c) => ROWS.includes(`${c.op} ${c.side} ${c.point}`))
  : FULL
  ? ALL
  : ALL.filter((c) => (SLOW ? SLOW_ROWS : FAST).includes(`${c.op} ${c.side} ${c.point}`));

const STEP_MS = 240_000;

/** Runs the client CLI against the stack, bounded (e2e_helpers.ts). */
const runClient = (
  stack: LocalStack,
  identityFile: string,
  args: string[],
  env: Record<string, string> = {},
) => runClientCli(stack, identityFile, args, env, STEP_MS);

/** What each party holds of `account` (statements), read from the files. */
async function held(stack: LocalStack, account: string, clientIdentity: string) {
  const client = await openKeyStore({
    path: stack.clientKeyFile,
    decryptor: { identity: clientIdentity },
    partyIndex: 0,
  });
  const service = await openKeyStore({
    path: stack.serviceKeyFile,
    decryptor: { identity: serviceAgeIdentity(stack) },
    partyIndex: 1,
  });
  const c = client.record(account);
  const s = service.record(account);
  return { client: c && statement(c), service: s && statement(s) };
}

describe(`crash-point matrix of the key lifecycle (${RUNTIME} processes)`, {
  skip: opensslMissing() ??
    (RUNTIME === "node" && !FULL && !ROWS
      ? "run by the Deno runner (the same processes)"
      : undefined),
}, () => {
  const stacks: LocalStack[] = [];
  after(async () => {
    for (const s of stacks) await s.stop().catch(() => {});
  });

  for (const c of CASES) {
    test(`${c.op}: SIGKILL of the ${c.side} at ${c.point}, then the next attempt signs`, async (t) => {
      const accounts = await e2eAccounts();
      const account = c.op === "keygen" ? "fresh" : ACCOUNT;
      const stack = await startLocalStack({
        runtime: RUNTIME,
        preset: accounts,
        serviceEnv: c.side === "service" ? { WALLET_MPC_CRASH_AT: c.point } : {},
      });
      stacks.push(stack);
      const idFile = join(stack.dir, "client.age");
      writeFileSync(idFile, stack.clientAgeIdentity + "\n", { mode: 0o600 });

      // 1. The operation, with the crash armed on one side.
      const first = await runClient(
        stack,
        idFile,
        [c.op, "--account", account],
        c.side === "client" ? { WALLET_MPC_CRASH_AT: c.point } : {},
      );
      if (c.side === "client") {
        assert.equal(first.signal, "SIGKILL", `the client crashed: ${first.stderr.slice(-800)}`);
      } else {
        assert.match(stack.serviceOutput(), /crash point .*: SIGKILL/, "the service crashed");
        assert.notEqual(first.code, 0, "the client saw the service die");
        await stack.stopService("SIGKILL"); // reap it
        await stack.startService({ WALLET_MPC_CRASH_AT: "" });
      }
      t.diagnostic(
        `after the crash: ${JSON.stringify(await held(stack, account, stack.clientAgeIdentity))}`,
      );

      // 2. The next attempt: sign; a key generation the client never stored says what to run.
      const digest = randomDigest();
      let sign = await runClient(stack, idFile, ["sign", "--account", account, "--digest", digest]);
      if (sign.code !== 0 && c.op === "keygen" && /run keygen again/.test(sign.stderr)) {
        t.diagnostic(`sign said: ${sign.stderr.trim().split("\n").pop()}`);
        const again = await runClient(stack, idFile, ["keygen", "--account", account]);
        assert.equal(again.code, 0, `keygen again: ${again.stderr.slice(-800)}`);
        sign = await runClient(stack, idFile, ["sign", "--account", account, "--digest", digest]);
      }
      assert.equal(sign.code, 0, `sign after the crash: ${sign.stderr.slice(-1200)}`);
      const out = JSON.parse(sign.stdout.trim().split("\n").pop()!);
      assert.equal(opensslVerify(out.publicKey, digest, out.der), true, "openssl verifies");

      // 3. Both parties settled on one and the same epoch.
      const h = await held(stack, account, stack.clientAgeIdentity);
      assert.equal(h.client?.length, 1);
      assert.deepEqual(h.client, h.service);
      assert.equal(h.client[0].state, "current");
      await stack.stop();
      stacks.splice(stacks.indexOf(stack), 1);
    });
  }
});
