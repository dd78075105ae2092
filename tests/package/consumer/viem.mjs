// viem through the package (plain Node): an EIP-1559 and a legacy EIP-155 transfer on anvil, a
// signed message and signed typed data. Prints what the test verifies with viem itself.
import process from "node:process";
import { newMpcClient } from "wallet-mpc/client";
import { openFileKeyStore } from "wallet-mpc/client/file_key_store";
import { toMpcAccount } from "wallet-mpc/viem";
import { createPublicClient, createWalletClient, http, parseEther } from "viem";
import { foundry } from "viem/chains";

const env = process.env;
const keyStore = await openFileKeyStore({ path: env.KEY_FILE, identity: env.AGE_IDENTITY });
const client = newMpcClient({
  serviceUrl: env.SERVICE_URL,
  gatewayUrl: env.GATEWAY_URL,
  token: env.TOKEN,
  keyStore,
});
const account = await toMpcAccount({ client, accountId: "alice" });
const transport = http(env.RPC_URL);
const wallet = createWalletClient({ account, chain: foundry, transport });
const chain = createPublicClient({ chain: foundry, transport });

const eip1559 = await wallet.sendTransaction({ to: env.TO, value: parseEther("0.01") });
await chain.waitForTransactionReceipt({ hash: eip1559 });
const legacy = await wallet.sendTransaction({
  to: env.TO,
  value: parseEther("0.02"),
  type: "legacy",
});
await chain.waitForTransactionReceipt({ hash: legacy });
const message = "wallet-mpc says hello";
const messageSignature = await account.signMessage({ message });
const typedData = {
  domain: { name: "wallet-mpc", version: "1", chainId: foundry.id },
  types: { Transfer: [{ name: "to", type: "address" }, { name: "amount", type: "uint256" }] },
  primaryType: "Transfer",
  message: { to: env.TO, amount: "42" },
};
const typedSignature = await account.signTypedData(typedData);
console.log(JSON.stringify({
  address: account.address,
  eip1559,
  legacy,
  message,
  messageSignature,
  typedData,
  typedSignature,
}));
await client.close(); // stops the background presigning the account started
