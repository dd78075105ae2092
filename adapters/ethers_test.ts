import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  concat,
  getAddress,
  hashMessage,
  hexlify,
  JsonRpcProvider,
  MessagePrefix,
  parseEther,
  recoverAddress,
  toUtf8Bytes,
  Transaction,
  TypedDataEncoder,
  verifyMessage,
  verifyTypedData,
} from "ethers";
import { anvilMissing, type AnvilNode } from "../testing/anvil.ts";
import type { MpcClient } from "../client/mpc_client.ts";
import { hdTestClient } from "../testing/hd_test_client.ts";
import { POOL_ACCOUNT, POOL_PATH, poolTests } from "./_pool_test_stack.ts";
import { DigestMismatchError, MpcEthersSigner } from "./ethers.ts";

const TO = "0x00000000000000000000000000000000000000aa";
const DOMAIN = { name: "Mail", version: "1", chainId: 31337, verifyingContract: TO };
const TYPES = {
  Person: [{ name: "name", type: "string" }, { name: "wallet", type: "address" }],
  Mail: [{ name: "from", type: "Person" }, { name: "to", type: "Person" }, {
    name: "contents",
    type: "string",
  }],
};
/** An EIP-1559 transfer with every field given. */
const TX_1559 = {
  type: 2,
  chainId: 31337,
  nonce: 3,
  to: TO,
  value: parseEther("0.25"),
  gasLimit: 21000,
  maxFeePerGas: 2_000_000_000n,
  maxPriorityFeePerGas: 1_000_000_000n,
};
const MAIL = {
  from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
  to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
  contents: "Hello, Bob!",
};

test("ethers signer: getAddress is the account's address at its path", async () => {
  const client = hdTestClient();
  const root = new MpcEthersSigner({ client, accountId: "alice" });
  const child = new MpcEthersSigner({ client, accountId: "alice", path: "m/0/7" });
  assert.equal(await root.getAddress(), await client.getAddress("alice"));
  assert.equal(await child.getAddress(), await client.getAddress("alice", { path: "m/0/7" }));
  assert.notEqual(await root.getAddress(), await child.getAddress());
});

test("ethers signer: an EIP-1559 transaction recovers to the signer, yParity in the signature", async () => {
  const client = hdTestClient();
  const signer = new MpcEthersSigner({ client, accountId: "alice", path: "m/1" });
  const raw = await signer.signTransaction(TX_1559);
  const tx = Transaction.from(raw);
  assert.equal(tx.type, 2);
  assert.equal(tx.from, await signer.getAddress());
  assert.equal(tx.to, getAddress(TO));
  assert.ok(tx.signature!.yParity === 0 || tx.signature!.yParity === 1);
  assert.deepEqual(client.calls.map((c) => c.path), ["m/1"]);
  assert.equal(`0x${client.calls[0].digest}`, tx.unsignedHash);
  // Signed as a message: the unsigned serialized transaction, hashed by the client.
  assert.equal(`0x${client.calls[0].message}`, tx.unsignedSerialized);
  assert.equal(client.calls[0].hash, "keccak256");
});

test("ethers signer: a legacy transaction with a chain id carries EIP-155 v", async () => {
  const client = hdTestClient();
  const signer = new MpcEthersSigner({ client, accountId: "alice" });
  const raw = await signer.signTransaction({
    type: 0,
    chainId: 1337,
    nonce: 0,
    to: TO,
    value: 1n,
    gasLimit: 21000,
    gasPrice: 1_000_000_000n,
  });
  const tx = Transaction.from(raw);
  assert.equal(tx.from, await signer.getAddress());
  const v = tx.signature!.networkV!;
  assert.equal(v, 1337n * 2n + 35n + BigInt(tx.signature!.yParity));
});

test("ethers signer: a transaction from another address is refused before signing", async () => {
  const client = hdTestClient();
  const signer = new MpcEthersSigner({ client, accountId: "alice" });
  await assert.rejects(
    signer.signTransaction({
      from: TO,
      to: TO,
      chainId: 1,
      nonce: 0,
      gasLimit: 21000,
      gasPrice: 1n,
    }),
    /from address mismatch/,
  );
  assert.equal(client.calls.length, 0);
});

test("ethers signer: signMessage verifies with verifyMessage, v 27 or 28", async () => {
  const client = hdTestClient();
  const signer = new MpcEthersSigner({ client, accountId: "alice" });
  for (const message of ["hello wallet-mpc", new Uint8Array([1, 2, 3])]) {
    const sig = await signer.signMessage(message);
    assert.match(sig, /^0x[0-9a-f]{130}$/);
    assert.ok(["1b", "1c"].includes(sig.slice(-2)));
    assert.equal(verifyMessage(message, sig), await signer.getAddress());
  }
  // The client got the EIP-191 preimage of hashMessage: prefix, byte length, bytes.
  const text = "héllo";
  await signer.signMessage(text);
  const preimage = concat([toUtf8Bytes(MessagePrefix), toUtf8Bytes("6"), toUtf8Bytes(text)]);
  assert.equal(`0x${client.calls.at(-1)!.message}`, preimage);
  assert.equal(`0x${client.calls.at(-1)!.digest}`, hashMessage(text));
});

test("ethers signer: signTypedData verifies with verifyTypedData", async () => {
  const client = hdTestClient();
  const signer = new MpcEthersSigner({ client, accountId: "alice" });
  const sig = await signer.signTypedData(DOMAIN, TYPES, MAIL);
  assert.equal(verifyTypedData(DOMAIN, TYPES, MAIL, sig), await signer.getAddress());
  // The client got 0x1901 || domain separator || hashStruct(message), as ethers computes them.
  const preimage = concat([
    "0x1901",
    TypedDataEncoder.hashDomain(DOMAIN),
    TypedDataEncoder.from(TYPES).hash(MAIL),
  ]);
  assert.equal(`0x${client.calls[0].message}`, preimage);
  assert.equal(`0x${client.calls[0].digest}`, TypedDataEncoder.hash(DOMAIN, TYPES, MAIL));
  const other = verifyTypedData(DOMAIN, TYPES, { ...MAIL, contents: "Hello, Eve!" }, sig);
  assert.notEqual(other, await signer.getAddress());
});

test("ethers signer: signDigest gives 0x hex, yParity, v, 65-byte serialized, DER", async () => {
  const client = hdTestClient();
  const signer = new MpcEthersSigner({ client, accountId: "alice" });
  const digest = TypedDataEncoder.hash(DOMAIN, TYPES, MAIL);
  const sig = await signer.signDigest(digest);
  assert.equal(client.calls[0].message, undefined, "a raw digest is never a message");
  assert.equal(sig.pooled, false);
  for (const k of ["r", "s", "serialized", "compact", "der", "digest", "publicKey"] as const) {
    assert.match(sig[k], /^0x[0-9a-f]+$/, k);
  }
  assert.equal(sig.serialized.length, 2 + 130);
  assert.equal(sig.v, 27 + sig.yParity);
  assert.equal(sig.recoveryId, sig.yParity);
  assert.equal(recoverAddress(digest, sig.serialized), await signer.getAddress());
  assert.equal(
    recoverAddress(digest, { r: sig.r, s: sig.s, yParity: sig.yParity }),
    await signer.getAddress(),
  );
});

test("ethers signer: recovery id 2 or 3 has no Ethereum encoding and is refused", async () => {
  const client = hdTestClient();
  client.recoveryIdOverride = 2;
  const signer = new MpcEthersSigner({ client, accountId: "alice" });
  await assert.rejects(signer.signMessage("x"), RangeError);
});

test("ethers signer: a client reporting another digest than ethers' is refused, nothing returned", async () => {
  const client = hdTestClient();
  client.digestOverride = "ab".repeat(32);
  const signer = new MpcEthersSigner({ client, accountId: "alice" });
  for (
    const sign of [
      () => signer.signMessage("x"),
      () => signer.signTypedData(DOMAIN, TYPES, MAIL),
      () => signer.signTransaction(TX_1559),
    ]
  ) {
    await assert.rejects(sign(), (e: unknown) => {
      assert.ok(e instanceof DigestMismatchError);
      assert.equal(e.actual, `0x${"ab".repeat(32)}`);
      return true;
    });
  }
});

test("ethers signer: a transaction above the client's message bound is signed as its digest", async () => {
  const client = hdTestClient();
  const signer = new MpcEthersSigner({ client, accountId: "alice" });
  const raw = await signer.signTransaction({
    ...TX_1559,
    data: hexlify(new Uint8Array(128 * 1024)),
    gasLimit: 30_000_000,
  });
  const tx = Transaction.from(raw);
  assert.equal(tx.from, await signer.getAddress());
  assert.equal(client.calls[0].message, undefined);
  assert.equal(`0x${client.calls[0].digest}`, tx.unsignedHash);
});

/**
 * A transfer anvil mines, a personal message and typed data through an ethers signer of
 * `client`; each verified by ethers (and the chain).
 */
async function signAll(client: MpcClient, anvil: AnvilNode): Promise<void> {
  const provider = new JsonRpcProvider(anvil.rpcUrl, undefined, { staticNetwork: true });
  try {
    const signer = new MpcEthersSigner({
      client,
      accountId: POOL_ACCOUNT,
      path: POOL_PATH,
      provider,
    });
    const from = await signer.getAddress();
    await anvil.fund(from);
    const sent = await signer.sendTransaction({ to: TO, value: parseEther("0.25") });
    const receipt = await sent.wait();
    assert.equal(receipt?.status, 1, "mined");
    assert.equal(receipt?.from, from, "the chain recovered the signer");
    const message = "pay 0.25 to 0xaa";
    assert.equal(verifyMessage(message, await signer.signMessage(message)), from);
    const typed = await signer.signTypedData(DOMAIN, TYPES, MAIL);
    assert.equal(verifyTypedData(DOMAIN, TYPES, MAIL, typed), from);
  } finally {
    provider.destroy();
  }
}

describe("ethers signer through the client's presignature pool (service in process, anvil)", {
  skip: anvilMissing(),
}, () => {
  poolTests(signAll);
});
