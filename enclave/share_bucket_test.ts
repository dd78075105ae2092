/**
 * The S3 layout of the enclave's files against moto: versions are new objects, the pointer
 * moves only after the version was read back, the last good version is never overwritten, a
 * tampered object or pointer is refused, old versions are pruned. Skipped loudly without moto.
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { createShareBucket, ShareBucketError } from "./share_bucket.ts";
import { type Moto, motoMissing, startMoto } from "./testing/moto.ts";

const skip = typeof Deno === "undefined" ? "the parent runs on Deno only" : motoMissing() ?? false;
if (skip) console.error(`share_bucket_test: ${skip}`);

describe("share bucket (moto S3)", { skip }, () => {
  let moto: Moto;
  let s3: S3Client;
  const Bucket = "wallet-mpc-shares";
  before(async () => {
    moto = await startMoto();
    s3 = new S3Client({
      region: "us-east-1",
      endpoint: moto.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    await s3.send(new CreateBucketCommand({ Bucket }));
  });
  after(async () => {
    s3?.destroy();
    await moto?.stop();
  });
  const keys = async (prefix: string) =>
    ((await s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix }))).Contents ?? [])
      .map((o) => o.Key!).sort();
  const file = (n: number) => new Uint8Array(1000).fill(n);

  test("versions are new objects; the pointer follows; old ones beyond `keep` go", async () => {
    const b = createShareBucket({ s3, bucket: Bucket, prefix: "a/", keep: 2 });
    assert.equal(await b.current(), null);
    const r1 = await b.publish(file(1));
    assert.equal(r1.generation, 1);
    assert.deepEqual((await b.current())?.file, file(1));
    const r2 = await b.publish(file(2));
    const cur = await b.current();
    assert.deepEqual(cur?.file, file(2));
    assert.equal(cur?.pointer.previous, r1.key);
    assert.deepEqual(await keys("a/shares/"), ["a/shares/CURRENT.json", r1.key, r2.key].sort());
    const r3 = await b.publish(file(3));
    assert.deepEqual(await keys("a/shares/"), ["a/shares/CURRENT.json", r2.key, r3.key].sort());
  });

  test("an existing version key is never overwritten: the pointer stays on the last good one", async () => {
    const b = createShareBucket({ s3, bucket: Bucket, prefix: "b/" });
    const r1 = await b.publish(file(1));
    // Someone already wrote the object the next publish of file(2) would create.
    const r2 = await createShareBucket({ s3, bucket: Bucket, prefix: "b/" }).publish(file(2));
    await s3.send(
      new PutObjectCommand({
        Bucket,
        Key: "b/shares/CURRENT.json",
        Body: JSON.stringify({
          version: 1,
          key: r1.key,
          generation: 1,
          sha256: r1.sha256,
          previous: null,
        }),
      }),
    );
    await assert.rejects(
      b.publish(file(2)),
      (e: unknown) => e instanceof ShareBucketError && e.code === "conflict",
    );
    assert.deepEqual((await b.current())?.file, file(1));
    const body = await s3.send(new GetObjectCommand({ Bucket, Key: r2.key }));
    assert.deepEqual(await body.Body!.transformToByteArray(), file(2));
  });

  test("a tampered version or pointer is refused", async () => {
    const b = createShareBucket({ s3, bucket: Bucket, prefix: "c/" });
    const r = await b.publish(file(1));
    await s3.send(new PutObjectCommand({ Bucket, Key: r.key, Body: file(9) }));
    await assert.rejects(
      b.current(),
      (e: unknown) => e instanceof ShareBucketError && e.code === "corrupt",
    );
    for (
      const body of [
        "{",
        '{"version":2}',
        JSON.stringify({ version: 1, key: "elsewhere/x", generation: 1, sha256: r.sha256 }),
      ]
    ) {
      await s3.send(new PutObjectCommand({ Bucket, Key: "c/shares/CURRENT.json", Body: body }));
      await assert.rejects(
        b.current(),
        (e: unknown) => e instanceof ShareBucketError && e.code === "corrupt",
        body,
      );
    }
  });

  test("the age key's ciphertext is read from <prefix>age-key.kms", async () => {
    const b = createShareBucket({ s3, bucket: Bucket, prefix: "d/" });
    await assert.rejects(b.ageKeyCiphertext(), /age-key\.kms: NoSuchKey/);
    await s3.send(new PutObjectCommand({ Bucket, Key: "d/age-key.kms", Body: file(5) }));
    assert.deepEqual(await b.ageKeyCiphertext(), file(5));
    assert.throws(() => createShareBucket({ s3, bucket: Bucket, prefix: "no-slash" }), RangeError);
  });
});
