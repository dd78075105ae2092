/**
 * `addOfflineAccounts` on real key stores (age-encrypted files in a temp directory): all
 * accounts or none, every held account refused before anything is written, a write that fails
 * or loses a race undone; `describeAccounts` against a known address.
 */
import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stagePending } from "../core/account_records.ts";
import { type AccountEntry, decodeAccountsFile } from "../core/keyshare.ts";
import { Point, Q } from "../core/params.ts";
import { generateAgeIdentity, type KeyStore, openKeyStore } from "../keystore/key_store.ts";
import { KeyStoreError } from "../keystore/errors.ts";
import {
  accountsHeld,
  addOfflineAccounts,
  describeAccounts,
  type OfflineKeyStore,
} from "./offline.ts";

const FIXTURE = new URL("../testing/fixtures/keyshare_v1.json", import.meta.url);
const fixture = decodeAccountsFile(new Uint8Array(await fsp.readFile(FIXTURE)));
/** Fixture shares: party 0's (client) and party 1's (service); test data only. */
const SHARE0 = fixture.get("TEST-ONLY-fixture-a") as AccountEntry;
const SHARE1 = fixture.get("TEST-ONLY-fixture-b") as AccountEntry;

/** Another valid share of the same party: own secret times `k`, so another public key. */
function variant(entry: AccountEntry, k: bigint): AccountEntry {
  const ks = entry.keyShare;
  const x = (ks.x * k) % Q;
  const publicShares = ks.publicShares.map((X, j) => (j === ks.i ? Point.BASE.multiply(x) : X));
  const publicKey = publicShares.reduce((a, b) => a.add(b));
  return { keyShare: { ...ks, x, publicShares, publicKey } };
}

/** Both parties' accounts for `ids` (distinct keys per account). */
function parties(
  ids: readonly string[],
  k = 2n,
): [Map<string, AccountEntry>, Map<string, AccountEntry>] {
  const client = new Map<string, AccountEntry>();
  const service = new Map<string, AccountEntry>();
  ids.forEach((id, n) => {
    client.set(id, variant(SHARE0, k + BigInt(n)));
    service.set(id, variant(SHARE1, k + BigInt(n)));
  });
  return [client, service];
}

const { identity: CLIENT_ID } = await generateAgeIdentity();
const { identity: SERVICE_ID } = await generateAgeIdentity();

interface Files {
  readonly dir: string;
  readonly client: string;
  readonly service: string;
  open(): Promise<[KeyStore, KeyStore]>;
  bytes(): Promise<[Uint8Array, Uint8Array]>;
}

/** Runs `f` with both parties' files holding `existing` (client, service), in a temp dir. */
async function withFiles(
  existing: [Record<string, AccountEntry>, Record<string, AccountEntry>],
  f: (files: Files) => Promise<void>,
): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "wallet-mpc-keygen-offline-"));
  const files: Files = {
    dir,
    client: join(dir, "client_key_shares.json"),
    service: join(dir, "service_key_shares.json"),
    open: async () => [
      await openKeyStore({
        path: files.client,
        decryptor: { identity: CLIENT_ID },
        partyIndex: 0,
        parties: 2,
      }),
      await openKeyStore({
        path: files.service,
        decryptor: { identity: SERVICE_ID },
        partyIndex: 1,
        parties: 2,
      }),
    ],
    bytes: async () => [
      new Uint8Array(await fsp.readFile(files.client)),
      new Uint8Array(await fsp.readFile(files.service)),
    ],
  };
  try {
    for (const [i, path] of [files.client, files.service].entries()) {
      const s = await openKeyStore({
        path,
        decryptor: { identity: i === 0 ? CLIENT_ID : SERVICE_ID },
        partyIndex: i,
        parties: 2,
        allowMissing: true,
      });
      for (const [id, e] of Object.entries(existing[i])) await s.put(id, e);
      if (Object.keys(existing[i]).length === 0) {
        // An existing file with no account.
        await s.put("tmp", i === 0 ? SHARE0 : SHARE1);
        await s.update("tmp", () => undefined);
      }
    }
    await f(files);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

const pk = (e: AccountEntry | undefined) => e?.keyShare.publicKey.toHex(true);

test("addOfflineAccounts adds every account to both parties' files and keeps theirs", async () => {
  await withFiles([{ old: SHARE0 }, { old: SHARE1 }], async (files) => {
    const [client, service] = parties(["a", "b"]);
    await addOfflineAccounts(await files.open(), [client, service]);
    const [c, s] = await files.open(); // what is on disk
    assert.deepEqual(c.accounts(), ["a", "b", "old"]);
    assert.deepEqual(s.accounts(), ["a", "b", "old"]);
    assert.equal(c.format(), "age", "still encrypted");
    for (const id of ["a", "b"]) {
      assert.equal(pk(c.get(id)), pk(client.get(id)));
      assert.equal(pk(s.get(id)), pk(service.get(id)));
    }
    assert.equal(pk(c.get("old")), pk(SHARE0), "the file's own account is untouched");
    assert.deepEqual((await fsp.readdir(files.dir)).sort(), [
      "client_key_shares.json",
      "service_key_shares.json",
    ], "no temp or lock file left");
  });
});

for (
  const [name, existing, held] of [
    ["the client file holds", [{ a: SHARE0 }, {}], ["client"]],
    ["the service file holds", [{}, { b: SHARE1 }], ["service"]],
    ["both files hold", [{ a: SHARE0 }, { a: SHARE1 }], ["client", "service"]],
  ] as const
) {
  test(`addOfflineAccounts refuses an account ${name}, naming it, and writes nothing`, async () => {
    await withFiles(
      existing as unknown as [Record<string, AccountEntry>, Record<string, AccountEntry>],
      async (files) => {
        const before = await files.bytes();
        const err = await addOfflineAccounts(await files.open(), parties(["a", "b"])).then(
          () => assert.fail("expected a refusal"),
          (e: unknown) => e,
        );
        assert.ok(err instanceof KeyStoreError && err.code === "account-exists", String(err));
        for (const party of held) {
          assert.match(err.message, new RegExp(`in ${files[party]}`), err.message);
        }
        assert.match(err.message, /nothing written/);
        assert.deepEqual(await files.bytes(), before, "both files untouched");
      },
    );
  });
}

test("addOfflineAccounts counts an uncommitted account (a pending keygen) as held", async () => {
  await withFiles([{}, {}], async (files) => {
    const [, service] = await files.open();
    await service.update(
      "a",
      (rec) => stagePending(rec, SHARE1, { kind: "keygen", sessionId: "" }),
    );
    const before = await files.bytes();
    await assert.rejects(
      addOfflineAccounts(await files.open(), parties(["a"])),
      (e: unknown) => e instanceof KeyStoreError && e.code === "account-exists",
    );
    assert.deepEqual(await files.bytes(), before);
  });
});

test("addOfflineAccounts reads the files again: an account added after the stores opened is refused", async () => {
  await withFiles([{}, {}], async (files) => {
    const stores = await files.open();
    const [, other] = await files.open(); // another process's handle on the service file
    await other.put("b", variant(SHARE1, 9n));
    await assert.rejects(
      addOfflineAccounts(stores, parties(["a", "b"])),
      (e: unknown) =>
        e instanceof KeyStoreError && e.code === "account-exists" &&
        e.message.includes(`"b" in ${files.service}`),
    );
    const [c, s] = await files.open();
    assert.deepEqual([c.accounts(), s.accounts()], [[], ["b"]]);
  });
});

/** A store whose `put` runs `before(id)` first (a race, a failure). */
function hooked(s: KeyStore, before: (id: string) => Promise<void>): OfflineKeyStore {
  return {
    path: s.path,
    record: (id) => s.record(id),
    reload: () => s.reload(),
    update: (id, f) => s.update(id, f),
    put: async (id, e) => {
      await before(id);
      await s.put(id, e);
    },
  };
}

test("addOfflineAccounts loses a race for one account: refused, and its own writes undone", async () => {
  await withFiles([{ old: SHARE0 }, {}], async (files) => {
    const [c, s] = await files.open();
    const [, rival] = await files.open();
    const theirs = variant(SHARE1, 7n);
    // Another process adds "b" to the service file between the check and the put.
    const racing = hooked(s, async (id) => {
      if (id === "b") await rival.put("b", theirs);
    });
    await assert.rejects(
      addOfflineAccounts([c, racing], parties(["a", "b"])),
      (e: unknown) => e instanceof KeyStoreError && e.code === "account-exists",
    );
    const [c2, s2] = await files.open();
    assert.deepEqual(c2.accounts(), ["old"], "the client file is as it was");
    assert.deepEqual(s2.accounts(), ["b"], "only the rival's account is left");
    assert.equal(pk(s2.get("b")), pk(theirs), "the rival's account is not undone");
  });
});

test("addOfflineAccounts undoes what it added when a write fails, then rethrows", async () => {
  await withFiles([{}, { old: SHARE1 }], async (files) => {
    const [c, s] = await files.open();
    const before = await files.bytes();
    const failing = hooked(
      s,
      (id) =>
        id === "b"
          ? Promise.reject(new KeyStoreError("io", "key share file: write failed (ENOSPC)"))
          : Promise.resolve(),
    );
    await assert.rejects(
      addOfflineAccounts([c, failing], parties(["a", "b"])),
      (e: unknown) => e instanceof KeyStoreError && e.code === "io" && /ENOSPC/.test(e.message),
    );
    const [c2, s2] = await files.open();
    assert.deepEqual([c2.accounts(), s2.accounts()], [[], ["old"]]);
    assert.notDeepEqual(await files.bytes(), before, "rewritten (the undo is a write)");
  });
});

test("addOfflineAccounts refuses parties that do not match the stores", async () => {
  await withFiles([{}, {}], async (files) => {
    const stores = await files.open();
    const [client, service] = parties(["a", "b"]);
    const cases: [string, Map<string, AccountEntry>[]][] = [
      ["one party for two stores", [client]],
      ["parties with other ids", [client, new Map([["a", service.get("a")!]])]],
      ["parties with renamed ids", [
        client,
        new Map([["a", service.get("a")!], ["c", service.get("b")!]]),
      ]],
    ];
    for (const [name, ps] of cases) {
      await assert.rejects(addOfflineAccounts(stores, ps), RangeError, name);
    }
    const [c, s] = await files.open();
    assert.deepEqual([c.accounts(), s.accounts()], [[], []]);
  });
});

test("accountsHeld lists every held account with its file", async () => {
  await withFiles([{ a: SHARE0 }, { a: SHARE1, b: variant(SHARE1, 3n) }], async (files) => {
    assert.deepEqual(accountsHeld(await files.open(), ["a", "b", "c"]), [
      `"a" in ${files.client}`,
      `"a" in ${files.service}`,
      `"b" in ${files.service}`,
    ]);
  });
});

test("describeAccounts names each account's public key and EIP-55 address", () => {
  // Known answer: the key of secret 1 is G; its address is well known.
  const g = { keyShare: { publicKey: Point.BASE } } as unknown as AccountEntry;
  const other = variant(SHARE0, 5n);
  const out = describeAccounts(new Map([["one", g], ["two", other]]));
  assert.deepEqual(out[0], {
    account: "one",
    publicKey: "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    address: "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf",
  });
  assert.equal(out[1].account, "two");
  assert.equal(out[1].publicKey, pk(other));
  assert.match(out[1].address, /^0x[0-9a-fA-F]{40}$/);
  assert.notEqual(out[1].address, out[0].address);
});
