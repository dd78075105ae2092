/**
 * A stand-in of `MpcClient` for the chain adapters' unit tests: one ordinary BIP-32 key
 * (@scure/bip32, from a fixed seed) signs with @noble/curves where the real client runs a 2-of-2
 * session. It answers what the adapters ask of a client (`signTx`, `signMessage`, `getPublicKey`,
 * `getAddress`, `getXpub`) at non-hardened paths, computing addresses with ethers and extended
 * keys with @scure/bip32, so that an adapter test checks the adapter against independent code.
 * `signMessage` hashes the message itself (@noble/hashes) and signs in full (`pooled: false`);
 * the presignature calls are no-ops. `recoveryIdOverride` makes both signing calls report
 * another recovery id (the refusal of ids 2 and 3), `digestOverride` makes `signMessage` report
 * another digest than the one it signed (the adapters' check of the client's digest).
 *
 * TEST CODE ONLY.
 *
 * @example
 * ```ts
 * import { verifyMessage } from "ethers";
 * import { MpcEthersSigner } from "../adapters/ethers.ts";
 * import { hdTestClient } from "./hd_test_client.ts";
 * const client = hdTestClient();
 * const signer = new MpcEthersSigner({ client, accountId: "alice" });
 * const signature = await signer.signMessage("hello");
 * console.assert(verifyMessage("hello", signature) === (await signer.getAddress()));
 * console.assert(client.calls.length === 1);
 * ```
 * @module
 */
import { HDKey } from "@scure/bip32";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { computeAddress } from "ethers";
import type { MpcClient, TxSignature } from "../client/mpc_client.ts";

/** One signing call the stand-in answered. */
export interface HdTestCall {
  readonly accountId: string;
  readonly path: string;
  /** The digest signed (hex). */
  readonly digest: string;
  /** `signMessage` only: the message (hex) and its hash. */
  readonly message?: string;
  readonly hash?: string;
}

/** The stand-in and what it was asked. */
export interface HdTestClient extends MpcClient {
  /** The BIP-32 root key (depth 0) the account signs with. */
  readonly root: HDKey;
  /** Every `signTx` and `signMessage` call. */
  readonly calls: HdTestCall[];
  /** When set, `signTx` and `signMessage` report this recovery id. */
  recoveryIdOverride?: 0 | 1 | 2 | 3;
  /** When set, `signMessage` reports this digest (hex) instead of the one it signed. */
  digestOverride?: string;
}

const HASHES: Record<string, (m: Uint8Array) => Uint8Array> = {
  keccak256: keccak_256,
  sha256,
  sha256d: (m) => sha256(sha256(m)),
};

function strip(h: string): string {
  return h.replace(/^0x/i, "").toLowerCase();
}

/**
 * @param accountId the one account it holds (default "alice").
 * @param seed the BIP-32 seed (default 32 bytes of 7).
 * @returns the stand-in.
 */
export function hdTestClient(
  accountId = "alice",
  seed: Uint8Array = new Uint8Array(32).fill(7),
): HdTestClient {
  const root = HDKey.fromMasterSeed(seed);
  const key = (id: string, path = "") => {
    if (id !== accountId) throw new Error(`no local share for account "${id}"`);
    const p = path === "" ? "m" : path.startsWith("m") ? path : `m/${path}`;
    return root.derive(p);
  };
  const calls: HdTestCall[] = [];
  const sign = (id: string, path: string | undefined, digest: string): TxSignature => {
    const k = key(id, path);
    const rec = secp256k1.sign(hexToBytes(digest), k.privateKey!, {
      prehash: false,
      format: "recovered",
    });
    const sig = secp256k1.Signature.fromBytes(rec, "recovered");
    const recoveryId = (client.recoveryIdOverride ?? sig.recovery) as 0 | 1 | 2 | 3;
    const compact = bytesToHex(sig.toBytes("compact"));
    return {
      r: compact.slice(0, 64),
      s: compact.slice(64),
      recoveryId,
      v: 27 + recoveryId,
      der: bytesToHex(sig.toBytes("der")),
      compact,
      publicKey: bytesToHex(k.publicKey!),
      digest,
      sessionId: "00".repeat(32),
    };
  };
  const client: HdTestClient = {
    root,
    calls,
    signTx(txHash, id, options = {}) {
      const digest = typeof txHash === "string" ? strip(txHash) : bytesToHex(txHash);
      calls.push({ accountId: id, path: options.path ?? "", digest });
      return Promise.resolve(sign(id, options.path, digest));
    },
    signMessage(message, options) {
      const bytes = typeof message === "string" ? new TextEncoder().encode(message) : message;
      const hash = HASHES[options.hash];
      if (!hash) return Promise.reject(new TypeError(`unknown hash ${options.hash}`));
      const digest = bytesToHex(hash(bytes));
      calls.push({
        accountId: options.account,
        path: options.path ?? "",
        digest,
        message: bytesToHex(bytes),
        hash: options.hash,
      });
      const sig = sign(options.account, options.path, digest);
      return Promise.resolve({
        ...sig,
        digest: client.digestOverride ?? sig.digest,
        pooled: false,
      });
    },
    warmPresignatures: () => Promise.resolve(),
    presignatureStats: () => ({
      pool: { held: 0, added: 0, taken: 0, evicted: 0, expired: 0 },
      refill: undefined,
      pooled: 0,
      full: 0,
    }),
    close: () => Promise.resolve(),
    getPublicKey: (id, o = {}) => Promise.resolve(bytesToHex(key(id, o.path).publicKey!)),
    getAddress: (id, o = {}) =>
      Promise.resolve(computeAddress(`0x${bytesToHex(key(id, o.path).publicKey!)}`)),
    getXpub: (id, o = {}) => Promise.resolve(key(id, o.path).publicExtendedKey),
    listAccounts: () => Promise.resolve([accountId]),
    keygen: () => Promise.reject(new Error("not in the stand-in")),
    refresh: () => Promise.reject(new Error("not in the stand-in")),
    get service(): never {
      throw new Error("not in the stand-in");
    },
  };
  return client;
}
