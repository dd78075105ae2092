/**
 * CMS EnvelopedData as AWS KMS returns it in `CiphertextForRecipient` (Decrypt with a
 * `Recipient`): one KeyTransRecipientInfo with RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label)
 * wrapping an AES-256-CBC content key, BER with indefinite lengths allowed. Anything else is
 * refused with a typed error. {@linkcode sealEnvelopedData} makes the same shape (the tests' KMS
 * stand-in). Web Crypto + asn1js; runs under Deno and Node.
 *
 * Sources: RFC 5652 sections 3 (ContentInfo), 6.1 (EnvelopedData), 6.2.1 (KeyTransRecipientInfo),
 * 6.3 (content encryption); RFC 8017 appendix A.2.1 (RSAES-OAEP-params); RFC 3565 (AES-CBC in
 * CMS); RFC 5280 section 4.2.1.2 (key identifier method 1). KMS's form (EnvelopedData and
 * recipient version 2, subjectKeyIdentifier, constructed or primitive encryptedContent) as parsed
 * by aws-nitro-enclaves-sdk-c, source/cms.c.
 *
 * AES-CBC in CMS has no integrity: a failed RSA unwrap and a bad padding give the same
 * "decrypt-failed" error, and callers must authenticate the plaintext (the age key it carries is
 * checked by age's own MACs).
 *
 * @example
 * ```ts
 * import { openEnvelopedData, sealEnvelopedData } from "./cms.ts";
 * const rsa = { name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) };
 * const keys = await crypto.subtle.generateKey({ ...rsa, hash: "SHA-256" }, false, [
 *   "encrypt",
 *   "decrypt",
 * ]);
 * const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
 * // KMS seals its answer to the attested public key; here sealEnvelopedData does.
 * const ciphertextForRecipient = await sealEnvelopedData(new TextEncoder().encode("key"), spki);
 * const plaintext = await openEnvelopedData(ciphertextForRecipient, keys.privateKey);
 * console.assert(new TextDecoder().decode(plaintext) === "key");
 * ```
 * @module
 */

import * as asn1js from "asn1js";
import { concatBytes } from "@noble/hashes/utils.js";

/** Why an EnvelopedData was refused. */
export type CmsErrorCode =
  | "malformed" // not BER, not the ASN.1 shape of RFC 5652, trailing bytes, bad sizes
  | "unsupported" // a well-formed structure this reader does not accept (algorithm, version, ...)
  | "decrypt-failed"; // the key did not unwrap, or the content did not decrypt

/** A CMS structure was refused. */
export class CmsError extends Error {
  override readonly name = "CmsError";
  readonly code: CmsErrorCode;
  constructor(code: CmsErrorCode, message: string) {
    super(`cms: ${message}`);
    this.code = code;
  }
}

/** Largest input read (KMS plaintexts are at most 4 KiB). */
export const MAX_CMS_BYTES = 1 << 20;

const OID = {
  data: "1.2.840.113549.1.7.1",
  envelopedData: "1.2.840.113549.1.7.3",
  rsaesOaep: "1.2.840.113549.1.1.7",
  mgf1: "1.2.840.113549.1.1.8",
  pSpecified: "1.2.840.113549.1.1.9",
  sha256: "2.16.840.1.101.3.4.2.1",
  aes256Cbc: "2.16.840.1.101.3.4.1.42",
} as const;

const UNIVERSAL = 1;
const CONTEXT = 3;
const TAG = { integer: 2, octetString: 4, null: 5, oid: 6, sequence: 16, set: 17 } as const;
/** Nesting of constructed OCTET STRING chunks accepted. */
const MAX_CHUNK_DEPTH = 4;

type Node = asn1js.AsnType;

const fail = (code: CmsErrorCode, message: string): never => {
  throw new CmsError(code, message);
};

const is = (n: Node | undefined, cls: number, tag: number): n is Node =>
  n !== undefined && n.idBlock.tagClass === cls && n.idBlock.tagNumber === tag;

/** The children of a constructed node of the given tag. */
function children(n: Node | undefined, cls: number, tag: number, what: string): Node[] {
  if (!is(n, cls, tag) || !n.idBlock.isConstructed) return fail("malformed", `${what}: wrong tag`);
  return ((n as asn1js.Constructed).valueBlock.value ?? []) as Node[];
}

function oid(n: Node | undefined, what: string): string {
  if (!is(n, UNIVERSAL, TAG.oid)) {
    return fail("malformed", `${what}: expected an OBJECT IDENTIFIER`);
  }
  return (n as asn1js.ObjectIdentifier).valueBlock.toString();
}

function smallInt(n: Node | undefined, what: string): number {
  if (!is(n, UNIVERSAL, TAG.integer) || n.idBlock.isConstructed) {
    return fail("malformed", `${what}: expected an INTEGER`);
  }
  const v = (n as asn1js.Integer).valueBlock.valueHexView;
  if (v.length !== 1) return fail("unsupported", `${what}: unexpected value`);
  return v[0];
}

/** The bytes of an OCTET STRING (universal, or implicitly tagged), primitive or chunked. */
function octets(
  n: Node | undefined,
  cls: number,
  tag: number,
  what: string,
  depth = 0,
): Uint8Array {
  if (!is(n, cls, tag)) return fail("malformed", `${what}: expected an OCTET STRING`);
  if (!n.idBlock.isConstructed) {
    const vb = (n as asn1js.Primitive).valueBlock as { valueHexView?: Uint8Array };
    return vb.valueHexView?.slice() ?? fail("malformed", `${what}: no value`);
  }
  if (depth >= MAX_CHUNK_DEPTH) return fail("malformed", `${what}: chunks nested too deep`);
  // BER constructed form (RFC 5652 section 6.1 allows it): the concatenation of its chunks.
  const parts = ((n as asn1js.Constructed).valueBlock.value ?? []) as Node[];
  return concatBytes(...parts.map((p) => octets(p, UNIVERSAL, TAG.octetString, what, depth + 1)));
}

/** An AlgorithmIdentifier: its OID and optional parameters. */
function algorithm(n: Node | undefined, what: string): { id: string; params?: Node } {
  const [id, params, ...rest] = children(n, UNIVERSAL, TAG.sequence, what);
  if (rest.length > 0) fail("malformed", `${what}: extra fields`);
  return { id: oid(id, what), ...(params ? { params } : {}) };
}

/** SHA-256 as an AlgorithmIdentifier: parameters absent or NULL (RFC 5754 section 2). */
function isSha256(a: { id: string; params?: Node }): boolean {
  return a.id === OID.sha256 && (a.params === undefined || is(a.params, UNIVERSAL, TAG.null));
}

/** RFC 8017 A.2.1: only hashFunc SHA-256, MGF1 with SHA-256 and an empty label are accepted. */
function checkOaepParams(params: Node | undefined): void {
  // The defaults (absent parameters or fields) are SHA-1: unsupported.
  if (params === undefined) fail("unsupported", "RSAES-OAEP with default (SHA-1) parameters");
  const fields = children(params, UNIVERSAL, TAG.sequence, "RSAES-OAEP-params");
  const byTag = new Map<number, Node>();
  for (const f of fields) {
    const t = f.idBlock.tagNumber;
    if (f.idBlock.tagClass !== CONTEXT || t > 2 || byTag.has(t)) {
      fail("malformed", "RSAES-OAEP-params: unexpected field");
    }
    byTag.set(t, f);
  }
  const explicit = (t: number) => {
    const inner = children(byTag.get(t), CONTEXT, t, "RSAES-OAEP-params");
    return inner.length === 1 ? inner[0] : fail("malformed", "RSAES-OAEP-params: bad field");
  };
  if (!byTag.has(0) || !isSha256(algorithm(explicit(0), "hashFunc"))) {
    fail("unsupported", "RSAES-OAEP hash other than SHA-256");
  }
  const mgf = byTag.has(1) ? algorithm(explicit(1), "maskGenFunc") : undefined;
  if (mgf?.id !== OID.mgf1 || !isSha256(algorithm(mgf.params, "MGF1 hash"))) {
    fail("unsupported", "RSAES-OAEP mask generation other than MGF1-SHA-256");
  }
  if (byTag.has(2)) {
    const p = algorithm(explicit(2), "pSourceFunc");
    const label = p.id === OID.pSpecified
      ? octets(p.params, UNIVERSAL, TAG.octetString, "pSourceFunc")
      : fail("unsupported", "RSAES-OAEP pSource other than pSpecified");
    if (label.length !== 0) fail("unsupported", "RSAES-OAEP with a non-empty label");
  }
}

interface Envelope {
  encryptedKey: Uint8Array;
  iv: Uint8Array;
  ciphertext: Uint8Array;
}

/** RFC 5652 sections 3, 6.1, 6.2.1: the pieces of a single-KTRI, AES-256-CBC EnvelopedData. */
function parseEnvelope(ber: Uint8Array): Envelope {
  if (!(ber instanceof Uint8Array)) throw new TypeError("cms: expected a Uint8Array");
  if (ber.length === 0 || ber.length > MAX_CMS_BYTES) {
    fail("malformed", `expected 1..${MAX_CMS_BYTES} bytes, got ${ber.length}`);
  }
  let root: asn1js.FromBerResult;
  try {
    root = asn1js.fromBER(ber.slice());
  } catch (e) {
    return fail("malformed", `not BER (${(e as Error).message})`);
  }
  if (root.offset === -1 || root.result.error) fail("malformed", `not BER (${root.result.error})`);
  if (root.offset !== ber.length) fail("malformed", "trailing bytes after the ContentInfo");
  // ContentInfo ::= SEQUENCE { contentType, content [0] EXPLICIT }
  const [ctype, content, ...more] = children(root.result, UNIVERSAL, TAG.sequence, "ContentInfo");
  if (more.length > 0) fail("malformed", "ContentInfo: extra fields");
  if (oid(ctype, "contentType") !== OID.envelopedData) fail("unsupported", "not EnvelopedData");
  const wrapped = children(content, CONTEXT, 0, "ContentInfo.content");
  if (wrapped.length !== 1) fail("malformed", "ContentInfo.content: expected one value");
  const fields = children(wrapped[0], UNIVERSAL, TAG.sequence, "EnvelopedData");
  let i = 0;
  const version = smallInt(fields[i++], "EnvelopedData.version");
  if (version !== 0 && version !== 2) fail("unsupported", `EnvelopedData version ${version}`);
  if (is(fields[i], CONTEXT, 0)) i++; // originatorInfo: not used by key transport
  const recipients = children(fields[i++], UNIVERSAL, TAG.set, "recipientInfos");
  const eci = children(fields[i++], UNIVERSAL, TAG.sequence, "EncryptedContentInfo");
  if (is(fields[i], CONTEXT, 1)) i++; // unprotectedAttrs: ignored
  if (i !== fields.length) fail("malformed", "EnvelopedData: unexpected fields");

  if (recipients.length !== 1) {
    fail("unsupported", `expected one recipient, got ${recipients.length}`);
  }
  // Other RecipientInfo choices are [1]..[4]; KeyTransRecipientInfo is an untagged SEQUENCE.
  if (!is(recipients[0], UNIVERSAL, TAG.sequence)) {
    fail("unsupported", "recipient is not key transport");
  }
  const ktri = children(recipients[0], UNIVERSAL, TAG.sequence, "KeyTransRecipientInfo");
  if (ktri.length !== 4) fail("malformed", "KeyTransRecipientInfo: expected 4 fields");
  const kv = smallInt(ktri[0], "KeyTransRecipientInfo.version");
  // version 0 <-> issuerAndSerialNumber (SEQUENCE), 2 <-> subjectKeyIdentifier ([0] IMPLICIT)
  const ridOk = kv === 0
    ? is(ktri[1], UNIVERSAL, TAG.sequence)
    : kv === 2
    ? is(ktri[1], CONTEXT, 0)
    : false;
  if (!ridOk) fail("malformed", `KeyTransRecipientInfo: version ${kv} with a mismatched rid`);
  const kea = algorithm(ktri[2], "keyEncryptionAlgorithm");
  if (kea.id !== OID.rsaesOaep) {
    fail("unsupported", `key encryption ${kea.id}, expected RSAES-OAEP`);
  }
  checkOaepParams(kea.params);
  const encryptedKey = octets(ktri[3], UNIVERSAL, TAG.octetString, "encryptedKey");

  // EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm,
  //   encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
  if (oid(eci[0], "EncryptedContentInfo.contentType") !== OID.data) {
    fail("unsupported", "encrypted content type is not data");
  }
  const cea = algorithm(eci[1], "contentEncryptionAlgorithm");
  if (cea.id !== OID.aes256Cbc) {
    fail("unsupported", `content encryption ${cea.id}, expected AES-256-CBC`);
  }
  const iv = octets(cea.params, UNIVERSAL, TAG.octetString, "AES-CBC IV");
  if (iv.length !== 16) fail("malformed", `AES-CBC IV of ${iv.length} bytes`);
  if (eci.length < 3) fail("unsupported", "detached content (no encryptedContent)");
  if (eci.length > 3) fail("malformed", "EncryptedContentInfo: extra fields");
  const ciphertext = octets(eci[2], CONTEXT, 0, "encryptedContent");
  if (ciphertext.length === 0 || ciphertext.length % 16 !== 0) {
    fail("malformed", `AES-CBC ciphertext of ${ciphertext.length} bytes`);
  }
  return { encryptedKey, iv, ciphertext };
}

function assertOaepKey(key: CryptoKey, type: KeyType, usage: KeyUsage): void {
  const alg = key?.algorithm as RsaHashedKeyAlgorithm | undefined;
  if (
    !(key instanceof CryptoKey) || key.type !== type || alg?.name !== "RSA-OAEP" ||
    alg.hash?.name !== "SHA-256" || !key.usages.includes(usage)
  ) {
    throw new TypeError(`cms: expected an RSA-OAEP SHA-256 ${type} key usable to ${usage}`);
  }
}

/**
 * Opens a CMS EnvelopedData (KMS's `CiphertextForRecipient`).
 * @param ber the EnvelopedData, BER or DER
 * @param privateKey the recipient's RSA-OAEP / SHA-256 private key (Web Crypto, usage decrypt)
 * @returns the content plaintext
 * @throws {CmsError} "malformed", "unsupported" or "decrypt-failed"
 * @throws {TypeError} `ber` is not a Uint8Array or the key is not an RSA-OAEP SHA-256 private key
 */
export async function openEnvelopedData(
  ber: Uint8Array,
  privateKey: CryptoKey,
): Promise<Uint8Array> {
  assertOaepKey(privateKey, "private", "decrypt");
  const env = parseEnvelope(ber);
  let cek: Uint8Array | undefined;
  try {
    cek = new Uint8Array(
      await crypto.subtle.decrypt({ name: "RSA-OAEP" }, privateKey, env.encryptedKey.slice()),
    );
    if (cek.length !== 32) throw new Error("content key length");
    const key = await crypto.subtle.importKey("raw", cek.slice(), "AES-CBC", false, ["decrypt"]);
    const iv = env.iv.slice();
    return new Uint8Array(
      await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, env.ciphertext.slice()),
    );
  } catch {
    // One error for unwrap, key length and padding failures (no padding oracle by message).
    return fail("decrypt-failed", "the content could not be decrypted with this key");
  } finally {
    cek?.fill(0);
  }
}

/** An AlgorithmIdentifier (RFC 5280 section 4.1.1.2). */
const algId = (id: string, params?: asn1js.AsnType) =>
  new asn1js.Sequence({
    value: [new asn1js.ObjectIdentifier({ value: id }), ...(params ? [params] : [])],
  });

/** Indefinite-length constructed value, as KMS writes its outer layers. */
const indefinite = <T extends asn1js.AsnType>(
  make: (p: { lenBlock: { isIndefiniteForm: true } }) => T,
) => make({ lenBlock: { isIndefiniteForm: true } });

/**
 * Seals `plaintext` to an RSA public key in KMS's form: EnvelopedData version 2, one
 * KeyTransRecipientInfo (version 2, subjectKeyIdentifier = SHA-1 of the key, RFC 5280 method 1)
 * with RSAES-OAEP SHA-256 / MGF1-SHA-256, AES-256-CBC content in 1 KiB chunks of a constructed
 * OCTET STRING, indefinite lengths outside.
 * @param plaintext the content
 * @param recipientSpki the recipient's RSA public key, DER SubjectPublicKeyInfo
 * @returns the BER ContentInfo
 * @throws {TypeError} not an RSA SubjectPublicKeyInfo
 */
export async function sealEnvelopedData(
  plaintext: Uint8Array,
  recipientSpki: Uint8Array,
): Promise<Uint8Array> {
  if (!(plaintext instanceof Uint8Array) || !(recipientSpki instanceof Uint8Array)) {
    throw new TypeError("cms: expected Uint8Arrays");
  }
  let pub: CryptoKey;
  try {
    pub = await crypto.subtle.importKey(
      "spki",
      recipientSpki.slice(),
      { name: "RSA-OAEP", hash: "SHA-256" },
      false,
      [
        "encrypt",
      ],
    );
  } catch {
    throw new TypeError("cms: recipientSpki is not an RSA SubjectPublicKeyInfo");
  }
  // subjectPublicKey BIT STRING contents of the SPKI, for the key identifier.
  const spki = asn1js.fromBER(recipientSpki.slice()).result as asn1js.Sequence;
  const bits = (spki.valueBlock.value[1] as asn1js.BitString).valueBlock.valueHexView;
  const ski = new Uint8Array(await crypto.subtle.digest("SHA-1", bits.slice()));
  const cek = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(16));
  try {
    const key = await crypto.subtle.importKey("raw", cek, "AES-CBC", false, ["encrypt"]);
    const ct = new Uint8Array(
      await crypto.subtle.encrypt({ name: "AES-CBC", iv }, key, plaintext.slice()),
    );
    const encryptedKey = new Uint8Array(
      await crypto.subtle.encrypt({ name: "RSA-OAEP" }, pub, cek),
    );
    const oaepParams = new asn1js.Sequence({
      value: [
        new asn1js.Constructed({
          idBlock: { tagClass: CONTEXT, tagNumber: 0 },
          value: [algId(OID.sha256)],
        }),
        new asn1js.Constructed({
          idBlock: { tagClass: CONTEXT, tagNumber: 1 },
          value: [algId(OID.mgf1, algId(OID.sha256))],
        }),
      ],
    });
    const chunks: asn1js.OctetString[] = [];
    for (let at = 0; at < ct.length; at += 1024) {
      chunks.push(new asn1js.OctetString({ valueHex: ct.subarray(at, at + 1024).slice() }));
    }
    const ktri = new asn1js.Sequence({
      value: [
        new asn1js.Integer({ value: 2 }),
        new asn1js.Primitive({ idBlock: { tagClass: CONTEXT, tagNumber: 0 }, valueHex: ski }),
        algId(OID.rsaesOaep, oaepParams),
        new asn1js.OctetString({ valueHex: encryptedKey }),
      ],
    });
    const eci = indefinite((p) =>
      new asn1js.Sequence({
        ...p,
        value: [
          new asn1js.ObjectIdentifier({ value: OID.data }),
          algId(OID.aes256Cbc, new asn1js.OctetString({ valueHex: iv })),
          indefinite((q) =>
            new asn1js.Constructed({
              ...q,
              idBlock: { tagClass: CONTEXT, tagNumber: 0 },
              value: chunks,
            })
          ),
        ],
      })
    );
    const envelopedData = indefinite((p) =>
      new asn1js.Sequence({
        ...p,
        value: [new asn1js.Integer({ value: 2 }), new asn1js.Set({ value: [ktri] }), eci],
      })
    );
    const contentInfo = indefinite((p) =>
      new asn1js.Sequence({
        ...p,
        value: [
          new asn1js.ObjectIdentifier({ value: OID.envelopedData }),
          indefinite((q) =>
            new asn1js.Constructed({
              ...q,
              idBlock: { tagClass: CONTEXT, tagNumber: 0 },
              value: [envelopedData],
            })
          ),
        ],
      })
    );
    return new Uint8Array(contentInfo.toBER(false));
  } finally {
    cek.fill(0);
  }
}
