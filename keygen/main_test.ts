/**
 * The keygen command line as a process (under the runtime running this file):
 *
 * - `caller` creates a callers file or adds to one (other callers and comments kept, mode kept,
 *   concurrent runs serialized), and refuses, writing nothing and printing no token: a duplicate
 *   id, a file that is not YAML or that the service would refuse, a directory, bad flags;
 * - `offline` refuses, before generating anything: an existing file without `--add`, a missing
 *   one with `--add`, an account either file holds, a file it cannot read or decrypt, bad flags;
 * - (slow tier) `offline` creates both files, `--add` adds an account to both, and each
 *   account's public key and address are printed.
 */
import "../tests/setup.ts";
import { SLOW } from "../tests/setup.ts";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AccountEntry, decodeAccountsFile } from "../core/keyshare.ts";
import { detectRuntime } from "../platform/mod.ts";
import { generateAgeIdentity, openKeyStore } from "../keystore/key_store.ts";
import { hashToken, parseCallersFile } from "../service/auth.ts";
import { ethereumAddress } from "../session/inputs.ts";
import { DENO, NODE, ROOT } from "../tests/gateway/_helpers.ts";

const MAIN = join(ROOT, "keygen/main.ts");

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `keygen/main.ts args` under this file's runtime, bounded. */
function keygen(args: string[], env: Record<string, string> = {}, ms = 60_000): Promise<Run> {
  const [cmd, argv] = detectRuntime() === "deno"
    ? [DENO, ["run", "-A", "--no-check", MAIN, ...args]]
    : [NODE, ["--import", "tsx", MAIN, ...args]];
  const p = spawn(cmd, argv, {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  p.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
  p.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`keygen ${args[0]} gave no answer in ${ms} ms: ${stderr.slice(-500)}`));
    }, ms);
    p.once("close", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `f` in a fresh temp directory, removed afterwards. */
async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "wallet-mpc-keygen-cli-"));
  try {
    await f(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The file's bytes, or null when nothing is there. */
async function bytesOf(path: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await fsp.readFile(path));
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// caller

const HASH = "ab".repeat(32);
const EXISTING = `# callers of the sign-service (kept by keygen caller)

callers:
  # the wallet backend
  - id: wallet-backend # trailing comment
    token_sha256: ${HASH}
    accounts: ["acct-1", "team-*"]
    may_keygen: true
`;

test("keygen caller creates a missing callers file (0600) the service reads, token shown once", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "callers.yaml");
    const r = await keygen(["caller", "--id", "app", "--accounts", "demo, team-*", "--out", out]);
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

test("keygen caller adds to an existing file, keeping its callers, comments and mode", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "callers.yaml");
    await fsp.writeFile(out, EXISTING, { mode: 0o640 });
    await fsp.chmod(out, 0o640);
    const r = await keygen([
      "caller",
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

test("keygen caller adds to an empty or comments-only file", async () => {
  for (const before of ["", "# callers go here\n"]) {
    await withDir(async (dir) => {
      const out = join(dir, "callers.yaml");
      await fsp.writeFile(out, before);
      const r = await keygen(["caller", "--id", "app", "--accounts", "demo", "--out", out]);
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
  test(`keygen caller refuses ${c.name}: nothing written, no token printed`, async () => {
    await withDir(async (dir) => {
      const out = join(dir, "callers.yaml");
      if (c.file === "directory") await fsp.mkdir(out);
      else if (c.file !== undefined) await fsp.writeFile(out, c.file);
      const before = c.file === "directory" ? null : await bytesOf(out);
      const flags = new Map([["--id", "new-caller"], ["--accounts", "demo"], ["--out", out]]);
      const extra = c.args ?? [];
      for (let i = 0; i < extra.length; i += 2) flags.set(extra[i], extra[i + 1]);
      const r = await keygen(["caller", ...[...flags].flat()]);
      assert.equal(r.code, c.code, r.stderr);
      assert.match(r.stderr, c.message);
      assert.equal(r.stdout, "", "no token is printed");
      if (c.file !== "directory") assert.deepEqual(await bytesOf(out), before, "file untouched");
      const left = (await fsp.readdir(dir)).filter((n) => n !== "callers.yaml");
      assert.deepEqual(left, [], "no temp or lock file left");
    });
  });
}

test("keygen caller runs at once on one file keep every caller (the file's lock)", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "callers.yaml");
    await fsp.writeFile(out, EXISTING);
    const ids = ["c1", "c2", "c3", "c4"];
    const runs = await Promise.all(
      ids.map((id) => keygen(["caller", "--id", id, "--accounts", "demo", "--out", out])),
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
// offline: refusals before any key generation

const FIXTURE = decodeAccountsFile(
  new Uint8Array(
    await fsp.readFile(new URL("../tests/fixtures/keyshare_v1.json", import.meta.url)),
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
