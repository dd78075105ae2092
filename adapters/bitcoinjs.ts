/**
 * bitcoinjs-lib signers for an MPC account: `createMpcBitcoinSigner` gives a `SignerAsync` (one
 * key, for `psbt.signInputAsync` / `signAllInputsAsync`), `createMpcHdSigner` an `HDSignerAsync`
 * (for `psbt.signInputHDAsync` / `signAllInputsHDAsync`) whose root is the account's key: its
 * `fingerprint` is the BIP-32 fingerprint of that key, the PSBT's `bip32Derivation` paths are
 * non-hardened paths below it (`m/0/7`), and `derivePath` derives the child public key locally
 * from the account's extended public key (`MpcClient.getXpub`). Each `sign(hash)` is one 2-of-2
 * signing session with the sign-service and returns the 64-byte r || s (low s) that bitcoinjs
 * wraps in DER with the sighash byte. The `lowR` grinding flag is ignored: no party can choose R.
 * Only types come from bitcoinjs-lib (a peer dependency); Schnorr (Taproot) is not offered.
 *
 * @example
 * ```ts
 * import type { Psbt } from "bitcoinjs-lib";
 * import { createMpcHdSigner } from "wallet-mpc/bitcoinjs";
 * import type { MpcClient } from "wallet-mpc/client";
 * // Needs the sign-service (through `client`); the PSBT's inputs name the HD signer's
 * // fingerprint and non-hardened paths in their bip32Derivation.
 * async function signAll(client: MpcClient, psbt: Psbt): Promise<void> {
 *   const hd = await createMpcHdSigner({ client, accountId: "alice" });
 *   await psbt.signAllInputsHDAsync(hd);
 * }
 * ```
 * @module
 */
import type { HDSignerAsync, SignerAsync } from "bitcoinjs-lib";
import { fromHex, u32be } from "../core/bytes.ts";
import { deriveShift, fingerprint, fromXpub } from "../core/hd.ts";
import type { Point } from "../core/params.ts";
import { type BitcoinNetwork, p2wpkhAddress } from "../client/addresses.ts";
import { parseDerivationPath } from "../session/inputs.ts";
import { type MpcAccountOptions, type MpcSignature, signDigest } from "./signature.ts";

export type { MpcAccountOptions, MpcSignature } from "./signature.ts";

/** A bitcoinjs `SignerAsync` for one key of an MPC account. */
export interface MpcBitcoinSigner extends SignerAsync {
  /** The compressed public key (33 bytes). */
  readonly publicKey: Uint8Array;
  /** The key's P2WPKH address on `network` (default `bitcoin`). */
  p2wpkhAddress(network?: BitcoinNetwork): string;
  /** Signs a 32-byte digest, with every encoding (`signature.ts`). */
  signDigest(digest: Uint8Array | string): Promise<MpcSignature>;
}

/** A bitcoinjs `HDSignerAsync` rooted at an MPC account's key (module doc). */
export interface MpcHdSigner extends HDSignerAsync {
  /** The compressed public key of this node (33 bytes). */
  readonly publicKey: Uint8Array;
  /** BIP-32 fingerprint of the root (4 bytes): the PSBT's `masterFingerprint`. */
  readonly fingerprint: Uint8Array;
  /** The path of this node below the root (`m` for the root). */
  readonly path: string;
  /** This node's P2WPKH address on `network` (default `bitcoin`). */
  p2wpkhAddress(network?: BitcoinNetwork): string;
  /** Signs a 32-byte digest with this node's key, with every encoding (`signature.ts`). */
  signDigest(digest: Uint8Array | string): Promise<MpcSignature>;
  /**
   * A node below this one: on the root a non-hardened path `m/0/7` (as a PSBT's
   * `bip32Derivation` names it), on another node a relative one (`0/7`).
   */
  derivePath(path: string): MpcHdSigner;
}

function signer(
  account: MpcAccountOptions,
  publicKey: Uint8Array,
): Omit<MpcBitcoinSigner, "publicKey"> & { publicKey: Uint8Array } {
  const own = publicKey.join();
  return {
    publicKey,
    p2wpkhAddress: (network: BitcoinNetwork = "bitcoin") => p2wpkhAddress(publicKey, network),
    signDigest: (digest) => signDigest(account, digest),
    async sign(hash: Uint8Array): Promise<Uint8Array> {
      const sig = await signDigest(account, hash);
      // The protocol verified the signature under the derived key; this pins the key bitcoinjs
      // was told (a client whose account changed under this signer fails here, not on chain).
      if (fromHex(sig.publicKey.slice(2)).join() !== own) {
        throw new Error("the signature's key differs from this signer's public key");
      }
      return fromHex(sig.compact.slice(2));
    },
  };
}

/**
 * A `SignerAsync` for the account's key at `path` (its public key is read once, here).
 *
 * @param options the client, the account id, an optional non-hardened path.
 * @returns the signer.
 * @throws what `getPublicKey` throws.
 */
export async function createMpcBitcoinSigner(
  options: MpcAccountOptions,
): Promise<MpcBitcoinSigner> {
  const account = { client: options.client, accountId: options.accountId, path: options.path };
  const pk = await account.client.getPublicKey(account.accountId, { path: account.path });
  return signer(account, fromHex(pk.replace(/^0x/, "")));
}

/**
 * An `HDSignerAsync` whose root is the account's key at `options.path` (default the account's
 * key itself): the extended public key is read once, here; derivations are local.
 *
 * @param options the client, the account id, an optional non-hardened path of the root.
 * @returns the root node.
 * @throws what `getXpub` throws.
 */
export async function createMpcHdSigner(options: MpcAccountOptions): Promise<MpcHdSigner> {
  const base = parseDerivationPath(options.path ?? "");
  const root = fromXpub(
    await options.client.getXpub(options.accountId, { path: options.path }),
  );
  const rootFingerprint = u32be(fingerprint(root.publicKey));
  const node = (relative: readonly number[], key: Point): MpcHdSigner => {
    const path = ["m", ...base, ...relative].join("/");
    const s = signer(
      { client: options.client, accountId: options.accountId, path },
      key.toBytes(true),
    );
    return {
      ...s,
      fingerprint: rootFingerprint,
      path: ["m", ...relative].join("/"),
      derivePath(p: string): MpcHdSigner {
        if (relative.length > 0 && (p === "m" || p.startsWith("m/"))) {
          throw new RangeError(`derivePath: "${p}" starts at the root; this node is ${this.path}`);
        }
        const more = parseDerivationPath(p);
        const all = [...relative, ...more];
        return node(all, deriveShift(root.publicKey, root.chainCode, all).childPublicKey);
      },
    };
  };
  return node([], root.publicKey);
}
