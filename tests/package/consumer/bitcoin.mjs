// bitcoinjs through the package (plain Node): the account's xpub, an HD signer rooted at the
// account's key, and a regtest P2WPKH PSBT spending to the key at m/0/7, signed with
// signInputHDAsync. Prints the PSBT for the test to validate, finalize and extract.
import process from "node:process";
import { newMpcClient } from "wallet-mpc/client";
import { openFileKeyStore } from "wallet-mpc/client/file_key_store";
import { createMpcHdSigner } from "wallet-mpc/bitcoinjs";
import { networks, payments, Psbt } from "bitcoinjs-lib";

const env = process.env;
const keyStore = await openFileKeyStore({ path: env.KEY_FILE, identity: env.AGE_IDENTITY });
const client = newMpcClient({
  serviceUrl: env.SERVICE_URL,
  gatewayUrl: env.GATEWAY_URL,
  token: env.TOKEN,
  keyStore,
});
const xpub = await client.getXpub("alice");
const hd = await createMpcHdSigner({ client, accountId: "alice" });
const path = "m/0/7";
const child = hd.derivePath(path);
const pay = payments.p2wpkh({ pubkey: child.publicKey, network: networks.regtest });
const psbt = new Psbt({ network: networks.regtest });
psbt.addInput({
  hash: "11".repeat(32),
  index: 0,
  witnessUtxo: { script: pay.output, value: 50_000n },
  bip32Derivation: [{ masterFingerprint: hd.fingerprint, path, pubkey: child.publicKey }],
});
psbt.addOutput({ address: pay.address, value: 49_000n });
await psbt.signInputHDAsync(0, hd);
console.log(JSON.stringify({
  xpub,
  path,
  publicKey: Buffer.from(child.publicKey).toString("hex"),
  address: pay.address,
  mpcAddress: child.p2wpkhAddress("regtest"),
  psbt: psbt.toBase64(),
}));
