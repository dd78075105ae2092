/**
 * Operator commands on the sign-service's key store, reading the same configuration as the
 * service (config file < environment < flags; see docs/service.md):
 *
 * ```sh
 * deno task service:admin uncommitted                         # accounts whose keygen never committed
 * deno task service:admin discard-uncommitted --account <id>  # delete one of them
 * ```
 *
 * An uncommitted account holds only a pending key-generation epoch (docs/key-lifecycle.md): it
 * never signed and is not listed. A committed account is never deleted here. The command takes
 * the key file's lock, so it waits for (or is refused by) a running writer.
 * @module
 */
import { readFile } from "node:fs/promises";
import process from "node:process";
import { currentEpoch } from "../core/account_records.ts";
import { openKeyStore, resolveDecryptor } from "../keystore/key_store.ts";
import { formatHelp, parseCommand } from "../platform/cli_args.ts";
import { applyEnvAliases } from "../platform/settings_layers.ts";
import { loadServiceConfigFrom, SERVICE_ENV_ALIASES, serviceCommand } from "./config.ts";

const COMMANDS = {
  uncommitted: serviceCommand(),
  "discard-uncommitted": serviceCommand({
    account: { arg: "id", help: "the account to discard" },
  }),
};

const USAGE = formatHelp({
  title: "sign-service admin: operator commands on the service's key store",
  usage: ["deno task service:admin <command> [config.yaml] [options]"],
  commands: [
    ["uncommitted", "list accounts whose key generation never committed"],
    ["discard-uncommitted", "--account <id>: delete one uncommitted account"],
  ],
  flags: COMMANDS["discard-uncommitted"].flags,
  notes: [
    "The service's configuration is read as the service reads it (deno task service --help).",
  ],
});

async function main(): Promise<number> {
  const got = parseCommand(process.argv.slice(2), COMMANDS, USAGE, console);
  if (typeof got === "number") return got;
  const { command, args } = got;
  const account = args.value("account");
  const { env, warnings } = applyEnvAliases(process.env, SERVICE_ENV_ALIASES);
  for (const w of warnings) console.error(w);
  const config = await loadServiceConfigFrom(args, { env, readFile: (p) => readFile(p, "utf8") });
  const store = await openKeyStore({
    path: config.mpc.keyShareFile,
    decryptor: await resolveDecryptor(config.keyStore, {
      env,
      readFile: (p) => readFile(p, "utf8"),
    }),
    partyIndex: config.server.index,
    parties: config.mpc.totalParticipants,
    allowPlaintext: config.keyStore.allowPlaintext,
    recipients: config.keyStore.recipients,
  });
  if (command === "uncommitted") {
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

main().then((code) => process.exit(code), (e) => {
  console.error(`admin: ${(e as Error)?.name ?? "Error"}: ${(e as Error)?.message ?? e}`);
  process.exit(1);
});
