/**
 * Verifier of AWS Nitro Enclaves attestation documents: a COSE_Sign1 (ES384) over a CBOR payload
 * whose certificate chains, through its `cabundle`, to a pinned root (by default the public AWS
 * Nitro Enclaves root, G1). Pure (Web standards + npm), runs under Deno and Node.
 *
 * Sources: AWS, "Nitro Enclaves attestation process" (aws-nitro-enclaves-nsm-api,
 * docs/attestation_process.md: sections 2.2 payload, 3.1 COSE, 3.2.2 syntax, 3.2.3 chain);
 * RFC 9052 section 4.4 (Sig_structure); RFC 5280 sections 4.2.1.3, 4.2.1.9, 6.1.
 *
 * Order of checks: COSE and payload shape (`malformed`, `missing-field`), the chain from the
 * pinned root to the leaf (`untrusted-chain`, `expired`, `not-ca`), the COSE signature by the
 * leaf key (`bad-signature`), then the caller's nonce (`nonce-mismatch`) and PCRs
 * (`pcr-mismatch`).
 *
 * @example
 * ```ts
 * import { verifyAttestationDocument } from "./attestation.ts";
 * // A document from the test NSM (in an enclave: nsm.ts's openNsmDevice()), signed by a test
 * // root instead of AWS's.
 * import { createFakeNsm } from "./testing/fake_nsm.ts";
 * const pcr0 = new Uint8Array(48).fill(1);
 * const { nsm, rootDer } = await createFakeNsm({ pcrs: new Map([[0, pcr0]]) });
 * const nonce = crypto.getRandomValues(new Uint8Array(32));
 * const bytes = await nsm.attest({ nonce });
 * const doc = await verifyAttestationDocument(bytes, {
 *   roots: [rootDer],
 *   nonce,
 *   expectedPcrs: new Map([[0, pcr0]]),
 * });
 * console.log(doc.moduleId, doc.publicKey);
 * nsm.close();
 * ```
 * @module
 */

import { p384 } from "@noble/curves/nist.js";
import { equalBytes } from "@noble/curves/utils.js";
import { decodeCbor, encodeCbor } from "./_cbor.ts";
import {
  KU_DIGITAL_SIGNATURE,
  KU_KEY_CERT_SIGN,
  parseCertificate,
  type ParsedCertificate,
  signedBy,
} from "./_x509.ts";

/** Why a document was refused. */
export type AttestationErrorCode =
  | "malformed" // not a COSE_Sign1 / CBOR payload of the documented shape, a bad value
  | "bad-signature" // the COSE signature does not verify under the leaf certificate's key
  | "untrusted-chain" // cabundle[0] is not a trusted root, names or signatures do not chain
  | "expired" // a certificate of the chain is not valid at `now`
  | "not-ca" // a certificate used as a CA is not one (basicConstraints, keyUsage, pathLen)
  | "nonce-mismatch" // the caller's nonce is absent or different
  | "pcr-mismatch" // an expected PCR is absent or different
  | "missing-field"; // a mandatory payload field is absent or null

/** An attestation document failed verification. */
export class AttestationError extends Error {
  override readonly name = "AttestationError";
  readonly code: AttestationErrorCode;
  constructor(code: AttestationErrorCode, message: string) {
    super(`attestation: ${message}`);
    this.code = code;
  }
}

/** A verified attestation document (payload fields, camelCase). */
export interface AttestationDocument {
  /** Issuing NSM module id. */
  moduleId: string;
  /** Digest of the PCR bank: always "SHA384". */
  digest: string;
  /** Creation time, milliseconds since the Unix epoch. */
  timestamp: number;
  /** Locked PCRs at creation, by index. */
  pcrs: ReadonlyMap<number, Uint8Array>;
  /** The leaf (signing) certificate, DER. */
  certificate: Uint8Array;
  /** The CA bundle, root first, DER. */
  cabundle: readonly Uint8Array[];
  publicKey?: Uint8Array;
  userData?: Uint8Array;
  nonce?: Uint8Array;
}

/** Options of {@linkcode verifyAttestationDocument}. */
export interface VerifyAttestationOptions {
  /** Trusted roots, DER; default `[AWS_NITRO_ROOT_G1_DER]`. */
  roots?: readonly Uint8Array[];
  /** When given, the document's nonce must equal it. */
  nonce?: Uint8Array;
  /** Time at which every certificate must be valid; default now. */
  now?: Date;
  /** When given, each listed PCR must be present with this value. */
  expectedPcrs?: ReadonlyMap<number, Uint8Array>;
}

/**
 * The AWS Nitro Enclaves root certificate (G1) of the commercial partitions: self-signed,
 * ECDSA P-384, `CN=aws.nitro-enclaves, OU=AWS, O=Amazon, C=US`, valid 2019-10-28 to 2049-10-28.
 * Source: https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip (the zip's
 * SHA-256 is 8cf60e2b2efca96c6a9e71e851d00c1b6991cc09eadbe64a6a1d1b1eb9faff7c), documented at
 * https://docs.aws.amazon.com/enclaves/latest/user/verify-root.html with the certificate's
 * SHA-256 fingerprint {@linkcode AWS_NITRO_ROOT_G1_SHA256}, which a test checks.
 */
const AWS_NITRO_ROOT_G1_PEM = `-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----`;

/** SHA-256 of the DER of the AWS Nitro Enclaves root G1, as AWS documents it (hex). */
export const AWS_NITRO_ROOT_G1_SHA256 =
  "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

/** The AWS Nitro Enclaves root certificate G1, DER. */
export const AWS_NITRO_ROOT_G1_DER: Uint8Array = Uint8Array.from(
  atob(AWS_NITRO_ROOT_G1_PEM.replace(/-----[A-Z ]+-----|\s/g, "")),
  (c) => c.charCodeAt(0),
);

/** Largest document accepted: a 16 KiB payload (section 3.1) plus COSE headers and signature. */
export const MAX_DOCUMENT_BYTES = 16384 + 1024;
/** Most CA certificates accepted in `cabundle` (AWS sends four). */
export const MAX_CABUNDLE = 16;

/** COSE algorithm ES384 (RFC 9053 section 2.1) and the protected-header label `alg`. */
const COSE_ALG_ES384 = -35;
const COSE_HEADER_ALG = 1;
/** CBOR tag of a tagged COSE_Sign1 (RFC 9052 section 4.2). */
const COSE_SIGN1_TAG_BYTE = 0xd2;

const fail = (code: AttestationErrorCode, message: string): never => {
  throw new AttestationError(code, message);
};

interface Payload {
  moduleId: string;
  digest: string;
  timestamp: number;
  pcrs: Map<number, Uint8Array>;
  certificate: Uint8Array;
  cabundle: Uint8Array[];
  publicKey?: Uint8Array;
  userData?: Uint8Array;
  nonce?: Uint8Array;
}

/** Section 3.2.2: mandatory fields, types and sizes. */
function parsePayload(bytes: Uint8Array): Payload {
  let m: unknown;
  try {
    m = decodeCbor(bytes, MAX_DOCUMENT_BYTES, "payload");
  } catch (e) {
    return fail("malformed", (e as Error).message);
  }
  if (!(m instanceof Map)) return fail("malformed", "payload: expected a CBOR map");
  const known = [
    "module_id",
    "digest",
    "timestamp",
    "pcrs",
    "certificate",
    "cabundle",
    "public_key",
    "user_data",
    "nonce",
  ];
  for (const k of m.keys()) {
    if (typeof k !== "string" || !known.includes(k)) {
      return fail("malformed", `payload: unexpected key ${JSON.stringify(String(k))}`);
    }
  }
  const need = (k: string): unknown => {
    const v = m.get(k);
    return v === undefined || v === null ? fail("missing-field", `payload: no ${k}`) : v;
  };
  const moduleId = need("module_id");
  if (typeof moduleId !== "string" || moduleId.length === 0) {
    return fail("malformed", "module_id: expected a non-empty text string");
  }
  const digest = need("digest");
  if (digest !== "SHA384") return fail("malformed", `digest: expected "SHA384"`);
  const timestamp = need("timestamp");
  if (!Number.isSafeInteger(timestamp) || (timestamp as number) <= 0) {
    return fail("malformed", "timestamp: expected a positive integer");
  }
  const pcrsIn = need("pcrs");
  if (!(pcrsIn instanceof Map) || pcrsIn.size < 1 || pcrsIn.size > 32) {
    return fail("malformed", "pcrs: expected a map of 1..32 entries");
  }
  const pcrs = new Map<number, Uint8Array>();
  for (const [i, v] of pcrsIn) {
    if (!Number.isInteger(i) || i < 0 || i >= 32) {
      return fail("malformed", "pcrs: expected integer indices 0..31");
    }
    if (!(v instanceof Uint8Array) || ![32, 48, 64].includes(v.length)) {
      return fail("malformed", `pcrs[${i}]: expected 32, 48 or 64 bytes`);
    }
    pcrs.set(i, v.slice());
  }
  const certOf = (v: unknown, what: string): Uint8Array =>
    v instanceof Uint8Array && v.length >= 1 && v.length <= 1024
      ? v.slice()
      : fail("malformed", `${what}: expected 1..1024 bytes`);
  const certificate = certOf(need("certificate"), "certificate");
  const bundleIn = need("cabundle");
  if (!Array.isArray(bundleIn) || bundleIn.length < 1 || bundleIn.length > MAX_CABUNDLE) {
    return fail("malformed", `cabundle: expected 1..${MAX_CABUNDLE} certificates`);
  }
  const cabundle = bundleIn.map((c, i) => certOf(c, `cabundle[${i}]`));
  const optional = (k: string, min: number, max: number): Uint8Array | undefined => {
    const v = m.get(k);
    if (v === undefined || v === null) return undefined;
    return v instanceof Uint8Array && v.length >= min && v.length <= max
      ? v.slice()
      : fail("malformed", `${k}: expected ${min}..${max} bytes`);
  };
  const publicKey = optional("public_key", 1, 1024);
  const userData = optional("user_data", 0, 512);
  const nonce = optional("nonce", 0, 512);
  return {
    moduleId,
    digest,
    timestamp: timestamp as number,
    pcrs,
    certificate,
    cabundle,
    ...(publicKey ? { publicKey } : {}),
    ...(userData ? { userData } : {}),
    ...(nonce ? { nonce } : {}),
  };
}

/** Section 3.1: the four parts of an (optionally tagged) COSE_Sign1 with alg ES384. */
function parseCoseSign1(doc: Uint8Array) {
  const body = doc[0] === COSE_SIGN1_TAG_BYTE ? doc.subarray(1) : doc;
  let top: unknown;
  try {
    top = decodeCbor(body, MAX_DOCUMENT_BYTES, "COSE_Sign1");
  } catch (e) {
    return fail("malformed", (e as Error).message);
  }
  if (!Array.isArray(top) || top.length !== 4) {
    return fail("malformed", "COSE_Sign1: expected an array of 4 items");
  }
  const [protectedBytes, unprotected, payload, signature] = top;
  if (!(protectedBytes instanceof Uint8Array) || !(unprotected instanceof Map)) {
    return fail("malformed", "COSE_Sign1: expected a protected bstr and an unprotected map");
  }
  if (!(payload instanceof Uint8Array) || payload.length < 1) {
    return fail("malformed", "COSE_Sign1: expected a non-empty payload bstr");
  }
  if (!(signature instanceof Uint8Array) || signature.length !== 96) {
    return fail("malformed", "COSE_Sign1: expected a 96-byte ES384 signature");
  }
  let header: unknown;
  try {
    header = decodeCbor(protectedBytes, 64, "protected header");
  } catch (e) {
    return fail("malformed", (e as Error).message);
  }
  if (
    !(header instanceof Map) || header.size !== 1 || header.get(COSE_HEADER_ALG) !== COSE_ALG_ES384
  ) {
    return fail("malformed", "COSE_Sign1: expected the protected header {1: -35} (ES384)");
  }
  return { protectedBytes, payload, signature };
}

function parseCert(der: Uint8Array, what: string): ParsedCertificate {
  try {
    return parseCertificate(der);
  } catch (e) {
    return fail("malformed", `${what}: ${(e as Error).message}`);
  }
}

/**
 * Section 3.2.3 / RFC 5280 section 6.1: `cabundle[0]` must be one of the trusted roots (byte for
 * byte); the path root -> cabundle[1..] -> leaf must chain by name and signature, every
 * certificate valid at `now`, every CA certificate a CA (basicConstraints cA, keyCertSign when
 * keyUsage is present, pathLen respected), the leaf allowed to sign (digitalSignature when
 * keyUsage is present), and no unprocessed critical extension.
 * @returns the leaf certificate
 */
function verifyChain(p: Payload, roots: readonly Uint8Array[], now: Date): ParsedCertificate {
  if (!roots.some((r) => equalBytes(r, p.cabundle[0]))) {
    return fail("untrusted-chain", "cabundle[0] is not a trusted root certificate");
  }
  // path[0] is the root, path[last] the leaf.
  const path = [...p.cabundle.map((c, i) => parseCert(c, `cabundle[${i}]`))];
  path.push(parseCert(p.certificate, "certificate"));
  const leafAt = path.length - 1;
  const t = now.getTime();
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    const what = i === leafAt ? "the leaf certificate" : `cabundle[${i}]`;
    if (!(c.notBefore.getTime() <= t && t <= c.notAfter.getTime())) {
      fail(
        "expired",
        `${what} is valid ${c.notBefore.toISOString()}..${c.notAfter.toISOString()}, not at ${now.toISOString()}`,
      );
    }
    if (c.unknownCritical.length > 0) {
      fail(
        "untrusted-chain",
        `${what} has unprocessed critical extensions ${c.unknownCritical.join(", ")}`,
      );
    }
    const issuer = i === 0 ? c : path[i - 1];
    if (!equalBytes(c.issuer, issuer.subject)) {
      fail("untrusted-chain", `${what}: issuer name differs from the subject of its issuer`);
    }
    if (!signedBy(c, issuer.publicKey)) {
      fail("untrusted-chain", `${what}: certificate signature does not verify`);
    }
    if (i === leafAt) {
      if (c.basicConstraints?.ca) fail("untrusted-chain", "the leaf certificate is a CA");
      if (c.keyUsage && !c.keyUsage.has(KU_DIGITAL_SIGNATURE)) {
        fail("untrusted-chain", "the leaf certificate's keyUsage lacks digitalSignature");
      }
    } else {
      if (!c.basicConstraints?.ca) fail("not-ca", `${what} is not a CA (basicConstraints)`);
      if (c.keyUsage && !c.keyUsage.has(KU_KEY_CERT_SIGN)) {
        fail("not-ca", `${what}: keyUsage lacks keyCertSign`);
      }
      // CA certificates below this one and above the leaf: path[i+1 .. leafAt-1].
      const below = leafAt - 1 - i;
      const pathLen = c.basicConstraints?.pathLen;
      if (pathLen !== undefined && below > pathLen) {
        fail("not-ca", `${what} allows ${pathLen} CA certificates below it, got ${below}`);
      }
    }
  }
  return path[leafAt];
}

/**
 * Verifies a Nitro attestation document and returns its payload.
 * @param doc the document as the NSM returns it (COSE_Sign1, tagged or not)
 * @param opts trusted roots (default the AWS root), expected nonce and PCRs, time of validity
 * @returns the verified payload
 * @throws {AttestationError} with a `code` naming the first failed check (see the module doc)
 * @throws {TypeError} `doc` is not a Uint8Array
 * @example
 * ```ts
 * import { type AttestationDocument, verifyAttestationDocument } from "./attestation.ts";
 * // A document an enclave's NSM made for `nonce`, checked against the AWS root (the default).
 * async function check(doc: Uint8Array, nonce: Uint8Array): Promise<AttestationDocument> {
 *   return await verifyAttestationDocument(doc, { nonce });
 * }
 * ```
 */
export async function verifyAttestationDocument(
  doc: Uint8Array,
  opts: VerifyAttestationOptions = {},
): Promise<AttestationDocument> {
  if (!(doc instanceof Uint8Array)) throw new TypeError("attestation: expected a Uint8Array");
  await Promise.resolve(); // keep the API asynchronous (a Web Crypto backend may come)
  const { protectedBytes, payload, signature } = parseCoseSign1(doc);
  const p = parsePayload(payload);
  const leaf = verifyChain(p, opts.roots ?? [AWS_NITRO_ROOT_G1_DER], opts.now ?? new Date());
  // RFC 9052 section 4.4: Sig_structure = ["Signature1", protected, external_aad = h'', payload]
  const toBeSigned = encodeCbor(["Signature1", protectedBytes, new Uint8Array(0), payload]);
  let ok = false;
  try {
    ok = p384.verify(signature, toBeSigned, leaf.publicKey, { format: "compact", lowS: false });
  } catch {
    ok = false;
  }
  if (!ok) fail("bad-signature", "COSE signature does not verify under the leaf certificate");
  if (opts.nonce !== undefined && !(p.nonce !== undefined && equalBytes(p.nonce, opts.nonce))) {
    fail("nonce-mismatch", p.nonce === undefined ? "the document has no nonce" : "nonce differs");
  }
  for (const [index, value] of opts.expectedPcrs ?? []) {
    const got = p.pcrs.get(index);
    if (got === undefined || !equalBytes(got, value)) {
      fail("pcr-mismatch", `PCR${index} ${got === undefined ? "is absent" : "differs"}`);
    }
  }
  return p;
}
