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
 * never use these keys for real funds. It never overwrites a key share file: without `--add`
 * it refuses when either file exists; with `--add` it adds the accounts to both existing files
 * through the key store (one locked `put` per account), refusing, before generating anything,
 * accounts that either file holds already. The last line of stdout is JSON naming each
 * account's public key and Ethereum address.
 *
 * ```sh
 * deno task keygen offline --accounts demo,alice --out-dir . \
 *   --client-recipient age1... --service-recipient age1...      # or --plaintext
 * deno task keygen offline --add --accounts bob --out-dir . \
 *   --client-age-identity-file client.age --service-age-identity-file service.age
 * ```
 *
 * Passphrases instead of recipients: `--client-passphrase-env VAR`, `--service-passphrase-env
 * VAR` (the variable holds the passphrase). An identity file (`--client-age-identity-file`)
 * stands for its recipient when files are created, and is needed to read them with `--add`
 * (a recipient given too is then an extra recipient of every write). Progress goes to stderr.
 *
 * `caller` adds a caller to a callers file (YAML, as the service reads it), creating the file
 * when it does not exist: under the file's lock, refusing a caller id it holds already, keeping
 * the other callers and the comments, written atomically (temp, fsync, rename).
 * @module
 */
import process from "node:process";
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { Document, isMap, isSeq, parseDocument, YAMLMap, YAMLSeq } from "yaml";
import { InvalidKeyShare } from "../core/errors.ts";
import { encodeAccountsFile } from "../core/keyshare.ts";
import { generatePaillierPrimes } from "../core/protocols/aux_info.ts";
import { installPlatformBackends, platformSafePrime } from "../platform/mod.ts";
import { type KeyShareFs, writeKeyShareFileAtomic } from "../platform/keyshare_file.ts";
import { acquireFileLock } from "../platform/file_lock.ts";
import {
  ageRecipientOf,
  type Decryptor,
  encryptKeyShareFileBytes,
  type EncryptTo,
  generateAgeIdentity,
  type KeyStore,
  openKeyStore,
  parseAgeIdentityFile,
} from "../keystore/key_store.ts";
import { KeyStoreError } from "../keystore/errors.ts";
import { generateToken, hashToken, parseCallersFile } from "../service/auth.ts";
import { ConfigError } from "../service/errors.ts";
import { parseAccountId } from "../session/inputs.ts";
import {
  accountsHeld,
  addOfflineAccounts,
  describeAccounts,
  generateOfflineAccounts,
  NOT_FOR_PRODUCTION,
} from "./offline.ts";
import { newMpcClient } from "../client/mpc_client.ts";
import {
  type CommandSpec,
  formatHelp,
  parseCommand,
  type ParsedArgs,
} from "../platform/cli_args.ts";
import { openFileKeyStore } from "../client/file_key_store.ts";

const SIDES = ["client", "service"] as const;

const MODES: Readonly<Record<string, CommandSpec>> = {
  offline: {
    flags: {
      accounts: { arg: "a,b", help: "offline: the accounts to generate" },
      "out-dir": { arg: "dir", help: "offline: where the two files are (default .)" },
      add: { kind: "boolean", help: "offline: add the accounts to both existing files" },
      ...Object.fromEntries(SIDES.flatMap((p) => [
        [`${p}-recipient`, { arg: "age1...", help: `offline: whom the ${p} file is encrypted to` }],
        [`${p}-age-identity-file`, { arg: "path", help: `offline: the ${p} file's identity` }],
        [`${p}-passphrase-env`, { arg: "VAR", help: `offline: variable of the ${p} passphrase` }],
      ])),
      plaintext: { kind: "boolean", help: "unencrypted key share files (development)" },
    },
  },
  "age-identity": { flags: { out: { arg: "path", help: "age-identity: the file to write" } } },
  caller: {
    flags: {
      id: { arg: "id", help: "caller: the caller's id" },
      accounts: { arg: "'a,b,team-*'", help: "caller: the accounts it may use" },
      "may-keygen": { kind: "boolean", help: "caller: it may create accounts" },
      out: { arg: "callers.yaml", help: "caller: the callers file" },
    },
  },
  distributed: {
    flags: {
      account: { arg: "id", help: "distributed: the new account" },
      "service-url": { arg: "url", help: "distributed: the service's gRPC-web/Connect URL" },
      "gateway-url": { arg: "url", help: "distributed: the sign-gateway" },
      token: { arg: "token", help: "distributed: the caller's token" },
      "key-share-file": { arg: "path", help: "distributed: the client's key shares" },
      "age-identity-file": { arg: "path", help: "distributed: their age identity" },
      plaintext: { kind: "boolean", help: "unencrypted key share file (development)" },
    },
  },
};

const USAGE = formatHelp({
  title: "wallet-mpc keygen: key generation",
  usage: ["deno task keygen <command> [options]"],
  commands: [
    [
      "offline",
      "--accounts a,b [--out-dir DIR] [--add] and, per party, a recipient, an identity file or " +
      "a passphrase variable (or --plaintext). DEVELOPMENT ONLY: both parties in one process. " +
      "Refuses existing files; --add adds the accounts to both existing files instead (read " +
      "with the identity files or passphrases), refusing accounts either file holds. Prints " +
      "each account's public key and address.",
    ],
    [
      "age-identity",
      "--out PATH: writes a new age X25519 identity (mode 0600), prints its recipient",
    ],
    [
      "caller",
      "--id ID --accounts 'a,b,team-*' [--may-keygen] --out callers.yaml: adds a caller to the " +
      "callers file (created when missing; an existing id is refused), stores the token's hash " +
      "only and prints the token once.",
    ],
    [
      "distributed",
      "--account ID --service-url URL --gateway-url URL --token TOKEN --key-share-file PATH " +
      "[--age-identity-file PATH | passphrase in WALLET_MPC_KEY_PASSPHRASE] [--plaintext]",
    ],
  ],
  flags: Object.assign({}, ...Object.values(MODES).map((m) => m.flags)),
});

/** How one party's key share file is written when created, and read with `--add`. */
interface PartyKeys {
  /** Whom a new file is encrypted to; null: plaintext. */
  readonly to: EncryptTo | null;
  /** How the existing file is opened (`--add`); null when only a recipient was given. */
  readonly decryptor: Decryptor | null;
  /** Recipients every `--add` write encrypts to besides the identity's own. */
  readonly extra: readonly string[];
}

/** One party's keys, from the flags. */
async function partyKeys(
  flags: ParsedArgs,
  party: "client" | "service",
): Promise<PartyKeys> {
  const r = flags.value(`${party}-recipient`);
  const idFile = flags.value(`${party}-age-identity-file`);
  const envName = flags.value(`${party}-passphrase-env`);
  if (envName && (r || idFile)) {
    throw new RangeError(
      `--${party}-passphrase-env excludes --${party}-recipient and --${party}-age-identity-file`,
    );
  }
  if (envName) {
    const p = process.env[envName];
    if (!p) throw new RangeError(`${envName} (passphrase of the ${party} file) is unset`);
    return { to: { passphrase: p }, decryptor: { passphrase: p }, extra: [] };
  }
  if (idFile) {
    const identity = parseAgeIdentityFile(await fsp.readFile(idFile, "utf8"));
    const own = await ageRecipientOf(identity);
    const extra = r && r !== own ? [r] : [];
    return { to: { recipients: [own, ...extra] }, decryptor: { identity }, extra };
  }
  if (r) return { to: { recipients: [r] }, decryptor: null, extra: [] };
  if (flags.has("plaintext")) return { to: null, decryptor: { plaintext: true }, extra: [] };
  throw new RangeError(
    `the ${party} file needs --${party}-recipient, --${party}-age-identity-file or ` +
      `--${party}-passphrase-env (or --plaintext for development)`,
  );
}

const generatePrimes = () => generatePaillierPrimes((bits) => platformSafePrime(bits));

const PARTIES = ["client", "service"] as const;

/** Whether anything (a file, a directory, a link) is at `path`; errors other than ENOENT throw. */
async function exists(path: string): Promise<boolean> {
  try {
    await fsp.lstat(path);
    return true;
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT") return false;
    throw e;
  }
}

/**
 * `writeKeyShareFileAtomic` that never replaces a file: the temp file is published with
 * `link` (fails with EEXIST when the target exists) instead of `rename`.
 */
const NO_CLOBBER: KeyShareFs = {
  open: fsp.open,
  unlink: fsp.unlink,
  rename: async (from, to) => {
    await fsp.link(from, to);
    await fsp.unlink(from).catch(() => {});
  },
};

/** Creates new files, all or none (a file created meanwhile by someone else is left alone). */
async function createFiles(files: readonly { path: string; bytes: Uint8Array }[]): Promise<void> {
  const created: string[] = [];
  try {
    for (const { path, bytes } of files) {
      await writeKeyShareFileAtomic(path, bytes, { fs: NO_CLOBBER });
      created.push(path);
    }
  } catch (e) {
    for (const path of created) await fsp.unlink(path).catch(() => {});
    if ((e as { code?: unknown }).code === "EEXIST") {
      throw new RangeError(
        `a key share file appeared at ${files[created.length].path} meanwhile; nothing written`,
      );
    }
    throw e;
  }
}

async function offline(flags: ParsedArgs): Promise<void> {
  const ids = (flags.value("accounts") ?? "").split(",").map((s) => s.trim()).filter((s) => s);
  if (ids.length === 0) throw new RangeError("--accounts: expected a comma-separated list of ids");
  for (const id of ids) parseAccountId(id);
  if (new Set(ids).size !== ids.length) throw new RangeError("--accounts: an id is repeated");
  const dir = flags.value("out-dir") ?? ".";
  const add = flags.has("add");
  const keys = {
    client: await partyKeys(flags, "client"),
    service: await partyKeys(flags, "service"),
  };
  const paths = {
    client: join(dir, "client_key_shares.json"),
    service: join(dir, "service_key_shares.json"),
  };
  // Every refusal comes before the minutes of key generation.
  let stores: KeyStore[] | undefined;
  if (add) {
    stores = [];
    for (const [i, party] of PARTIES.entries()) {
      const { decryptor, extra } = keys[party];
      if (!decryptor) {
        throw new RangeError(
          `--add reads the ${party} file: give --${party}-age-identity-file or ` +
            `--${party}-passphrase-env, or --plaintext (a recipient cannot decrypt it)`,
        );
      }
      try {
        stores.push(
          await openKeyStore({
            path: paths[party],
            decryptor,
            partyIndex: i,
            parties: PARTIES.length,
            recipients: extra,
          }),
        );
      } catch (e) {
        if (e instanceof KeyStoreError && e.code === "not-found") {
          throw new RangeError(
            `--add: ${paths[party]} does not exist (without --add, new files are created)`,
          );
        }
        // The same error, naming the file (the store's messages do not).
        const where = `${paths[party]}: ${(e as Error)?.message}`;
        if (e instanceof KeyStoreError) throw new KeyStoreError(e.code, where, { cause: e });
        if (e instanceof InvalidKeyShare) throw new InvalidKeyShare(e.code, where);
        throw e;
      }
    }
    const held = accountsHeld(stores, ids);
    if (held.length > 0) {
      throw new KeyStoreError(
        "account-exists",
        `expected new accounts, got accounts already stored: ${held.join(", ")}; nothing written`,
      );
    }
  } else {
    for (const party of PARTIES) {
      if (await exists(paths[party])) {
        throw new RangeError(
          `${paths[party]} exists and is never overwritten: pass --add (with the files' ` +
            `identities or passphrases) to add the accounts to both files, or another --out-dir`,
        );
      }
    }
  }
  console.error(`!! ${NOT_FOR_PRODUCTION}`);
  const t0 = Date.now();
  const [client, service] = await generateOfflineAccounts(ids, {
    generatePrimes,
    onProgress: (m) => console.error(`.. ${m} (${((Date.now() - t0) / 1000).toFixed(1)} s)`),
  });
  if (stores) {
    await addOfflineAccounts(stores, [client, service]);
    for (const s of stores) console.error(`.. added ${ids.join(", ")} to ${s.path}`);
  } else {
    const files = [];
    for (const [party, accounts] of [["client", client], ["service", service]] as const) {
      const text = new TextEncoder().encode(encodeAccountsFile(accounts));
      const enc = keys[party].to;
      files.push({
        path: paths[party],
        bytes: enc ? await encryptKeyShareFileBytes(text, enc) : text,
      });
    }
    await createFiles(files);
    for (const party of PARTIES) {
      console.error(
        `.. wrote ${paths[party]} (${keys[party].to ? "age-encrypted" : "PLAINTEXT"})`,
      );
    }
  }
  const described = describeAccounts(client);
  // `publicKey` / `address` at the top level too when there is one account (the older form).
  const one = described.length === 1
    ? { publicKey: described[0].publicKey, address: described[0].address }
    : {};
  console.log(
    JSON.stringify({ accounts: ids, keys: described, ...one, notForProduction: true }),
  );
}

async function distributed(flags: ParsedArgs): Promise<void> {
  const need = (f: string) => {
    const v = flags.value(f.slice(2));
    if (!v) throw new RangeError(`${f} is required`);
    return v;
  };
  const idFile = flags.value("age-identity-file");
  const keyStore = await openFileKeyStore({
    path: need("--key-share-file"),
    identity: idFile ? parseAgeIdentityFile(readFileSync(idFile, "utf8")) : undefined,
    passphrase: process.env.WALLET_MPC_KEY_PASSPHRASE,
    plaintext: flags.has("plaintext"),
    create: true,
  });
  const client = newMpcClient({
    serviceUrl: need("--service-url"),
    gatewayUrl: need("--gateway-url"),
    token: flags.value("token") ?? process.env.WALLET_MPC_TOKEN ?? "",
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

function ageIdentity(flags: ParsedArgs): Promise<void> {
  const out = flags.value("out");
  if (!out) throw new RangeError("--out is required");
  return generateAgeIdentity().then(({ identity, recipient }) => {
    writeFileSync(out, `# public key: ${recipient}\n${identity}\n`, { mode: 0o600, flag: "wx" });
    console.log(recipient);
  });
}

/** One entry of a callers file (service/auth.ts). */
interface CallerEntry {
  readonly id: string;
  readonly token_sha256: string;
  readonly accounts: readonly string[];
  readonly may_keygen: boolean;
}

/** A callers-file refusal (service/auth.ts) restated for the `--out` file. */
function outFileError(path: string, e: unknown): unknown {
  if (!(e instanceof ConfigError)) return e;
  const why = e.message.slice(e.setting.length + 2);
  return new ConfigError(e.code, "--out", `${path}: ${why}; nothing written`, { cause: e });
}

/**
 * The callers file `text` (null: no file yet) with `entry` added: the other callers, the
 * comments and the layout are kept (the yaml library's document round trip). The file must be
 * a valid callers file already (or empty), and the result is validated as the service reads it.
 */
function withCaller(path: string, text: string | null, entry: CallerEntry): string {
  // The new entry alone first, so its own faults name the flag, not a list index.
  try {
    parseCallersFile(JSON.stringify({ callers: [entry] }));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new RangeError(`--id / --accounts: ${e.message.replace(/^.*?callers\[0\][^:]*: /, "")}`);
  }
  const doc = text === null ? new Document() : parseDocument(text);
  if (doc.errors.length > 0) {
    throw new ConfigError("unparsable", "--out", `${path}: not valid YAML; nothing written`);
  }
  if (doc.contents !== null) {
    // Refuse to edit what the service would refuse to read.
    let callers;
    try {
      callers = parseCallersFile(text ?? "");
    } catch (e) {
      throw outFileError(path, e);
    }
    if (callers.some((c) => c.id === entry.id)) {
      throw new ConfigError(
        "contradictory",
        "--id",
        `expected a caller id that ${path} does not hold, got ${entry.id}; nothing written ` +
          "(remove that caller from the file first to give it a new token)",
      );
    }
  }
  const node = doc.createNode(entry);
  const accounts = node.get("accounts", true);
  if (isSeq(accounts)) accounts.flow = true;
  const list = isMap(doc.contents) ? doc.contents.get("callers", true) : undefined;
  if (isSeq(list)) {
    list.flow = false;
    list.add(node);
  } else {
    // No document yet (a new, empty or comments-only file): the comments stay above it.
    const seq = new YAMLSeq();
    seq.add(node);
    const map = new YAMLMap();
    map.set("callers", seq);
    doc.contents = map;
  }
  const out = doc.toString({ lineWidth: 0, flowCollectionPadding: false });
  try {
    if (!parseCallersFile(out).some((c) => c.id === entry.id)) throw new Error("caller missing");
  } catch (e) {
    throw outFileError(path, e);
  }
  return out;
}

async function caller(flags: ParsedArgs): Promise<void> {
  const id = flags.value("id");
  const accounts = (flags.value("accounts") ?? "").split(",").map((a) => a.trim()).filter((a) => a);
  const out = flags.value("out");
  if (!id || accounts.length === 0 || !out) {
    throw new RangeError("--id, --accounts and --out are required");
  }
  const token = generateToken();
  const entry: CallerEntry = {
    id,
    token_sha256: hashToken(token),
    accounts,
    may_keygen: flags.has("may-keygen"),
  };
  // Under the file's lock (two `keygen caller` runs never lose each other's caller); the
  // service reads the file without it, and the rename makes it see the old or the new file.
  const lock = await acquireFileLock(out, { timeoutMs: 10_000 });
  let created: boolean;
  try {
    let text: string | null = null;
    let mode = 0o600;
    try {
      text = await fsp.readFile(out, "utf8");
      mode = (await fsp.stat(out)).mode & 0o777;
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code !== "ENOENT") {
        throw new ConfigError(
          "unreadable",
          "--out",
          `${out}: cannot be read (${typeof code === "string" ? code : "error"}); nothing written`,
          { cause: e },
        );
      }
    }
    const next = withCaller(out, text, entry);
    await lock.assertHeld();
    await writeKeyShareFileAtomic(out, new TextEncoder().encode(next), { mode });
    created = text === null;
  } finally {
    await lock.release();
  }
  console.error(
    `.. ${created ? "wrote" : "added the caller to"} ${out}; the token below is shown once ` +
      "(the file keeps its hash only)",
  );
  console.log(token);
}

async function main(): Promise<number> {
  const got = parseCommand(process.argv.slice(2), MODES, USAGE, console);
  if (typeof got === "number") return got;
  const { command: mode, args: flags } = got;
  installPlatformBackends();
  try {
    if (mode === "offline") await offline(flags);
    else if (mode === "distributed") await distributed(flags);
    else if (mode === "age-identity") await ageIdentity(flags);
    else if (mode === "caller") await caller(flags);
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
