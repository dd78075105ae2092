/**
 * An independent check of signatures: the `openssl` command line tool verifies a DER ECDSA
 * signature over a raw 32-byte digest (`openssl pkeyutl -verify`, no hashing) with the public key
 * as a PEM SubjectPublicKeyInfo. Used by the end-to-end tests and by `tools/demo.ts`.
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { secp256k1 } from "@noble/curves/secp256k1.js";

/** DER prefix of a SubjectPublicKeyInfo for id-ecPublicKey on secp256k1 with a 65-byte point. */
const SPKI_PREFIX = "3056301006072a8648ce3d020106052b8104000a034200";

/**
 * The PEM SubjectPublicKeyInfo of a secp256k1 public key.
 * @param publicKeyHex compressed or uncompressed SEC1 point, hex.
 * @returns `-----BEGIN PUBLIC KEY-----` ... with the uncompressed point.
 * @throws {Error} when the hex is not a point of the curve.
 */
export function publicKeyPem(publicKeyHex: string): string {
  const point = secp256k1.Point.fromHex(publicKeyHex).toBytes(false);
  const der = Buffer.concat([Buffer.from(SPKI_PREFIX, "hex"), Buffer.from(point)]);
  const b64 = der.toString("base64").match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`;
}

/**
 * Why openssl cannot be used (a test's skip reason), or undefined when it runs.
 * @returns the reason or undefined.
 */
export function opensslMissing(): string | undefined {
  const v = spawnSync("openssl", ["version"], { stdio: "ignore", timeout: 10_000 });
  return v.error || v.status !== 0 ? "the openssl command line tool is not installed" : undefined;
}

/**
 * Verifies a DER signature over a raw digest with the openssl CLI.
 * @param publicKeyHex the public key (SEC1 hex).
 * @param digestHex the 32-byte digest that was signed, hex.
 * @param derHex the DER signature, hex.
 * @param dir a directory for the three input files (default: a fresh temporary one, removed).
 * @returns true when openssl accepts, false when it refuses, undefined when it is missing.
 */
export function opensslVerify(
  publicKeyHex: string,
  digestHex: string,
  derHex: string,
  dir?: string,
): boolean | undefined {
  if (opensslMissing()) return undefined;
  const work = dir ?? mkdtempSync(join(tmpdir(), "wallet-mpc-openssl-"));
  try {
    writeFileSync(join(work, "pub.pem"), publicKeyPem(publicKeyHex));
    writeFileSync(join(work, "digest.bin"), Buffer.from(digestHex, "hex"));
    writeFileSync(join(work, "sig.der"), Buffer.from(derHex, "hex"));
    const r = spawnSync("openssl", [
      "pkeyutl",
      "-verify",
      "-pubin",
      "-inkey",
      join(work, "pub.pem"),
      "-in",
      join(work, "digest.bin"),
      "-sigfile",
      join(work, "sig.der"),
    ], { encoding: "utf8", timeout: 10_000 });
    return r.status === 0;
  } finally {
    if (dir === undefined) rmSync(work, { recursive: true, force: true });
  }
}
