import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { IDBFactory } from "fake-indexeddb";
import { decodeAccountRecords, encodeAccountRecords } from "../core/account_records.ts";
import { toHex } from "../core/bytes.ts";
import {
  decryptKeyShareFileBytes,
  encryptKeyShareFileBytes,
  generateAgeIdentity,
} from "../keystore/age_file.ts";
import { KeyStoreError } from "../keystore/errors.ts";
import {
  browserKeyStoreExists,
  type BrowserKeyStoreOptions,
  openBrowserKeyStore,
} from "./browser_key_store.ts";
import { newMpcClient } from "./mpc_client.ts";

/**
 * The committed v1 fixture holds a share of party 0 and one of party 1; the client's two
 * accounts here are the party-0 share under two ids (a record's MAC is made when it is encoded).
 */
const V1 = decodeAccountRecords(
  readFileSync(new URL("../testing/fixtures/keyshare_v1.json", import.meta.url)),
);
const CLIENT_SHARE = [...V1.values()].find((r) => r.epochs[0].keyShare.i === 0)!;
const SERVICE_SHARE = [...V1.values()].find((r) => r.epochs[0].keyShare.i === 1)!;
const [A, B] = ["alice", "bob"];
const FIXTURE = new Map([[A, CLIENT_SHARE], [B, CLIENT_SHARE], ["service", SERVICE_SHARE]]);
const PASSPHRASE = "correct horse battery staple";
const FAST = { scryptWorkFactor: 10 }; // tests only: writes of the real store use 2^18

async function fileOf(ids: readonly string[], recipient: string): Promise<Uint8Array> {
  const m = new Map(ids.map((id) => [id, FIXTURE.get(id)!]));
  return await encryptKeyShareFileBytes(new TextEncoder().encode(encodeAccountRecords(m)), {
    recipients: [recipient],
  });
}

function opener(indexedDB: InstanceType<typeof IDBFactory>) {
  return (o: Partial<BrowserKeyStoreOptions> = {}) =>
    openBrowserKeyStore({ passphrase: PASSPHRASE, indexedDB, ...FAST, ...o });
}

test("browser key store: imported shares survive a reopening (a page reload) and sign-side reads work", async () => {
  const indexedDB = new IDBFactory();
  const open = opener(indexedDB);
  const { identity, recipient } = await generateAgeIdentity();
  assert.equal(await browserKeyStoreExists({ indexedDB }), false);
  const first = await open();
  assert.equal(await first.exists(), false);
  assert.deepEqual(await first.ids(), []);
  assert.deepEqual(await first.importFile(await fileOf([A, B], recipient), { identity }), [A, B]);
  first.close();

  assert.equal(await browserKeyStoreExists({ indexedDB }), true);
  const again = await open();
  assert.deepEqual(await again.ids(), [A, B]);
  const share = (await again.get(A))!.keyShare;
  assert.equal(
    toHex(share.publicKey.toBytes(true)),
    toHex(FIXTURE.get(A)!.epochs[0].keyShare.publicKey.toBytes(true)),
  );
  const client = newMpcClient({
    serviceUrl: "http://127.0.0.1:9",
    gatewayUrl: "http://127.0.0.1:9",
    token: "t",
    keyStore: again,
  });
  assert.equal(await client.getPublicKey(A), toHex(share.publicKey.toBytes(true)));
  assert.deepEqual(await client.listAccounts(), [A, B]);
  again.close();
});

test("browser key store: a wrong passphrase is refused, and the stored file is age encrypted with the right one", async () => {
  const factory = new IDBFactory();
  const open = opener(factory);
  const { identity, recipient } = await generateAgeIdentity();
  const store = await open();
  await store.importFile(await fileOf([A], recipient), { identity });
  const stored = await store.exportFile();
  store.close();

  const wrong = await open({ passphrase: "Tr0ub4dor&3" }).catch((e) => e);
  assert.ok(wrong instanceof KeyStoreError);
  assert.equal(wrong.code, "decrypt-failed");
  await assert.rejects(open({ passphrase: "" }), (e: KeyStoreError) => e.code === "bad-key");

  const secret = FIXTURE.get(A)!.epochs[0].keyShare.x.toString(16);
  assert.equal(Buffer.from(stored).toString("latin1").includes(secret), false);
  assert.equal(new TextDecoder().decode(stored.subarray(0, 19)), "age-encryption.org/");
  const plain = await decryptKeyShareFileBytes(stored, { passphrase: PASSPHRASE });
  assert.deepEqual([...decodeAccountRecords(plain).keys()], [A]);
});

test("browser key store: an import is all or none, and refuses another party's shares", async () => {
  const open = opener(new IDBFactory());
  const { identity, recipient } = await generateAgeIdentity();
  const store = await open();
  await store.importFile(await fileOf([A], recipient), { identity });
  const both = await fileOf([A, B], recipient);
  await assert.rejects(
    store.importFile(both, { identity }),
    (e: KeyStoreError) => e.code === "account-exists",
  );
  assert.deepEqual(await store.ids(), [A], "nothing of the refused file was stored");
  const service = await open({ name: "service-side", partyIndex: 1 });
  await assert.rejects(
    service.importFile(both, { identity }),
    (e: KeyStoreError) => e.code === "wrong-party",
  );
  const other = await generateAgeIdentity();
  await assert.rejects(
    store.importFile(both, { identity: other.identity }),
    (e: KeyStoreError) => e.code === "decrypt-failed",
  );
  assert.deepEqual(await store.ids(), [A]);
  store.close();
});

test("browser key store: two tabs see each other's writes and concurrent writes both land", async () => {
  const open = opener(new IDBFactory());
  const { identity, recipient } = await generateAgeIdentity();
  const [tab1, tab2] = [await open(), await open()];
  const [fileA, fileB] = [await fileOf([A], recipient), await fileOf([B], recipient)];
  await Promise.all([tab1.importFile(fileA, { identity }), tab2.importFile(fileB, { identity })]);
  assert.deepEqual(await tab1.ids(), [A, B]);
  assert.deepEqual(await tab2.ids(), [A, B]);
  await tab2.update(A, () => undefined);
  assert.deepEqual(await tab1.ids(), [B], "tab 1 reads tab 2's deletion");
  await tab1.clear();
  assert.deepEqual(await tab2.ids(), []);
  tab1.close();
  tab2.close();
});
