/// <reference no-default-lib="true" />
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="esnext" />
/**
 * The example wallet page (bundled by `server.ts` with esbuild for the browser): imports the
 * package as a wallet developer would (`wallet-mpc/client`, `wallet-mpc/client/browser_key_store`,
 * `wallet-mpc/viem`) and viem. It opens or creates the browser key store (an imported key share
 * file, encrypted at rest with the passphrase typed here), shows the account's address, balance
 * and xpub on the JSON-RPC node, and signs and sends a transfer: viem fills the transaction, the
 * 2-of-2 client signs it with the sign-service over gRPC-web through the gateway, viem sends it
 * and waits for the receipt. `document.body.dataset.state` tells where the page is (loading,
 * locked, ready, sending, sent, error) for people and for the test.
 * @module
 */
import { type MpcClient, newMpcClient } from "wallet-mpc/client";
import {
  type BrowserKeyStore,
  browserKeyStoreExists,
  openBrowserKeyStore,
} from "wallet-mpc/client/browser_key_store";
import { toMpcAccount } from "wallet-mpc/viem";
import {
  type Address,
  createPublicClient,
  createWalletClient,
  defineChain,
  formatEther,
  http,
  parseEther,
} from "viem";

/** What `/config.json` serves (server.ts). */
interface PageConfig {
  serviceUrl: string;
  gatewayUrl: string;
  rpcUrl: string;
  token: string;
  account: string;
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
const setState = (s: string) => (document.body.dataset.state = s);

function fail(e: unknown): void {
  $("error").textContent = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  setState("error");
}

async function loadConfig(): Promise<void> {
  const c = await (await fetch("/config.json")).json() as PageConfig;
  input("service-url").value = c.serviceUrl;
  input("gateway-url").value = c.gatewayUrl;
  input("rpc-url").value = c.rpcUrl;
  input("token").value = c.token;
  input("account-id").value = c.account;
}

async function openStore(): Promise<BrowserKeyStore> {
  const passphrase = input("passphrase").value;
  if (await browserKeyStoreExists()) return await openBrowserKeyStore({ passphrase });
  const file = input("key-file").files?.[0];
  const identity = $<HTMLTextAreaElement>("age-identity").value.trim();
  if (!file || !identity) throw new TypeError("choose the key share file and paste its identity");
  const store = await openBrowserKeyStore({ passphrase });
  await store.importFile(new Uint8Array(await file.arrayBuffer()), { identity });
  return store;
}

async function showWallet(client: MpcClient, accountId: string): Promise<void> {
  const rpc = input("rpc-url").value;
  const publicClient = createPublicClient({ transport: http(rpc) });
  const chainId = await publicClient.getChainId();
  const chain = defineChain({
    id: chainId,
    name: `chain ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpc] } },
  });
  const account = await toMpcAccount({ client, accountId });
  const wallet = createWalletClient({ account, chain, transport: http(rpc) });
  const refresh = async () => {
    const wei = await publicClient.getBalance({ address: account.address });
    $("balance").textContent = `${formatEther(wei)} ETH`;
  };
  $("account").textContent = accountId;
  $("address").textContent = account.address;
  $("chain-id").textContent = String(chainId);
  $("xpub").textContent = await client.getXpub(accountId);
  await refresh();
  $("unlock").hidden = true;
  $("wallet").hidden = false;
  setState("ready");

  $("send").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("error").textContent = "";
    $("tx-hash").textContent = "";
    const button = $<HTMLButtonElement>("send-button");
    button.disabled = true;
    try {
      setState("sending");
      $("tx-status").textContent = "signing with the sign-service (2-of-2)...";
      const t0 = performance.now();
      const hash = await wallet.sendTransaction({
        to: input("to").value.trim() as Address,
        value: parseEther(input("amount").value.trim()),
      });
      $("tx-hash").textContent = hash;
      $("tx-status").textContent = "sent, waiting for the receipt...";
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      $("tx-status").textContent = `${receipt.status} in block ${receipt.blockNumber} ` +
        `(signed and sent in ${((performance.now() - t0) / 1000).toFixed(1)} s)`;
      await refresh();
      setState("sent");
    } catch (e) {
      $("tx-status").textContent = "";
      fail(e);
    } finally {
      button.disabled = false;
    }
  });
}

async function unlock(): Promise<void> {
  $("error").textContent = "";
  setState("unlocking");
  const button = $<HTMLButtonElement>("unlock-button");
  button.disabled = true;
  try {
    const keyStore = await openStore();
    const client = newMpcClient({
      serviceUrl: input("service-url").value,
      gatewayUrl: input("gateway-url").value,
      token: input("token").value,
      protocol: "grpc-web",
      keyStore,
    });
    const ids = await keyStore.ids();
    const wanted = input("account-id").value.trim();
    const accountId = ids.includes(wanted) ? wanted : ids[0];
    if (!accountId) throw new RangeError("the key store holds no account");
    await showWallet(client, accountId);
  } catch (e) {
    fail(e);
  } finally {
    button.disabled = false;
  }
}

async function start(): Promise<void> {
  await loadConfig();
  const stored = await browserKeyStoreExists();
  $("import-fields").hidden = stored;
  $("unlock-title").textContent = stored ? "Unlock" : "Import a key share file";
  $("unlock-button").textContent = stored ? "Unlock" : "Import and unlock";
  $("unlock-button").addEventListener("click", unlock);
  setState("locked");
}

start().catch(fail);
