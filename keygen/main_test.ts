/**
 * The keygen command line as a process (under the runtime running this file):
 *
 * - the commands that moved (`caller`, `age-identity`, `distributed`) answer with their new
 *   names and run nothing;
 * - `offline` refuses, before generating anything: an existing file without `--add`, a missing
 *   one with `--add`, an account either file holds, a file it cannot read or decrypt, bad flags;
 * - (slow tier) `offline` creates both files, `--add` adds an account to both, and each
 *   account's public key and address are printed.
 */
import "../testing/setup.ts";
import { SLOW } from "../testing/setup.ts";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { type AccountEntry, decodeAccountsFile } from "../core/keyshare.ts";
import { generateAgeIdentity, openKeyStore } from "../keystore/key_store.ts";
import { ethereumAddress } from "../session/inputs.ts";
import { runEntryPoint } from "../testing/entry_point.ts";
import { bytesOf, withDir } from "../testing/temp_files.ts";

/** Runs `keygen/main.ts args` under this file's runtime, bounded. */
function keygen(args: string[], env: Record<string, string> = {}, ms = 60_000) {
  return runEntryPoint("keygen/main.ts", args, env, ms);
}

// ---------------------------------------------------------------------------------------------
// moved commands

test("keygen caller, age-identity and distributed moved: each names its new command, runs nothing", async () => {
  const moved = {
    caller: /use deno task admin callers add/,
    "age-identity": /use deno task admin age-identity new/,
    distributed: /use deno task client keygen --account ID/,
  };
  for (const [command, message] of Object.entries(moved)) {
    const r = await keygen([command, "--out", "x"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, "");
  }
});

// ---------------------------------------------------------------------------------------------
// offline: refusals before any key generation

const FIXTURE = decodeAccountsFile(
  new Uint8Array(
    await fsp.readFile(new URL("../testing/fixtures/keyshare_v1.json", import.meta.url)),
  ),
);
/** Fixture shares of party 0 (client) and party 1 (service); test data only. */
const SHARES: readonly AccountEntry[] = [
  FIXTURE.get("TEST-ONLY-fixture-a") as AccountEntry,
  FIXTURE.get("TEST-ONLY-fixture-b") as AccountEntry,
];
const PARTY = ["client", "service"] as const;

interface OfflineDir {
  readonly dir: string;
  readonly client: string;
  readonly service: string;
  /** Flags naming both parties' identity files. */
  readonly identities: string[];
}

/** A temp dir with both parties' age identity files and (optionally) key share files. */
async function withKeyFiles(
  accounts: readonly [readonly string[], readonly string[]] | null,
  f: (d: OfflineDir) => Promise<void>,
): Promise<void> {
  await withDir(async (dir) => {
    const identities: string[] = [];
    const paths = PARTY.map((p) => join(dir, `${p}_key_shares.json`));
    for (const [i, party] of PARTY.entries()) {
      const { identity } = await generateAgeIdentity();
      const idFile = join(dir, `${party}.age`);
      await fsp.writeFile(idFile, identity + "\n", { mode: 0o600 });
      identities.push(`--${party}-age-identity-file`, idFile);
      if (!accounts) continue;
      const s = await openKeyStore({
        path: paths[i],
        decryptor: { identity },
        partyIndex: i,
        parties: 2,
        allowMissing: true,
      });
      for (const id of accounts[i]) await s.put(id, SHARES[i]);
    }
    await f({ dir, client: paths[0], service: paths[1], identities });
  });
}

/** Every file of the directory with its bytes (null for a directory). */
async function snapshot(dir: string): Promise<Map<string, Uint8Array | null>> {
  const m = new Map<string, Uint8Array | null>();
  for (const n of (await fsp.readdir(dir)).sort()) m.set(n, await bytesOf(join(dir, n)));
  return m;
}

const OFFLINE_HOSTILE: readonly {
  readonly name: string;
  /** The accounts of the client and service files; null: no key share files. */
  readonly files: readonly [readonly string[], readonly string[]] | null;
  readonly args: (d: OfflineDir) => Promise<string[]> | string[];
  /** Changes to make before the run. */
  readonly prepare?: (d: OfflineDir) => Promise<void>;
  readonly code: number;
  readonly message: (d: OfflineDir) => RegExp;
}[] = [
  {
    name: "an existing client file without --add",
    files: null,
    prepare: (d) => fsp.writeFile(d.client, "anything"),
    args: (d) => ["--accounts", "a", ...d.identities],
    code: 2,
    message: (d) => new RegExp(`${d.client} exists and is never overwritten: pass --add`),
  },
  {
    name: "an existing service file without --add",
    files: null,
    prepare: (d) => fsp.writeFile(d.service, ""),
    args: () => ["--accounts", "a", "--plaintext"],
    code: 2,
    message: (d) => new RegExp(`${d.service} exists and is never overwritten`),
  },
  {
    name: "both files existing without --add (the old overwrite)",
    files: [["a"], ["a"]],
    args: (d) => ["--accounts", "b", ...d.identities],
    code: 2,
    message: () => /exists and is never overwritten/,
  },
  {
    name: "--add with the service file missing",
    files: [["a"], ["a"]],
    prepare: (d) => fsp.rm(d.service),
    args: (d) => ["--add", "--accounts", "b", ...d.identities],
    code: 2,
    message: (d) => new RegExp(`--add: ${d.service} does not exist`),
  },
  {
    name: "--add with an account the service file holds",
    files: [["a"], ["a", "b"]],
    args: (d) => ["--add", "--accounts", "c,b", ...d.identities],
    code: 1,
    message: (d) =>
      new RegExp(`account-exists.*already stored: "b" in ${d.service}; nothing written`),
  },
  {
    name: "--add with an account both files hold",
    files: [["a"], ["a"]],
    args: (d) => ["--add", "--accounts", "a", ...d.identities],
    code: 1,
    message: (d) => new RegExp(`"a" in ${d.client}, "a" in ${d.service}`),
  },
  {
    name: "--add with a client file that is not a key share file",
    files: [["a"], ["a"]],
    prepare: (d) => fsp.writeFile(d.client, "garbage"),
    args: (d) => ["--add", "--accounts", "b", ...d.identities],
    code: 1,
    message: (d) => new RegExp(`${d.client}: `),
  },
  {
    name: "--add with the wrong identity for the service file",
    files: [["a"], ["a"]],
    prepare: async (d) => {
      const { identity } = await generateAgeIdentity();
      await fsp.writeFile(join(d.dir, "service.age"), identity + "\n");
    },
    args: (d) => ["--add", "--accounts", "b", ...d.identities],
    code: 1,
    message: (d) => new RegExp(`decrypt-failed.*${d.service}`),
  },
  {
    name: "--add with a directory in place of the client file",
    files: [["a"], ["a"]],
    prepare: async (d) => {
      await fsp.rm(d.client);
      await fsp.mkdir(d.client);
    },
    args: (d) => ["--add", "--accounts", "b", ...d.identities],
    code: 1,
    message: (d) => new RegExp(`KeyStoreError.*${d.client}`),
  },
  {
    name: "--add with recipients only (they cannot decrypt)",
    files: [["a"], ["a"]],
    args: () => [
      "--add",
      "--accounts",
      "b",
      "--client-recipient",
      "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
      "--plaintext",
    ],
    code: 2,
    message: () => /--add reads the client file: give --client-age-identity-file/,
  },
  {
    name: "--add with the files' index swapped (service identity for the client file)",
    files: [["a"], ["a"]],
    prepare: async (d) => {
      await fsp.rename(d.client, join(d.dir, "x"));
      await fsp.rename(d.service, d.client);
      await fsp.rename(join(d.dir, "x"), d.service);
      await fsp.rename(join(d.dir, "client.age"), join(d.dir, "x"));
      await fsp.rename(join(d.dir, "service.age"), join(d.dir, "client.age"));
      await fsp.rename(join(d.dir, "x"), join(d.dir, "service.age"));
    },
    args: (d) => ["--add", "--accounts", "b", ...d.identities],
    code: 1,
    message: () => /wrong-party.*expected a share of party 0/,
  },
  {
    name: "a repeated account id",
    files: null,
    args: () => ["--accounts", "a,a", "--plaintext"],
    code: 2,
    message: () => /--accounts: an id is repeated/,
  },
  {
    name: "a bad account id",
    files: null,
    args: () => ["--accounts", "a/b", "--plaintext"],
    code: 1,
    message: () => /account_id: expected/,
  },
];

for (const c of OFFLINE_HOSTILE) {
  test(`keygen offline refuses ${c.name}, before generating, touching nothing`, async () => {
    await withKeyFiles(c.files, async (d) => {
      await c.prepare?.(d);
      const before = await snapshot(d.dir);
      const r = await keygen(["offline", "--out-dir", d.dir, ...await c.args(d)]);
      assert.equal(r.code, c.code, r.stderr);
      assert.match(r.stderr, c.message(d));
      assert.ok(!r.stderr.includes("NOT FOR PRODUCTION"), "refused before key generation");
      assert.equal(r.stdout, "");
      assert.deepEqual(await snapshot(d.dir), before, "the directory is as it was");
    });
  });
}

// ---------------------------------------------------------------------------------------------
// offline: the whole run (real primes)

describe("keygen offline with real primes", {
  skip: !SLOW && "slow tier: the keygen process generates real 1536-bit safe primes",
}, () => {
  test("creates both files, then --add adds an account to both; each key and address printed", async () => {
    await withKeyFiles(null, async (d) => {
      const created = await keygen(
        ["offline", "--out-dir", d.dir, "--accounts", "dev-1", ...d.identities],
        {},
        900_000,
      );
      assert.equal(created.code, 0, created.stderr);
      const added = await keygen(
        ["offline", "--add", "--out-dir", d.dir, "--accounts", "dev-2,dev-3", ...d.identities],
        {},
        1_800_000,
      );
      assert.equal(added.code, 0, added.stderr);
      const results = [created, added].map((r) => JSON.parse(r.stdout.trim().split("\n").at(-1)!));
      assert.deepEqual(results.map((r) => r.accounts), [["dev-1"], ["dev-2", "dev-3"]]);
      assert.equal(results[0].publicKey, results[0].keys[0].publicKey, "the one-account form");
      assert.equal(results[1].publicKey, undefined, "no single key for several accounts");
      const printed = [...results[0].keys, ...results[1].keys];
      assert.notEqual(printed[1].publicKey, printed[2].publicKey, "one key per account");
      for (const [i, party] of PARTY.entries()) {
        const identity = (await fsp.readFile(join(d.dir, `${party}.age`), "utf8")).trim();
        const s = await openKeyStore({
          path: i === 0 ? d.client : d.service,
          decryptor: { identity },
          partyIndex: i,
          parties: 2,
        });
        assert.deepEqual(s.accounts(), ["dev-1", "dev-2", "dev-3"]);
        for (const k of printed) {
          const key = s.get(k.account)!.keyShare.publicKey;
          assert.equal(key.toHex(true), k.publicKey, `${party} ${k.account}`);
          assert.equal(ethereumAddress(key), k.address);
        }
      }
    });
  });
});
