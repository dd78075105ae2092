/**
 * Share-file uploads from the enclave to the parent over the channel layer's test mode: the
 * receipt is checked against the file, a failing or lying parent fails the upload, and the key
 * store wrapped with {@link uploadingFs} renames a write into place only after the parent's
 * receipt (a failed upload leaves file and store as they were).
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { sha256 } from "@noble/hashes/sha2.js";
import { decodeAccountRecords } from "../core/account_records.ts";
import { toHex } from "../core/bytes.ts";
import { type AccountEntry, decodeAccountsFile } from "../core/keyshare.ts";
import {
  decryptKeyShareFileBytes,
  generateAgeIdentity,
  openKeyStore,
} from "../keystore/key_store.ts";
import { createChannels, DEFAULT_ENCLAVE_CID, PARENT_CID } from "./channel.ts";
import { FramingError } from "./framing.ts";
import {
  createShareUploader,
  serveShareUploads,
  uploadingFs,
  type UploadReceipt,
} from "./share_upload.ts";

const skip = typeof Deno !== "undefined" ? false : "the enclave side runs on Deno only";
const PORT = 7103;

/** Party 1's fixture share (testing/fixtures/keyshare_v1.json). */
async function party1(): Promise<AccountEntry> {
  const url = new URL("../testing/fixtures/keyshare_v1.json", import.meta.url);
  return decodeAccountsFile(new Uint8Array(await readFile(url))).get("TEST-ONLY-fixture-b")!;
}

describe("share uploads", { skip }, () => {
  let dir: string;
  let listener: Deno.Listener;
  let served: Promise<void>;
  /** What the parent does with the next upload. */
  let publish: (file: Uint8Array) => Promise<UploadReceipt>;
  const received: Uint8Array[] = [];
  const honest = (file: Uint8Array): Promise<UploadReceipt> => {
    received.push(file);
    return Promise.resolve({
      ok: true,
      key: `shares/${received.length}.age`,
      generation: received.length,
      sha256: toHex(sha256(file)),
    });
  };
  before(async () => {
    dir = await Deno.makeTempDir({ prefix: "wallet-mpc-upload-" });
    const parent = createChannels({ mode: { kind: "unix", dir }, localCid: PARENT_CID });
    listener = parent.listen(PORT);
    served = serveShareUploads(listener, (f) => publish(f));
  });
  after(async () => {
    listener.close();
    await served;
    await Deno.remove(dir, { recursive: true });
  });
  const uploader = () => {
    const enclave = createChannels({ mode: { kind: "unix", dir }, localCid: DEFAULT_ENCLAVE_CID });
    return createShareUploader({ connect: () => enclave.connect(PARENT_CID, PORT) });
  };

  test("a file goes to the parent and comes back with a receipt naming its digest", async () => {
    publish = honest;
    const file = new Uint8Array(200_000).map((_, i) => (i * 7919) & 0xff);
    const r = await uploader().upload(file);
    assert.equal(r.sha256, toHex(sha256(file)));
    assert.deepEqual(received.at(-1), file);
  });

  test("a parent that fails, lies about the digest or is gone fails the upload", async () => {
    publish = () => Promise.reject(Object.assign(new Error("x"), { name: "S3ServiceException" }));
    await assert.rejects(
      uploader().upload(new Uint8Array([1])),
      (e: unknown) =>
        e instanceof FramingError && e.code === "refused" && /S3ServiceException/.test(e.message),
    );
    publish = (f) => honest(f).then((r) => ({ ...r, sha256: "00".repeat(32) }));
    await assert.rejects(
      uploader().upload(new Uint8Array([1])),
      (e: unknown) => e instanceof FramingError && /another file/.test(e.message),
    );
    const enclave = createChannels({ mode: { kind: "unix", dir }, localCid: DEFAULT_ENCLAVE_CID });
    const nobody = createShareUploader({ connect: () => enclave.connect(PARENT_CID, PORT + 1) });
    await assert.rejects(
      nobody.upload(new Uint8Array([1])),
      (e: unknown) => e instanceof FramingError && e.code === "refused",
    );
  });

  test("the key store renames a write only after the parent stored it", async () => {
    publish = honest;
    const entry = await party1();
    const { identity } = await generateAgeIdentity();
    const path = `${dir}/keys.age`;
    const receipts: UploadReceipt[] = [];
    const store = await openKeyStore({
      path,
      decryptor: { identity },
      partyIndex: 1,
      allowMissing: true,
      fs: uploadingFs(uploader(), (r) => receipts.push(r)),
    });
    await store.put("alice", entry);
    const local = new Uint8Array(await readFile(path));
    assert.deepEqual(received.at(-1), local, "the parent got exactly the file written");
    assert.equal(receipts.at(-1)?.sha256, toHex(sha256(local)));
    const plain = await decryptKeyShareFileBytes(local, { identity });
    assert.deepEqual([...decodeAccountRecords(plain).keys()], ["alice"]);

    // The parent fails: the write fails, nothing changed locally.
    publish = () => Promise.reject(new Error("down"));
    await assert.rejects(store.put("bob", entry));
    assert.deepEqual(store.accounts(), ["alice"]);
    assert.deepEqual(new Uint8Array(await readFile(path)), local);
    const leftovers = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp"));
    assert.deepEqual(leftovers, [], "no temp file left");
  });
});
