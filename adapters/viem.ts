/**
 * A viem account for an MPC account: `toMpcAccount` returns a viem `LocalAccount` (made with
 * viem's `toAccount`) whose `sign`, `signMessage` (EIP-191), `signTypedData` (EIP-712) and
 * `signTransaction` (legacy with EIP-155, EIP-2930, EIP-1559, EIP-4844, EIP-7702; a chain's own
 * serializer when given) are made by the 2-of-2 client with the sign-service. Use it with
 * `createWalletClient({ account, chain, transport })` as any local account: viem fills nonce, gas
 * and fees, signs locally and sends `eth_sendRawTransaction`. `v` follows viem's rules
 * (`signature.ts`). viem is a peer dependency.
 *
 * Transactions, messages and typed data go to the client as the PREIMAGE of their digest (the
 * serializer's output for the signable transaction; `toPrefixedMessage`; `0x1901 ||
 * hashDomain || hashStruct` for EIP-712, `0x1901 || hashDomain` when the primary type is the
 * domain) through `MpcClient.signMessage` with hash keccak256: one round with a presignature
 * when the client's pool holds one, else in full (`signature.ts`, "Messages, not digests"). The
 * digest viem computes (`keccak256` of the serialized transaction, `hashMessage`,
 * `hashTypedData`) must be the preimage's and the one the client signed, else
 * `DigestMismatchError`. `sign({ hash })` and `signDigest` sign a raw digest, in full.
 *
 * @example
 * ```ts
 * import { type Address, createWalletClient, type Hash, http, parseEther } from "viem";
 * import { foundry } from "viem/chains";
 * import type { MpcClient } from "wallet-mpc/client";
 * import { toMpcAccount } from "wallet-mpc/viem";
 * // Needs the sign-service (through `client`) and an Ethereum node at `rpc`.
 * async function pay(client: MpcClient, rpc: string, to: Address): Promise<Hash> {
 *   const account = await toMpcAccount({ client, accountId: "alice" });
 *   const wallet = createWalletClient({ account, chain: foundry, transport: http(rpc) });
 *   return await wallet.sendTransaction({ to, value: parseEther("0.25") });
 * }
 * ```
 * @module
 */
import {
  type Address,
  concat,
  getAddress,
  getTypesForEIP712Domain,
  hashDomain,
  hashMessage,
  hashStruct,
  hashTypedData,
  type Hex,
  hexToBytes,
  keccak256,
  type LocalAccount,
  serializeSignature,
  serializeTransaction,
  type SignableMessage,
  toPrefixedMessage,
  type TransactionSerializable,
  type TypedData,
  type TypedDataDefinition,
  type TypedDataDomain,
} from "viem";
import { toAccount } from "viem/accounts";
import { Point } from "../core/params.ts";
import {
  type MpcAccountOptions,
  type MpcSignature,
  signDigest,
  signKeccakPreimage,
} from "./signature.ts";

export { DigestMismatchError } from "./signature.ts";
export type { MpcAccountOptions, MpcSignature } from "./signature.ts";

/** A viem local account signing with an MPC account, and its raw-digest signer. */
export type MpcViemAccount = LocalAccount<"wallet-mpc"> & {
  /** The account's uncompressed public key (`0x04...`), as viem's private-key accounts give. */
  readonly publicKey: Hex;
  /** Signs a 32-byte digest as it is, with every encoding (`signature.ts`). */
  signDigest(digest: Hex | Uint8Array): Promise<MpcSignature>;
};

function viemSignature(sig: MpcSignature) {
  return { r: sig.r, s: sig.s, yParity: sig.yParity, v: BigInt(sig.v) };
}

/** A struct type as viem's EIP-712 functions take it. */
type StructTypes = Record<string, readonly { name: string; type: string }[]>;

/**
 * The EIP-712 preimage viem's `hashTypedData` hashes: `0x1901 || hashDomain || hashStruct`, or
 * without the struct when the primary type is `EIP712Domain` (viem's rule). Call it after
 * `hashTypedData`, which validates the data.
 */
function typedDataPreimage(typedData: {
  domain?: TypedDataDomain;
  types: Record<string, unknown>;
  primaryType: string;
  message?: Record<string, unknown>;
}): Hex {
  const domain = typedData.domain ?? {};
  const types = {
    EIP712Domain: getTypesForEIP712Domain({ domain }),
    ...typedData.types,
  } as StructTypes;
  const parts: Hex[] = ["0x1901", hashDomain({ domain, types })];
  if (typedData.primaryType !== "EIP712Domain") {
    parts.push(
      hashStruct({ data: typedData.message ?? {}, primaryType: typedData.primaryType, types }),
    );
  }
  return concat(parts);
}

/**
 * The viem account of an MPC account (its address and public key are read once, here).
 *
 * @param options the client, the account id, an optional non-hardened path.
 * @returns the account.
 * @throws what `getAddress` / `getPublicKey` throw (e.g. an unknown account).
 */
export async function toMpcAccount(options: MpcAccountOptions): Promise<MpcViemAccount> {
  const ref = { client: options.client, accountId: options.accountId, path: options.path };
  const address: Address = getAddress(
    await ref.client.getAddress(ref.accountId, { path: ref.path }),
  );
  const compressed = await ref.client.getPublicKey(ref.accountId, { path: ref.path });
  const publicKey = `0x${Point.fromHex(compressed.replace(/^0x/, "")).toHex(false)}` as Hex;
  const sign = (digest: Hex | Uint8Array) => signDigest(ref, digest);
  /** Signs keccak256(preimage), which must be `digest` (`signature.ts`). */
  const signPreimage = async (preimage: Hex, digest: Hex) =>
    viemSignature(await signKeccakPreimage(ref, hexToBytes(preimage), digest));
  const account = toAccount({
    address,
    async sign({ hash }: { hash: Hex }) {
      return serializeSignature(viemSignature(await sign(hash)));
    },
    async signMessage({ message }: { message: SignableMessage }) {
      return serializeSignature(
        await signPreimage(toPrefixedMessage(message), hashMessage(message)),
      );
    },
    async signTypedData<
      const typedData extends TypedData | Record<string, unknown>,
      primaryType extends keyof typedData | "EIP712Domain" = keyof typedData,
    >(typedData: TypedDataDefinition<typedData, primaryType>) {
      const digest = hashTypedData(typedData); // validates the data first
      const preimage = typedDataPreimage(typedData as Parameters<typeof typedDataPreimage>[0]);
      return serializeSignature(await signPreimage(preimage, digest));
    },
    async signTransaction(transaction, { serializer = serializeTransaction } = {}) {
      // As viem's own signTransaction: an EIP-4844 transaction is signed without its sidecars.
      const signable = transaction.type === "eip4844"
        ? { ...transaction, sidecars: false }
        : transaction;
      const preimage = await serializer(signable as TransactionSerializable);
      const signature = await signPreimage(preimage, keccak256(preimage));
      return await serializer(transaction, signature);
    },
  });
  return { ...account, source: "wallet-mpc", publicKey, signDigest: sign };
}
