import { test } from "node:test";
import assert from "node:assert/strict";
import { HDKey } from "@scure/bip32";
import { bytesToHex } from "@noble/hashes/utils.js";
import { computeAddress } from "ethers";
import { networks, payments } from "bitcoinjs-lib";
import { Point } from "../core/params.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import { type ClientKeyStore, newMpcClient, p2wpkhAddress } from "./mpc_client.ts";

/** A key store holding one account whose share has only what the HD export reads. */
function oneAccount(): ClientKeyStore {
  const entry = {
    keyShare: {
      publicKey: Point.BASE.multiply(0x1234567890abcdefn),
      chainCode: new Uint8Array(32).map((_, i) => i * 7),
    },
  } as unknown as AccountEntry;
  return {
    ids: () => Promise.resolve(["alice"]),
    get: (id) => Promise.resolve(id === "alice" ? entry : undefined),
    record: () => Promise.resolve(undefined),
    update: () => Promise.reject(new Error("read only")),
  };
}

const client = newMpcClient({
  serviceUrl: "http://127.0.0.1:9",
  gatewayUrl: "http://127.0.0.1:9",
  token: "t",
  keyStore: oneAccount(),
});

test("client getXpub: @scure/bip32 derives from it the keys and addresses the client signs for", async () => {
  const xpub = await client.getXpub("alice");
  assert.match(xpub, /^xpub/);
  const root = HDKey.fromExtendedKey(xpub);
  assert.equal(root.depth, 0);
  assert.equal(bytesToHex(root.publicKey!), await client.getPublicKey("alice"));
  for (const path of ["m/0", "m/0/7", "m/44/60/0/0/3"]) {
    const child = root.derive(path);
    const pk = bytesToHex(child.publicKey!);
    assert.equal(await client.getPublicKey("alice", { path }), pk, path);
    assert.equal(await client.getAddress("alice", { path }), computeAddress(`0x${pk}`), path);
    assert.equal(await client.getXpub("alice", { path }), child.publicExtendedKey, path);
    assert.equal(
      p2wpkhAddress(pk, "testnet"),
      payments.p2wpkh({ pubkey: child.publicKey!, network: networks.testnet }).address,
    );
  }
});

test("client getXpub: tpub version, hardened paths and unknown accounts are refused", async () => {
  const tpub = await client.getXpub("alice", { version: "tpub" });
  assert.match(tpub, /^tpub/);
  const versions = { private: 0x04358394, public: 0x043587cf };
  assert.equal(
    bytesToHex(HDKey.fromExtendedKey(tpub, versions).publicKey!),
    await client.getPublicKey("alice"),
  );
  await assert.rejects(client.getXpub("alice", { path: "m/0'" }), RangeError);
  await assert.rejects(client.getXpub("bob"), /no local share/);
  await assert.rejects(
    client.getXpub("alice", { version: "ypub" as "xpub" }),
    TypeError,
  );
});

test("p2wpkhAddress refuses what is not a secp256k1 key or a known network", () => {
  const g = Point.BASE.toHex(true);
  assert.throws(() => p2wpkhAddress("02" + "00".repeat(32)), RangeError);
  assert.throws(() => p2wpkhAddress("zz"), SyntaxError);
  assert.throws(() => p2wpkhAddress(g, "litecoin" as "bitcoin"), TypeError);
  assert.equal(p2wpkhAddress(Point.BASE.toHex(false)), p2wpkhAddress(g));
});
