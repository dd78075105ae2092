import { test } from "node:test";
import assert from "node:assert/strict";
import { networks, payments, Psbt } from "bitcoinjs-lib";
import * as ecc from "tiny-secp256k1";
import { HDKey } from "@scure/bip32";
import { hdTestClient } from "../testing/hd_test_client.ts";
import { createMpcBitcoinSigner, createMpcHdSigner } from "./bitcoinjs.ts";

const PREV = "ab".repeat(32);
const DEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

const validator = (pubkey: Uint8Array, msghash: Uint8Array, signature: Uint8Array) =>
  ecc.verify(msghash, pubkey, signature);

function spend(pubkey: Uint8Array, extra: Record<string, unknown> = {}): Psbt {
  const pay = payments.p2wpkh({ pubkey, network: networks.regtest });
  const psbt = new Psbt({ network: networks.regtest });
  psbt.addInput({
    hash: PREV,
    index: 1,
    witnessUtxo: { script: pay.output!, value: 100_000n },
    ...extra,
  });
  psbt.addOutput({ address: DEST, value: 90_000n });
  return psbt;
}

test("bitcoinjs HD signer: fingerprint and derived keys equal @scure/bip32's from the account's xpub", async () => {
  const client = hdTestClient();
  const hd = await createMpcHdSigner({ client, accountId: "alice" });
  const reference = HDKey.fromExtendedKey(await client.getXpub("alice"));
  const fp = new DataView(hd.fingerprint.buffer, hd.fingerprint.byteOffset, 4).getUint32(0);
  assert.equal(fp, reference.fingerprint);
  for (const path of ["m/0", "m/0/7", "m/1/2/3"]) {
    assert.deepEqual(hd.derivePath(path).publicKey, reference.derive(path).publicKey, path);
  }
  assert.deepEqual(
    hd.derivePath("m/0").derivePath("7").publicKey,
    reference.derive("m/0/7").publicKey,
  );
  assert.throws(() => hd.derivePath("m/0'"), RangeError);
  assert.throws(() => hd.derivePath("m/0").derivePath("m/1"), RangeError);
});

test("bitcoinjs HD signer: a P2WPKH PSBT input signs, validates, finalizes and extracts", async () => {
  const client = hdTestClient();
  const hd = await createMpcHdSigner({ client, accountId: "alice" });
  const child = hd.derivePath("m/0/7");
  const psbt = spend(child.publicKey, {
    bip32Derivation: [{
      masterFingerprint: hd.fingerprint,
      path: "m/0/7",
      pubkey: child.publicKey,
    }],
  });
  await psbt.signInputHDAsync(0, hd);
  assert.deepEqual(client.calls.map((c) => c.path), ["m/0/7"]);
  assert.ok(psbt.validateSignaturesOfInput(0, validator));
  const wrongKey = (_: Uint8Array, h: Uint8Array, s: Uint8Array) =>
    ecc.verify(h, hd.derivePath("m/0/8").publicKey, s);
  assert.equal(psbt.validateSignaturesOfInput(0, wrongKey), false, "the validator can fail");
  psbt.finalizeAllInputs();
  const tx = psbt.extractTransaction();
  assert.equal(tx.ins.length, 1);
  assert.equal(tx.ins[0].witness.length, 2);
  assert.deepEqual(tx.ins[0].witness[1], child.publicKey);
  assert.equal(
    child.p2wpkhAddress("regtest"),
    payments.p2wpkh({ pubkey: child.publicKey, network: networks.regtest }).address,
  );
});

test("bitcoinjs signer: one key at a path signs every input (signAllInputsAsync)", async () => {
  const client = hdTestClient();
  const signer = await createMpcBitcoinSigner({ client, accountId: "alice", path: "m/5" });
  assert.deepEqual(signer.publicKey, client.root.derive("m/5").publicKey);
  const psbt = spend(signer.publicKey);
  await psbt.signAllInputsAsync(signer);
  assert.ok(psbt.validateSignaturesOfInput(0, validator));
  psbt.finalizeAllInputs();
  assert.match(psbt.extractTransaction().toHex(), /^02000000/);
});

test("bitcoinjs signer: a signature under another key than the signer's is refused", async () => {
  const client = hdTestClient();
  const signer = await createMpcBitcoinSigner({ client, accountId: "alice", path: "m/5" });
  const orig = client.signTx;
  client.signTx = (h, id) => orig(h, id, { path: "m/6" });
  await assert.rejects(signer.sign(new Uint8Array(32).fill(1)), /differs/);
});
