/**
 * The one admin entry point (`deno task admin`): the operator commands of a deployment, besides
 * key generation (`deno task keygen`, `deno task client keygen`).
 *
 * ```sh
 * deno task admin callers add --id my-wallet --accounts 'demo,alice' --may-keygen --out callers.yaml
 * deno task admin age-identity new --out service.age       # prints its recipient (age1...)
 * deno task admin accounts uncommitted [config.yaml]        # accounts whose keygen never committed
 * deno task admin accounts discard-uncommitted --account <id> [config.yaml]
 * deno task admin key-file migrate [config.yaml]            # a file of an earlier release
 * ```
 *
 * `callers add` adds a caller to a callers file (YAML, as the service reads it), creating the
 * file when it does not exist: under the file's lock, refusing a caller id it holds already,
 * keeping the other callers and the comments, written atomically (temp, fsync, rename); the
 * caller's token is printed once and only its hash stored. `age-identity new` writes a new age
 * X25519 identity (mode 0600, never over an existing file), for the client's or the service's
 * key share file.
 *
 * The `accounts` commands read the service's configuration as the service does (the file as
 * the only argument, `WALLET_MPC_SERVICE_*`, the service's flags: README "Entry points"). An
 * uncommitted account holds only a pending key-generation epoch (docs/key-lifecycle.md): it
 * never signed and is not listed. A committed account is never deleted here. The command takes
 * the key file's lock, so it waits for (or is refused by) a running writer. `key-file migrate`
 * rewrites a key share file of an earlier release (versions 1 and 2, without record MACs; the
 * service and the client refuse those) in the current format, with MACs: run it once, after
 * checking the file is the one you made (docs/key-lifecycle.md, "File format"). The older names
 * `uncommitted` and `discard-uncommitted` (task `service:admin`) still work, with a warning.
 *
 * Exit status: 0 done, 1 refused or failed, 2 bad usage.
 * @module
 */
import * as fsp from "node:fs/promises";
import process from "node:process";
import { currentEpoch } from "../core/account_records.ts";
import { generateAgeIdentity, openKeyStore, resolveDecryptor } from "../keystore/key_store.ts";
import { acquireFileLock } from "../platform/file_lock.ts";
import { writeKeyShareFileAtomic } from "../platform/keyshare_file.ts";
import {
  type CommandSpec,
  failureStatus,
  formatHelp,
  parseCommand,
  type ParsedArgs,
} from "../platform/cli_args.ts";
import { applyEnvAliases } from "../platform/settings_layers.ts";
import { generateToken, hashToken } from "./auth.ts";
import { type CallerEntry, withCaller } from "./callers_file.ts";
import { loadServiceConfigFrom, SERVICE_ENV_ALIASES, serviceCommand } from "./config.ts";
import { ConfigError } from "./errors.ts";

const ACCOUNT = { account: { arg: "id", help: "accounts discard-uncommitted: the account" } };

const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  "callers add": {
    flags: {
      id: { arg: "id", help: "callers add: the caller's id" },
      accounts: { arg: "'a,b,team-*'", help: "callers add: the accounts it may use" },
      "may-keygen": { kind: "boolean", help: "callers add: it may create accounts" },
      out: { arg: "path", help: "callers add: the callers file; age-identity new: the file" },
    },
  },
  "age-identity new": { flags: { out: { arg: "path", help: "the identity file to write" } } },
  "accounts uncommitted": serviceCommand(),
  "accounts discard-uncommitted": serviceCommand(ACCOUNT),
  "key-file migrate": serviceCommand(),
  // Deprecated names (task service:admin).
  uncommitted: serviceCommand(),
  "discard-uncommitted": serviceCommand(ACCOUNT),
};

const DEPRECATED: Readonly<Record<string, string>> = {
  uncommitted: "accounts uncommitted",
  "discard-uncommitted": "accounts discard-uncommitted",
};

const USAGE = formatHelp({
  title: "wallet-mpc admin: operator commands (callers, age identities, the service's key store)",
  usage: ["deno task admin <command> [config.yaml] [options]"],
  commands: [
    [
      "callers add",
      "--id ID --accounts 'a,b,team-*' [--may-keygen] --out callers.yaml: adds a caller to the " +
      "callers file (created when missing; an existing id is refused), stores the token's hash " +
      "only and prints the token once",
    ],
    ["age-identity new", "--out PATH: writes a new age X25519 identity, prints its recipient"],
    ["accounts uncommitted", "lists the service's accounts whose key generation never committed"],
    ["accounts discard-uncommitted", "--account ID: deletes one uncommitted account"],
    ["key-file migrate", "rewrites a key share file of an earlier release with record MACs"],
  ],
  flags: {
    ...COMMANDS["callers add"].flags,
    ...COMMANDS["accounts discard-uncommitted"].flags,
  },
  notes: [
    "The accounts and key-file commands read the service's configuration as the service does (its file as " +
    "the only argument, its flags and WALLET_MPC_SERVICE_* variables: deno task service --help).",
  ],
});

/** `callers add`: adds a caller to the callers file (`--out`), prints its token once. */
async function addCaller(flags: ParsedArgs): Promise<number> {
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
  // Under the file's lock (two `callers add` runs never lose each other's caller); the
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
  return 0;
}

/** `age-identity new`: writes a new age identity (never over a file), prints its recipient. */
async function newAgeIdentity(flags: ParsedArgs): Promise<number> {
  const out = flags.value("out");
  if (!out) throw new RangeError("--out is required");
  const { identity, recipient } = await generateAgeIdentity();
  await fsp.writeFile(out, `# public key: ${recipient}\n${identity}\n`, {
    mode: 0o600,
    flag: "wx",
  });
  console.log(recipient);
  return 0;
}

/** `accounts uncommitted`, `accounts discard-uncommitted` and `key-file migrate`, on the service's key store. */
async function accounts(command: string, args: ParsedArgs): Promise<number> {
  const account = args.value("account");
  const migrate = command === "key-file migrate";
  const { env, warnings } = applyEnvAliases(process.env, SERVICE_ENV_ALIASES);
  for (const w of warnings) console.error(w);
  const config = await loadServiceConfigFrom(args, {
    env,
    readFile: (p) => fsp.readFile(p, "utf8"),
  });
  const store = await openKeyStore({
    path: config.mpc.keyShareFile,
    decryptor: await resolveDecryptor(config.keyStore, {
      env,
      readFile: (p) => fsp.readFile(p, "utf8"),
    }),
    partyIndex: config.server.index,
    parties: config.mpc.totalParticipants,
    allowPlaintext: config.keyStore.allowPlaintext,
    recipients: config.keyStore.recipients,
    migrateLegacy: migrate,
  });
  if (migrate) {
    // Opening with migrateLegacy rewrote a legacy file; a current one is left as it was.
    console.log(`${store.path}: in the current format, ${store.accounts().length} account(s)`);
    return 0;
  }
  if (command === "accounts uncommitted") {
    for (const id of store.uncommitted()) {
      const e = store.record(id)!.epochs[0];
      console.log(`${id}\tkeygen session ${e.sessionId || "-"}\tepoch ${e.digest.slice(0, 16)}`);
    }
    return 0;
  }
  if (!account) {
    console.error("discard-uncommitted: expected --account <id>");
    return 2;
  }
  let found = false;
  await store.update(account, (rec) => {
    if (!rec) return rec;
    if (currentEpoch(rec)) {
      throw new Error(`account "${account}" is committed: it is never deleted by this command`);
    }
    found = true;
    return undefined;
  });
  if (!found) {
    console.error(`account "${account}" is not stored`);
    return 1;
  }
  console.log(`discarded the uncommitted account ${account}`);
  return 0;
}

async function main(): Promise<number> {
  const got = parseCommand(process.argv.slice(2), COMMANDS, USAGE, console);
  if (typeof got === "number") return got;
  let { command } = got;
  if (Object.hasOwn(DEPRECATED, command)) {
    console.error(`warning: admin ${command} is deprecated; use admin ${DEPRECATED[command]}`);
    command = DEPRECATED[command];
  }
  try {
    if (command === "callers add") return await addCaller(got.args);
    if (command === "age-identity new") return await newAgeIdentity(got.args);
    return await accounts(command, got.args);
  } catch (e) {
    return failureStatus(e, console);
  }
}

process.exit(await main());
