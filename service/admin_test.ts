/**
 * The admin entry point as a process (under the runtime running this file):
 *
 * - `callers add` creates a callers file or adds to one (other callers and comments kept, mode
 *   kept, concurrent runs serialized), and refuses, writing nothing and printing no token: a
 *   duplicate id, a file that is not YAML or that the service would refuse, a directory, bad
 *   flags;
 * - `age-identity new` writes an identity (0600) and prints its recipient, never over a file;
 * - `accounts uncommitted` lists, on a real key file read through the service's configuration,
 *   the account whose key generation is pending and not the committed one;
 *   `accounts discard-uncommitted` deletes the pending one and refuses the committed one
 *   (the file untouched); the older names still work, with a warning.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { stagePending } from "../core/account_records.ts";
import { type AccountEntry, decodeAccountsFile, encodeAccountsFile } from "../core/keyshare.ts";
import {
  ageRecipientOf,
  encryptKeyShareFileBytes,
  generateAgeIdentity,
  openKeyStore,
  parseAgeIdentityFile,
} from "../keystore/key_store.ts";
import { runEntryPoint } from "../testing/entry_point.ts";
import { bytesOf, withDir } from "../testing/temp_files.ts";
import { hashToken, parseCallersFile } from "./auth.ts";

/** Runs `service/admin.ts args` under this file's runtime, bounded. */
function admin(args: string[], env: Record<string, string> = {}) {
  return runEntryPoint("service/admin.ts", args, env);
}

// ---------------------------------------------------------------------------------------------
// callers add (moved from keygen caller)

const HASH = "ab".repeat(32);
const EXISTING = `# callers of the sign-service (kept by admin callers add)

callers:
  # the wallet backend
  - id: wallet-backend # trailing comment
    token_sha256: ${HASH}
    accounts: ["acct-1", "team-*"]
    may_keygen: true
`;

test("admin callers add creates a missing callers file (0600) the service reads, token shown once", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "callers.yaml");
    const r = await admin([
      "callers",
      "add",
      "--id",
      "app",
      "--accounts",
      "demo, team-*",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    const callers = parseCallersFile(await fsp.readFile(out, "utf8"));
    assert.deepEqual(callers, [{
      id: "app",
      tokenSha256: hashToken(token),
      accounts: ["demo", "team-*"],
      mayKeygen: false,
    }]);
    assert.ok(!(await fsp.readFile(out, "utf8")).includes(token), "the file holds no token");
    assert.equal((await fsp.stat(out)).mode & 0o777, 0o600);
    assert.deepEqual(await fsp.readdir(dir), ["callers.yaml"], "no temp or lock file left");
  });
});

test("admin callers add adds to an existing file, keeping its callers, comments and mode", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "callers.yaml");
    await fsp.writeFile(out, EXISTING, { mode: 0o640 });
    await fsp.chmod(out, 0o640);
    const r = await admin([
      "callers",
      "add",
      "--id",
      "ops",
      "--accounts",
      "*",
      "--may-keygen",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const text = await fsp.readFile(out, "utf8");
    assert.ok(text.startsWith(EXISTING.trimEnd()), `the old text is kept as it was:\n${text}`);
    assert.deepEqual(parseCallersFile(text), [
      { id: "wallet-backend", tokenSha256: HASH, accounts: ["acct-1", "team-*"], mayKeygen: true },
      { id: "ops", tokenSha256: hashToken(r.stdout.trim()), accounts: ["*"], mayKeygen: true },
    ]);
    assert.equal((await fsp.stat(out)).mode & 0o777, 0o640);
    assert.deepEqual(await fsp.readdir(dir), ["callers.yaml"]);
  });
});

test("admin callers add adds to an empty or comments-only file", async () => {
  for (const before of ["", "# callers go here\n"]) {
    await withDir(async (dir) => {
      const out = join(dir, "callers.yaml");
      await fsp.writeFile(out, before);
      const r = await admin(["callers", "add", "--id", "app", "--accounts", "demo", "--out", out]);
      assert.equal(r.code, 0, r.stderr);
      const text = await fsp.readFile(out, "utf8");
      assert.ok(text.startsWith(before), text);
      assert.deepEqual(parseCallersFile(text).map((c) => c.id), ["app"]);
    });
  }
});

const CALLER_HOSTILE: readonly {
  readonly name: string;
  readonly file?: string | "directory";
  readonly args?: readonly string[];
  readonly code: number;
  readonly message: RegExp;
}[] = [
  {
    name: "a caller id the file holds",
    file: EXISTING,
    args: ["--id", "wallet-backend"],
    code: 1,
    message: /expected a caller id that .* does not hold, got wallet-backend; nothing written/,
  },
  {
    name: "a file that is not YAML",
    file: "callers:\n  - id: [\n",
    code: 1,
    message: /not valid YAML; nothing written/,
  },
  {
    name: "a file the service would refuse (a bad hash)",
    file: "callers:\n  - { id: x, token_sha256: nothex, accounts: [a] }\n",
    code: 1,
    message: /callers\[0\] \(x\): token_sha256: expected 64 lowercase hex digits/,
  },
  {
    name: "a file of another shape",
    file: "users: []\n",
    code: 1,
    message: /expected exactly one key, callers/,
  },
  {
    name: "a directory at --out",
    file: "directory",
    code: 1,
    message: /cannot be read \(EISDIR\); nothing written/,
  },
  {
    name: "a bad caller id",
    args: ["--id", "no spaces"],
    code: 2,
    message: /--id \/ --accounts: id: expected 1 to 64 characters/,
  },
  {
    name: "a bad account pattern",
    args: ["--accounts", "a*b"],
    code: 2,
    message: /--id \/ --accounts: accounts: expected account ids/,
  },
  {
    name: "no --out",
    args: ["--out", ""],
    code: 2,
    message: /--id, --accounts and --out are required/,
  },
];

for (const c of CALLER_HOSTILE) {
  test(`admin callers add refuses ${c.name}: nothing written, no token printed`, async () => {
    await withDir(async (dir) => {
      const out = join(dir, "callers.yaml");
      if (c.file === "directory") await fsp.mkdir(out);
      else if (c.file !== undefined) await fsp.writeFile(out, c.file);
      const before = c.file === "directory" ? null : await bytesOf(out);
      const flags = new Map([["--id", "new-caller"], ["--accounts", "demo"], ["--out", out]]);
      const extra = c.args ?? [];
      for (let i = 0; i < extra.length; i += 2) flags.set(extra[i], extra[i + 1]);
      const r = await admin(["callers", "add", ...[...flags].flat()]);
      assert.equal(r.code, c.code, r.stderr);
      assert.match(r.stderr, c.message);
      assert.equal(r.stdout, "", "no token is printed");
      if (c.file !== "directory") assert.deepEqual(await bytesOf(out), before, "file untouched");
      const left = (await fsp.readdir(dir)).filter((n) => n !== "callers.yaml");
      assert.deepEqual(left, [], "no temp or lock file left");
    });
  });
}

test("admin callers add runs at once on one file keep every caller (the file's lock)", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "callers.yaml");
    await fsp.writeFile(out, EXISTING);
    const ids = ["c1", "c2", "c3", "c4"];
    const runs = await Promise.all(
      ids.map((id) => admin(["callers", "add", "--id", id, "--accounts", "demo", "--out", out])),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const callers = parseCallersFile(await fsp.readFile(out, "utf8"));
    assert.deepEqual(callers.map((c) => c.id).sort(), ["c1", "c2", "c3", "c4", "wallet-backend"]);
    for (const [i, id] of ids.entries()) {
      const hash = callers.find((c) => c.id === id)!.tokenSha256;
      assert.equal(hash, hashToken(runs[i].stdout.trim()), `${id}'s printed token`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// age-identity new (moved from keygen age-identity)

test("admin age-identity new writes an identity (0600), prints its recipient, never overwrites", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "service.age");
    const r = await admin(["age-identity", "new", "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    const recipient = r.stdout.trim();
    assert.match(recipient, /^age1[0-9a-z]+$/);
    const text = await fsp.readFile(out, "utf8");
    assert.ok(text.startsWith(`# public key: ${recipient}\n`), text);
    parseAgeIdentityFile(text);
    assert.equal((await fsp.stat(out)).mode & 0o777, 0o600);
    const again = await admin(["age-identity", "new", "--out", out]);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /EEXIST/);
    assert.equal(await fsp.readFile(out, "utf8"), text, "the identity is kept");
  });
});

// ---------------------------------------------------------------------------------------------
// accounts uncommitted / discard-uncommitted

const FIXTURE = decodeAccountsFile(
  new Uint8Array(
    await fsp.readFile(new URL("../testing/fixtures/keyshare_v1.json", import.meta.url)),
  ),
);
/** A fixture share of party 1 (the service); test data only. */
const SERVICE_SHARE = FIXTURE.get("TEST-ONLY-fixture-b") as AccountEntry;

/**
 * A directory with the service's age identity, a key file holding `committed-1` (committed)
 * and `pending-1` (a pending key generation only), and a configuration file naming them.
 */
async function withServiceKeys(
  f: (d: { dir: string; config: string; keys: string }) => Promise<void>,
): Promise<void> {
  await withDir(async (dir) => {
    const { identity } = await generateAgeIdentity();
    const idFile = join(dir, "service.age");
    await fsp.writeFile(idFile, identity + "\n", { mode: 0o600 });
    const keys = join(dir, "service_key_shares.json");
    const store = await openKeyStore({
      path: keys,
      decryptor: { identity },
      partyIndex: 1,
      parties: 2,
      allowMissing: true,
    });
    await store.put("committed-1", SERVICE_SHARE);
    await store.update(
      "pending-1",
      (rec) => stagePending(rec, SERVICE_SHARE, { kind: "keygen", sessionId: "5e5510aa" }),
    );
    const config = join(dir, "sign-service.yaml");
    await fsp.writeFile(
      config,
      `mpc: { key_share_file: ${JSON.stringify(keys)} }\n` +
        `key_store: { age_identity_file: ${JSON.stringify(idFile)} }\n` +
        `auth: { tokens_file: ${JSON.stringify(join(dir, "callers.yaml"))} }\n`,
    );
    await f({ dir, config, keys });
  });
}

/** The accounts of the key file, and which of them are uncommitted. */
async function held(keys: string, dir: string) {
  const identity = parseAgeIdentityFile(await fsp.readFile(join(dir, "service.age"), "utf8"));
  const s = await openKeyStore({ path: keys, decryptor: { identity }, partyIndex: 1, parties: 2 });
  const all = ["committed-1", "pending-1"].filter((id) => s.record(id) !== undefined);
  return { all, uncommitted: s.uncommitted() };
}

test("admin accounts uncommitted lists the pending key generation, not the committed account", async () => {
  await withServiceKeys(async ({ config, keys, dir }) => {
    const r = await admin(["accounts", "uncommitted", config]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1, r.stdout);
    assert.match(lines[0], /^pending-1\tkeygen session 5e5510aa\tepoch [0-9a-f]{16}$/);
    assert.deepEqual((await held(keys, dir)).all, ["committed-1", "pending-1"], "nothing removed");
  });
});

test("admin accounts discard-uncommitted refuses a committed account: the file untouched", async () => {
  await withServiceKeys(async ({ config, keys }) => {
    const before = await bytesOf(keys);
    const r = await admin(["accounts", "discard-uncommitted", "--account", "committed-1", config]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /account "committed-1" is committed: it is never deleted/);
    assert.deepEqual(await bytesOf(keys), before);
  });
});

test("admin accounts discard-uncommitted deletes the pending account and keeps the committed one", async () => {
  await withServiceKeys(async ({ config, keys, dir }) => {
    const r = await admin(["accounts", "discard-uncommitted", config, "--account=pending-1"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /discarded the uncommitted account pending-1/);
    assert.deepEqual(await held(keys, dir), { all: ["committed-1"], uncommitted: [] });
    const missing = await admin(["accounts", "discard-uncommitted", config, "--account=nope"]);
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /account "nope" is not stored/);
    const none = await admin(["accounts", "discard-uncommitted", config]);
    assert.equal(none.code, 2, none.stderr);
  });
});

test("admin key-file migrate rewrites a file of an earlier release with MACs; the service's store then opens it", async () => {
  await withServiceKeys(async ({ config, keys, dir }) => {
    const identity = parseAgeIdentityFile(await fsp.readFile(join(dir, "service.age"), "utf8"));
    const v1 = new TextEncoder().encode(encodeAccountsFile(new Map([["old-1", SERVICE_SHARE]])));
    await fsp.writeFile(
      keys,
      await encryptKeyShareFileBytes(v1, { recipients: [await ageRecipientOf(identity)] }),
    );
    const refused = await admin(["accounts", "uncommitted", config]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /no MACs.*admin key-file migrate/s);
    const r = await admin(["key-file", "migrate", config]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /in the current format, 1 account/);
    const s = await openKeyStore({
      path: keys,
      decryptor: { identity },
      partyIndex: 1,
      parties: 2,
    });
    assert.deepEqual(s.accounts(), ["old-1"]);
    const again = await admin(["key-file", "migrate", config]);
    assert.equal(again.code, 0, again.stderr);
  });
});

test("the older names (uncommitted, SIGN_SERVICE_CONFIG) still work, with warnings", async () => {
  await withServiceKeys(async ({ config }) => {
    const r = await admin(["uncommitted"], { SIGN_SERVICE_CONFIG: config });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pending-1\t/);
    assert.match(r.stderr, /admin uncommitted is deprecated; use admin accounts uncommitted/);
    assert.match(r.stderr, /SIGN_SERVICE_CONFIG is deprecated; use WALLET_MPC_SERVICE_CONFIG/);
  });
});
