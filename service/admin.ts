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
import { loadServiceConfig } from "./config.ts";

const USAGE = `sign-service admin

Usage: admin.ts <command> [--account <id>] [service configuration flags]
Commands:
  uncommitted                          list accounts whose key generation never committed
  discard-uncommitted --account <id>   delete one uncommitted account
`;

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const command = argv[0];
  const rest = argv.slice(1);
  let account: string | undefined;
  const k = rest.findIndex((a) => a === "--account" || a.startsWith("--account="));
  if (k >= 0) {
    const a = rest[k];
    account = a.includes("=") ? a.slice(a.indexOf("=") + 1) : rest[k + 1];
    rest.splice(k, a.includes("=") ? 1 : 2);
  }
  if (command !== "uncommitted" && command !== "discard-uncommitted") {
    console.error(USAGE);
    return 2;
  }
  const env = process.env as Record<string, string | undefined>;
  const config = await loadServiceConfig({ argv: rest, env, readFile: (p) => readFile(p, "utf8") });
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
