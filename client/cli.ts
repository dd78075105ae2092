/**
 * The client party's command line (`deno task client`): scripted and interactive signing,
 * key listing, public keys, distributed key generation and refresh with the sign-service.
 *
 * ```sh
 * deno task client sign --account demo --digest 0x<64 hex> [--path m/0/1] [--json]
 * deno task client accounts
 * deno task client pubkey --account demo [--path m/0/1]
 * deno task client address --account demo [--path m/0/1] [--format p2wpkh --network testnet]
 * deno task client xpub --account demo [--path m/0] [--network testnet]
 * deno task client keygen --account new-account
 * deno task client                      # interactive: asks for the account and the digest
 * ```
 *
 * Settings (the convention of every entry point, README "Entry points": flag, then environment,
 * then default; each flag's variable is `WALLET_MPC_CLIENT_<FLAG>`): `--service-url`
 * (http://127.0.0.1:50052, the service's gRPC-web/Connect port), `--protocol connect|grpc-web`,
 * `--gateway-url` (http://127.0.0.1:8080), `--token` (the caller credential), `--key-share-file`
 * (client_key_shares.json), `--age-identity-file` or the passphrase in
 * `WALLET_MPC_CLIENT_KEY_PASSPHRASE`, `--plaintext` (development files only). The older names
 * (`WALLET_MPC_TOKEN`, `WALLET_MPC_SERVICE_URL`, ...) still work, with a warning on stderr.
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
import { BECH32_PREFIX, type BitcoinNetwork, newMpcClient, p2wpkhAddress } from "./mpc_client.ts";
import { crashHookFrom } from "../platform/crash_hook.ts";
import { openFileKeyStore } from "./file_key_store.ts";
import { parseAgeIdentityFile } from "../keystore/key_store.ts";
import type { ClientKeyStore } from "./mpc_client.ts";
import {
  type CommandSpec,
  describeFailure,
  formatHelp,
  parseCommandLine,
} from "../platform/cli_args.ts";
import {
  applyEnvAliases,
  type EnvAlias,
  envName,
  renamedEnv,
  withEnvNames,
} from "../platform/settings_layers.ts";

/** The flags that say where the service, the gateway and the key shares are; each has a variable. */
const CONNECTION = withEnvNames("CLIENT", {
  "service-url": {
    arg: "url",
    help: "the service's gRPC-web/Connect URL (http://127.0.0.1:50052)",
  },
  protocol: { arg: "connect|grpc-web", help: "the service's protocol (connect)" },
  "gateway-url": { arg: "url", help: "the sign-gateway (http://127.0.0.1:8080)" },
  token: { arg: "token", help: "the caller's token" },
  "key-share-file": { arg: "path", help: "the client's key shares (client_key_shares.json)" },
  "age-identity-file": { arg: "path", help: "the age identity decrypting them" },
});

const COMMAND = {
  flags: {
    account: { arg: "id", help: "the account" },
    digest: { arg: "hex", help: "the 32-byte digest to sign" },
    path: { arg: "m/0/1", help: "BIP-32 style derivation path (non-hardened)" },
    format: { arg: "ethereum|p2wpkh", help: "address: the address kind (ethereum)" },
    network: {
      arg: "bitcoin|testnet|regtest",
      help: "address --format p2wpkh: the network (bitcoin); xpub: tpub for testnet, regtest",
    },
    ...CONNECTION,
    plaintext: { kind: "boolean", help: "the key share file is not encrypted (development)" },
    json: { kind: "boolean", help: "one JSON object on stdout" },
  },
  maxPositionals: 1,
} as const satisfies CommandSpec;

/** The variable of the key share file's passphrase (no flag: keep secrets off the command line). */
const PASSPHRASE_ENV = envName("CLIENT", "key-passphrase");

/** The names the client read before the `WALLET_MPC_CLIENT_` scheme, still read with a warning. */
const ENV_ALIASES: readonly EnvAlias[] = renamedEnv("WALLET_MPC", "CLIENT", [
  ...Object.keys(CONNECTION),
  "key-passphrase",
]);

const USAGE = formatHelp({
  title: "wallet-mpc client: the client party's command line",
  usage: ["deno task client [command] [options]"],
  commands: [
    ["sign", "--account <id> --digest <hex> [--path m/0/1]: sign a 32-byte digest"],
    ["pubkey", "--account <id> [--path m/0/1]: public key (compressed hex)"],
    [
      "address",
      "--account <id> [--path m/0/1] [--format ethereum|p2wpkh] [--network ...]: the address " +
      "(EIP-55 Ethereum, or Bitcoin P2WPKH bech32)",
    ],
    ["xpub", "--account <id> [--path m/0] [--network ...]: BIP-32 extended public key"],
    ["accounts", "local accounts"],
    ["keygen", "--account <id>: distributed key generation with the running service"],
    ["refresh", "--account <id>: key refresh"],
    ["health", "the service's health"],
    ["(none)", "interactive signing"],
  ],
  flags: COMMAND.flags,
  notes: [
    `Precedence: environment < flags. The key share file's passphrase: ${PASSPHRASE_ENV}.`,
  ],
});

class Usage extends Error {}

async function main(): Promise<number> {
  const aliased = applyEnvAliases(process.env, ENV_ALIASES);
  const env = aliased.env;
  const args = parseCommandLine(process.argv.slice(2), COMMAND, USAGE, console);
  if (typeof args === "number") return args;
  for (const w of aliased.warnings) console.error(w);
  const command = args.positionals[0] ?? "";
  const json = args.has("json");
  const get = (flag: keyof typeof CONNECTION, def?: string) =>
    args.value(flag) ?? env[envName("CLIENT", flag)] ?? def;
  const protocol = get("protocol", "connect");
  if (protocol !== "connect" && protocol !== "grpc-web") {
    console.error(`--protocol: expected connect or grpc-web, got ${protocol}`);
    return 2;
  }
  installPlatformBackends();
  // Test mechanism only: the crash points of the key lifecycle (platform/crash_hook.ts).
  const crashPoint = crashHookFrom(env.WALLET_MPC_CRASH_AT);
  const identityFile = get("age-identity-file");
  const passphrase = env[PASSPHRASE_ENV];
  // Opened on first use, inside the error handling below (health needs no key store).
  let opened: Promise<ClientKeyStore> | undefined;
  const open = () =>
    opened ??= openFileKeyStore({
      path: get("key-share-file", "client_key_shares.json")!,
      identity: identityFile ? parseAgeIdentityFile(readFileSync(identityFile, "utf8")) : undefined,
      passphrase,
      plaintext: args.has("plaintext"),
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
    serviceUrl: get("service-url", "http://127.0.0.1:50052"),
    protocol,
    gatewayUrl: get("gateway-url", "http://127.0.0.1:8080")!,
    token: get("token", "")!,
    keyStore,
    crashPoint,
    generatePrimes: () => generatePaillierPrimes((bits) => platformSafePrime(bits)),
    onProgress: (e) => {
      if (e.type === "status") say(`.. ${e.message}`);
      else if (e.type === "round-finished") say(`.. ${e.protocol} round ${e.round} done`);
    },
  });
  const need = (flag: string) => {
    const v = args.value(flag);
    if (v === undefined) throw new Usage(`${command}: --${flag} is required`);
    return v;
  };
  const network = (): BitcoinNetwork => {
    const n = args.value("network") ?? "bitcoin";
    if (!Object.hasOwn(BECH32_PREFIX, n)) {
      throw new Usage(`--network: expected ${Object.keys(BECH32_PREFIX).join(", ")}, got ${n}`);
    }
    return n as BitcoinNetwork;
  };
  const out = (o: Record<string, unknown>, text: string) =>
    console.log(json ? JSON.stringify(o) : text);
  try {
    switch (command) {
      case "sign": {
        const sig = await client.signTx(need("digest"), need("account"), {
          path: args.value("path"),
        });
        out(
          { ...sig },
          `r ${sig.r}\ns ${sig.s}\nv ${sig.v}\nder ${sig.der}\npublic key ${sig.publicKey}`,
        );
        return 0;
      }
      case "pubkey": {
        const pk = await client.getPublicKey(need("account"), { path: args.value("path") });
        out({ publicKey: pk }, pk);
        return 0;
      }
      case "address": {
        const account = need("account");
        const path = args.value("path");
        const format = args.value("format") ?? "ethereum";
        const publicKey = await client.getPublicKey(account, { path });
        let address: string;
        if (format === "ethereum") address = await client.getAddress(account, { path });
        else if (format === "p2wpkh") address = p2wpkhAddress(publicKey, network());
        else throw new Usage(`--format: expected ethereum or p2wpkh, got ${format}`);
        out({ account, path: path ?? "m", format, address, publicKey: `0x${publicKey}` }, address);
        return 0;
      }
      case "xpub": {
        const n = network();
        const xpub = await client.getXpub(need("account"), {
          path: args.value("path"),
          version: n === "bitcoin" ? "xpub" : "tpub",
        });
        out({ account: args.value("account"), path: args.value("path") ?? "m", xpub }, xpub);
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
        const r = await client.keygen(need("account"));
        out(
          { account: args.value("account"), ...r },
          `created ${args.value("account")}: ${r.publicKey}`,
        );
        return 0;
      }
      case "refresh": {
        const r = await client.refresh(need("account"));
        out(
          { account: args.value("account"), ...r },
          `refreshed ${args.value("account")}: ${r.publicKey}`,
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
          // The end of the input (Ctrl-D, a pipe that ends) quits like an empty answer.
          let closed = false;
          rl.once("close", () => (closed = true));
          const ask = (q: string) => closed ? Promise.resolve("") : rl.question(q).catch(() => "");
          for (;;) {
            const account = (await ask("account (empty to quit): ")).trim();
            if (!account) return 0;
            const digest = (await ask("digest (64 hex digits): ")).trim();
            const path = (await ask("path (empty for the root key): ")).trim();
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
    console.error(describeFailure(e));
    return 1;
  }
}

process.exit(await main());
