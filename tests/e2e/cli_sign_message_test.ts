/**
 * `client sign-message` of the client CLI against a local stack (tools/local_stack.ts, the
 * processes under this test's runtime): a one-shot process signs a message in full (`pooled`
 * false; it keeps no presignatures) given as text, hex or a file, under each hash; bad flags are
 * refused with exit status 2 and a message naming the flag, before any request; the interactive
 * mode keeps the client across its lines, so after `presign` a message is signed in one round
 * with a presignature (`pooled` true), and a bad line is reported without ending the session.
 * @module
 */
import "../../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { fromHex, toHex } from "../../core/bytes.ts";
import { hashMessage, type HashName } from "../../core/signature.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import { DENO, NODE, ROOT, waitForOutput } from "../../testing/processes.ts";
import { bounded } from "../../testing/waits.ts";
import { ACCOUNT, auditLines, e2eAccounts, runClientCli, RUNTIME } from "./e2e_helpers.ts";

const SIGN_MS = 120_000;
const PRESIGN_MS = 240_000;

/** What `sign-message --json` prints. */
interface Printed {
  readonly compact: string;
  readonly publicKey: string;
  readonly digest: string;
  readonly pooled: boolean;
}

/** Asserts that `out` is a signature of `message` under `hash` that noble verifies. */
function assertSigned(out: Printed, message: Uint8Array, hash: HashName): void {
  const digest = hashMessage(hash, message);
  assert.equal(out.digest, toHex(digest));
  assert.ok(
    secp256k1.verify(fromHex(out.compact), digest, fromHex(out.publicKey), { prehash: false }),
    "noble verifies the signature of the message's hash",
  );
}

describe(`client sign-message (${RUNTIME})`, () => {
  let stack: LocalStack | undefined;
  let identityFile = "";

  before(async () => {
    stack = await startLocalStack({ runtime: RUNTIME, preset: await e2eAccounts() });
    identityFile = join(stack.dir, "client.age");
    writeFileSync(identityFile, `${stack.clientAgeIdentity}\n`, { mode: 0o600 });
  });

  after(async () => {
    await stack?.stop();
  });

  const cli = (args: string[]) => runClientCli(stack!, identityFile, args, {}, SIGN_MS);

  test("one-shot: text, hex and a file, under each hash, each signed in full", async () => {
    const file = join(stack!.dir, "message.bin");
    const bytes = new Uint8Array([0, 1, 2, 0xff, 0x80]);
    writeFileSync(file, bytes);
    const cases: [string[], Uint8Array, HashName][] = [
      [
        ["--message", "pay 1 wei, héllo"],
        new TextEncoder().encode("pay 1 wei, héllo"),
        "keccak256",
      ],
      [["--message-hex", "0xDEADbeef", "--hash", "sha256"], fromHex("deadbeef"), "sha256"],
      [["--message-file", file, "--hash", "sha256d", "--path", "m/0/7"], bytes, "sha256d"],
    ];
    for (const [flags, message, hash] of cases) {
      const r = await cli(["sign-message", "--account", ACCOUNT, ...flags]);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Printed;
      assert.equal(out.pooled, false, "a one-shot process holds no presignature");
      assertSigned(out, message, hash);
    }
    const signed = auditLines(stack!).filter((l) => l.outcome === "ok").map((l) => l.action);
    assert.ok(!signed.includes("presign"), "a one-shot process makes no presignatures");
  });

  test("bad flags: exit status 2, a message naming the flag, no request", async () => {
    const big = join(stack!.dir, "big.bin");
    writeFileSync(big, new Uint8Array(128 * 1024 + 1));
    const before = auditLines(stack!).length;
    const account = ["--account", ACCOUNT];
    const cases: [string[], RegExp][] = [
      [["sign-message", ...account], /expected exactly one of --message, --message-hex/],
      [
        ["sign-message", ...account, "--message", "a", "--message-hex", "00"],
        /exactly one .*got --message and --message-hex/,
      ],
      [["sign-message", ...account, "--message-hex", "0xabc"], /--message-hex: .*hex digits/],
      [
        ["sign-message", ...account, "--message-file", join(stack!.dir, "none")],
        /--message-file: cannot read .*ENOENT/,
      ],
      [["sign-message", ...account, "--message-file", big], /at most 131072 bytes, got 131073/],
      [["sign-message", ...account, "--message", "a", "--hash", "md5"], /--hash: .*keccak256/],
      [["sign-message", ...account, "--message", "a", "--path", "m/0'"], /--path: /],
      [["sign-message", "--account", "a b", "--message", "a"], /--account: /],
      [["sign-message", "--message", "a"], /sign-message: --account is required/],
      [["sign-message", ...account, "--digest", "00"], /--digest is for sign/],
      [["sign", ...account, "--message", "a"], /sign: --message is for sign-message/],
      [["presign", ...account], /presign: only in the interactive mode/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
      assert.equal(r.stdout, "", args.join(" "));
    }
    assert.equal(auditLines(stack!).length, before, "no request reached the service");
  });

  test("interactive: the pool lives across lines; after presign a message is pooled", async () => {
    const session = interactiveCli(stack!, identityFile);
    try {
      const first = await session.command(
        `sign-message --account ${ACCOUNT} --message first`,
        SIGN_MS,
      ) as unknown as Printed;
      assert.equal(first.pooled, false, "nothing presigned yet");
      assertSigned(first, new TextEncoder().encode("first"), "keccak256");
      // A bad line is reported; the session goes on.
      await session.send(`sign-message --account ${ACCOUNT}`);
      await session.stderrMatches(/expected exactly one of --message/);
      await session.send(`sign-message --account ${ACCOUNT} --message "unterminated`);
      await session.stderrMatches(/unterminated " quote/);
      const ready = await session.command(`presign --account ${ACCOUNT}`, PRESIGN_MS);
      assert.equal((ready.pool as { held: number }).held, 1);
      const second = await session.command(
        `sign-message --account ${ACCOUNT} --message "second, 'quoted' message"`,
        SIGN_MS,
      ) as unknown as Printed;
      assert.equal(second.pooled, true, "one round with the presignature");
      assertSigned(second, new TextEncoder().encode("second, 'quoted' message"), "keccak256");
      const stats = await session.command("stats", SIGN_MS);
      assert.equal(stats.pooled, 1);
      assert.equal(stats.full, 1);
      await session.send("quit");
      assert.equal(await session.exit(), 0);
    } finally {
      session.kill();
    }
  });
});

/** The client CLI in its interactive mode, one presignature kept per target, `--json`. */
function interactiveCli(stack: LocalStack, identityFile: string) {
  const script = join(ROOT, "client/cli.ts");
  const [cmd, pre] = RUNTIME === "deno"
    ? [DENO, ["run", "-A", "--no-check", script]]
    : [NODE, ["--import", "tsx", script]];
  const connection = {
    "--service-url": stack.serviceWebUrl,
    "--gateway-url": stack.gatewayUrl,
    "--token": stack.token,
    "--key-share-file": stack.clientKeyFile,
    "--age-identity-file": identityFile,
  };
  const p: ChildProcess = spawn(
    cmd,
    [...pre, ...Object.entries(connection).flat(), "--presignatures", "1", "--json"],
    { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["pipe", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  let stderrSeen = 0;
  p.stdout!.on("data", (b: Uint8Array) => (stdout += new TextDecoder().decode(b)));
  p.stderr!.on("data", (b: Uint8Array) => (stderr += new TextDecoder().decode(b)));
  const lines = () => stdout.split("\n").filter((l) => l.trim() !== "");
  const exited = new Promise<number | null>((resolve) => p.once("exit", (c) => resolve(c)));
  const send = (line: string) => {
    p.stdin!.write(`${line}\n`);
    return Promise.resolve();
  };
  return {
    send,
    /** Sends a command and returns the JSON object it printed (throws what it failed with). */
    async command(line: string, ms: number): Promise<Record<string, unknown>> {
      const seen = lines().length;
      const errors = stderr.length;
      await send(line);
      const got = await waitForOutput(
        p,
        `the output of "${line}"`,
        () => {
          const out = lines()[seen];
          const failed = /^(?:> )*error: .*$/m.exec(stderr.slice(errors))?.[0];
          return out === undefined && failed === undefined ? undefined : { out, failed };
        },
        () => `${stdout}\n${stderr}`,
        ms,
      );
      if (got.out === undefined) throw new Error(`"${line}" failed: ${got.failed}`);
      return JSON.parse(got.out);
    },
    /** Waits for stderr, after what was matched before, to match `re`. */
    async stderrMatches(re: RegExp): Promise<void> {
      await waitForOutput(p, `stderr to match ${re}`, () => {
        const m = re.exec(stderr.slice(stderrSeen));
        if (m) stderrSeen += m.index + m[0].length;
        return m;
      }, () => stderr);
    },
    exit: () => bounded(30_000, "the interactive client to exit", exited),
    kill() {
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    },
  };
}
