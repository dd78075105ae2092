import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { decode, encode } from "cborg";
import {
  type AttestationErrorCode,
  AWS_NITRO_ROOT_G1_DER,
  AWS_NITRO_ROOT_G1_SHA256,
  MAX_DOCUMENT_BYTES,
  verifyAttestationDocument,
  type VerifyAttestationOptions,
} from "./attestation.ts";
import { parseCertificate } from "./_x509.ts";
import {
  attestationPayload,
  createFakeNsm,
  createTestPki,
  signAttestationPayload,
  type TestPki,
  type TestPkiOptions,
} from "./testing/fake_nsm.ts";

const NOW = new Date("2026-06-01T12:00:00Z");
const PCRS = new Map([
  [0, new Uint8Array(48).fill(0xa0)],
  [1, new Uint8Array(48).fill(0xa1)],
  [2, new Uint8Array(48).fill(0xa2)],
]);
const NONCE = Uint8Array.from({ length: 32 }, (_, i) => i);

/**
 * A public attestation document of a debug-mode enclave (PCR0..2 all zero) in us-east-1, made
 * 2024-09-17T00:47:59.695Z, as published in a public repository's test; chain: AWS root G1 ->
 * three AWS intermediates -> leaf. Verifies against the pinned AWS root at its own timestamp.
 */
const AWS_DOC = new Uint8Array(
  readFileSync(new URL("./testdata/aws_attestation_debug_2024-09-17.cbor", import.meta.url)),
);
const AWS_DOC_TIME = new Date(1726534079695);

async function rejects(
  doc: Uint8Array | Promise<Uint8Array>,
  code: AttestationErrorCode,
  opts: VerifyAttestationOptions,
): Promise<void> {
  await assert.rejects(
    verifyAttestationDocument(await doc, opts),
    (e: Error & { code?: string }) => {
      assert.equal(e.name, "AttestationError", e.message);
      assert.equal(e.code, code, e.message);
      return true;
    },
  );
}

const pkiCache = new Map<string, Promise<TestPki>>();
const pki = (opts: TestPkiOptions = {}, key = JSON.stringify(opts)) => {
  if (!pkiCache.has(key)) pkiCache.set(key, createTestPki({ now: NOW, ...opts }));
  return pkiCache.get(key)!;
};

/** A document signed by the leaf of `p`, its payload edited by `edit`. */
function forge(p: TestPki, edit: (m: Map<string, unknown>) => void = () => {}) {
  const m = attestationPayload(p, {
    pcrs: PCRS,
    now: NOW,
    nonce: NONCE,
    publicKey: Uint8Array.of(1, 2, 3),
  });
  edit(m);
  return signAttestationPayload(p.leaf.privateKey, m);
}

const opts = (p: TestPki): VerifyAttestationOptions => ({
  roots: [p.root.der],
  now: NOW,
});

test("the pinned AWS Nitro root G1 has the SHA-256 fingerprint AWS documents", () => {
  assert.equal(bytesToHex(sha256(AWS_NITRO_ROOT_G1_DER)), AWS_NITRO_ROOT_G1_SHA256);
  const root = parseCertificate(AWS_NITRO_ROOT_G1_DER);
  assert.equal(root.notBefore.toISOString(), "2019-10-28T13:28:05.000Z");
  assert.equal(root.notAfter.toISOString(), "2049-10-28T14:28:05.000Z");
  assert.deepEqual(root.basicConstraints, { ca: true });
});

test("a real AWS attestation document verifies against the pinned AWS root at its timestamp", async () => {
  const doc = await verifyAttestationDocument(AWS_DOC, { now: AWS_DOC_TIME });
  assert.equal(doc.moduleId, "i-0bbf1bfe232b8c2ce-enc0191fc27458c1d41");
  assert.equal(doc.digest, "SHA384");
  assert.equal(doc.timestamp, AWS_DOC_TIME.getTime());
  assert.equal(doc.cabundle.length, 4);
  assert.deepEqual(doc.cabundle[0], AWS_NITRO_ROOT_G1_DER);
  assert.equal(doc.pcrs.size, 16);
  // Debug mode: PCR0, 1 and 2 are zero.
  for (const i of [0, 1, 2]) assert.deepEqual(doc.pcrs.get(i), new Uint8Array(48));
  assert.equal(bytesToHex(doc.nonce!), "00".repeat(19) + "01");
  assert.equal(new TextDecoder().decode(doc.publicKey), "dummy");
  await verifyAttestationDocument(AWS_DOC, {
    now: AWS_DOC_TIME,
    nonce: doc.nonce!,
    expectedPcrs: new Map([[0, new Uint8Array(48)]]),
  });
  // Tagged (CBOR tag 18) form of the same document.
  await verifyAttestationDocument(Uint8Array.of(0xd2, ...AWS_DOC), { now: AWS_DOC_TIME });
});

test("the real AWS document is refused after its leaf expired, under a test root, or tampered", async () => {
  await rejects(AWS_DOC, "expired", {});
  await rejects(AWS_DOC, "untrusted-chain", { now: AWS_DOC_TIME, roots: [(await pki()).root.der] });
  await rejects(AWS_DOC, "pcr-mismatch", {
    now: AWS_DOC_TIME,
    expectedPcrs: new Map([[0, new Uint8Array(48).fill(1)]]),
  });
  // A byte of module_id inside the payload: the payload still parses, the signature fails.
  const tampered = AWS_DOC.slice();
  const at = new TextDecoder("latin1").decode(AWS_DOC).indexOf("i-0bbf1bfe");
  tampered[at + 2] ^= 1;
  await rejects(tampered, "bad-signature", { now: AWS_DOC_TIME });
});

test("a fake NSM's document verifies under its test root with nonce and PCRs", async () => {
  const { nsm, rootDer } = await createFakeNsm({ pcrs: PCRS, now: NOW });
  const publicKey = new Uint8Array(294).fill(7);
  const userData = new TextEncoder().encode("hello");
  const raw = await nsm.attest({ nonce: NONCE, publicKey, userData });
  const doc = await verifyAttestationDocument(raw, {
    roots: [rootDer],
    now: NOW,
    nonce: NONCE,
    expectedPcrs: PCRS,
  });
  assert.equal(doc.timestamp, NOW.getTime());
  assert.deepEqual(doc.nonce, NONCE);
  assert.deepEqual(doc.publicKey, publicKey);
  assert.deepEqual(doc.userData, userData);
  assert.deepEqual([...doc.pcrs.keys()], [0, 1, 2]);
  // Not trusted by default (AWS root), nor under another test root.
  await rejects(raw, "untrusted-chain", { now: NOW });
  await rejects(raw, "untrusted-chain", { now: NOW, roots: [(await pki()).root.der] });
  // Absent optional fields come back absent.
  const bare = await verifyAttestationDocument(await nsm.attest({}), {
    roots: [rootDer],
    now: NOW,
  });
  assert.equal(bare.nonce, undefined);
  assert.equal(bare.publicKey, undefined);
  assert.equal(bare.userData, undefined);
  nsm.close();
});

test("the COSE signature must be the leaf's over these exact bytes", async () => {
  const p = await pki();
  const good = await forge(p);
  await verifyAttestationDocument(good, opts(p));
  // Payload tampered after signing: re-encode the COSE array around an edited payload.
  const [ph, uh, payload, sig] = decode(good, { useMaps: true }) as [
    Uint8Array,
    unknown,
    Uint8Array,
    Uint8Array,
  ];
  const m = decode(payload, { useMaps: true }) as Map<string, unknown>;
  m.set("timestamp", NOW.getTime() + 1);
  await rejects(encode([ph, uh, encode(m), sig]), "bad-signature", opts(p));
  const flipped = sig.slice();
  flipped[10] ^= 0x40;
  await rejects(encode([ph, uh, payload, flipped]), "bad-signature", opts(p));
  // Signed by the intermediate's key instead of the leaf's.
  const m2 = attestationPayload(p, { pcrs: PCRS, now: NOW });
  await rejects(
    signAttestationPayload(p.intermediate.privateKey, m2),
    "bad-signature",
    opts(p),
  );
});

test("the chain: wrong root, broken link, validity, CA constraints", async () => {
  const p = await pki();
  const other = await pki({}, "other");
  // cabundle[0] is not a trusted root.
  await rejects(forge(p), "untrusted-chain", { roots: [other.root.der], now: NOW });
  await rejects(forge(p), "untrusted-chain", { now: NOW }); // default: the AWS root
  // The intermediate was not signed by the root.
  const broken = await createTestPki({ now: NOW, intermediateSignedBy: other.root.privateKey });
  await rejects(forge(broken), "untrusted-chain", opts(broken));
  // Signed by the root's key, but naming another issuer.
  const renamed = await createTestPki({
    now: NOW,
    intermediate: { issuerCn: "other.nitro-enclaves" },
  });
  await rejects(forge(renamed), "untrusted-chain", opts(renamed));
  // The cabundle's intermediate swapped for another PKI's (names match, signature does not).
  await rejects(
    forge(p, (m) => m.set("cabundle", [p.root.der, other.intermediate.der])),
    "untrusted-chain",
    opts(p),
  );
  // Validity at `now`: leaf 3 hours around NOW, intermediate 30 days.
  await rejects(forge(p), "expired", {
    roots: [p.root.der],
    now: new Date(NOW.getTime() + 4 * 3600_000),
  });
  await rejects(forge(p), "expired", {
    roots: [p.root.der],
    now: new Date(NOW.getTime() - 2 * 3600_000),
  });
  const oldInter = await createTestPki({
    now: NOW,
    intermediate: { notAfter: new Date(NOW.getTime() - 1000) },
  });
  await rejects(forge(oldInter), "expired", opts(oldInter));
  const oldRoot = await createTestPki({
    now: NOW,
    root: { notAfter: new Date(NOW.getTime() - 1000) },
  });
  await rejects(forge(oldRoot), "expired", opts(oldRoot));
  // CA constraints.
  const notCa = await createTestPki({ now: NOW, intermediate: { ca: false } });
  await rejects(forge(notCa), "not-ca", opts(notCa));
  const noBc = await createTestPki({ now: NOW, intermediate: { noBasicConstraints: true } });
  await rejects(forge(noBc), "not-ca", opts(noBc));
  const rootNotCa = await createTestPki({ now: NOW, root: { ca: false } });
  await rejects(forge(rootNotCa), "not-ca", opts(rootNotCa));
  const shortPath = await createTestPki({ now: NOW, root: { pathLen: 0 } });
  await rejects(forge(shortPath), "not-ca", opts(shortPath));
  const noCertSign = await createTestPki({ now: NOW, intermediate: { keyUsage: [0] } });
  await rejects(forge(noCertSign), "not-ca", opts(noCertSign));
  const leafNoSign = await createTestPki({ now: NOW, leaf: { keyUsage: [5] } });
  await rejects(forge(leafNoSign), "untrusted-chain", opts(leafNoSign));
  const critical = await createTestPki({
    now: NOW,
    intermediate: { unknownCriticalExtension: true },
  });
  await rejects(forge(critical), "untrusted-chain", opts(critical));
  const leafCa = await createTestPki({ now: NOW, leaf: { ca: true } });
  await rejects(forge(leafCa), "untrusted-chain", opts(leafCa));
  // The leaf certificate replaced by the intermediate's (a CA, not signed by itself).
  await rejects(
    forge(p, (m) => m.set("certificate", p.intermediate.der)),
    "untrusted-chain",
    opts(p),
  );
});

test("every mandatory payload field is required (absent or null)", async () => {
  const p = await pki();
  for (const k of ["module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"]) {
    await rejects(forge(p, (m) => m.delete(k)), "missing-field", opts(p));
    await rejects(forge(p, (m) => m.set(k, null)), "missing-field", opts(p));
  }
  // Optional fields may be absent.
  for (const k of ["public_key", "user_data", "nonce"]) {
    await verifyAttestationDocument(await forge(p, (m) => m.delete(k)), opts(p));
  }
});

test("nonce and PCRs are checked when the caller gives them", async () => {
  const p = await pki();
  const o = opts(p);
  const doc = await forge(p);
  await verifyAttestationDocument(doc, { ...o, nonce: NONCE, expectedPcrs: PCRS });
  await rejects(doc, "nonce-mismatch", { ...o, nonce: new Uint8Array(32) });
  await rejects(doc, "nonce-mismatch", { ...o, nonce: NONCE.subarray(1) });
  await rejects(forge(p, (m) => m.set("nonce", null)), "nonce-mismatch", { ...o, nonce: NONCE });
  await rejects(doc, "pcr-mismatch", { ...o, expectedPcrs: new Map([[0, new Uint8Array(48)]]) });
  await rejects(doc, "pcr-mismatch", { ...o, expectedPcrs: new Map([[3, new Uint8Array(48)]]) });
  const last = PCRS.get(2)!.slice();
  last[47] ^= 1;
  await rejects(doc, "pcr-mismatch", { ...o, expectedPcrs: new Map([...PCRS, [2, last]]) });
});

test("hostile documents are refused as malformed", async () => {
  const p = await pki();
  const o = opts(p);
  const good = await forge(p);
  const [ph, uh, payload, sig] = decode(good, { useMaps: true }) as [
    Uint8Array,
    Map<number, unknown>,
    Uint8Array,
    Uint8Array,
  ];
  const cases: [string, Uint8Array | Promise<Uint8Array>][] = [
    ["empty", new Uint8Array(0)],
    ["not CBOR", Uint8Array.of(0xff, 0x00)],
    ["truncated", good.subarray(0, good.length - 1)],
    ["trailing byte", Uint8Array.of(...good, 0)],
    ["too long", new Uint8Array(MAX_DOCUMENT_BYTES + 1)],
    ["a map", encode(new Map([[1, 2]]))],
    ["three items", encode([ph, uh, payload])],
    ["five items", encode([ph, uh, payload, sig, sig])],
    ["other tag", Uint8Array.of(0xd8, 0x62, ...good)],
    ["alg ES256", encode([encode(new Map([[1, -7]])), uh, payload, sig])],
    [
      "extra protected header",
      encode([
        encode(new Map<number, unknown>([[1, -35], [4, new Uint8Array(1)]])),
        uh,
        payload,
        sig,
      ]),
    ],
    ["protected not bytes", encode([new Map([[1, -35]]), uh, payload, sig])],
    ["unprotected not a map", encode([ph, [], payload, sig])],
    ["64-byte signature", encode([ph, uh, payload, sig.subarray(0, 64)])],
    ["empty payload", encode([ph, uh, new Uint8Array(0), sig])],
    ["payload not a map", signAttestationPayload(p.leaf.privateKey, encode([1, 2]))],
    [
      "indefinite-length payload",
      signAttestationPayload(p.leaf.privateKey, Uint8Array.of(0xbf, 0xff)),
    ],
    [
      "duplicate key",
      signAttestationPayload(
        p.leaf.privateKey,
        Uint8Array.of(0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02),
      ),
    ],
    ["unknown field", forge(p, (m) => m.set("extra", 1))],
    ["integer key", forge(p, (m) => m.set(7 as unknown as string, 1))],
    ["empty module_id", forge(p, (m) => m.set("module_id", ""))],
    ["module_id bytes", forge(p, (m) => m.set("module_id", new Uint8Array(3)))],
    ["digest SHA256", forge(p, (m) => m.set("digest", "SHA256"))],
    ["timestamp 0", forge(p, (m) => m.set("timestamp", 0))],
    ["timestamp negative", forge(p, (m) => m.set("timestamp", -5))],
    ["timestamp text", forge(p, (m) => m.set("timestamp", "1"))],
    ["timestamp float", forge(p, (m) => m.set("timestamp", 1.5))],
    ["pcrs empty", forge(p, (m) => m.set("pcrs", new Map()))],
    ["pcrs a list", forge(p, (m) => m.set("pcrs", [new Uint8Array(48)]))],
    ["pcr index 32", forge(p, (m) => m.set("pcrs", new Map([[32, new Uint8Array(48)]])))],
    ["pcr index -1", forge(p, (m) => m.set("pcrs", new Map([[-1, new Uint8Array(48)]])))],
    ["pcr index text", forge(p, (m) => m.set("pcrs", new Map([["0", new Uint8Array(48)]])))],
    ["pcr of 20 bytes", forge(p, (m) => m.set("pcrs", new Map([[0, new Uint8Array(20)]])))],
    ["pcr text", forge(p, (m) => m.set("pcrs", new Map([[0, "00".repeat(48)]])))],
    [
      "33 pcrs",
      forge(
        p,
        (m) =>
          m.set("pcrs", new Map(Array.from({ length: 33 }, (_, i) => [i, new Uint8Array(32)]))),
      ),
    ],
    ["certificate empty", forge(p, (m) => m.set("certificate", new Uint8Array(0)))],
    ["certificate 1025 bytes", forge(p, (m) => m.set("certificate", new Uint8Array(1025)))],
    ["certificate garbage", forge(p, (m) => m.set("certificate", new Uint8Array(300).fill(0x30)))],
    ["cabundle empty", forge(p, (m) => m.set("cabundle", []))],
    ["cabundle of text", forge(p, (m) => m.set("cabundle", ["x"]))],
    ["cabundle of 17", forge(p, (m) => m.set("cabundle", Array(17).fill(p.root.der)))],
    [
      "garbage intermediate",
      forge(p, (m) => m.set("cabundle", [p.root.der, new Uint8Array(50).fill(1)])),
    ],
    ["public_key empty", forge(p, (m) => m.set("public_key", new Uint8Array(0)))],
    ["public_key 1025", forge(p, (m) => m.set("public_key", new Uint8Array(1025)))],
    ["user_data 513", forge(p, (m) => m.set("user_data", new Uint8Array(513)))],
    ["nonce 513", forge(p, (m) => m.set("nonce", new Uint8Array(513)))],
    ["nonce text", forge(p, (m) => m.set("nonce", "abc"))],
  ];
  for (const [what, doc] of cases) {
    await assert.rejects(
      verifyAttestationDocument(await doc, o),
      (e: Error & { code?: string }) => {
        assert.equal(e.name, "AttestationError", `${what}: ${e.message}`);
        assert.equal(e.code, "malformed", `${what}: ${e.message}`);
        return true;
      },
      what,
    );
  }
  await assert.rejects(verifyAttestationDocument("x" as unknown as Uint8Array), TypeError);
});
