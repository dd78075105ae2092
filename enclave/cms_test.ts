import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as asn1js from "asn1js";
import { type CmsErrorCode, MAX_CMS_BYTES, openEnvelopedData, sealEnvelopedData } from "./cms.ts";

// Interop with the `openssl cms` CLI (a system peer of the tests, as for the demo).
let dir = "";
let privateKey: CryptoKey;
let spki: Uint8Array;
let otherKey: CryptoKey;

function openssl(args: string[], input?: Uint8Array): Uint8Array {
  const r = spawnSync("openssl", args, {
    cwd: dir,
    ...(input ? { input } : {}),
    maxBuffer: 1 << 24,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout);
}

const importPkcs8 = (der: Uint8Array) =>
  crypto.subtle.importKey("pkcs8", der.slice(), { name: "RSA-OAEP", hash: "SHA-256" }, false, [
    "decrypt",
  ]);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "cms-test-"));
  openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "key.pem",
    "-out",
    "cert.pem",
    "-subj",
    "/CN=enclave",
    "-days",
    "1",
  ]);
  privateKey = await importPkcs8(
    openssl(["pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER"]),
  );
  spki = openssl(["pkey", "-in", "key.pem", "-pubout", "-outform", "DER"]);
  const other = (await crypto.subtle.generateKey(
    {
      name: "RSA-OAEP",
      modulusLength: 2048,
      publicExponent: Uint8Array.of(1, 0, 1),
      hash: "SHA-256",
    },
    true,
    ["encrypt", "decrypt"],
  )) as CryptoKeyPair;
  otherKey = other.privateKey;
});

after(() => rmSync(dir, { recursive: true, force: true }));

function cmsError(code: CmsErrorCode) {
  return (e: Error & { code?: string }) => {
    assert.equal(e.name, "CmsError", e.message);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

const text = (s: string) => new TextEncoder().encode(s);

test("openssl cms -encrypt (RSA-OAEP SHA-256, AES-256-CBC) opens, DER and streamed BER", async () => {
  for (const size of [0, 1, 15, 16, 17, 4096, 70_000]) {
    const plaintext = Uint8Array.from({ length: size }, (_, i) => (i * 131 + size) & 0xff);
    writeFileSync(join(dir, "pt"), plaintext);
    for (const stream of [[], ["-stream"]]) {
      const ber = openssl([
        "cms",
        "-encrypt",
        "-binary",
        ...stream,
        "-in",
        "pt",
        "-recip",
        "cert.pem",
        "-keyopt",
        "rsa_padding_mode:oaep",
        "-keyopt",
        "rsa_oaep_md:sha256",
        "-aes-256-cbc",
        "-outform",
        "DER",
      ]);
      if (stream.length > 0) assert.equal(ber[1], 0x80, "streamed output uses indefinite lengths");
      assert.deepEqual(await openEnvelopedData(ber, privateKey), plaintext, `${size} ${stream}`);
    }
  }
});

test("sealEnvelopedData output opens with openssl cms -decrypt (with and without -recip)", async () => {
  for (const size of [0, 5, 1024, 3000]) {
    const plaintext = crypto.getRandomValues(new Uint8Array(size));
    const ber = await sealEnvelopedData(plaintext, spki);
    assert.equal(ber[1], 0x80, "indefinite outer length, as KMS writes it");
    writeFileSync(join(dir, "sealed.ber"), ber);
    const a = openssl([
      "cms",
      "-decrypt",
      "-binary",
      "-inform",
      "DER",
      "-in",
      "sealed.ber",
      "-inkey",
      "key.pem",
    ]);
    assert.deepEqual(a, plaintext);
    const b = openssl([
      "cms",
      "-decrypt",
      "-binary",
      "-inform",
      "DER",
      "-in",
      "sealed.ber",
      "-inkey",
      "key.pem",
      "-recip",
      "cert.pem",
    ]);
    assert.deepEqual(b, plaintext);
    assert.deepEqual(await openEnvelopedData(ber, privateKey), plaintext);
  }
  // openssl's own parse of the structure names what KMS sends: version 2, SKI, rsaesOaep.
  const dump = new TextDecoder().decode(
    openssl(["asn1parse", "-inform", "DER", "-in", "sealed.ber"]),
  );
  assert.match(dump, /rsaesOaep/);
  assert.match(dump, /aes-256-cbc/);
  assert.match(dump, /INTEGER +:02/);
});

test("a wrong key or a tampered key or content is decrypt-failed", async () => {
  const ber = await sealEnvelopedData(text("secret age key"), spki);
  await assert.rejects(openEnvelopedData(ber, otherKey), cmsError("decrypt-failed"));
  const parts = await envelopeParts(text("0123456789abcdef0123456789abcdef"));
  await openEnvelopedData(build(parts), privateKey); // the builder below makes a valid one
  const badKey = parts.encryptedKey.slice();
  badKey[5] ^= 1;
  await assert.rejects(
    openEnvelopedData(build({ ...parts, encryptedKey: badKey }), privateKey),
    cmsError("decrypt-failed"),
  );
  // Plaintext of two zero blocks: without the padding block, the last byte is 0: bad padding.
  const zeros = await envelopeParts(new Uint8Array(32));
  await assert.rejects(
    openEnvelopedData(
      build({ ...zeros, ciphertext: zeros.ciphertext.subarray(0, 32) }),
      privateKey,
    ),
    cmsError("decrypt-failed"),
  );
  // A content key of 16 bytes (AES-128) wrapped in place of 32: refused, same error.
  const short = await envelopeParts(text("x"), 16);
  await assert.rejects(openEnvelopedData(build(short), privateKey), cmsError("decrypt-failed"));
});

test("the private key must be an RSA-OAEP SHA-256 decryption key", async () => {
  const ber = await sealEnvelopedData(text("x"), spki);
  const sha1 = await crypto.subtle.generateKey(
    {
      name: "RSA-OAEP",
      modulusLength: 2048,
      publicExponent: Uint8Array.of(1, 0, 1),
      hash: "SHA-1",
    },
    false,
    ["decrypt", "encrypt"],
  ) as CryptoKeyPair;
  const aes = await crypto.subtle.generateKey({ name: "AES-CBC", length: 256 }, false, ["decrypt"]);
  for (
    const k of [sha1.privateKey, sha1.publicKey, aes as CryptoKey, "key" as unknown as CryptoKey]
  ) {
    await assert.rejects(openEnvelopedData(ber, k), TypeError);
  }
  await assert.rejects(openEnvelopedData("x" as unknown as Uint8Array, privateKey), TypeError);
  await assert.rejects(sealEnvelopedData(text("x"), new Uint8Array(10)), TypeError);
});

// ---- a builder of EnvelopedData variants (test side, asn1js), for the hostile table ----

interface Parts {
  encryptedKey: Uint8Array;
  iv: Uint8Array;
  ciphertext: Uint8Array;
}

async function envelopeParts(plaintext: Uint8Array, keyBytes = 32): Promise<Parts> {
  const cek = crypto.getRandomValues(new Uint8Array(keyBytes));
  const iv = crypto.getRandomValues(new Uint8Array(16));
  const pub = await crypto.subtle.importKey(
    "spki",
    spki.slice(),
    { name: "RSA-OAEP", hash: "SHA-256" },
    false,
    [
      "encrypt",
    ],
  );
  const k = await crypto.subtle.importKey("raw", cek, "AES-CBC", false, ["encrypt"]);
  return {
    encryptedKey: new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, pub, cek)),
    iv,
    ciphertext: new Uint8Array(
      await crypto.subtle.encrypt({ name: "AES-CBC", iv }, k, plaintext.slice()),
    ),
  };
}

const oidNode = (v: string) => new asn1js.ObjectIdentifier({ value: v });
const alg = (id: string, ...params: asn1js.AsnType[]) =>
  new asn1js.Sequence({ value: [oidNode(id), ...params] });
const ctx = (n: number, ...value: asn1js.AsnType[]) =>
  new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: n }, value });
const octet = (b: Uint8Array) => new asn1js.OctetString({ valueHex: b.slice() });
const SHA256 = "2.16.840.1.101.3.4.2.1";
const SHA1 = "1.3.14.3.2.26";
const MGF1 = "1.2.840.113549.1.1.8";
const OAEP = "1.2.840.113549.1.1.7";
const oaep = (hash = SHA256, mgfHash = SHA256, extra: asn1js.AsnType[] = []) =>
  alg(
    OAEP,
    new asn1js.Sequence({ value: [ctx(0, alg(hash)), ctx(1, alg(MGF1, alg(mgfHash))), ...extra] }),
  );

interface Variant {
  contentType?: string;
  version?: number;
  recipients?: asn1js.AsnType[];
  ktriVersion?: number;
  rid?: asn1js.AsnType;
  kea?: asn1js.AsnType;
  eciType?: string;
  cea?: asn1js.AsnType;
  content?: asn1js.AsnType | null;
  extra?: asn1js.AsnType[];
}

function build(p: Parts, v: Variant = {}): Uint8Array {
  const ktri = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: v.ktriVersion ?? 2 }),
      v.rid ??
        new asn1js.Primitive({
          idBlock: { tagClass: 3, tagNumber: 0 },
          valueHex: new Uint8Array(20),
        }),
      v.kea ?? oaep(),
      octet(p.encryptedKey),
    ],
  });
  const content = v.content === null ? [] : [
    v.content ??
      new asn1js.Primitive({
        idBlock: { tagClass: 3, tagNumber: 0 },
        valueHex: p.ciphertext.slice(),
      }),
  ];
  const eci = new asn1js.Sequence({
    value: [
      oidNode(v.eciType ?? "1.2.840.113549.1.7.1"),
      v.cea ?? alg("2.16.840.1.101.3.4.1.42", octet(p.iv)),
      ...content,
    ],
  });
  const ed = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: v.version ?? 2 }),
      new asn1js.Set({ value: v.recipients ?? [ktri] }),
      eci,
      ...(v.extra ?? []),
    ],
  });
  const ci = new asn1js.Sequence({
    value: [oidNode(v.contentType ?? "1.2.840.113549.1.7.3"), ctx(0, ed)],
  });
  return new Uint8Array(ci.toBER(false));
}

test("the builder's defaults and accepted variants open (DER, chunked content, version 0 rid, pSource)", async () => {
  const plaintext = text("kms plaintext");
  const p = await envelopeParts(plaintext);
  const issuerSerial = new asn1js.Sequence({
    value: [new asn1js.Sequence(), new asn1js.Integer({ value: 7 })],
  });
  const chunked = ctx(0, octet(p.ciphertext.subarray(0, 16)), octet(p.ciphertext.subarray(16)));
  const pEmpty = ctx(2, alg("1.2.840.113549.1.1.9", octet(new Uint8Array(0))));
  for (
    const v of [
      {},
      { version: 0, ktriVersion: 0, rid: issuerSerial },
      { content: chunked },
      { kea: oaep(SHA256, SHA256, [pEmpty]) },
      {
        kea: alg(
          OAEP,
          new asn1js.Sequence({
            value: [
              ctx(0, alg(SHA256, new asn1js.Null())),
              ctx(1, alg(MGF1, alg(SHA256, new asn1js.Null()))),
            ],
          }),
        ),
      },
      { extra: [ctx(1, new asn1js.Sequence())] }, // unprotectedAttrs, ignored
    ] as Variant[]
  ) {
    assert.deepEqual(
      await openEnvelopedData(build(p, v), privateKey),
      plaintext,
      JSON.stringify(Object.keys(v)),
    );
  }
});

test("hostile EnvelopedData is refused as malformed or unsupported, before any decryption", async () => {
  const p = await envelopeParts(text("kms plaintext"));
  const good = build(p);
  const ktri = (kea: asn1js.AsnType) =>
    new asn1js.Sequence({
      value: [
        new asn1js.Integer({ value: 2 }),
        new asn1js.Primitive({
          idBlock: { tagClass: 3, tagNumber: 0 },
          valueHex: new Uint8Array(20),
        }),
        kea,
        octet(p.encryptedKey),
      ],
    });
  const deep = (n: number): asn1js.AsnType =>
    n === 0
      ? octet(p.ciphertext)
      : new asn1js.OctetString({ isConstructed: true, value: [deep(n - 1)] } as never);
  const cases: [string, CmsErrorCode, Uint8Array][] = [
    ["empty", "malformed", new Uint8Array(0)],
    ["too long", "malformed", new Uint8Array(MAX_CMS_BYTES + 1)],
    ["not BER", "malformed", Uint8Array.of(0xff, 0xff, 0xff)],
    ["truncated", "malformed", good.subarray(0, good.length - 3)],
    ["trailing bytes", "malformed", Uint8Array.of(...good, 0, 0)],
    ["an OCTET STRING", "malformed", Uint8Array.of(0x04, 0x01, 0x00)],
    ["signedData", "unsupported", build(p, { contentType: "1.2.840.113549.1.7.2" })],
    ["version 3", "unsupported", build(p, { version: 3 })],
    ["no recipient", "unsupported", build(p, { recipients: [] })],
    ["two recipients", "unsupported", build(p, { recipients: [ktri(oaep()), ktri(oaep())] })],
    [
      "kari [1]",
      "unsupported",
      build(p, { recipients: [ctx(1, new asn1js.Integer({ value: 3 }))] }),
    ],
    [
      "ktri version 2 with issuerAndSerialNumber",
      "malformed",
      build(p, { rid: new asn1js.Sequence() }),
    ],
    ["ktri version 0 with SKI", "malformed", build(p, { ktriVersion: 0 })],
    ["ktri version 1", "malformed", build(p, { ktriVersion: 1 })],
    [
      "PKCS#1 v1.5",
      "unsupported",
      build(p, { kea: alg("1.2.840.113549.1.1.1", new asn1js.Null()) }),
    ],
    ["OAEP defaults (SHA-1)", "unsupported", build(p, { kea: alg(OAEP) })],
    [
      "OAEP empty params (SHA-1)",
      "unsupported",
      build(p, { kea: alg(OAEP, new asn1js.Sequence()) }),
    ],
    ["OAEP SHA-1", "unsupported", build(p, { kea: oaep(SHA1, SHA1) })],
    ["OAEP MGF1-SHA-1", "unsupported", build(p, { kea: oaep(SHA256, SHA1) })],
    [
      "OAEP hash only",
      "unsupported",
      build(p, { kea: alg(OAEP, new asn1js.Sequence({ value: [ctx(0, alg(SHA256))] })) }),
    ],
    [
      "OAEP label",
      "unsupported",
      build(p, {
        kea: oaep(SHA256, SHA256, [ctx(2, alg("1.2.840.113549.1.1.9", octet(text("L"))))]),
      }),
    ],
    [
      "OAEP field [3]",
      "malformed",
      build(p, { kea: oaep(SHA256, SHA256, [ctx(3, new asn1js.Null())]) }),
    ],
    [
      "OAEP hash with INTEGER parameters",
      "unsupported",
      build(p, {
        kea: alg(
          OAEP,
          new asn1js.Sequence({
            value: [
              ctx(0, alg(SHA256, new asn1js.Integer({ value: 1 }))),
              ctx(1, alg(MGF1, alg(SHA256))),
            ],
          }),
        ),
      }),
    ],
    ["content type signedData", "unsupported", build(p, { eciType: "1.2.840.113549.1.7.2" })],
    ["AES-128-CBC", "unsupported", build(p, { cea: alg("2.16.840.1.101.3.4.1.2", octet(p.iv)) })],
    ["AES-256-GCM", "unsupported", build(p, { cea: alg("2.16.840.1.101.3.4.1.46", octet(p.iv)) })],
    [
      "IV of 8 bytes",
      "malformed",
      build(p, { cea: alg("2.16.840.1.101.3.4.1.42", octet(p.iv.subarray(0, 8))) }),
    ],
    ["IV missing", "malformed", build(p, { cea: alg("2.16.840.1.101.3.4.1.42") })],
    ["detached content", "unsupported", build(p, { content: null })],
    [
      "ciphertext of 15 bytes",
      "malformed",
      build({ ...p, ciphertext: p.ciphertext.subarray(0, 15) }),
    ],
    ["empty ciphertext", "malformed", build({ ...p, ciphertext: new Uint8Array(0) })],
    [
      "content chunk not an OCTET STRING",
      "malformed",
      build(p, { content: ctx(0, new asn1js.Integer({ value: 1 })) }),
    ],
    ["chunks nested 5 deep", "malformed", build(p, { content: ctx(0, deep(5)) })],
    [
      "extra EnvelopedData field",
      "malformed",
      build(p, { extra: [new asn1js.Integer({ value: 1 })] }),
    ],
  ];
  for (const [what, code, ber] of cases) {
    await assert.rejects(openEnvelopedData(ber, privateKey), cmsError(code), what);
  }
  // A KMS-style answer carrying the wrong key's ciphertext never returns bytes.
  assert.equal((await openEnvelopedData(good, privateKey)).length, 13);
});
