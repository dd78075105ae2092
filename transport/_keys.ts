/**
 * Key schedule of the secure session (private to `transport/`).
 *
 * ```text
 * T        = SHA-256(lp(LABEL/transcript) || lp(n) || lp(hello_0) || lp(sig_0) || ... )
 * k_{a->b} = HKDF-SHA256(ikm = X25519(eph_a, eph_b), salt = T, info = lp(LABEL/key) || a || b)
 * tag      = SHA-256(lp(LABEL/tag) || lp(T))[0..8]                 (public: names the session)
 * ctx      = SHA-256(lp(LABEL/context) || lp(context))
 * sid      = SHA-256(lp(LABEL/sid) || lp(T) || lp(ctx))
 * psid(l)  = SHA-256(lp(LABEL/protocol-sid) || lp(sid) || lp(l))
 * confirm  = LABEL/confirm || ctx                              (plaintext of seq 0, each way)
 * ```
 *
 * hello_j is the signed encoding of party j's hello (`helloSignedBytes`), lp the 4-byte length
 * prefix of `encodeParts`. X25519 is RFC 7748 section 5 (noble rejects a low-order peer key, which
 * would give the all-zero secret, section 6.1); HKDF is RFC 5869 with SHA-256.
 * @module
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  encodeParts,
  type HelloFrame,
  helloSignedBytes,
  LABEL,
  TAG_BYTES,
  uint,
} from "./_frames.ts";

/** Transcript hash T over every party's hello, in party order. */
export function transcriptHash(hellos: readonly HelloFrame[]): Uint8Array {
  const parts: (Uint8Array | string)[] = [`${LABEL}/transcript`, uint(hellos.length, 2)];
  for (const h of hellos) parts.push(helloSignedBytes(h), h.sig);
  return sha256(encodeParts(parts));
}

/**
 * Directional key k_{a->b}.
 *
 * @param shared X25519(eph_a, eph_b) (the same on both sides)
 * @throws {Error} from noble for a low-order peer key
 */
export function directionKey(
  shared: Uint8Array,
  transcript: Uint8Array,
  a: number,
  b: number,
): Uint8Array {
  return hkdf(
    sha256,
    shared,
    transcript,
    encodeParts([`${LABEL}/key`, uint(a, 2), uint(b, 2)]),
    32,
  );
}

/** X25519 shared secret (RFC 7748); throws for a low-order peer key. */
export function sharedSecret(ephSecret: Uint8Array, peerEph: Uint8Array): Uint8Array {
  return x25519.getSharedSecret(ephSecret, peerEph);
}

/** Public X25519 key of an ephemeral secret. */
export function ephemeralPublic(ephSecret: Uint8Array): Uint8Array {
  return x25519.getPublicKey(ephSecret);
}

/** Session tag carried by data frames (public, derived from the public transcript). */
export function sessionTag(transcript: Uint8Array): Uint8Array {
  return sha256(encodeParts([`${LABEL}/tag`, transcript])).slice(0, TAG_BYTES);
}

/** Hash of the caller's context bytes. */
export function contextHash(context: Uint8Array): Uint8Array {
  return sha256(encodeParts([`${LABEL}/context`, context]));
}

/** Session id: bound to the transcript (both nonces and ephemeral keys) and the context. */
export function sessionId(transcript: Uint8Array, ctx: Uint8Array): Uint8Array {
  return sha256(encodeParts([`${LABEL}/sid`, transcript, ctx]));
}

/** A protocol's own session id inside one secure session. */
export function protocolSessionId(sid: Uint8Array, label: string): Uint8Array {
  return sha256(encodeParts([`${LABEL}/protocol-sid`, sid, label]));
}

const CONFIRM_PREFIX = new TextEncoder().encode(`${LABEL}/confirm`);

/** Plaintext of the key confirmation frame. */
export function confirmPlaintext(ctx: Uint8Array): Uint8Array {
  const out = new Uint8Array(CONFIRM_PREFIX.length + ctx.length);
  out.set(CONFIRM_PREFIX);
  out.set(ctx, CONFIRM_PREFIX.length);
  return out;
}

/**
 * Checks a decrypted confirmation: "ok", "malformed" (not a confirmation) or "context" (a
 * confirmation for another context).
 */
export function checkConfirm(pt: Uint8Array, ctx: Uint8Array): "ok" | "malformed" | "context" {
  if (pt.length !== CONFIRM_PREFIX.length + ctx.length) return "malformed";
  for (let k = 0; k < CONFIRM_PREFIX.length; k++) {
    if (pt[k] !== CONFIRM_PREFIX[k]) return "malformed";
  }
  return equalBytes(pt.subarray(CONFIRM_PREFIX.length), ctx) ? "ok" : "context";
}

/** Byte equality (not constant time: used on public values only). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}
