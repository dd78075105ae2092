import { test } from "node:test";
import assert from "node:assert/strict";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { toHex } from "../core/bytes.ts";
import { hdTestClient } from "../testing/hd_test_client.ts";
import { DigestMismatchError, signKeccakPreimage, toMpcSignature } from "./signature.ts";

const PREIMAGE = new TextEncoder().encode("\x19Ethereum Signed Message:\n2hi");

test("signKeccakPreimage: the preimage goes to signMessage with keccak256 and the account's path", async () => {
  const client = hdTestClient();
  const digest = `0x${toHex(keccak_256(PREIMAGE))}`;
  const sig = await signKeccakPreimage(
    { client, accountId: "alice", path: "m/3" },
    PREIMAGE,
    digest,
  );
  assert.equal(sig.digest, digest);
  assert.equal(sig.pooled, false);
  assert.deepEqual(client.calls, [{
    accountId: "alice",
    path: "m/3",
    digest: digest.slice(2),
    message: toHex(PREIMAGE),
    hash: "keccak256",
  }]);
});

test("signKeccakPreimage: a digest that is not the preimage's keccak256 is refused before any request", async () => {
  const client = hdTestClient();
  const other = `0x${toHex(keccak_256(new Uint8Array([1])))}`;
  await assert.rejects(
    signKeccakPreimage({ client, accountId: "alice" }, PREIMAGE, other),
    DigestMismatchError,
  );
  for (const bad of ["", "0x12", "zz".repeat(32)]) {
    await assert.rejects(
      signKeccakPreimage({ client, accountId: "alice" }, PREIMAGE, bad),
      TypeError,
    );
  }
  assert.deepEqual(client.calls, []);
});

test("toMpcSignature: pooled is the client's flag, false when it gives none", () => {
  const base = {
    r: "11".repeat(32),
    s: "22".repeat(32),
    recoveryId: 0 as const,
    v: 27,
    der: "30",
    compact: "",
    publicKey: "02" + "33".repeat(32),
    digest: "44".repeat(32),
    sessionId: "",
  };
  assert.equal(toMpcSignature(base).pooled, false);
  assert.equal(toMpcSignature({ ...base, pooled: true }).pooled, true);
  assert.equal(toMpcSignature({ ...base, pooled: false }).pooled, false);
});
