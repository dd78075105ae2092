/**
 * What the chain adapters (`ethers.ts`, `viem.ts`, `bitcoinjs.ts`) share: the account they sign
 * for (an `MpcClient`, an account id, an optional non-hardened path) and one signature shape with
 * every encoding a chain library asks for, all hex with `0x`.
 *
 * ## `v` and `yParity`
 *
 * `yParity` is the parity of y(R), the recovery id's low bit; `v` here is 27 + yParity, what
 * Ethereum's signed messages (EIP-191) and typed data (EIP-712) carry as their 65th byte. A
 * transaction carries its own: `yParity` in typed transactions (EIP-2930, EIP-1559, ...), and
 * `chainId * 2 + 35 + yParity` in a legacy transaction with a chain id (EIP-155), which the
 * adapters leave to ethers' and viem's serializers. Recovery ids 2 and 3 (x(R) >= q, probability
 * about 2^-128) have no encoding in Ethereum: the adapters refuse such a signature with a
 * `RangeError` and the caller signs again. Bitcoin transaction signatures carry no recovery id.
 *
 * ## Messages, not digests
 *
 * What Ethereum signs is the keccak256 of a preimage the adapter can name: the unsigned
 * serialized transaction, the EIP-191 prefixed message, `0x1901 || domainSeparator ||
 * hashStruct(message)` for EIP-712. The adapters pass that PREIMAGE to `MpcClient.signMessage`
 * with hash `keccak256` ({@link signKeccakPreimage}): the client signs it in one round with a
 * presignature when its pool holds one for the account, path and hash (else in full), and the
 * presignature rules hold because both parties hash the preimage themselves (SECURITY.md,
 * "Presignatures"). Before signing, the preimage's keccak256 must equal the digest the chain
 * library computed; after, the digest the client reports must equal it too: otherwise
 * {@link DigestMismatchError}, and nothing is returned. A preimage above the client's message
 * bound (128 KiB; only a transaction with that much calldata) is signed as its digest, in full.
 * `signDigest` signs a raw digest: always in full (a digest never takes a presignature).
 *
 * @example
 * ```ts
 * import { toMpcSignature } from "./signature.ts";
 * const sig = toMpcSignature({
 *   r: "11".repeat(32), s: "22".repeat(32), recoveryId: 1, v: 28, der: "30", compact: "",
 *   publicKey: "02" + "33".repeat(32), digest: "44".repeat(32), sessionId: "",
 * });
 * console.assert(sig.v === 28 && sig.yParity === 1 && sig.serialized.endsWith("1c"));
 * ```
 * @module
 */
import type { MpcClient, TxSignature } from "../client/mpc_client.ts";
import { toHex } from "../core/bytes.ts";
import { hashMessage } from "../core/signature.ts";
import { MAX_MESSAGE_BYTES } from "../session/inputs.ts";

/** Hex with `0x`, as ethers and viem write it. */
export type Hex = `0x${string}`;

/** The account an adapter signs for. */
export interface MpcAccountOptions {
  /** The client party (`newMpcClient`). */
  readonly client: MpcClient;
  /** The account id (its key share is in the client's key store). */
  readonly accountId: string;
  /** Non-hardened derivation path below the account's key (`m/0/7`; default the key itself). */
  readonly path?: string;
}

/** A signature of a 32-byte digest with every encoding, hex with `0x` (module doc). */
export interface MpcSignature {
  /** r, 32 bytes. */
  readonly r: Hex;
  /** s, 32 bytes, always low (s <= q/2, EIP-2 / BIP-146). */
  readonly s: Hex;
  /** Parity of y(R): 0 or 1. */
  readonly yParity: 0 | 1;
  /** The recovery id (equal to `yParity`: ids 2 and 3 are refused). */
  readonly recoveryId: 0 | 1;
  /** 27 + yParity (signed messages and typed data). */
  readonly v: 27 | 28;
  /** r || s || v, 65 bytes (`eth_sign`, `personal_sign`, EIP-712). */
  readonly serialized: Hex;
  /** r || s, 64 bytes (Bitcoin's and bitcoinjs' compact form). */
  readonly compact: Hex;
  /** DER (SEC 1 C.5), without a sighash byte. */
  readonly der: Hex;
  /** The signed digest, 32 bytes. */
  readonly digest: Hex;
  /** The (derived) public key the signature verifies under, compressed, 33 bytes. */
  readonly publicKey: Hex;
  /** Made in one round with a presignature (`signMessage` with a pooled one), else in full. */
  readonly pooled: boolean;
}

/**
 * The digest a chain library computed and the keccak256 of the preimage an adapter built, or
 * the digest the client reports having signed, differ: nothing was (or is) returned signed.
 */
export class DigestMismatchError extends Error {
  override readonly name = "DigestMismatchError";
  /** The chain library's digest and the other one, hex with `0x`. */
  readonly expected: Hex;
  readonly actual: Hex;
  /** @param what which check. @param expected the library's digest. @param actual the other. */
  constructor(what: string, expected: Hex, actual: Hex) {
    super(`${what}: expected the digest ${expected}, got ${actual}`);
    this.expected = expected;
    this.actual = actual;
  }
}

function hex0x(s: string): Hex {
  return (s.startsWith("0x") ? s.toLowerCase() : `0x${s.toLowerCase()}`) as Hex;
}

/**
 * The adapters' signature shape of a client signature.
 *
 * @param sig what `MpcClient.signTx` returned.
 * @returns the signature with `0x` hex, `yParity`, `v` and the 65-byte serialization.
 * @throws {RangeError} for recovery id 2 or 3 (no Ethereum encoding; module doc).
 */
export function toMpcSignature(sig: TxSignature & { readonly pooled?: boolean }): MpcSignature {
  if (sig.recoveryId !== 0 && sig.recoveryId !== 1) {
    throw new RangeError(
      `expected recovery id 0 or 1, got ${sig.recoveryId} (x(R) >= q): sign again`,
    );
  }
  const yParity = sig.recoveryId;
  const r = hex0x(sig.r);
  const s = hex0x(sig.s);
  const v = (27 + yParity) as 27 | 28;
  return {
    r,
    s,
    yParity,
    recoveryId: yParity,
    v,
    serialized: `${r}${s.slice(2)}${v.toString(16)}`,
    compact: `${r}${s.slice(2)}`,
    der: hex0x(sig.der),
    digest: hex0x(sig.digest),
    publicKey: hex0x(sig.publicKey),
    pooled: sig.pooled === true,
  };
}

/**
 * Signs a 32-byte digest for an account through the client.
 *
 * @param account client, account id, path.
 * @param digest 32 bytes, hex (optional `0x`) or bytes.
 * @param signal aborts the signing session.
 * @returns the signature ({@link toMpcSignature}).
 * @throws what `signTx` throws; {RangeError} as {@link toMpcSignature}.
 */
export async function signDigest(
  account: MpcAccountOptions,
  digest: string | Uint8Array,
  signal?: AbortSignal,
): Promise<MpcSignature> {
  const sig = await account.client.signTx(digest, account.accountId, {
    path: account.path,
    signal,
  });
  return toMpcSignature(sig);
}

/**
 * Signs `keccak256(preimage)` for an account by handing the client the PREIMAGE as a message
 * (module doc, "Messages, not digests").
 *
 * @param account client, account id, path.
 * @param preimage the bytes whose keccak256 the chain signs (at most 128 KiB goes through
 *   `signMessage`; a longer one is signed as its digest, in full).
 * @param digest that keccak256 as the chain library computed it (hex, optional `0x`).
 * @param signal aborts the signing session.
 * @returns the signature ({@link toMpcSignature}); `pooled` says how it was made.
 * @throws {DigestMismatchError} when `digest` is not the preimage's keccak256 (before any
 *   request) or the client reports another digest; {TypeError} for a digest that is not 32 bytes
 *   of hex; what `signMessage` throws; {RangeError} as {@link toMpcSignature}.
 */
export async function signKeccakPreimage(
  account: MpcAccountOptions,
  preimage: Uint8Array,
  digest: string,
  signal?: AbortSignal,
): Promise<MpcSignature> {
  const expected = hex0x(digest);
  if (!/^0x[0-9a-f]{64}$/.test(expected)) {
    throw new TypeError("digest: expected 32 bytes of hex");
  }
  const own = hex0x(toHex(hashMessage("keccak256", preimage)));
  if (own !== expected) throw new DigestMismatchError("keccak256 of the preimage", expected, own);
  if (preimage.length > MAX_MESSAGE_BYTES) return await signDigest(account, expected, signal);
  const sig = await account.client.signMessage(preimage, {
    account: account.accountId,
    hash: "keccak256",
    path: account.path,
    signal,
  });
  const reported = hex0x(sig.digest);
  if (reported !== expected) {
    throw new DigestMismatchError("the digest the client signed", expected, reported);
  }
  return toMpcSignature(sig);
}
