import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  concat,
  createPublicClient,
  createWalletClient,
  getTypesForEIP712Domain,
  hashDomain,
  hashMessage,
  hashStruct,
  hashTypedData,
  type Hex,
  http,
  keccak256,
  parseEther,
  parseTransaction,
  recoverAddress,
  recoverTransactionAddress,
  serializeTransaction,
  toHex,
  type TransactionSerialized,
  verifyMessage,
  verifyTypedData,
} from "viem";
import { foundry } from "viem/chains";
import { anvilMissing, type AnvilNode } from "../testing/anvil.ts";
import type { MpcClient } from "../client/mpc_client.ts";
import { hdTestClient } from "../testing/hd_test_client.ts";
import { POOL_ACCOUNT, POOL_PATH, poolTests } from "./_pool_test_stack.ts";
import { DigestMismatchError, toMpcAccount } from "./viem.ts";

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
/** The EIP712Domain type of TYPED.domain (what viem's getTypesForEIP712Domain gives). */
const DOMAIN_TYPE = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
] as const;

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
  // Each was signed as a message: the serializer's output of the unsigned transaction.
  for (const [i, raw] of Object.values(signed).entries()) {
    const { r: _r, s: _s, v: _v, yParity: _y, ...unsigned } = parseTransaction(raw as Hex);
    assert.equal(`0x${client.calls[i].message}`, serializeTransaction(unsigned));
    assert.equal(client.calls[i].hash, "keccak256");
  }
  const legacy = parseTransaction(signed.legacy);
  assert.equal(legacy.v, 31337n * 2n + 35n + BigInt(legacy.yParity!), "EIP-155 v");
  assert.ok(
    parseTransaction(signed.eip1559).yParity === 0 ||
      parseTransaction(signed.eip1559).yParity === 1,
  );
});

test("viem account: signMessage and signTypedData verify with viem", async () => {
  const client = hdTestClient();
  const account = await toMpcAccount({ client, accountId: "alice" });
  for (const message of ["hello", { raw: new Uint8Array([0xde, 0xad]) }] as const) {
    const signature = await account.signMessage({ message });
    assert.ok(await verifyMessage({ address: account.address, message, signature }));
    assert.ok(["1b", "1c"].includes(signature.slice(-2)), "v is 27 or 28");
    // The client got the EIP-191 preimage: prefix, byte length, bytes.
    const bytes = typeof message === "string" ? toHex(message) : toHex(message.raw);
    const length = (bytes.length - 2) / 2;
    const prefix = toHex(`\x19Ethereum Signed Message:\n${length}`);
    assert.equal(`0x${client.calls.at(-1)!.message}`, concat([prefix, bytes]));
    assert.equal(`0x${client.calls.at(-1)!.digest}`, hashMessage(message));
  }
  const sig = await account.signTypedData(TYPED);
  assert.ok(await verifyTypedData({ ...TYPED, address: account.address, signature: sig }));
  // The client got 0x1901 || domain separator || hashStruct(message), as viem computes them.
  const types = { EIP712Domain: DOMAIN_TYPE, ...TYPED.types };
  assert.deepEqual(getTypesForEIP712Domain({ domain: TYPED.domain }), DOMAIN_TYPE);
  const preimage = concat([
    "0x1901",
    hashDomain({ domain: { ...TYPED.domain, chainId: 31337n }, types }),
    hashStruct({ data: TYPED.message, primaryType: "Mail", types }),
  ]);
  assert.equal(`0x${client.calls.at(-1)!.message}`, preimage);
  assert.equal(`0x${client.calls.at(-1)!.digest}`, hashTypedData(TYPED));
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

test("viem account: typed data whose primary type is the domain signs 0x1901 || domain separator", async () => {
  const client = hdTestClient();
  const account = await toMpcAccount({ client, accountId: "alice" });
  const domainOnly = {
    domain: { ...TYPED.domain, chainId: 31337n },
    types: { EIP712Domain: DOMAIN_TYPE },
    primaryType: "EIP712Domain",
  } as const;
  const signature = await account.signTypedData(domainOnly);
  assert.equal(
    await recoverAddress({ hash: hashTypedData(domainOnly), signature }),
    account.address,
  );
  assert.equal(client.calls[0].message!.length, 2 * (2 + 32));
});

test("viem account: a client reporting another digest than viem's is refused, nothing returned", async () => {
  const client = hdTestClient();
  client.digestOverride = "cd".repeat(32);
  const account = await toMpcAccount({ client, accountId: "alice" });
  const tx = {
    chainId: 1,
    nonce: 0,
    to: TO,
    gas: 21000n,
    type: "eip1559",
    maxFeePerGas: 2n,
    maxPriorityFeePerGas: 1n,
  } as const;
  for (
    const sign of [
      () => account.signMessage({ message: "x" }),
      () => account.signTypedData(TYPED),
      () => account.signTransaction(tx),
    ]
  ) {
    await assert.rejects(sign(), (e: unknown) => {
      assert.ok(e instanceof DigestMismatchError);
      assert.equal(e.actual, `0x${"cd".repeat(32)}`);
      return true;
    });
  }
});

/**
 * A transfer anvil mines, a personal message and typed data through `client`'s account; each
 * verified by viem (and the chain).
 */
async function signAll(client: MpcClient, anvil: AnvilNode): Promise<void> {
  const account = await toMpcAccount({ client, accountId: POOL_ACCOUNT, path: POOL_PATH });
  await anvil.fund(account.address);
  const transport = http(anvil.rpcUrl);
  const wallet = createWalletClient({ account, chain: foundry, transport });
  const hash = await wallet.sendTransaction({ to: TO, value: parseEther("0.01") });
  const receipt = await createPublicClient({ chain: foundry, transport })
    .waitForTransactionReceipt({ hash, pollingInterval: 50 });
  assert.equal(receipt.status, "success");
  assert.equal(receipt.from, account.address.toLowerCase(), "the chain recovered the signer");
  const message = "pay 0.01 to 0xaa";
  const signature = await account.signMessage({ message });
  assert.ok(await verifyMessage({ address: account.address, message, signature }));
  const typed = await account.signTypedData(TYPED);
  assert.ok(await verifyTypedData({ ...TYPED, address: account.address, signature: typed }));
}

describe("viem account through the client's presignature pool (service in process, anvil)", {
  skip: anvilMissing(),
}, () => {
  poolTests(signAll);
});
