// Interoperability of the key store with the reference `age` command line tool: a file the CLI
// encrypted opens in the store, and a file the store wrote decrypts with `age -d`. Skipped when
// `age` is not installed (CI installs it, see .ci/run). Passphrase files are not tested against
// the CLI: `age -p` reads the passphrase from a terminal only.
import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { decodeAccountRecords, encodeAccountRecords, fromEntry } from "../core/account_records.ts";
import { encodeAccountEntries } from "../core/account_records.ts";
import { generateAgeIdentity, openKeyStore, parseAgeIdentityFile } from "./key_store.ts";
import { fixtureEntries, withDir } from "./_key_store_test_util.ts";

function hasAge(): boolean {
  try {
    const r = spawnSync("age", ["--version"], { encoding: "utf8" });
    return r.status === 0 && spawnSync("age-keygen", ["--version"]).status === 0;
  } catch {
    return false;
  }
}

const SKIP = hasAge() ? false : "the age CLI is not installed (apt-get install age)";

function run(cmd: string, args: string[], input?: Uint8Array): Uint8Array {
  const r = spawnSync(cmd, args, { input });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${String(r.stderr)}`);
  return new Uint8Array(r.stdout);
}

const { party1, party1Other } = await fixtureEntries();

for (const armor of [false, true]) {
  test(
    `a file encrypted by the age CLI${armor ? " with -a" : ""} opens in the key store`,
    { skip: SKIP },
    async () => {
      await withDir(async (dir) => {
        const idFile = join(dir, "identity.txt");
        run("age-keygen", ["-o", idFile]);
        const identity = parseAgeIdentityFile(await fsp.readFile(idFile, "utf8"));
        const recipient = new TextDecoder().decode(run("age-keygen", ["-y", idFile])).trim();
        const plain = join(dir, "keys.json");
        await fsp.writeFile(plain, encodeAccountEntries(new Map([["acct-1", party1]])));
        const path = join(dir, "keys.age");
        run("age", [...(armor ? ["-a"] : []), "-r", recipient, "-o", path, plain]);

        const store = await openKeyStore({ path, decryptor: { identity }, partyIndex: 1 });
        assert.deepEqual(store.accounts(), ["acct-1"]);
        assert.equal(store.format(), armor ? "age-armor" : "age");
        assert.equal(store.get("acct-1")?.keyShare.x, party1.keyShare.x);
      });
    },
  );
}

test(
  "a file the key store wrote decrypts with `age -d -i identity.txt`",
  { skip: SKIP },
  async () => {
    await withDir(async (dir) => {
      const { identity } = await generateAgeIdentity();
      const idFile = join(dir, "identity.txt");
      await fsp.writeFile(idFile, `# test identity\n${identity}\n`, { mode: 0o600 });
      const path = join(dir, "keys.age");
      const store = await openKeyStore({
        path,
        decryptor: { identity },
        partyIndex: 1,
        allowMissing: true,
      });
      await store.put("acct-1", party1);
      await store.put("acct-2", party1Other);

      const out = run("age", ["-d", "-i", idFile, path]);
      const expected = encodeAccountRecords(
        new Map([["acct-1", fromEntry(party1)], ["acct-2", fromEntry(party1Other)]]),
      );
      assert.equal(new TextDecoder().decode(out), expected);
      assert.deepEqual([...decodeAccountRecords(out).keys()], ["acct-1", "acct-2"]);

      // Armored output decrypts too.
      const armored = await openKeyStore({
        path,
        decryptor: { identity },
        partyIndex: 1,
        armor: true,
      });
      await armored.update("acct-1", (r) => r && { ...r }); // a rewrite, same contents
      assert.match(await fsp.readFile(path, "utf8"), /^-----BEGIN AGE ENCRYPTED FILE-----/);
      assert.equal(new TextDecoder().decode(run("age", ["-d", "-i", idFile, path])), expected);
    });
  },
);
