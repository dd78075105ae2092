/**
 * X.509 certificates as the Nitro attestation chain uses them (ECDSA P-384 with SHA-384), parsed
 * with pkijs into a checked shape; signatures verified with @noble/curves p384. Private to
 * `enclave/`.
 * @module
 */

import * as pkijs from "pkijs";
import type * as asn1js from "asn1js";
import { p384 } from "@noble/curves/nist.js";

/** ecdsa-with-SHA384 (RFC 5758 section 3.2). */
export const OID_ECDSA_SHA384 = "1.2.840.10045.4.3.3";
/** id-ecPublicKey (RFC 5480 section 2.1.1). */
const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
/** secp384r1 (RFC 5480 section 2.1.1.1). */
const OID_SECP384R1 = "1.3.132.0.34";
/** basicConstraints, keyUsage (RFC 5280 sections 4.2.1.9, 4.2.1.3). */
const OID_BASIC_CONSTRAINTS = "2.5.29.19";
const OID_KEY_USAGE = "2.5.29.15";

/** Key usage bits (RFC 5280 section 4.2.1.3), numbered as in the ASN.1 definition. */
export const KU_DIGITAL_SIGNATURE = 0;
export const KU_KEY_CERT_SIGN = 5;

/** A parsed certificate; nothing in it is trusted until a chain check says so. */
export interface ParsedCertificate {
  /** The DER as received. */
  readonly der: Uint8Array;
  /** The tbsCertificate bytes as received (what the issuer signed). */
  readonly tbs: Uint8Array;
  /** The DER ECDSA signature value. */
  readonly signature: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Issuer and subject names, DER as received (chained by exact bytes). */
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  /** The uncompressed P-384 point of the subject key. */
  readonly publicKey: Uint8Array;
  /** basicConstraints: absent, or cA and the optional path length. */
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLen?: number };
  /** keyUsage bits present (undefined: no extension). */
  readonly keyUsage?: ReadonlySet<number>;
  /** OIDs of critical extensions this verifier does not process. */
  readonly unknownCritical: readonly string[];
}

/**
 * Parses a DER certificate whose keys and signature are ECDSA P-384 / SHA-384.
 * @param der the certificate
 * @returns the checked shape
 * @throws {SyntaxError} not a certificate, another algorithm, a duplicated extension
 */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  let cert: pkijs.Certificate;
  try {
    cert = pkijs.Certificate.fromBER(der.slice());
  } catch (e) {
    throw new SyntaxError(`not an X.509 certificate (${(e as Error).message})`);
  }
  const alg = cert.signatureAlgorithm;
  if (alg.algorithmId !== OID_ECDSA_SHA384 || alg.algorithmParams !== undefined) {
    throw new SyntaxError(`expected ecdsa-with-SHA384, got ${alg.algorithmId}`);
  }
  if (cert.signature.algorithmId !== alg.algorithmId) {
    throw new SyntaxError("tbsCertificate.signature differs from signatureAlgorithm");
  }
  const spki = cert.subjectPublicKeyInfo;
  const curve = spki.algorithm.algorithmParams as asn1js.ObjectIdentifier | undefined;
  const curveId = curve?.valueBlock?.toString?.();
  if (spki.algorithm.algorithmId !== OID_EC_PUBLIC_KEY || curveId !== OID_SECP384R1) {
    throw new SyntaxError(`expected a P-384 key, got ${spki.algorithm.algorithmId} ${curveId}`);
  }
  const publicKey = spki.subjectPublicKey.valueBlock.valueHexView.slice();
  if (publicKey.length !== 97 || publicKey[0] !== 4) {
    throw new SyntaxError(`expected an uncompressed P-384 point, got ${publicKey.length} bytes`);
  }
  let basicConstraints: ParsedCertificate["basicConstraints"];
  let keyUsage: Set<number> | undefined;
  const unknownCritical: string[] = [];
  const seen = new Set<string>();
  for (const ext of cert.extensions ?? []) {
    if (seen.has(ext.extnID)) throw new SyntaxError(`extension ${ext.extnID} appears twice`);
    seen.add(ext.extnID);
    if (ext.extnID === OID_BASIC_CONSTRAINTS) {
      const bc = ext.parsedValue as pkijs.BasicConstraints | undefined;
      if (!(bc instanceof pkijs.BasicConstraints)) throw new SyntaxError("bad basicConstraints");
      const pl = bc.pathLenConstraint;
      const pathLen = pl === undefined
        ? undefined
        : typeof pl === "number"
        ? pl
        : pl.valueBlock.valueDec;
      if (pathLen !== undefined && !(Number.isSafeInteger(pathLen) && pathLen >= 0)) {
        throw new SyntaxError("bad pathLenConstraint");
      }
      basicConstraints = { ca: bc.cA === true, ...(pathLen === undefined ? {} : { pathLen }) };
    } else if (ext.extnID === OID_KEY_USAGE) {
      const bits = (ext.parsedValue as asn1js.BitString | undefined)?.valueBlock?.valueHexView;
      if (!(bits instanceof Uint8Array)) throw new SyntaxError("bad keyUsage");
      keyUsage = new Set();
      for (let i = 0; i < bits.length * 8; i++) {
        if ((bits[i >> 3] >> (7 - (i & 7))) & 1) keyUsage.add(i);
      }
    } else if (ext.critical) {
      unknownCritical.push(ext.extnID);
    }
  }
  return {
    der: der.slice(),
    tbs: cert.tbsView.slice(),
    signature: cert.signatureValue.valueBlock.valueHexView.slice(),
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    issuer: new Uint8Array(cert.issuer.valueBeforeDecode),
    subject: new Uint8Array(cert.subject.valueBeforeDecode),
    publicKey,
    ...(basicConstraints ? { basicConstraints } : {}),
    ...(keyUsage ? { keyUsage } : {}),
    unknownCritical,
  };
}

/**
 * Whether `cert` carries a valid ECDSA P-384 / SHA-384 signature by `issuerKey`.
 * @param cert the certificate (its tbs bytes and DER signature)
 * @param issuerKey the issuer's uncompressed P-384 point
 * @returns true when the signature verifies
 */
export function signedBy(cert: ParsedCertificate, issuerKey: Uint8Array): boolean {
  try {
    // X.509 ECDSA signatures are not normalised to low S.
    return p384.verify(cert.signature, cert.tbs, issuerKey, { format: "der", lowS: false });
  } catch {
    return false;
  }
}
