/**
 * Presignature pools through real processes: a sign-gateway and a sign-service as child
 * processes under the runtime of this test (room tokens on), the client library in this process
 * with background presigning (pools of one presignature per target).
 *
 * - Warmed pools sign an EIP-191 message in one round (`pooled`); the signature verifies with
 *   noble, with ethers' `verifyMessage` (its own EIP-191 hashing and recovery) and with the
 *   `openssl` CLI over the digest ethers computed.
 * - The service killed (SIGKILL) right after the pools are warm and started again on the same
 *   files: its unused presignatures were in memory only, so the next message signs in full
 *   (`pooled` false), the client's stale copy is dropped and never reaches the journal, and
 *   pooled signing resumes once the pools refill.
 * - The service killed during a pooled `signMessage`, at the moment its journal holds the used
 *   presignature id (the client's party is held at its own `take`, so the service's session
 *   cannot end before the kill): the call fails, and after the restart the id is durably used
 *   (the replayed journal refuses it, the service refuses a SignMessage naming it) and signing
 *   works again, pooled.
 *
 * Throughout, the service's journal (platform/presignature_journal.ts) is read as a file: every
 * used id appears once, and every id the client signed with is in it.
 * @module
 */
import "../../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { hashMessage as ethersHashMessage, Signature, verifyMessage } from "ethers";
import { type MpcClient, newMpcClient } from "../../client/mpc_client.ts";
import { fromHex, toHex } from "../../core/bytes.ts";
import {
  MemoryPresignatureStore,
  type PresignatureRequest,
} from "../../core/presignature_store.ts";
import type { Presignature } from "../../core/protocols/presign.ts";
import { openPresignatureJournal } from "../../platform/presignature_journal.ts";
import { dealPresignatures } from "../../testing/fixtures/protocol_fixtures.ts";
import { opensslMissing, opensslVerify } from "../../testing/openssl.ts";
import { until } from "../../testing/processes.ts";
import { bounded } from "../../testing/waits.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import {
  ACCOUNT,
  auditLines,
  e2eAccounts,
  randomDigest,
  rejection,
  RUNTIME,
} from "./e2e_helpers.ts";

/** Bound of one signature or one warm-up (a presigning session) through the processes. */
const CALL_MS = 120_000;
const NO_OPENSSL = opensslMissing();
const TARGET = { account: ACCOUNT, hash: "keccak256", path: "m/0/7" } as const;

/**
 * The client's presignature store, recording the ids it consumed (a successful `take`: signing
 * with it, or dropping it), with a one-shot hook that runs before the next `take`.
 */
class RecordingStore extends MemoryPresignatureStore {
  /** Ids consumed, in order. */
  readonly consumed: string[] = [];
  /** Runs (once) before the next take: the test holds the client's party here. */
  beforeTake: ((id: string) => Promise<void>) | undefined;

  override async take(id: string, expected: PresignatureRequest): Promise<Presignature> {
    const hook = this.beforeTake;
    this.beforeTake = undefined;
    await hook?.(id);
    const p = await super.take(id, expected);
    this.consumed.push(id);
    return p;
  }
}

/** The service's journal file (service/start.ts: beside its key share file). */
function journalPath(stack: LocalStack): string {
  return `${stack.serviceKeyFile}.presignatures.journal`;
}

/** The ids of the journal's `used` events, in order (its format: presignature_journal.ts). */
function journalUsed(stack: LocalStack): string[] {
  let text = "";
  try {
    text = readFileSync(journalPath(stack), "utf8");
  } catch {
    return [];
  }
  const ids: string[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const e = JSON.parse(line);
    assert.equal(e.v, 1, `a journal line of version 1: ${line}`);
    if (e.event === "used") ids.push(e.id);
  }
  return ids;
}

/** Every used id of the journal appears once, and `signed` are all in it. */
function assertJournal(stack: LocalStack, signed: readonly string[]): string[] {
  const used = journalUsed(stack);
  const seen = new Set<string>();
  for (const id of used) {
    assert.ok(!seen.has(id), `presignature ${id} is in the journal twice`);
    seen.add(id);
  }
  for (const id of signed) assert.ok(seen.has(id), `the signed presignature ${id} is not used`);
  return used;
}

/** An EIP-191 personal message: `"\x19Ethereum Signed Message:\n" + length` then the bytes. */
function eip191(text: string): Uint8Array {
  const body = new TextEncoder().encode(text);
  const prefix = new TextEncoder().encode(`\x19Ethereum Signed Message:\n${body.length}`);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix);
  out.set(body, prefix.length);
  return out;
}

/** Whether noble verifies `sig` over its digest under its public key. */
function nobleVerifies(sig: { compact: string; digest: string; publicKey: string }): boolean {
  return secp256k1.verify(fromHex(sig.compact), fromHex(sig.digest), fromHex(sig.publicKey), {
    prehash: false,
  });
}

/** The address ethers recovers from an EIP-191 signature of `text`. */
function ethersSigner(text: string, sig: { r: string; s: string; v: number }): string {
  return verifyMessage(text, Signature.from({ r: `0x${sig.r}`, s: `0x${sig.s}`, v: sig.v }));
}

describe(`presignature pools through real processes (${RUNTIME})`, () => {
  let stack: LocalStack | undefined;
  let client: MpcClient | undefined;
  const store = new RecordingStore();
  /** Ids the client signed with (pooled signatures). */
  const signed: string[] = [];
  let address = "";

  before(async () => {
    const accounts = await e2eAccounts();
    stack = await startLocalStack({
      runtime: RUNTIME,
      preset: accounts,
      // Every session is two requests (OpenRoom, then the call): keep the bucket out of the way.
      serviceEnv: {
        WALLET_MPC_SERVICE__RATE_LIMIT__PER_CALLER_PER_MINUTE: "6000",
        WALLET_MPC_SERVICE__RATE_LIMIT__BURST: "1000",
      },
    });
    client = newMpcClient({
      ...stack.clientConfig(await stack.clientKeyStore()),
      presignatures: store,
      presignaturePool: { size: 1, lowWater: 1, batch: 1, cpuShare: 1 },
    });
    address = await client.getAddress(ACCOUNT, { path: TARGET.path });
  });

  after(async () => {
    await client?.close();
    await stack?.stop();
  });

  /** Warms the pools, then signs `text` as an EIP-191 message; returns it and the id consumed. */
  async function warmAndSign(text: string) {
    await bounded(CALL_MS, "warmPresignatures", client!.warmPresignatures(TARGET));
    assert.equal(client!.presignatureStats().pool.held, 1, "the client's pool is warm");
    const from = store.consumed.length;
    const sig = await bounded(CALL_MS, "signMessage", client!.signMessage(eip191(text), TARGET));
    const consumed = store.consumed.slice(from);
    assert.equal(consumed.length, 1, "the call consumed one presignature of the client");
    assert.ok(nobleVerifies(sig), "noble verifies");
    assert.equal(ethersSigner(text, sig), address, "ethers recovers the account's address");
    return { sig, id: consumed[0] };
  }

  test("warmed pools sign an EIP-191 message in one round; noble, ethers and openssl verify", async () => {
    const text = `pooled ${randomDigest()}`;
    const { sig, id } = await warmAndSign(text);
    assert.equal(sig.pooled, true);
    signed.push(id);
    assert.equal(`0x${sig.digest}`, ethersHashMessage(text), "the digest is EIP-191's");
    assert.equal(sig.publicKey, await client!.getPublicKey(ACCOUNT, { path: TARGET.path }));
    // A signature of another message recovers another address: ethers really checks.
    assert.notEqual(ethersSigner(`${text}.`, sig), address);
    if (!NO_OPENSSL) {
      const digest = ethersHashMessage(text).slice(2);
      assert.equal(opensslVerify(sig.publicKey, digest, sig.der), true, "openssl verifies");
    }
    const lines = auditLines(stack!).filter((l) => l.outcome !== "started");
    assert.ok(
      lines.some((l) =>
        l.action === "sign_message" && l.outcome === "ok" &&
        l.session_id === sig.sessionId && l.digest === sig.digest
      ),
      "the service audited the one-round signature",
    );
    assert.ok(!lines.some((l) => l.action === "sign"), "no full signing");
    assertJournal(stack!, signed);
  });

  test("SIGKILL right after warming: the next message signs in full, no id used twice", async () => {
    await bounded(CALL_MS, "warmPresignatures", client!.warmPresignatures(TARGET));
    assert.equal(client!.presignatureStats().pool.held, 1);
    const full = client!.presignatureStats().full;
    await stack!.stopService("SIGKILL");
    await stack!.startService();

    const text = `after a restart ${randomDigest()}`;
    const from = store.consumed.length;
    const sig = await bounded(CALL_MS, "signMessage", client!.signMessage(eip191(text), TARGET));
    assert.equal(sig.pooled, false, "the service's copy died with it: signed in full");
    assert.ok(nobleVerifies(sig));
    assert.equal(ethersSigner(text, sig), address);
    assert.equal(client!.presignatureStats().full, full + 1);
    const stale = store.consumed.slice(from);
    assert.equal(stale.length, 1, "the client dropped its copy");
    const used = assertJournal(stack!, signed);
    assert.ok(!used.includes(stale[0]), "the stale presignature was never used by the service");

    // The pools refill from the restarted service, and pooled signing resumes.
    const again = await warmAndSign(`pooled again ${randomDigest()}`);
    assert.equal(again.sig.pooled, true);
    assert.ok(!stale.includes(again.id) && !signed.includes(again.id), "a fresh presignature");
    signed.push(again.id);
    assertJournal(stack!, signed);
  });

  test("SIGKILL during a pooled signMessage: the id stays used after the restart; signing works", async () => {
    await bounded(CALL_MS, "warmPresignatures", client!.warmPresignatures(TARGET));
    assert.equal(client!.presignatureStats().pool.held, 1);
    // The client's party stops at its own take, after the handshake: the service has taken
    // (journaled) its copy or is about to, and cannot finish the round without the client's
    // message. Once the journal holds the id, the service is killed and started again.
    let held: string | undefined;
    store.beforeTake = async (id) => {
      held = id;
      await until(`the service's journal to hold ${id}`, () => journalUsed(stack!).includes(id));
      await stack!.stopService("SIGKILL");
      await stack!.startService();
    };
    const text = `interrupted ${randomDigest()}`;
    const digest = ethersHashMessage(text).slice(2);
    const e = await rejection(
      CALL_MS,
      "a signMessage whose service was killed",
      client!.signMessage(eip191(text), TARGET),
    );
    assert.ok(held, "the client's party reached its take");
    assert.ok(e instanceof ConnectError, `a ConnectError, got ${e?.name}: ${e?.message}`);
    assert.equal(await store.isUsed(held!), true, "the client consumed its copy too");
    // The service died inside the session: the restarted one closed its write-ahead record.
    const call = auditLines(stack!).filter((l) =>
      l.action === "sign_message" && l.digest === digest
    );
    assert.deepEqual(
      call.map((l) => [l.outcome, l.error_code]),
      [["started", undefined], ["interrupted", "process-died"]],
      "the session started and never ended",
    );
    assert.equal(call[0].call_id, call[1].call_id);

    // The id is durably used: once in the journal, ...
    const used = assertJournal(stack!, signed);
    assert.equal(used.filter((x) => x === held).length, 1);
    // ... the restarted service refuses a SignMessage naming it, ...
    const headers = { authorization: `Bearer ${stack!.token}` };
    const room = await client!.service.openRoom(
      { accountId: ACCOUNT, operation: "sign_message" },
      { headers },
    );
    const refused = await rejection(
      CALL_MS,
      "SignMessage with the used presignature",
      client!.service.signMessage({
        accountId: ACCOUNT,
        message: toHex(eip191(text)),
        hash: TARGET.hash,
        derivationPath: TARGET.path,
        presignatureId: held!,
        roomId: room.roomId,
      }, { headers }),
    );
    assert.ok(refused instanceof ConnectError);
    assert.equal(refused.code, Code.FailedPrecondition);
    assert.match(refused.rawMessage, /presignature-unavailable/);
    // ... and the journal as replayed at a start refuses it (a copy: the service holds the file).
    const dir = mkdtempSync(join(tmpdir(), "presign-pool-journal-"));
    try {
      copyFileSync(journalPath(stack!), join(dir, "copy.journal"));
      const replayed = await openPresignatureJournal({ path: join(dir, "copy.journal") });
      try {
        assert.equal(await replayed.isUsed(held!), true);
        const [p] = dealPresignatures(2, { keyId: ACCOUNT });
        await assert.rejects(
          replayed.put({ ...p, id: held! }),
          (x: unknown) => (x as { code?: string }).code === "presignature-used",
        );
      } finally {
        await replayed.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // Signing works again, in one round with a fresh presignature.
    const again = await warmAndSign(`after the crash ${randomDigest()}`);
    assert.equal(again.sig.pooled, true);
    assert.notEqual(again.id, held);
    signed.push(again.id);
    assertJournal(stack!, signed);
  });
});
