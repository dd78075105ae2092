/**
 * Failures of the processes around a session, with the gateway and the service as separate
 * processes under the runtime of this test:
 *
 * - the gateway killed (SIGKILL) in the middle of a signing session: with the memory backend the
 *   room's history dies with it, and the client's call fails cleanly (a TransportError or a
 *   ConnectError, bounded), the service audits `aborted` and keeps serving, and once a gateway
 *   listens on the same port again the next signature works without restarting anything; with
 *   the Redis backend and a gateway back on the same port within the retry budget, the same
 *   session resumes (Last-Event-ID) and completes;
 * - the service killed (SIGKILL) during a key refresh, at the moment its key store starts the
 *   atomic rewrite of its pending epoch: the key file is whole (old or with the new epoch
 *   pending, never a mix), decrypts and validates (`openKeyStore`), the old share stays current,
 *   the service starts again from it (removing the stray temp file) and the account signs;
 * - the service started with another age identity: it exits non-zero at start with
 *   `decrypt-failed` and prints no secret;
 * - (slow tier) key share files written by `keygen/main.ts offline` as a process, with real
 *   primes, load in the service and the client, and sign.
 * @module
 */
import "../../testing/setup.ts";
import { SLOW } from "../../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { ConnectError } from "@connectrpc/connect";
import { newMpcClient } from "../../client/mpc_client.ts";
import { fromHex } from "../../core/bytes.ts";
import { TransportError } from "../../core/errors.ts";
import { ageRecipientOf, generateAgeIdentity, openKeyStore } from "../../keystore/key_store.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import {
  DENO,
  type GatewayProcess,
  missing,
  NODE,
  type RedisProcess,
  ROOT,
  startGateway,
  startRedis,
} from "../../testing/processes.ts";
import { fixturePrimes, type PartyAccounts, secretsOf } from "../../testing/accounts.ts";
import {
  ACCOUNT,
  e2eAccounts,
  randomDigest,
  rejection,
  RUNTIME,
  serviceAgeIdentity,
  waitAudit,
} from "./e2e_helpers.ts";
import { bounded } from "../../testing/waits.ts";

const SIGN_MS = 60_000;

function verifies(sig: { compact: string; publicKey: string }, digest: string): boolean {
  return secp256k1.verify(fromHex(sig.compact), fromHex(digest), fromHex(sig.publicKey), {
    prehash: false,
  });
}

/** A failure the client library may report for a broken session: typed, with a clean message. */
function assertCleanFailure(e: Error, secrets: readonly string[]): void {
  assert.ok(
    e instanceof TransportError || e instanceof ConnectError,
    `expected a TransportError or a ConnectError, got ${e?.name}: ${e?.message}`,
  );
  for (const s of secrets) assert.ok(!e.message.includes(s), "a secret in the error message");
}

describe(`the gateway killed mid-session (${RUNTIME}, memory backend)`, () => {
  let accounts: PartyAccounts;
  let stack: LocalStack | undefined;
  let again: GatewayProcess | undefined;

  before(async () => {
    accounts = await e2eAccounts();
    stack = await startLocalStack({ runtime: RUNTIME, preset: accounts });
  });

  after(async () => {
    await again?.stop("SIGKILL");
    await stack?.stop();
  });

  test("signTx fails cleanly; the service audits aborted; a new gateway on the port signs", async (t) => {
    const s = stack!;
    let killed: Promise<unknown> | undefined;
    const client = newMpcClient({
      ...s.clientConfig(await s.clientKeyStore()),
      roundTimeoutMs: 20_000,
      onProgress: (e) => {
        if (e.type === "round-finished" && e.protocol === "sign" && e.round === 1) {
          killed ??= s.gateway.stop("SIGKILL");
        }
      },
    });
    const digest = randomDigest();
    const t0 = Date.now();
    const error = await rejection(
      45_000,
      "signTx with the gateway killed",
      client.signTx(digest, ACCOUNT),
    );
    assert.ok(killed, "the gateway was killed during the session");
    await killed;
    assertCleanFailure(error, [s.token, ...secretsOf(accounts[0].get(ACCOUNT)!)]);
    const line = await waitAudit(
      s,
      "the service's sign of the broken session",
      // The session's outcome, not its write-ahead "started" record.
      (l) => l.action === "sign" && l.digest === digest && l.outcome !== "started",
      45_000,
    );
    assert.equal(line.outcome, "aborted", JSON.stringify(line));
    t.diagnostic(`signTx failed after ${Date.now() - t0} ms: ${error.name}: ${error.message}`);
    t.diagnostic(`the service audited ${line.outcome} (${line.error_code})`);

    const health = await client.service.health({});
    assert.equal(health.status, "serving", "the service keeps serving");

    // A gateway back on the same port (the stack's room-token secrets): the service needs no
    // restart.
    again = await startGateway(RUNTIME, ["--port", String(s.gateway.port)], { ...s.gatewayEnv });
    const next = randomDigest();
    const sig = await bounded(
      SIGN_MS,
      "signTx after the gateway came back",
      client.signTx(next, ACCOUNT),
    );
    assert.ok(verifies(sig, next));
  });
});

describe(
  `the gateway killed and restarted on its port with Redis (${RUNTIME}): the session resumes`,
  {
    skip: missing("redis-server"),
  },
  () => {
    let redis: RedisProcess | undefined;
    let stack: LocalStack | undefined;
    let restarted: Promise<GatewayProcess> | undefined;
    let args: string[] = [];

    before(async () => {
      const accounts = await e2eAccounts();
      redis = await startRedis();
      args = [
        "--backend",
        "redis",
        "--redis-url",
        redis.url,
        "--set",
        `backend.redis.key_prefix=e2e${Date.now()}:`,
      ];
      stack = await startLocalStack({ runtime: RUNTIME, preset: accounts, gatewayArgs: args });
    });

    after(async () => {
      await restarted?.then((g) => g.stop("SIGKILL"), () => {});
      await stack?.stop();
      await redis?.dispose();
    });

    test("signTx completes across a SIGKILL and restart of the gateway", async (t) => {
      const s = stack!;
      let down = 0;
      const client = newMpcClient({
        ...s.clientConfig(await s.clientKeyStore()),
        onProgress: (e) => {
          if (e.type === "round-finished" && e.protocol === "sign" && e.round === 1 && !restarted) {
            down = Date.now();
            restarted = s.gateway.stop("SIGKILL").then(async () => {
              // The same secrets: the room tokens of the session stay valid (stateless).
              const g = await startGateway(
                RUNTIME,
                [...args, "--port", String(s.gateway.port)],
                { ...s.gatewayEnv },
              );
              t.diagnostic(`the gateway was down for ${Date.now() - down} ms`);
              return g;
            });
          }
        },
      });
      const digest = randomDigest();
      const sig = await bounded(
        SIGN_MS,
        "signTx across a gateway restart",
        client.signTx(digest, ACCOUNT),
      );
      assert.ok(restarted, "the gateway was restarted during the session");
      await restarted;
      assert.ok(verifies(sig, digest));
      const line = await waitAudit(s, "the resumed session", (l) => l.session_id === sig.sessionId);
      assert.equal(line.outcome, "ok");
    });
  },
);

/** A watcher process that SIGKILLs `pid` when a file matching `pattern` appears in `dir`. */
interface Killer {
  /** Resolves once the watcher is watching. */
  readonly ready: Promise<void>;
  /** The name of the file that triggered the kill, or null when the watcher ended without. */
  readonly done: Promise<string | null>;
  stop(): void;
}

function startKiller(dir: string, pattern: RegExp, pid: number): Killer {
  const script = `
    const fs = require("node:fs");
    const re = new RegExp(process.argv[2]);
    const pid = Number(process.argv[3]);
    fs.watch(process.argv[1], (_e, name) => {
      if (name && re.test(String(name))) {
        try { process.kill(pid, "SIGKILL"); } catch {}
        console.log("killed " + name);
        process.exit(0);
      }
    });
    console.log("watching");
  `;
  const p = spawn(NODE, ["-e", script, dir, pattern.source, String(pid)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  let onReady: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  p.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
    if (out.includes("watching")) onReady();
  });
  const done = new Promise<string | null>((resolve) =>
    p.once("close", () => {
      onReady();
      resolve(/killed (\S+)/.exec(out)?.[1] ?? null);
    })
  );
  return {
    ready,
    done,
    stop: () => {
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    },
  };
}

describe(`the service killed during a key refresh (${RUNTIME})`, () => {
  let accounts: PartyAccounts;
  let stack: LocalStack | undefined;
  let killer: Killer | undefined;

  before(async () => {
    accounts = await e2eAccounts();
    stack = await startLocalStack({ runtime: RUNTIME, preset: accounts });
  });

  after(async () => {
    killer?.stop();
    await stack?.stop();
  });

  test("SIGKILL as the key file is rewritten: the file stays whole, decrypts and validates", async (t) => {
    const s = stack!;
    const pid = s.servicePid;
    // The key store writes `.service_key_shares.json.<random>.tmp`, fsyncs it, renames it over
    // the file: a watcher kills the service the moment the temporary file appears. It runs in a
    // process of its own, because this one is busy with the client's side of the refresh.
    killer = startKiller(s.dir, /^\.service_key_shares\.json\..*\.tmp$/, pid);
    await killer.ready;
    const client = newMpcClient({
      ...s.clientConfig(await s.clientKeyStore()),
      generatePrimes: fixturePrimes(2),
    });
    const error = await rejection(
      180_000,
      "refresh with the service killed",
      client.refresh(ACCOUNT),
    );
    const killedAt = await bounded(10_000, "the killer's report", killer.done);
    assert.ok(
      killedAt,
      `the service was killed while writing (refresh failed with ${error.message})`,
    );
    assertCleanFailure(error, [s.token]);
    await s.stopService("SIGKILL"); // reap it

    const old = accounts[1].get(ACCOUNT)!.keyShare;
    // Before the store is opened: opening removes a stray temp file.
    const renamed = !readdirSync(s.dir).includes(killedAt);
    const store = await openKeyStore({
      path: s.serviceKeyFile,
      decryptor: { identity: serviceAgeIdentity(s) },
      partyIndex: 1,
      parties: 2,
    });
    assert.deepEqual(store.accounts(), [ACCOUNT]);
    const now = store.get(ACCOUNT)!.keyShare;
    assert.ok(now.publicKey.equals(old.publicKey), "the same key");
    t.diagnostic(
      `killed ${renamed ? "after" : "before"} the rename; refresh failed with ${error.message}`,
    );
    // The first write of a refresh stores the new epoch as PENDING (two-phase commit): whether
    // the rename happened or not, the current share is the old one, with its identities.
    assert.equal(now.x, old.x, "the old share is current");
    assert.deepEqual(store.get(ACCOUNT)!.identity, accounts[1].get(ACCOUNT)!.identity);
    const epochs = store.record(ACCOUNT)!.epochs;
    assert.equal(
      epochs.length,
      renamed ? 2 : 1,
      "the new epoch is pending iff the rename happened",
    );

    await s.startService();
    const health = await client.service.health({});
    assert.equal(health.accounts, 1, "the service starts from the file (a stray .tmp is removed)");
    assert.ok(!readdirSync(s.dir).includes(killedAt), "the stray temp file is removed at open");
    // The next session reconciles the epochs (the newest both hold) and signs.
    const digest = randomDigest();
    const sig = await bounded(SIGN_MS, "signTx after the restart", client.signTx(digest, ACCOUNT));
    assert.ok(verifies(sig, digest));
  });
});

/** Runs the service until it exits (bounded); returns its exit code and output. */
function runServiceToExit(
  env: Record<string, string>,
  ms = 60_000,
): Promise<{ code: number | null; output: string }> {
  const main = join(ROOT, "service/main.ts");
  const [cmd, args] = RUNTIME === "deno"
    ? [DENO, ["run", "-A", "--no-check", "--unstable-no-legacy-abort", main]]
    : [NODE, ["--import", "tsx", main]];
  const p: ChildProcess = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env as Record<string, string>, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  p.stdout!.on("data", (b: Buffer) => (output += b.toString()));
  p.stderr!.on("data", (b: Buffer) => (output += b.toString()));
  const exited = new Promise<{ code: number | null; output: string }>((resolve) =>
    p.once("close", (code) => resolve({ code, output }))
  );
  return bounded(ms, "the service to exit", exited).finally(() => {
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  });
}

describe(`the service with a wrong age identity (${RUNTIME})`, () => {
  let accounts: PartyAccounts;
  let stack: LocalStack | undefined;

  before(async () => {
    accounts = await e2eAccounts();
    stack = await startLocalStack({ runtime: RUNTIME, preset: accounts });
    await stack.stopService();
  });

  after(async () => {
    await stack?.stop();
  });

  test("exits non-zero at start with decrypt-failed, and prints no secret", async () => {
    const s = stack!;
    const wrong = await generateAgeIdentity();
    const wrongFile = join(s.dir, "wrong.age");
    writeFileSync(wrongFile, `${wrong.identity}\n`, { mode: 0o600 });
    const { code, output } = await runServiceToExit({
      WALLET_MPC_SERVICE_CONFIG: join(ROOT, "config/sign-service.yaml"),
      WALLET_MPC_SERVICE_KEY_SHARE_FILE: s.serviceKeyFile,
      WALLET_MPC_SERVICE__GATEWAY__URL: s.gatewayUrl,
      WALLET_MPC_SERVICE__SERVER__PORT: "0",
      WALLET_MPC_SERVICE__SERVER__WEB_PORT: "0",
      WALLET_MPC_SERVICE__KEY_STORE__AGE_IDENTITY_FILE: wrongFile,
      WALLET_MPC_SERVICE__AUTH__TOKENS_FILE: join(s.dir, "callers.yaml"),
      WALLET_MPC_SERVICE__AUDIT__FILE: s.auditFile,
    });
    assert.notEqual(code, 0, output);
    assert.match(output, /decrypt-failed/);
    assert.match(output, /not a recipient/);
    assert.doesNotMatch(output, /"msg":"listening"/);
    for (
      const secret of [
        wrong.identity,
        serviceAgeIdentity(s),
        s.token,
        ...secretsOf(accounts[1].get(ACCOUNT)!),
      ]
    ) {
      assert.ok(!output.includes(secret), "a secret in the service's output");
    }
  });
});

describe(`key share files of keygen/main.ts offline (${RUNTIME}, real primes)`, {
  skip: !SLOW && "slow tier: the keygen process generates real 1536-bit safe primes",
}, () => {
  let stack: LocalStack | undefined;
  let out: string | undefined;

  before(async () => {
    stack = await startLocalStack({ runtime: RUNTIME, preset: await e2eAccounts() });
    out = mkdtempSync(join(tmpdir(), "wallet-mpc-keygen-"));
  });

  after(async () => {
    await stack?.stop();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  test("load in the service and the client, and sign", async () => {
    const s = stack!;
    const main = join(ROOT, "keygen/main.ts");
    const argv = [
      "offline",
      "--accounts",
      "dev-1",
      "--out-dir",
      out!,
      "--client-recipient",
      await ageRecipientOf(s.clientAgeIdentity),
      "--service-recipient",
      await ageRecipientOf(serviceAgeIdentity(s)),
    ];
    const [cmd, args] = RUNTIME === "deno"
      ? [DENO, ["run", "-A", "--no-check", main, ...argv]]
      : [NODE, ["--import", "tsx", main, ...argv]];
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
    p.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
    const code = await bounded(
      600_000,
      "keygen offline",
      new Promise<number | null>((r) => p.once("close", (c) => r(c))),
    ).finally(() => {
      if (p.exitCode === null) p.kill("SIGKILL");
    });
    assert.equal(code, 0, stderr);
    assert.match(stderr, /NOT FOR PRODUCTION/);
    const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(result.accounts, ["dev-1"]);

    await s.stopService();
    copyFileSync(join(out!, "service_key_shares.json"), s.serviceKeyFile);
    copyFileSync(join(out!, "client_key_shares.json"), s.clientKeyFile);
    await s.startService();
    const keyStore = await s.clientKeyStore();
    assert.deepEqual(await keyStore.ids(), ["dev-1"]);
    const client = newMpcClient(s.clientConfig(keyStore));
    const list = await client.service.listAccounts({}, {
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.deepEqual(list.accounts.map((a) => [a.accountId, a.publicKey]), [
      ["dev-1", result.publicKey],
    ]);
    const digest = randomDigest();
    const sig = await bounded(SIGN_MS, "signTx with the new files", client.signTx(digest, "dev-1"));
    assert.equal(sig.publicKey, result.publicKey);
    assert.ok(verifies(sig, digest));
  });
});
