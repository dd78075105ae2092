/**
 * Key generation command line (`deno task keygen`).
 *
 * Distributed (production): the client runs key generation and aux info with the RUNNING
 * service through the gateway; neither share ever leaves its owner. The client's share is added
 * to its key share file, the service's to the service's.
 *
 * ```sh
 * deno task keygen distributed --account alice --service-url http://127.0.0.1:50052 \
 *   --gateway-url http://127.0.0.1:8080 --token "$WALLET_MPC_TOKEN" \
 *   --key-share-file client_key_shares.json --age-identity-file client.age
 * ```
 *
 * Offline (DEVELOPMENT ONLY): both parties in this process write `client_key_shares.json` and
 * `service_key_shares.json` for several accounts. The whole key was in one process's memory:
 * never use these keys for real funds.
 *
 * ```sh
 * deno task keygen offline --accounts demo,alice --out-dir . \
 *   --client-recipient age1... --service-recipient age1...      # or --plaintext
 * ```
 *
 * Passphrases instead of recipients: `--client-passphrase-env VAR`, `--service-passphrase-env
 * VAR` (the variable holds the passphrase). Progress goes to stderr.
 * @module
 */
import process from "node:process";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { encodeAccountsFile } from "../core/keyshare.ts";
import { generatePaillierPrimes } from "../core/protocols/aux_info.ts";
import { installPlatformBackends, platformSafePrime } from "../platform/mod.ts";
import { writeKeyShareFileAtomic } from "../platform/keyshare_file.ts";
import { writeFileSync } from "node:fs";
import {
  encryptKeyShareFileBytes,
  type EncryptTo,
  generateAgeIdentity,
  parseAgeIdentityFile,
} from "../keystore/key_store.ts";
import { generateToken, hashToken } from "../service/auth.ts";
import { generateOfflineAccounts, NOT_FOR_PRODUCTION } from "./offline.ts";
import { newMpcClient } from "../client/mpc_client.ts";
import { openFileKeyStore } from "../client/file_key_store.ts";

const USAGE = `wallet-mpc keygen

  keygen.ts offline --accounts a,b [--out-dir DIR]
      [--client-recipient age1... | --client-passphrase-env VAR]
      [--service-recipient age1... | --service-passphrase-env VAR] [--plaintext]
      DEVELOPMENT ONLY: both parties in one process.
  keygen.ts age-identity --out PATH
      writes a new age X25519 identity (mode 0600) and prints its recipient (age1...).
  keygen.ts caller --id ID --accounts 'a,b,team-*' [--may-keygen] --out callers.yaml
      writes a callers file for the service (token hash only) and prints the token once.
  keygen.ts distributed --account ID --service-url URL --gateway-url URL --token TOKEN
      --key-share-file PATH [--age-identity-file PATH | passphrase in WALLET_MPC_KEY_PASSPHRASE]
      [--plaintext]
`;

function flagsOf(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") continue;
    if (!a.startsWith("--")) throw new RangeError(`unexpected argument ${a}`);
    if (a === "--plaintext" || a === "--help" || a === "--may-keygen") {
      m.set(a, "1");
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new RangeError(`${a}: expected a value`);
    m.set(a, v);
  }
  return m;
}

/** Whom one party's file is encrypted to, from the flags. */
function target(flags: Map<string, string>, party: "client" | "service"): EncryptTo | null {
  const r = flags.get(`--${party}-recipient`);
  const envName = flags.get(`--${party}-passphrase-env`);
  if (r && envName) {
    throw new RangeError(`--${party}-recipient and --${party}-passphrase-env exclude each other`);
  }
  if (r) return { recipients: [r] };
  if (envName) {
    const p = process.env[envName];
    if (!p) throw new RangeError(`${envName} (passphrase of the ${party} file) is unset`);
    return { passphrase: p };
  }
  if (flags.has("--plaintext")) return null;
  throw new RangeError(
    `the ${party} file needs --${party}-recipient or --${party}-passphrase-env (or --plaintext for development)`,
  );
}

const generatePrimes = () => generatePaillierPrimes((bits) => platformSafePrime(bits));

async function offline(flags: Map<string, string>): Promise<void> {
  const ids = (flags.get("--accounts") ?? "").split(",").map((s) => s.trim()).filter((s) => s);
  if (ids.length === 0) throw new RangeError("--accounts: expected a comma-separated list of ids");
  const dir = flags.get("--out-dir") ?? ".";
  const to = { client: target(flags, "client"), service: target(flags, "service") };
  console.error(`!! ${NOT_FOR_PRODUCTION}`);
  const t0 = Date.now();
  const [client, service] = await generateOfflineAccounts(ids, {
    generatePrimes,
    onProgress: (m) => console.error(`.. ${m} (${((Date.now() - t0) / 1000).toFixed(1)} s)`),
  });
  for (const [party, accounts] of [["client", client], ["service", service]] as const) {
    const text = new TextEncoder().encode(encodeAccountsFile(accounts));
    const enc = to[party];
    const bytes = enc ? await encryptKeyShareFileBytes(text, enc) : text;
    const path = join(dir, `${party}_key_shares.json`);
    await writeKeyShareFileAtomic(path, bytes);
    console.error(`.. wrote ${path} (${enc ? "age-encrypted" : "PLAINTEXT"})`);
  }
  const pk = client.get(ids[0])!.keyShare.publicKey.toHex(true);
  console.log(JSON.stringify({ accounts: ids, publicKey: pk, notForProduction: true }));
}

async function distributed(flags: Map<string, string>): Promise<void> {
  const need = (f: string) => {
    const v = flags.get(f);
    if (!v) throw new RangeError(`${f} is required`);
    return v;
  };
  const idFile = flags.get("--age-identity-file");
  const keyStore = await openFileKeyStore({
    path: need("--key-share-file"),
    identity: idFile ? parseAgeIdentityFile(readFileSync(idFile, "utf8")) : undefined,
    passphrase: process.env.WALLET_MPC_KEY_PASSPHRASE,
    plaintext: flags.has("--plaintext"),
    create: true,
  });
  const client = newMpcClient({
    serviceUrl: need("--service-url"),
    gatewayUrl: need("--gateway-url"),
    token: flags.get("--token") ?? process.env.WALLET_MPC_TOKEN ?? "",
    keyStore,
    generatePrimes,
    onProgress: (e) => {
      if (e.type === "status") console.error(`.. ${e.message}`);
      else if (e.type === "round-finished") console.error(`.. ${e.protocol} round ${e.round} done`);
    },
  });
  const account = need("--account");
  const r = await client.keygen(account);
  console.log(JSON.stringify({ account, publicKey: r.publicKey }));
}

function ageIdentity(flags: Map<string, string>): Promise<void> {
  const out = flags.get("--out");
  if (!out) throw new RangeError("--out is required");
  return generateAgeIdentity().then(({ identity, recipient }) => {
    writeFileSync(out, `# public key: ${recipient}\n${identity}\n`, { mode: 0o600, flag: "wx" });
    console.log(recipient);
  });
}

function caller(flags: Map<string, string>): void {
  const id = flags.get("--id");
  const accounts = (flags.get("--accounts") ?? "").split(",").map((a) => a.trim()).filter((a) => a);
  const out = flags.get("--out");
  if (!id || accounts.length === 0 || !out) {
    throw new RangeError("--id, --accounts and --out are required");
  }
  const token = generateToken();
  const yaml = [
    "callers:",
    `  - id: ${JSON.stringify(id)}`,
    `    token_sha256: ${hashToken(token)}`,
    `    accounts: ${JSON.stringify(accounts)}`,
    `    may_keygen: ${flags.has("--may-keygen")}`,
    "",
  ].join("\n");
  writeFileSync(out, yaml, { mode: 0o600, flag: "wx" });
  console.error(`.. wrote ${out}; the token below is shown once (the file keeps its hash only)`);
  console.log(token);
}

async function main(): Promise<number> {
  const [mode, ...rest] = process.argv.slice(2).filter((a) => a !== "--");
  if (!mode || mode === "--help" || mode === "-h") {
    console.log(USAGE);
    return mode ? 0 : 2;
  }
  let flags: Map<string, string>;
  try {
    flags = flagsOf(rest);
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  installPlatformBackends();
  try {
    if (mode === "offline") await offline(flags);
    else if (mode === "distributed") await distributed(flags);
    else if (mode === "age-identity") await ageIdentity(flags);
    else if (mode === "caller") caller(flags);
    else {
      console.error(`unknown mode ${mode}\n\n${USAGE}`);
      return 2;
    }
    return 0;
  } catch (e) {
    const err = e as Error & { code?: unknown };
    console.error(
      `error: ${err.name}${err.code !== undefined ? ` (${String(err.code)})` : ""}: ${err.message}`,
    );
    return err instanceof RangeError ? 2 : 1;
  }
}

process.exit(await main());
