/**
 * TEST ONLY. A stand-in for the Nitro Secure Module: a test PKI made at run time (root CA ->
 * intermediate CA -> leaf, all ECDSA P-384 / SHA-384, shaped like AWS's) signs real COSE_Sign1
 * attestation documents that `verifyAttestationDocument(doc, { roots: [rootDer] })` accepts.
 * Requests and answers go through the same CBOR encoding as the device. Runs under Deno and Node.
 *
 * The lower-level pieces ({@linkcode createTestPki}, {@linkcode attestationPayload},
 * {@linkcode signAttestationPayload}) let tests forge hostile documents.
 *
 * @example
 * ```ts
 * import { verifyAttestationDocument } from "../attestation.ts";
 * import { createFakeNsm } from "./fake_nsm.ts";
 * const { nsm, rootDer } = await createFakeNsm({ pcrs: new Map([[0, new Uint8Array(48)]]) });
 * const nonce = crypto.getRandomValues(new Uint8Array(32));
 * const doc = await nsm.attest({ nonce });
 * await verifyAttestationDocument(doc, { roots: [rootDer], nonce });
 * nsm.close();
 * ```
 * @module
 */

import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { encodeCbor } from "../_cbor.ts";
import {
  type AttestationRequest,
  createNsmClient,
  decodeAttestationRequest,
  encodeAttestationResponse,
  type Nsm,
} from "../nsm.ts";

const EC = { name: "ECDSA", namedCurve: "P-384" } as const;
const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** One certificate of the test PKI. */
export interface TestCertificate {
  der: Uint8Array;
  privateKey: CryptoKey;
}

/** A test root, one intermediate and a leaf, in AWS's `cabundle` order. */
export interface TestPki {
  root: TestCertificate;
  intermediate: TestCertificate;
  leaf: TestCertificate;
}

/** Per-certificate overrides, for hostile tests. */
export interface TestCertificateProfile {
  notBefore?: Date;
  notAfter?: Date;
  /** basicConstraints cA (default: true for root and intermediate, false for the leaf). */
  ca?: boolean;
  /** Omit the basicConstraints extension altogether. */
  noBasicConstraints?: boolean;
  pathLen?: number;
  /** keyUsage bits to set instead of the defaults (RFC 5280 numbering). */
  keyUsage?: readonly number[];
  /** Issuer common name to write instead of the issuer's (the signature stays the issuer's). */
  issuerCn?: string;
  /** Add a critical extension no verifier knows (OID 1.3.6.1.4.1.55555.1). */
  unknownCriticalExtension?: boolean;
}

/** Options of {@linkcode createTestPki}. */
export interface TestPkiOptions {
  /** Centre of every validity period (default now). */
  now?: Date;
  root?: TestCertificateProfile;
  intermediate?: TestCertificateProfile;
  leaf?: TestCertificateProfile;
  /** Sign the intermediate with this key instead of the root's (a broken chain). */
  intermediateSignedBy?: CryptoKey;
}

let serial = 1;

async function makeCertificate(
  subjectCn: string,
  issuerCn: string,
  keys: CryptoKeyPair,
  issuerKey: CryptoKey,
  validity: [Date, Date],
  profile: TestCertificateProfile,
  defaults: { ca: boolean; keyUsage: readonly number[] },
): Promise<Uint8Array> {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = new asn1js.Integer({ value: serial++ });
  const name = (cn: string) => [
    new pkijs.AttributeTypeAndValue({
      type: "2.5.4.6",
      value: new asn1js.PrintableString({ value: "US" }),
    }),
    new pkijs.AttributeTypeAndValue({
      type: "2.5.4.10",
      value: new asn1js.Utf8String({ value: "Test" }),
    }),
    new pkijs.AttributeTypeAndValue({
      type: "2.5.4.3",
      value: new asn1js.Utf8String({ value: cn }),
    }),
  ];
  cert.subject.typesAndValues.push(...name(subjectCn));
  cert.issuer.typesAndValues.push(...name(profile.issuerCn ?? issuerCn));
  // RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  const time = (value: Date) =>
    new pkijs.Time({ type: value.getUTCFullYear() >= 2050 ? 1 : 0, value });
  cert.notBefore = time(profile.notBefore ?? validity[0]);
  cert.notAfter = time(profile.notAfter ?? validity[1]);
  const ca = profile.ca ?? defaults.ca;
  const extensions: pkijs.Extension[] = [];
  if (!profile.noBasicConstraints) {
    const bc = new pkijs.BasicConstraints({
      cA: ca,
      ...(profile.pathLen === undefined ? {} : { pathLenConstraint: profile.pathLen }),
    });
    extensions.push(
      new pkijs.Extension({
        extnID: "2.5.29.19",
        critical: true,
        extnValue: bc.toSchema().toBER(false),
        parsedValue: bc,
      }),
    );
  }
  // keyUsage as a DER BIT STRING: bit i is bit 7 - i of the first byte (all usages used < 8).
  const bits = profile.keyUsage ?? defaults.keyUsage;
  const byte = bits.reduce((b, i) => b | (0x80 >> i), 0);
  const unusedBits = byte === 0 ? 0 : Math.min(7, 7 - Math.max(...bits));
  const ku = new asn1js.BitString({ valueHex: Uint8Array.of(byte), unusedBits });
  extensions.push(
    new pkijs.Extension({ extnID: "2.5.29.15", critical: true, extnValue: ku.toBER(false) }),
  );
  if (profile.unknownCriticalExtension) {
    extensions.push(
      new pkijs.Extension({
        extnID: "1.3.6.1.4.1.55555.1",
        critical: true,
        extnValue: new asn1js.Null().toBER(false),
      }),
    );
  }
  cert.extensions = extensions;
  await cert.subjectPublicKeyInfo.importKey(keys.publicKey);
  await cert.sign(issuerKey, "SHA-384");
  return new Uint8Array(cert.toSchema(true).toBER(false));
}

/**
 * Makes a test PKI shaped like AWS's: root (CA), intermediate (CA, pathLen 0), leaf
 * (digitalSignature); root valid 30 years, intermediate 30 days, leaf 3 hours, around `now`.
 * @param opts validity centre and per-certificate overrides
 * @returns the three certificates with their private keys
 */
export async function createTestPki(opts: TestPkiOptions = {}): Promise<TestPki> {
  const t = (opts.now ?? new Date()).getTime();
  const gen = () =>
    crypto.subtle.generateKey(EC, false, ["sign", "verify"]) as Promise<CryptoKeyPair>;
  const [rk, ik, lk] = await Promise.all([gen(), gen(), gen()]);
  // CAs: keyCertSign, cRLSign (bits 5, 6); the leaf: digitalSignature (bit 0).
  const caUsage = { ca: true, keyUsage: [5, 6] };
  const rootDer = await makeCertificate(
    "test.nitro-enclaves",
    "test.nitro-enclaves",
    rk,
    rk.privateKey,
    [new Date(t - DAY), new Date(t + 30 * 365 * DAY)],
    opts.root ?? {},
    caUsage,
  );
  const interDer = await makeCertificate(
    "zonal.test.nitro-enclaves",
    "test.nitro-enclaves",
    ik,
    opts.intermediateSignedBy ?? rk.privateKey,
    [new Date(t - DAY), new Date(t + 30 * DAY)],
    { pathLen: 0, ...opts.intermediate },
    caUsage,
  );
  const leafDer = await makeCertificate(
    "i-0123456789abcdef0-enc0123456789abcdef.test",
    "zonal.test.nitro-enclaves",
    lk,
    ik.privateKey,
    [new Date(t - HOUR), new Date(t + 3 * HOUR)],
    opts.leaf ?? {},
    { ca: false, keyUsage: [0] },
  );
  return {
    root: { der: rootDer, privateKey: rk.privateKey },
    intermediate: { der: interDer, privateKey: ik.privateKey },
    leaf: { der: leafDer, privateKey: lk.privateKey },
  };
}

/**
 * The payload map of an attestation document, in the NSM's field order (absent optional fields
 * are null, as the NSM writes them). Tests may edit it before signing.
 */
export function attestationPayload(
  pki: TestPki,
  fields: AttestationRequest & { pcrs: ReadonlyMap<number, Uint8Array>; now?: Date },
): Map<string, unknown> {
  return new Map<string, unknown>([
    ["module_id", "i-0123456789abcdef0-enc0123456789abcdef"],
    ["digest", "SHA384"],
    ["timestamp", (fields.now ?? new Date()).getTime()],
    ["pcrs", new Map(fields.pcrs)],
    ["certificate", pki.leaf.der],
    ["cabundle", [pki.root.der, pki.intermediate.der]],
    ["public_key", fields.publicKey ?? null],
    ["user_data", fields.userData ?? null],
    ["nonce", fields.nonce ?? null],
  ]);
}

/**
 * Signs a payload as the NSM does: COSE_Sign1 (untagged), protected header {1: -35}, ES384
 * over the RFC 9052 Sig_structure.
 * @param key the signing key (default the PKI's leaf key)
 * @param payload the payload map, or raw payload bytes
 * @returns the document
 */
export async function signAttestationPayload(
  key: CryptoKey,
  payload: Map<string, unknown> | Uint8Array,
): Promise<Uint8Array> {
  const body = payload instanceof Uint8Array ? payload : encodeCbor(payload);
  const protectedHeader = encodeCbor(new Map([[1, -35]]));
  const toBeSigned = encodeCbor(["Signature1", protectedHeader, new Uint8Array(0), body]);
  const sig = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-384" }, key, toBeSigned),
  );
  return encodeCbor([protectedHeader, new Map(), body, sig]);
}

/**
 * A fake NSM: each attest() goes through the request and response CBOR of the device and returns
 * a document signed by a fresh test PKI over the given PCRs.
 * @param opts the PCRs to report; `now` fixes the timestamp and the certificates' validity
 * @returns the Nsm and the test root (DER) to pass as `roots`
 */
export async function createFakeNsm(
  opts: { pcrs: ReadonlyMap<number, Uint8Array>; now?: Date },
): Promise<{ nsm: Nsm; rootDer: Uint8Array }> {
  const pki = await createTestPki(opts.now ? { now: opts.now } : {});
  const exchange = async (request: Uint8Array): Promise<Uint8Array> => {
    const req = decodeAttestationRequest(request);
    const payload = attestationPayload(pki, {
      ...req,
      pcrs: opts.pcrs,
      ...(opts.now ? { now: opts.now } : {}),
    });
    return encodeAttestationResponse({
      document: await signAttestationPayload(pki.leaf.privateKey, payload),
    });
  };
  return { nsm: createNsmClient(exchange), rootDer: pki.root.der };
}
