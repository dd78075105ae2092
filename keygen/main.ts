/**
 * Key generation command line (`deno task keygen`): development keys made offline. Production
 * keys come from distributed key generation with the running service, `deno task client keygen`
 * (client/cli.ts), where neither share ever leaves its owner. The operator commands that lived
 * here (callers, age identities) are `deno task admin` (service/admin.ts); the old command names
 * answer with the new ones.
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
 * @module
 */
import process from "node:process";
import { join } from "node:path";
import * as fsp from "node:fs/promises";
import { InvalidKeyShare } from "../core/errors.ts";
import { encodeAccountEntries } from "../core/account_records.ts";
import { generatePaillierPrimes } from "../core/protocols/aux_info.ts";
import { installPlatformBackends, platformSafePrime } from "../platform/mod.ts";
import { type KeyShareFs, writeKeyShareFileAtomic } from "../platform/keyshare_file.ts";
import {
  ageRecipientOf,
  type Decryptor,
  encryptKeyShareFileBytes,
  type EncryptTo,
  type KeyStore,
  openKeyStore,
  parseAgeIdentityFile,
} from "../keystore/key_store.ts";
import { KeyStoreError } from "../keystore/errors.ts";
import { parseAccountId } from "../session/inputs.ts";
import {
  accountsHeld,
  addOfflineAccounts,
  describeAccounts,
  generateOfflineAccounts,
  NOT_FOR_PRODUCTION,
} from "./offline.ts";
import {
  type CommandSpec,
  failureStatus,
  formatHelp,
  parseCommand,
  type ParsedArgs,
} from "../platform/cli_args.ts";

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
  ],
  flags: MODES.offline.flags,
  notes: [
    "Distributed key generation (production) is `deno task client keygen --account ID`; " +
    "callers and age identities are `deno task admin callers add` and `deno task admin " +
    "age-identity new`.",
  ],
});

/** Commands that moved, and where to (the old names answer with the new ones). */
const MOVED: Readonly<Record<string, string>> = {
  distributed: "deno task client keygen --account ID (same flags: --service-url, --gateway-url, " +
    "--token, --key-share-file, --age-identity-file)",
  caller: "deno task admin callers add --id ID --accounts 'a,b' [--may-keygen] --out callers.yaml",
  "age-identity": "deno task admin age-identity new --out PATH",
};

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
      const text = new TextEncoder().encode(encodeAccountEntries(accounts));
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

async function main(): Promise<number> {
  const first = process.argv[2];
  if (first !== undefined && Object.hasOwn(MOVED, first)) {
    console.error(`keygen ${first} moved: use ${MOVED[first]}`);
    return 2;
  }
  const got = parseCommand(process.argv.slice(2), MODES, USAGE, console);
  if (typeof got === "number") return got;
  const { command: mode, args: flags } = got;
  installPlatformBackends();
  try {
    if (mode === "offline") await offline(flags);
    return 0;
  } catch (e) {
    return failureStatus(e, console);
  }
}

process.exit(await main());
