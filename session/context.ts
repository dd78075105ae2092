/**
 * The session context: the bytes both parties must agree on before a session starts, bound into
 * the signed handshake of `transport/` (a party whose peer means another operation, account,
 * digest or path aborts the handshake with "context mismatch" before any protocol message).
 *
 * Encoding: SHA-256 of a domain label and length-prefixed fields (an injective encoding), so two
 * different requests never share a context.
 *
 * @example
 * ```ts
 * import { sessionContext } from "./context.ts";
 * const a = sessionContext({ op: "keygen", accountId: "alice", n: 2 });
 * const b = sessionContext({ op: "keygen", accountId: "alice2", n: 2 });
 * console.assert(a.length === 32 && a.some((x, k) => x !== b[k]));
 * ```
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { u32be } from "../core/bytes.ts";
import type { HashName } from "../core/signature.ts";

/** What a session is for. */
export type SessionPurpose =
  | {
    readonly op: "sign";
    readonly accountId: string;
    /** The account's root public key (compressed SEC1). */
    readonly publicKey: Uint8Array;
    /** The 32-byte digest. */
    readonly digest: Uint8Array;
    /** Derivation path indices (non-hardened). */
    readonly path: readonly number[];
  }
  | {
    /** Making presignatures ahead of a message (bound to the path and the hash). */
    readonly op: "presign";
    readonly accountId: string;
    readonly publicKey: Uint8Array;
    readonly path: readonly number[];
    readonly hash: HashName;
    /** How many presignatures the session makes. */
    readonly count: number;
  }
  | {
    /** Signing a message with a presignature both parties hold (one round). */
    readonly op: "sign-message";
    readonly accountId: string;
    readonly publicKey: Uint8Array;
    readonly path: readonly number[];
    readonly hash: HashName;
    /** The digest of the message under `hash` (the parties sign the same message). */
    readonly digest: Uint8Array;
    /** The presignature's id (lowercase hex). */
    readonly presignatureId: string;
  }
  | { readonly op: "keygen"; readonly accountId: string; readonly n: number }
  | { readonly op: "refresh"; readonly accountId: string; readonly publicKey: Uint8Array }
  /** Finishing a key generation that did not commit on both sides (docs/key-lifecycle.md). */
  | { readonly op: "resume"; readonly accountId: string; readonly publicKey: Uint8Array };

const DOMAIN = "wallet-mpc/session-context/v1";
const enc = new TextEncoder();

function lp(parts: Uint8Array[], bytes: Uint8Array): void {
  if (bytes.length > 0xffff) throw new RangeError("context field longer than 65535 bytes");
  parts.push(new Uint8Array([bytes.length >> 8, bytes.length & 0xff]), bytes);
}

/**
 * The 32-byte context of a session.
 *
 * @param p the operation and its parameters.
 * @returns SHA-256 over the domain label and the length-prefixed fields.
 * @throws {RangeError} for a field that does not fit the encoding.
 */
export function sessionContext(p: SessionPurpose): Uint8Array {
  const parts: Uint8Array[] = [];
  lp(parts, enc.encode(DOMAIN));
  lp(parts, enc.encode(p.op));
  lp(parts, enc.encode(p.accountId));
  if (p.op === "sign" || p.op === "presign" || p.op === "sign-message") {
    lp(parts, p.publicKey);
    if (p.op !== "presign") lp(parts, p.digest);
    lp(parts, u32be(p.path.length));
    for (const i of p.path) lp(parts, u32be(i));
    if (p.op === "presign") {
      lp(parts, enc.encode(p.hash));
      lp(parts, u32be(p.count));
    } else if (p.op === "sign-message") {
      lp(parts, enc.encode(p.hash));
      lp(parts, enc.encode(p.presignatureId));
    }
  } else if (p.op === "keygen") {
    lp(parts, u32be(p.n));
  } else {
    lp(parts, p.publicKey);
  }
  let len = 0;
  for (const x of parts) len += x.length;
  const buf = new Uint8Array(len);
  let o = 0;
  for (const x of parts) {
    buf.set(x, o);
    o += x.length;
  }
  return sha256(buf);
}
