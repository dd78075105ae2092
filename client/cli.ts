/**
 * The client party's command line (`deno task client`): scripted and interactive signing,
 * key listing, public keys, distributed key generation and refresh with the sign-service.
 *
 * ```sh
 * deno task client sign --account demo --digest 0x<64 hex> [--path m/0/1] [--json]
 * deno task client accounts
 * deno task client pubkey --account demo [--path m/0/1]
 * deno task client keygen --account new-account
 * deno task client                      # interactive: asks for the account and the digest
 * ```
 *
 * Settings (flag, then environment, then default): `--service-url` / `WALLET_MPC_SERVICE_URL`
 * (http://127.0.0.1:50052, the service's gRPC-web/Connect port), `--protocol connect|grpc-web`,
 * `--gateway-url` / `WALLET_MPC_GATEWAY_URL` (http://127.0.0.1:8080), `--token` /
 * `WALLET_MPC_TOKEN` (the caller credential), `--key-share-file` / `WALLET_MPC_KEY_SHARE_FILE`
 * (client_key_shares.json), `--age-identity-file` / `WALLET_MPC_AGE_IDENTITY_FILE` or the
 * passphrase in `WALLET_MPC_KEY_PASSPHRASE`, `--plaintext` (development files only).
 *
 * Progress goes to stderr; results to stdout (`--json`: one JSON object). Exit codes: 0 ok,
 * 1 failure of the operation, 2 bad usage.
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline/promises";
import { readFileSync } from "node:fs";
import { installPlatformBackends, platformSafePrime } from "../platform/mod.ts";
import { generatePaillierPrimes } from "../core/protocols/aux_info.ts";
import { newMpcClient } from "./mpc_client.ts";
import { crashHookFrom } from "../platform/crash_hook.ts";
import { openFileKeyStore } from "./file_key_store.ts";
import { parseAgeIdentityFile } from "../keystore/key_store.ts";
import type { ClientKeyStore } from "./mpc_client.ts";

const USAGE = `wallet-mpc client

Usage: cli.ts [command] [options]
Commands:
  sign       --account <id> --digest <hex> [--path m/0/1]   sign a 32-byte digest
  pubkey     --account <id> [--path m/0/1]                  public key (compressed hex)
  address    --account <id> [--path m/0/1]                  Ethereum address
  accounts                                                  local accounts
  keygen     --account <id>                                 distributed key generation
  refresh    --account <id>                                 key refresh
  health                                                    the service's health
  (none)     interactive signing
Options:
  --service-url <url>  --protocol connect|grpc-web  --gateway-url <url>  --token <token>
  --key-share-file <path>  --age-identity-file <path>  --plaintext  --json  --help
`;

class Usage extends Error {}

function parseArgs(argv: string[]): { command: string; flags: Map<string, string> } {
  const flags = new Map<string, string>();
  let command = "";
  const booleans = new Set(["--json", "--plaintext", "--help", "-h"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") continue;
    if (!a.startsWith("-")) {
      if (command) throw new Usage(`unexpected argument ${a}`);
      command = a;
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (booleans.has(name)) {
      flags.set(name, "1");
      continue;
    }
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined) throw new Usage(`${name}: expected a value`);
    flags.set(name, v);
  }
  return { command, flags };
}

async function main(): Promise<number> {
  const env = process.env;
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { command, flags } = parsed;
  if (flags.has("--help") || flags.has("-h")) {
    console.log(USAGE);
    return 0;
  }
  const known = new Set([
    "--service-url",
    "--protocol",
    "--gateway-url",
    "--token",
    "--key-share-file",
    "--age-identity-file",
    "--plaintext",
    "--json",
    "--account",
    "--digest",
    "--path",
  ]);
  for (const k of flags.keys()) {
    if (!known.has(k)) {
      console.error(`unknown option ${k}\n\n${USAGE}`);
      return 2;
    }
  }
  const json = flags.has("--json");
  const get = (flag: string, envName: string, def?: string) =>
    flags.get(flag) ?? env[envName] ?? def;
  const protocol = get("--protocol", "WALLET_MPC_PROTOCOL", "connect");
  if (protocol !== "connect" && protocol !== "grpc-web") {
    console.error(`--protocol: expected connect or grpc-web, got ${protocol}`);
    return 2;
  }
  installPlatformBackends();
  // Test mechanism only: the crash points of the key lifecycle (platform/crash_hook.ts).
  const crashPoint = crashHookFrom(env.WALLET_MPC_CRASH_AT);
  const identityFile = get("--age-identity-file", "WALLET_MPC_AGE_IDENTITY_FILE");
  const passphrase = env.WALLET_MPC_KEY_PASSPHRASE;
  // Opened on first use, inside the error handling below (health needs no key store).
  let opened: Promise<ClientKeyStore> | undefined;
  const open = () =>
    opened ??= openFileKeyStore({
      path: get("--key-share-file", "WALLET_MPC_KEY_SHARE_FILE", "client_key_shares.json")!,
      identity: identityFile ? parseAgeIdentityFile(readFileSync(identityFile, "utf8")) : undefined,
      passphrase,
      plaintext: flags.has("--plaintext"),
      create: command === "keygen",
      crashPoint,
    });
  const keyStore: ClientKeyStore = {
    ids: async () => (await open()).ids(),
    get: async (id) => (await open()).get(id),
    record: async (id) => (await open()).record(id),
    update: async (id, f) => (await open()).update(id, f),
  };
  const say = (m: string) => {
    if (!json) console.error(m);
  };
  const client = newMpcClient({
    serviceUrl: get("--service-url", "WALLET_MPC_SERVICE_URL", "http://127.0.0.1:50052"),
    protocol,
    gatewayUrl: get("--gateway-url", "WALLET_MPC_GATEWAY_URL", "http://127.0.0.1:8080")!,
    token: get("--token", "WALLET_MPC_TOKEN", "")!,
    keyStore,
    crashPoint,
    generatePrimes: () => generatePaillierPrimes((bits) => platformSafePrime(bits)),
    onProgress: (e) => {
      if (e.type === "status") say(`.. ${e.message}`);
      else if (e.type === "round-finished") say(`.. ${e.protocol} round ${e.round} done`);
    },
  });
  const need = (flag: string) => {
    const v = flags.get(flag);
    if (v === undefined) throw new Usage(`${command}: ${flag} is required`);
    return v;
  };
  const out = (o: Record<string, unknown>, text: string) =>
    console.log(json ? JSON.stringify(o) : text);
  try {
    switch (command) {
      case "sign": {
        const sig = await client.signTx(need("--digest"), need("--account"), {
          path: flags.get("--path"),
        });
        out(
          { ...sig },
          `r ${sig.r}\ns ${sig.s}\nv ${sig.v}\nder ${sig.der}\npublic key ${sig.publicKey}`,
        );
        return 0;
      }
      case "pubkey": {
        const pk = await client.getPublicKey(need("--account"), { path: flags.get("--path") });
        out({ publicKey: pk }, pk);
        return 0;
      }
      case "address": {
        const a = await client.getAddress(need("--account"), { path: flags.get("--path") });
        out({ address: a }, a);
        return 0;
      }
      case "accounts": {
        const ids = await client.listAccounts();
        const rows = await Promise.all(
          ids.map(async (id) => ({ id, publicKey: await client.getPublicKey(id) })),
        );
        out({ accounts: rows }, rows.map((r) => `${r.id}\t${r.publicKey}`).join("\n"));
        return 0;
      }
      case "keygen": {
        const r = await client.keygen(need("--account"));
        out(
          { account: flags.get("--account"), ...r },
          `created ${flags.get("--account")}: ${r.publicKey}`,
        );
        return 0;
      }
      case "refresh": {
        const r = await client.refresh(need("--account"));
        out(
          { account: flags.get("--account"), ...r },
          `refreshed ${flags.get("--account")}: ${r.publicKey}`,
        );
        return 0;
      }
      case "health": {
        const h = await client.service.health({});
        out({
          status: h.status,
          partyIndex: h.partyIndex,
          accounts: h.accounts,
          version: h.version,
        }, h.status);
        return 0;
      }
      case "": {
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        try {
          const ids = await client.listAccounts();
          console.error(`accounts: ${ids.join(", ") || "(none)"}`);
          for (;;) {
            const account = (await rl.question("account (empty to quit): ")).trim();
            if (!account) return 0;
            const digest = (await rl.question("digest (64 hex digits): ")).trim();
            const path = (await rl.question("path (empty for the root key): ")).trim();
            try {
              const sig = await client.signTx(digest, account, { path });
              console.log(JSON.stringify(sig));
            } catch (e) {
              console.error(`failed: ${(e as Error).message}`);
            }
          }
        } finally {
          rl.close();
        }
      }
      default:
        throw new Usage(`unknown command ${command}`);
    }
  } catch (e) {
    if (e instanceof Usage) {
      console.error(`${e.message}\n\n${USAGE}`);
      return 2;
    }
    const err = e as Error & { code?: unknown };
    console.error(
      `error: ${err.name}${err.code !== undefined ? ` (${String(err.code)})` : ""}: ${err.message}`,
    );
    return 1;
  }
}

process.exit(await main());
