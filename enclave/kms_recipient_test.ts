/**
 * The attested KMS decryption against an in-process KMS stand-in (the fake NSM's documents,
 * verified; the answer sealed to the document's public key): the good path, and each answer
 * the enclave must refuse (a Plaintext, no ciphertext, another key, a KMS error, a ciphertext
 * for another key).
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { verifyAttestationDocument } from "./attestation.ts";
import { sealEnvelopedData } from "./cms.ts";
import {
  decryptForRecipient,
  type RecipientDecryptErrorCode,
  type RecipientDecryptInput,
  type RecipientDecryptOutput,
} from "./kms_recipient.ts";
import { createFakeNsm } from "./testing/fake_nsm.ts";

const KEY = "arn:aws:kms:eu-west-1:111122223333:key/0f0e0d0c-0b0a-0908-0706-050403020100";
const SECRET = new TextEncoder().encode("AGE-SECRET-KEY-1TESTTESTTEST");
const PCR0 = new Uint8Array(48).fill(0xa0);

async function fixture() {
  const { nsm, rootDer } = await createFakeNsm({ pcrs: new Map([[0, PCR0]]) });
  const seen: RecipientDecryptInput[] = [];
  /** A KMS that checks the document and seals to its key. */
  const kms = async (input: RecipientDecryptInput): Promise<RecipientDecryptOutput> => {
    seen.push(input);
    const doc = await verifyAttestationDocument(input.Recipient.AttestationDocument, {
      roots: [rootDer],
      expectedPcrs: new Map([[0, PCR0]]),
    });
    assert.equal(doc.nonce?.length, 32, "a fresh 32-byte nonce");
    return {
      KeyId: KEY,
      CiphertextForRecipient: await sealEnvelopedData(SECRET, doc.publicKey!),
    };
  };
  return { nsm, kms, seen };
}

describe("decryptForRecipient", () => {
  test("opens KMS's CiphertextForRecipient with the attested key; the request pins the key", async () => {
    const f = await fixture();
    const out = await decryptForRecipient({
      nsm: f.nsm,
      keyId: KEY,
      ciphertext: new Uint8Array([9]),
      decrypt: f.kms,
    });
    assert.deepEqual(out, SECRET);
    assert.equal(f.seen[0].KeyId, KEY);
    assert.equal(f.seen[0].Recipient.KeyEncryptionAlgorithm, "RSAES_OAEP_SHA_256");
    // Two calls attest two different keys and nonces.
    await decryptForRecipient({
      nsm: f.nsm,
      keyId: KEY,
      ciphertext: new Uint8Array([9]),
      decrypt: f.kms,
    });
    assert.notDeepEqual(
      f.seen[0].Recipient.AttestationDocument,
      f.seen[1].Recipient.AttestationDocument,
    );
  });

  const hostile: [
    string,
    RecipientDecryptErrorCode,
    (
      good: RecipientDecryptOutput,
    ) => RecipientDecryptOutput | Promise<RecipientDecryptOutput>,
  ][] = [
    [
      "an answer with a Plaintext (and the ciphertext)",
      "plaintext-answer",
      (g) => ({ ...g, Plaintext: SECRET.slice() }),
    ],
    [
      "an answer with only a Plaintext (what moto sends)",
      "plaintext-answer",
      () => ({ KeyId: KEY, Plaintext: SECRET.slice() }),
    ],
    ["an empty Plaintext", "plaintext-answer", (g) => ({ ...g, Plaintext: new Uint8Array(0) })],
    ["no CiphertextForRecipient", "no-ciphertext", () => ({ KeyId: KEY })],
    [
      "an empty CiphertextForRecipient",
      "no-ciphertext",
      () => ({ KeyId: KEY, CiphertextForRecipient: new Uint8Array(0) }),
    ],
    ["another key's answer", "wrong-key", (g) => ({ ...g, KeyId: KEY.replace("0f0e", "ffff") })],
    ["no key id", "wrong-key", (g) => ({ CiphertextForRecipient: g.CiphertextForRecipient })],
    [
      "garbage instead of CMS",
      "open-failed",
      () => ({ KeyId: KEY, CiphertextForRecipient: new Uint8Array(64).fill(0x30) }),
    ],
    ["a ciphertext sealed to another RSA key", "open-failed", async () => {
      const other = (await crypto.subtle.generateKey(
        {
          name: "RSA-OAEP",
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: "SHA-256",
        },
        true,
        ["encrypt", "decrypt"],
      )) as CryptoKeyPair;
      const spki = new Uint8Array(await crypto.subtle.exportKey("spki", other.publicKey));
      return { KeyId: KEY, CiphertextForRecipient: await sealEnvelopedData(SECRET, spki) };
    }],
  ];
  for (const [name, code, answer] of hostile) {
    test(`refuses ${name}: ${code}`, async () => {
      const f = await fixture();
      await assert.rejects(
        decryptForRecipient({
          nsm: f.nsm,
          keyId: KEY,
          ciphertext: new Uint8Array([9]),
          decrypt: async (input) => answer(await f.kms(input)),
        }),
        (e: unknown) => {
          assert.equal((e as { code?: string }).code, code, String(e));
          assert.ok(
            !String((e as Error).message).includes("AGE-SECRET"),
            "no secret in the message",
          );
          return true;
        },
      );
    });
  }

  test("a KMS refusal names KMS's error; an NSM failure is attestation", async () => {
    const f = await fixture();
    const denied = Object.assign(new Error("no PCR0 match"), { name: "AccessDeniedException" });
    await assert.rejects(
      decryptForRecipient({
        nsm: f.nsm,
        keyId: KEY,
        ciphertext: new Uint8Array([9]),
        decrypt: () => Promise.reject(denied),
      }),
      (e: unknown) =>
        (e as { code?: string }).code === "kms" &&
        /AccessDeniedException: no PCR0 match/.test(String(e)),
    );
    f.nsm.close();
    await assert.rejects(
      decryptForRecipient({
        nsm: f.nsm,
        keyId: KEY,
        ciphertext: new Uint8Array([9]),
        decrypt: f.kms,
      }),
      (e: unknown) => (e as { code?: string }).code === "attestation",
    );
  });
});
