/**
 * An ethers v6 signer for an MPC account: `MpcEthersSigner` extends ethers' `AbstractSigner`, so
 * `sendTransaction` (fields filled by the provider: nonce, gas, fees, chain id), `signTransaction`
 * (legacy with EIP-155, EIP-2930, EIP-1559), `signMessage` (EIP-191) and `signTypedData`
 * (EIP-712) work as with an ethers `Wallet`, each signature made by the 2-of-2 client with the
 * sign-service. `v` follows ethers' rules (`signature.ts`): 27 / 28 in message signatures,
 * `yParity` in typed transactions, EIP-155 in legacy ones. ethers is a peer dependency.
 *
 * Transactions, messages and typed data go to the client as the PREIMAGE of their digest
 * (`Transaction.unsignedSerialized`; the EIP-191 prefix, the message's byte length and the
 * message; `TypedDataEncoder.encode`, i.e. `0x1901 || hashDomain || hashStruct`) through
 * `MpcClient.signMessage` with hash keccak256: one round with a presignature when the client's
 * pool holds one, else in full (`signature.ts`, "Messages, not digests"). The digest ethers
 * computes (`unsignedHash`, `hashMessage`, `TypedDataEncoder.hash`) must be the preimage's and
 * the one the client signed, else `DigestMismatchError`. `signDigest` signs a raw digest, in full.
 *
 * @example
 * ```ts
 * import { JsonRpcProvider, parseEther } from "ethers";
 * import type { MpcClient } from "wallet-mpc/client";
 * import { MpcEthersSigner } from "wallet-mpc/ethers";
 * // Needs the sign-service (through `client`) and an Ethereum node at `rpc`.
 * async function pay(client: MpcClient, rpc: string, to: string): Promise<void> {
 *   const provider = new JsonRpcProvider(rpc);
 *   const signer = new MpcEthersSigner({ client, accountId: "alice", provider });
 *   const tx = await signer.sendTransaction({ to, value: parseEther("0.25") });
 *   await tx.wait();
 * }
 * ```
 * @module
 */
import {
  AbstractSigner,
  concat,
  copyRequest,
  getAddress,
  getBytes,
  hashMessage,
  MessagePrefix,
  type Provider,
  resolveAddress,
  resolveProperties,
  Signature,
  toUtf8Bytes,
  Transaction,
  type TransactionLike,
  type TransactionRequest,
  type TypedDataDomain,
  TypedDataEncoder,
  type TypedDataField,
} from "ethers";
import {
  type MpcAccountOptions,
  type MpcSignature,
  signDigest,
  signKeccakPreimage,
} from "./signature.ts";

export { DigestMismatchError } from "./signature.ts";
export type { Hex, MpcAccountOptions, MpcSignature } from "./signature.ts";

/** Options of {@link MpcEthersSigner}. */
export interface MpcEthersSignerOptions extends MpcAccountOptions {
  /** The provider `sendTransaction`, `populateTransaction` and ENS names use (optional). */
  readonly provider?: Provider | null;
}

/** An ethers `AbstractSigner` whose key is an MPC account (module doc). */
export class MpcEthersSigner extends AbstractSigner {
  readonly #account: MpcAccountOptions;
  #address: Promise<string> | undefined;

  /**
   * @param options the client, the account id, an optional path and provider.
   * @example
   * ```ts
   * import { MemoryKeyStore, newMpcClient } from "wallet-mpc/client";
   * import { MpcEthersSigner } from "wallet-mpc/ethers";
   * const client = newMpcClient({
   *   serviceUrl: "http://127.0.0.1:50052",
   *   gatewayUrl: "http://127.0.0.1:8080",
   *   token: "<the caller's token>",
   *   keyStore: new MemoryKeyStore(),
   * });
   * const signer = new MpcEthersSigner({ client, accountId: "alice", path: "m/0/1" });
   * console.assert(signer.provider === null); // signer.connect(provider) to send transactions
   * ```
   */
  constructor(options: MpcEthersSignerOptions) {
    super(options.provider ?? null);
    this.#account = { client: options.client, accountId: options.accountId, path: options.path };
  }

  /**
   * The same account with another provider.
   * @param provider the provider.
   * @returns a new signer.
   */
  override connect(provider: Provider | null): MpcEthersSigner {
    return new MpcEthersSigner({ ...this.#account, provider });
  }

  /**
   * The account's address (EIP-55), from the local share.
   * @returns the address.
   */
  override getAddress(): Promise<string> {
    this.#address ??= this.#account.client.getAddress(this.#account.accountId, {
      path: this.#account.path,
    }).then(getAddress).catch((e) => {
      this.#address = undefined;
      throw e;
    });
    return this.#address;
  }

  /**
   * Signs a 32-byte digest as it is (no hashing).
   * @param digest hex or bytes.
   * @returns the signature with every encoding (`signature.ts`).
   */
  signDigest(digest: string | Uint8Array): Promise<MpcSignature> {
    return signDigest(this.#account, digest);
  }

  /** Signs keccak256(preimage), which must be `digest` (`signature.ts`). */
  #signPreimage(preimage: Uint8Array, digest: string): Promise<MpcSignature> {
    return signKeccakPreimage(this.#account, preimage, digest);
  }

  /**
   * Signs a transaction (every field given: `populateTransaction` fills them from a provider).
   * @param tx the request; `from`, when set, must be this account.
   * @returns the signed, serialized transaction (`0x`).
   * @throws {Error} (ethers INVALID_ARGUMENT) when `from` is another address.
   */
  override async signTransaction(tx: TransactionRequest): Promise<string> {
    const req = copyRequest(tx);
    const { to, from } = await resolveProperties({
      to: req.to ? resolveAddress(req.to, this.provider) : undefined,
      from: req.from ? resolveAddress(req.from, this.provider) : undefined,
    });
    if (to != null) req.to = to;
    if (from != null) {
      const own = await this.getAddress();
      if (getAddress(from) !== own) {
        throw Object.assign(new Error(`transaction from address mismatch: expected ${own}`), {
          code: "INVALID_ARGUMENT",
          argument: "tx.from",
          value: from,
        });
      }
    }
    delete req.from;
    const btx = Transaction.from(req as TransactionLike<string>);
    const sig = await this.#signPreimage(getBytes(btx.unsignedSerialized), btx.unsignedHash);
    btx.signature = Signature.from({ r: sig.r, s: sig.s, yParity: sig.yParity });
    return btx.serialized;
  }

  /**
   * EIP-191 personal message signature.
   * @param message text (UTF-8) or bytes.
   * @returns r || s || v, 65 bytes hex, v 27 or 28.
   */
  override async signMessage(message: string | Uint8Array): Promise<string> {
    const bytes = typeof message === "string" ? toUtf8Bytes(message) : getBytes(message);
    const preimage = getBytes(
      concat([toUtf8Bytes(MessagePrefix), toUtf8Bytes(String(bytes.length)), bytes]),
    );
    return (await this.#signPreimage(preimage, hashMessage(message))).serialized;
  }

  /**
   * EIP-712 typed data signature (ENS names resolved through the provider).
   * @param domain the domain.
   * @param types the struct types (without EIP712Domain).
   * @param value the message.
   * @returns r || s || v, 65 bytes hex.
   */
  override async signTypedData(
    domain: TypedDataDomain,
    types: Record<string, TypedDataField[]>,
    value: Record<string, unknown>,
  ): Promise<string> {
    const populated = await TypedDataEncoder.resolveNames(domain, types, value, async (name) => {
      const address = await this.provider?.resolveName(name);
      if (address == null) throw new Error(`cannot resolve the ENS name ${name}`);
      return address;
    });
    const preimage = TypedDataEncoder.encode(populated.domain, types, populated.value);
    const digest = TypedDataEncoder.hash(populated.domain, types, populated.value);
    return (await this.#signPreimage(getBytes(preimage), digest)).serialized;
  }
}
