// The consumer contract's imports and the browser store, bundled by the test with esbuild for
// the browser: the package must resolve without one Node built-in.
import { newMpcClient } from "wallet-mpc/client";
import { openFileKeyStore } from "wallet-mpc/client/file_key_store";
import { openBrowserKeyStore } from "wallet-mpc/client/browser_key_store";
import { MpcEthersSigner } from "wallet-mpc/ethers";
import { toMpcAccount } from "wallet-mpc/viem";
import { createMpcHdSigner } from "wallet-mpc/bitcoinjs";
import { JsonRpcProvider, parseEther } from "ethers";

globalThis.walletMpc = {
  newMpcClient,
  openFileKeyStore,
  openBrowserKeyStore,
  MpcEthersSigner,
  toMpcAccount,
  createMpcHdSigner,
  JsonRpcProvider,
  parseEther,
};
