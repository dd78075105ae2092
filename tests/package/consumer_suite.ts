/**
 * The package as a consumer gets it (`deno task test:package`, after the slow tier in CI; not
 * in the fast tier: it packs, installs and starts browsers). Named `_suite`, not `_test`, so the
 * fast tiers do not pick it up.
 *
 * `npm pack` (its prepack builds dist/lib) makes the tarball; a scratch project in a temporary
 * directory installs it with ethers, viem and bitcoinjs-lib from the registry (npm's cache after
 * the repository's own install). Against one local stack (sign-gateway and sign-service under
 * Node, OpenSSL's backends: the faster stack; the fixture account `alice`) and one anvil node (port 0, the port read from its
 * "Listening on" line):
 *
 * - plain Node runs the consumer contract (ethers `sendTransaction`), mined on anvil; the sender
 *   recovered by ethers from the raw transaction is the signer's address; the `node` condition
 *   installed OpenSSL's constant-time backend;
 * - viem: an EIP-1559 and a legacy EIP-155 transfer, a message, typed data, verified by viem;
 * - bitcoinjs: a P2WPKH PSBT signed by the HD signer, validated with tiny-secp256k1,
 *   finalized, extracted; its key (from the xpub, @scure/bip32) is the key the service signs for;
 * - Deno imports the package (`deno` condition) and signs;
 * - esbuild bundles the contract's imports for the browser without a Node built-in;
 * - the example wallet page (copied into the scratch project, bundled against the installed
 *   package) imports the key share file into IndexedDB, shows the account and its balance,
 *   signs and sends a transfer over gRPC-web, survives a reload and refuses a wrong passphrase,
 *   in headless Chromium (playwright-core).
 * @module
 */
import "../../testing/setup.ts";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { HDKey } from "@scure/bip32";
import {
  computeAddress,
  formatEther,
  getAddress,
  JsonRpcProvider,
  parseEther,
  Transaction,
  Wallet,
} from "ethers";
import {
  parseTransaction,
  recoverTransactionAddress,
  type TransactionSerialized,
  verifyMessage,
  verifyTypedData,
} from "viem";
import { Psbt } from "bitcoinjs-lib";
import * as ecc from "tiny-secp256k1";
import type { Browser } from "playwright-core";
import { newMpcClient } from "../../client/mpc_client.ts";
import { type LocalStack, startLocalStack } from "../../tools/local_stack.ts";
import { startWalletServer, type WalletServer } from "../../examples/browser-wallet/server.ts";
import { fixtureAccounts } from "../../testing/accounts.ts";
import { randomDigest } from "../e2e/e2e_helpers.ts";
import { DENO, missing, NODE, ROOT, waitForOutput } from "../../testing/processes.ts";

const ACCOUNT = "alice";
const CHROMIUM = "/usr/bin/chromium";
const PASSPHRASE = "correct horse battery staple";
/** A pure-BigInt 2-of-2 signature in the page, plus scrypt and the receipt. */
const PAGE_MS = 240_000;
const STEP_MS = 60_000;

interface Ctx {
  scratch: string;
  tarball: string;
  stack: LocalStack;
  anvil: ChildProcess;
  rpcUrl: string;
  page: WalletServer;
  address: string;
  env: Record<string, string>;
}
const ctx = {} as Ctx;
const timings: string[] = [];

async function timed<T>(what: string, f: () => Promise<T> | T): Promise<T> {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    timings.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

/** Runs a command to its end, bounded; fails with its output. */
function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
  ms = 300_000,
) {
  const r = spawnSync(cmd, args, {
    cwd,
    env: { ...process.env, NO_COLOR: "1", ...env },
    encoding: "utf8",
    timeout: ms,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")}: exit ${r.status}\n${r.stdout}\n${r.stderr}`.slice(-4000),
    );
  }
  return r.stdout;
}

/** Runs a consumer script of the scratch project and parses its last stdout line. */
function consumer(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Record<string, unknown> {
  const out = run(cmd, args, ctx.scratch, { ...ctx.env, ...env }).trim().split("\n");
  return JSON.parse(out[out.length - 1]);
}

async function rpc(method: string, params: unknown[]): Promise<unknown> {
  const r = await fetch(ctx.rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const j = await r.json() as { result?: unknown; error?: unknown };
  if (j.error) throw new Error(`${method}: ${JSON.stringify(j.error)}`);
  return j.result;
}

/** The sender of a mined transaction as ethers recovers it from the raw bytes. */
async function recoveredSender(hash: string): Promise<string> {
  const raw = await rpc("eth_getRawTransactionByHash", [hash]) as string;
  return Transaction.from(raw).from!;
}

async function startAnvil(): Promise<void> {
  const anvil = spawn(
    join(ROOT, "node_modules/.bin/anvil"),
    ["--host", "127.0.0.1", "--port", "0"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  anvil.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  anvil.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  ctx.anvil = anvil;
  const port = await waitForOutput(
    anvil,
    "anvil to listen",
    () => /Listening on 127\.0\.0\.1:(\d+)/.exec(out)?.[1],
    () => out,
    30_000,
  );
  ctx.rpcUrl = `http://127.0.0.1:${port}`;
}

describe("the npm package, as a consumer installs it", { timeout: 1_200_000 }, () => {
  before(async () => {
    ctx.scratch = mkdtempSync(join(tmpdir(), "wallet-mpc-consumer-"));
    const packed = await timed(
      "npm pack (build)",
      () => JSON.parse(run("npm", ["pack", "--json", "--pack-destination", ctx.scratch], ROOT)),
    );
    ctx.tarball = join(ctx.scratch, packed[0].filename);
    const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
    for (const f of files) {
      assert.ok(/^(dist\/lib\/|package\.json$|README\.md$)/.test(f), `library files only: ${f}`);
      assert.doesNotMatch(
        f,
        /_test\.|\/(gateway|service|tests|testing|tools|bench|enclave|fuzz)\//,
        f,
      );
    }
    writeFileSync(
      join(ctx.scratch, "package.json"),
      JSON.stringify({ name: "scratch", private: true, type: "module" }),
    );
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    const dev = pkg.devDependencies as Record<string, string>;
    await timed("npm install (scratch project)", () =>
      run("npm", [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        ctx.tarball,
        `ethers@${dev.ethers}`,
        `viem@${dev.viem}`,
        `bitcoinjs-lib@${dev["bitcoinjs-lib"]}`,
      ], ctx.scratch));
    for (const f of ["contract.mjs", "viem.mjs", "bitcoin.mjs", "deno.mjs", "bundle.mjs"]) {
      copyFileSync(join(ROOT, "tests/package/consumer", f), join(ctx.scratch, f));
    }
    const pageDir = join(ctx.scratch, "wallet-page");
    mkdirSync(pageDir);
    for (const f of ["index.html", "page.ts"]) {
      copyFileSync(join(ROOT, "examples/browser-wallet", f), join(pageDir, f));
    }
    const parties = await timed("fixture accounts", () => fixtureAccounts([ACCOUNT]));
    await timed("anvil", startAnvil);
    // The page first: the gateway must allow its origin.
    ctx.page = await timed("page bundle", () =>
      startWalletServer({
        port: 0,
        pageDir,
        config: () => ({
          serviceUrl: ctx.stack.serviceWebUrl,
          gatewayUrl: ctx.stack.gatewayUrl,
          rpcUrl: ctx.rpcUrl,
          token: ctx.stack.token,
          account: ACCOUNT,
        }),
      }));
    ctx.stack = await timed(
      "stack (gateway + service)",
      () =>
        startLocalStack({
          runtime: "node",
          preset: parties,
          gatewayArgs: ["--cors-origins", ctx.page.url],
        }),
    );
    ctx.env = {
      KEY_FILE: ctx.stack.clientKeyFile,
      AGE_IDENTITY: ctx.stack.clientAgeIdentity,
      SERVICE_URL: ctx.stack.serviceWebUrl,
      GATEWAY_URL: ctx.stack.gatewayUrl,
      TOKEN: ctx.stack.token,
      RPC_URL: ctx.rpcUrl,
    };
    ctx.address = getAddress(
      await newMpcClient(ctx.stack.clientConfig(await ctx.stack.clientKeyStore())).getAddress(
        ACCOUNT,
      ),
    );
    await rpc("anvil_setBalance", [ctx.address, "0x" + parseEther("10").toString(16)]);
  });

  after(async () => {
    ctx.anvil?.kill("SIGTERM");
    await ctx.page?.close();
    await ctx.stack?.stop();
    if (ctx.scratch) rmSync(ctx.scratch, { recursive: true, force: true });
    console.log(`package suite timings: ${timings.join(", ")}`);
  });

  test("the tarball holds no server dependency: a client-only install has no ioredis, yaml or @aws-sdk", () => {
    const installed = run("npm", ["ls", "--all", "--parseable"], ctx.scratch);
    for (const name of ["ioredis", "yaml", "@aws-sdk", "@connectrpc/connect-node", "pkijs"]) {
      assert.ok(!installed.includes(`/node_modules/${name}`), `${name} is not installed`);
    }
  });

  test("plain Node: the consumer contract sends a transfer mined on anvil, sender recovered by ethers", async () => {
    const to = Wallet.createRandom().address;
    const r = await timed(
      "contract (node, ethers)",
      () => consumer(NODE, ["contract.mjs"], { TO: to }),
    );
    assert.equal(r.status, 1);
    assert.equal(r.from, ctx.address);
    assert.equal(await recoveredSender(r.hash as string), ctx.address);
    const provider = new JsonRpcProvider(ctx.rpcUrl);
    try {
      assert.equal(formatEther(await provider.getBalance(to)), "0.25");
    } finally {
      provider.destroy();
    }
    assert.deepEqual(r.backends, { public: "openssl-consttime", secret: "openssl-consttime" });
    assert.equal(r.secretConstantTime, true, "wallet-mpc/client chose the constant-time backend");
  });

  test("viem: EIP-1559 and legacy EIP-155 transfers, a message and typed data verify with viem", async () => {
    const to = Wallet.createRandom().address;
    const r = await timed("viem (node)", () => consumer(NODE, ["viem.mjs"], { TO: to })) as Record<
      string,
      never
    >;
    assert.equal(r.address, ctx.address);
    for (const kind of ["eip1559", "legacy"] as const) {
      const raw = await rpc("eth_getRawTransactionByHash", [r[kind]]) as TransactionSerialized;
      assert.equal(
        await recoverTransactionAddress({ serializedTransaction: raw }),
        ctx.address,
        kind,
      );
      const tx = parseTransaction(raw);
      assert.equal(tx.type, kind);
      if (kind === "legacy") {
        assert.equal(tx.v, 31337n * 2n + 35n + BigInt(tx.yParity!), "EIP-155 v");
      }
      const receipt = await rpc("eth_getTransactionReceipt", [r[kind]]) as { status: string };
      assert.equal(receipt.status, "0x1");
    }
    assert.ok(
      await verifyMessage({
        address: ctx.address as `0x${string}`,
        message: r.message,
        signature: r.messageSignature,
      }),
    );
    assert.ok(
      await verifyTypedData(
        { ...(r.typedData as object), address: ctx.address, signature: r.typedSignature } as never,
      ),
    );
  });

  test("bitcoinjs: the HD signer's P2WPKH PSBT validates, finalizes and extracts; the xpub's keys are the service's", async () => {
    const r = await timed("bitcoinjs (node)", () => consumer(NODE, ["bitcoin.mjs"])) as Record<
      string,
      string
    >;
    const psbt = Psbt.fromBase64(r.psbt);
    const verify = (pk: Uint8Array, h: Uint8Array, s: Uint8Array) => ecc.verify(h, pk, s);
    assert.ok(psbt.validateSignaturesOfInput(0, verify));
    psbt.finalizeAllInputs();
    const tx = psbt.extractTransaction();
    assert.equal(bytesToHex(tx.ins[0].witness[1]), r.publicKey);
    const fromXpub = HDKey.fromExtendedKey(r.xpub).derive(r.path);
    assert.equal(bytesToHex(fromXpub.publicKey!), r.publicKey, "@scure/bip32 derives the same key");
    assert.equal(r.mpcAddress, r.address);
    const client = newMpcClient(ctx.stack.clientConfig(await ctx.stack.clientKeyStore()));
    const svc = await client.service.getPublicKey(
      { accountId: ACCOUNT, derivationPath: r.path },
      { headers: { authorization: `Bearer ${ctx.stack.token}` } },
    );
    assert.equal(
      svc.publicKey.replace(/^0x/, ""),
      r.publicKey,
      "the service signs for the xpub's key",
    );
    assert.equal(getAddress(svc.address), computeAddress(`0x${r.publicKey}`));
  });

  test("Deno imports the package: the deno condition's backends, a signature through the stack", async () => {
    const digest = randomDigest();
    const r = await timed(
      "deno consumer",
      () => consumer(DENO, ["run", "-A", "deno.mjs"], { DIGEST: digest }),
    ) as { signature: Record<string, string>; backends: unknown };
    // run -A grants FFI: the system libcrypto serves both slots (platform/openssl_ffi.ts).
    assert.deepEqual(r.backends, { public: "openssl-ffi", secret: "openssl-ffi-consttime" });
    const pk = r.signature.publicKey;
    assert.ok(
      secp256k1.verify(hexToBytes(r.signature.compact), hexToBytes(digest), hexToBytes(pk), {
        prehash: false,
      }),
    );
    const hd = HDKey.fromExtendedKey(
      await newMpcClient(ctx.stack.clientConfig(await ctx.stack.clientKeyStore())).getXpub(ACCOUNT),
    );
    assert.equal(bytesToHex(hd.derive("m/3").publicKey!), pk);
  });

  test("esbuild bundles the consumer's imports for the browser without a Node built-in", async () => {
    const esbuild = await import("esbuild");
    try {
      const out = await timed("esbuild bundle", () =>
        esbuild.build({
          entryPoints: [join(ctx.scratch, "bundle.mjs")],
          absWorkingDir: ctx.scratch,
          bundle: true,
          format: "esm",
          platform: "browser",
          target: "es2022",
          write: false,
          metafile: true,
          logLevel: "silent",
        }));
      const inputs = Object.keys(out.metafile!.inputs);
      assert.ok(
        inputs.some((i) => i.includes("node_modules/wallet-mpc/dist/lib/client/mpc_client.js")),
      );
      assert.deepEqual(
        inputs.filter((i) =>
          i.startsWith("node:") ||
          /wallet-mpc\/dist\/lib\/(platform|client\/native|client\/file_key_store\.js)/.test(i)
        ),
        [],
      );
    } finally {
      await esbuild.stop();
    }
  });

  test(
    "the example wallet page: import, balance, a transfer over gRPC-web, reload, wrong passphrase",
    { skip: missing(CHROMIUM) },
    async () => {
      const { chromium } = await import("playwright-core");
      let browser: Browser | undefined;
      try {
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          headless: true,
          timeout: STEP_MS,
          args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
        });
        const tab = await browser.newPage({ viewport: { width: 900, height: 900 } });
        const errors: string[] = [];
        tab.on("pageerror", (e: Error) => errors.push(e.message));
        const state = (s: string, ms = STEP_MS) =>
          tab.waitForFunction(
            (want) => {
              // Runs in the page; typed loosely (this file is checked without the DOM lib).
              const doc = (globalThis as unknown as {
                document: {
                  body: { dataset: Record<string, string> };
                  getElementById(id: string): { textContent: string };
                };
              }).document;
              const got = doc.body.dataset.state;
              if (got === "error" && want !== "error") {
                throw new Error(doc.getElementById("error").textContent);
              }
              return got === want;
            },
            s,
            { timeout: ms },
          );
        await tab.goto(`${ctx.page.url}/`, { timeout: STEP_MS });
        await state("locked");
        assert.equal(await tab.isVisible("#key-file"), true, "an empty store asks for a key file");
        await tab.setInputFiles("#key-file", ctx.stack.clientKeyFile);
        await tab.fill("#age-identity", ctx.stack.clientAgeIdentity);
        await tab.fill("#passphrase", PASSPHRASE);
        await timed("page: import and unlock", async () => {
          await tab.click("#unlock-button");
          await state("ready");
        });
        assert.equal(await tab.textContent("#address"), ctx.address);
        assert.match((await tab.textContent("#balance"))!, / ETH$/);
        const before = parseEther((await tab.textContent("#balance"))!.replace(" ETH", ""));
        const to = Wallet.createRandom().address;
        await tab.fill("#to", to);
        await tab.fill("#amount", "0.1");
        await timed("page: sign and send (browser signing)", async () => {
          await tab.click("#send-button");
          await state("sent", PAGE_MS);
        });
        const hash = (await tab.textContent("#tx-hash"))!;
        assert.equal(await recoveredSender(hash), ctx.address);
        assert.equal(
          formatEther(BigInt(await rpc("eth_getBalance", [to, "latest"]) as string)),
          "0.1",
        );
        const after = parseEther((await tab.textContent("#balance"))!.replace(" ETH", ""));
        assert.ok(after <= before - parseEther("0.1"), "the page shows the new balance");
        await tab.screenshot({ path: join(ctx.scratch, "browser-wallet.png") });
        if (process.env.WALLET_MPC_SCREENSHOT) {
          copyFileSync(join(ctx.scratch, "browser-wallet.png"), process.env.WALLET_MPC_SCREENSHOT);
        }

        await tab.reload({ timeout: STEP_MS });
        await state("locked");
        assert.equal(await tab.isVisible("#key-file"), false, "the store survived the reload");
        await tab.fill("#passphrase", "not the passphrase");
        await tab.click("#unlock-button");
        await state("error", STEP_MS);
        assert.match((await tab.textContent("#error"))!, /KeyStoreError: .*wrong passphrase/);
        await tab.fill("#passphrase", PASSPHRASE);
        await timed("page: unlock after reload", async () => {
          await tab.click("#unlock-button");
          await state("ready");
        });
        assert.equal(await tab.textContent("#address"), ctx.address);
        assert.deepEqual(errors, []);
      } finally {
        await browser?.close().catch(() => {});
      }
    },
  );
});
