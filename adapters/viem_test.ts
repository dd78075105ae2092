import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type Hex,
  keccak256,
  parseEther,
  parseTransaction,
  recoverAddress,
  recoverTransactionAddress,
  toHex,
  type TransactionSerialized,
  verifyMessage,
  verifyTypedData,
} from "viem";
import { hdTestClient } from "../testing/hd_test_client.ts";
import { toMpcAccount } from "./viem.ts";

const TO = "0x00000000000000000000000000000000000000aa" as const;
const TYPED = {
  domain: { name: "Mail", version: "1", chainId: 31337, verifyingContract: TO },
  types: {
    Person: [{ name: "name", type: "string" }, { name: "wallet", type: "address" }],
    Mail: [{ name: "from", type: "Person" }, { name: "contents", type: "string" }],
  },
  primaryType: "Mail",
  message: { from: { name: "Cow", wallet: TO }, contents: "Hello!" },
} as const;

test("viem account: address and uncompressed public key of the account at its path", async () => {
  const client = hdTestClient();
  const account = await toMpcAccount({ client, accountId: "alice", path: "m/0/3" });
  assert.equal(account.address, await client.getAddress("alice", { path: "m/0/3" }));
  assert.match(account.publicKey, /^0x04[0-9a-f]{128}$/);
  assert.equal(account.type, "local");
});

test("viem account: EIP-1559, EIP-2930 and legacy EIP-155 transactions recover to the account", async () => {
  const client = hdTestClient();
  const account = await toMpcAccount({ client, accountId: "alice" });
  const base = { chainId: 31337, nonce: 1, to: TO, value: parseEther("0.1"), gas: 21000n };
  const signed = {
    eip1559: await account.signTransaction({
      ...base,
      type: "eip1559",
      maxFeePerGas: 2_000_000_000n,
      maxPriorityFeePerGas: 1n,
    }),
    eip2930: await account.signTransaction({
      ...base,
      type: "eip2930",
      gasPrice: 7n,
      accessList: [],
    }),
    legacy: await account.signTransaction({ ...base, type: "legacy", gasPrice: 7n }),
  };
  for (const [type, raw] of Object.entries(signed)) {
    assert.equal(
      await recoverTransactionAddress({ serializedTransaction: raw as TransactionSerialized }),
      account.address,
      type,
    );
    assert.equal(parseTransaction(raw as Hex).type, type);
  }
  const legacy = parseTransaction(signed.legacy);
  assert.equal(legacy.v, 31337n * 2n + 35n + BigInt(legacy.yParity!), "EIP-155 v");
  assert.ok(
    parseTransaction(signed.eip1559).yParity === 0 ||
      parseTransaction(signed.eip1559).yParity === 1,
  );
});

test("viem account: signMessage and signTypedData verify with viem", async () => {
  const account = await toMpcAccount({ client: hdTestClient(), accountId: "alice" });
  for (const message of ["hello", { raw: new Uint8Array([0xde, 0xad]) }] as const) {
    const signature = await account.signMessage({ message });
    assert.ok(await verifyMessage({ address: account.address, message, signature }));
    assert.ok(["1b", "1c"].includes(signature.slice(-2)), "v is 27 or 28");
  }
  const sig = await account.signTypedData(TYPED);
  assert.ok(await verifyTypedData({ ...TYPED, address: account.address, signature: sig }));
  const altered = { ...TYPED, message: { ...TYPED.message, contents: "Bye" } };
  assert.equal(
    await verifyTypedData({ ...altered, address: account.address, signature: sig }),
    false,
  );
});

test("viem account: sign({ hash }) and signDigest sign the digest itself", async () => {
  const client = hdTestClient();
  const account = await toMpcAccount({ client, accountId: "alice" });
  const hash = keccak256(toHex("digest"));
  const signature = await account.sign!({ hash });
  assert.equal(await recoverAddress({ hash, signature }), account.address);
  const full = await account.signDigest(hash);
  assert.equal(full.digest, hash);
  assert.equal(full.serialized.length, 132);
  assert.equal(client.calls.at(-1)!.digest, hash.slice(2));
});

test("viem account: recovery id 3 is refused", async () => {
  const client = hdTestClient();
  const account = await toMpcAccount({ client, accountId: "alice" });
  client.recoveryIdOverride = 3;
  await assert.rejects(account.signMessage({ message: "x" }), RangeError);
});
