/**
 * KMS Decrypt for an attested recipient, as the enclave's boot program does it: a fresh RSA key
 * (Web Crypto RSA-OAEP / SHA-256, private half not extractable), an attestation document from
 * the NSM carrying its public key and a fresh nonce, `Decrypt` with
 * `Recipient = { AttestationDocument, KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256" }`, and the
 * answer's `CiphertextForRecipient` (CMS EnvelopedData) opened here with the private key.
 *
 * An answer that carries a `Plaintext` is refused: KMS never sends one to an attested recipient,
 * so one means something else answered (a host pretending to be KMS, or a KMS ignoring the
 * recipient, as moto does), and the key must not be trusted to have stayed out of the host's
 * reach. The key id of the answer must be the pinned one when the pin is an ARN.
 *
 * @example
 * ```ts
 * import { DecryptCommand, type KMSClient } from "@aws-sdk/client-kms";
 * import { decryptForRecipient } from "./kms_recipient.ts";
 * import type { Nsm } from "./nsm.ts";
 * // In the enclave, as boot.ts does: KMS (through the parent's proxy) and the NSM device.
 * async function ageKeyOf(kms: KMSClient, nsm: Nsm, blob: Uint8Array): Promise<Uint8Array> {
 *   return await decryptForRecipient({
 *     nsm,
 *     keyId: "arn:aws:kms:eu-west-1:111122223333:key/...",
 *     ciphertext: blob,
 *     decrypt: (input) => kms.send(new DecryptCommand(input)),
 *   });
 * }
 * ```
 * @module
 */
import type { Nsm } from "./nsm.ts";
import { openEnvelopedData } from "./cms.ts";

/** The request this module sends (the subset of the SDK's `DecryptCommandInput` it uses). */
export interface RecipientDecryptInput {
  readonly CiphertextBlob: Uint8Array;
  readonly KeyId: string;
  readonly EncryptionAlgorithm: "SYMMETRIC_DEFAULT";
  readonly Recipient: {
    readonly AttestationDocument: Uint8Array;
    readonly KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256";
  };
}

/** The answer fields this module reads (the SDK's `DecryptCommandOutput` has them). */
export interface RecipientDecryptOutput {
  readonly KeyId?: string;
  readonly Plaintext?: Uint8Array;
  readonly CiphertextForRecipient?: Uint8Array;
}

/** Why an attested decryption failed. */
export type RecipientDecryptErrorCode =
  | "attestation" // the NSM gave no document
  | "kms" // KMS refused (its error name is in the message)
  | "plaintext-answer" // the answer carried a Plaintext: refused
  | "no-ciphertext" // the answer carried no CiphertextForRecipient
  | "wrong-key" // the answer names another key than the pinned one
  | "open-failed"; // CiphertextForRecipient did not open with the enclave's key

/**
 * An attested decryption failed. Messages name the step and, for KMS, its error name and
 * message (KMS's messages name keys and conditions, never plaintext).
 */
export class RecipientDecryptError extends Error {
  override readonly name = "RecipientDecryptError";
  /** Why. */
  readonly code: RecipientDecryptErrorCode;
  /**
   * @param code why.
   * @param message what happened (no secret).
   */
  constructor(code: RecipientDecryptErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Options of {@link decryptForRecipient}. */
export interface DecryptForRecipientOptions {
  /** The NSM (the device, or a test stand-in). */
  readonly nsm: Nsm;
  /** The pinned KMS key (ARN or id); sent as `KeyId`, so KMS refuses a blob of another key. */
  readonly keyId: string;
  /** The `CiphertextBlob`. */
  readonly ciphertext: Uint8Array;
  /** Sends one Decrypt request (the SDK client's `send(new DecryptCommand(input))`). */
  readonly decrypt: (input: RecipientDecryptInput) => Promise<RecipientDecryptOutput>;
  /** RSA modulus bits (default 2048; KMS accepts 2048, 3072, 4096). */
  readonly modulusBits?: 2048 | 3072 | 4096;
}

/**
 * Decrypts a KMS ciphertext so that only this enclave sees the plaintext (module doc).
 * @param options NSM, pinned key, ciphertext, the Decrypt call.
 * @returns the plaintext (the caller zeroes it after use).
 * @throws {RecipientDecryptError} see its codes.
 */
export async function decryptForRecipient(
  options: DecryptForRecipientOptions,
): Promise<Uint8Array> {
  const keys = (await crypto.subtle.generateKey(
    {
      name: "RSA-OAEP",
      modulusLength: options.modulusBits ?? 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    false, // the private key never leaves Web Crypto; the public half is always exportable
    ["encrypt", "decrypt"],
  )) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  let document: Uint8Array;
  try {
    document = await options.nsm.attest({ publicKey: spki, nonce });
  } catch (e) {
    throw new RecipientDecryptError(
      "attestation",
      `the NSM gave no attestation document (${(e as Error)?.message ?? "error"})`,
    );
  }
  let out: RecipientDecryptOutput;
  try {
    out = await options.decrypt({
      CiphertextBlob: options.ciphertext,
      KeyId: options.keyId,
      EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
      Recipient: { AttestationDocument: document, KeyEncryptionAlgorithm: "RSAES_OAEP_SHA_256" },
    });
  } catch (e) {
    const err = e as Error;
    throw new RecipientDecryptError(
      "kms",
      `KMS Decrypt refused: ${err?.name ?? "Error"}: ${err?.message ?? ""}`.trim(),
    );
  }
  if (out.Plaintext !== undefined && out.Plaintext !== null) {
    out.Plaintext.fill?.(0);
    throw new RecipientDecryptError(
      "plaintext-answer",
      "the Decrypt answer carried a Plaintext: refused (KMS answers an attested recipient " +
        "with CiphertextForRecipient only; something else answered)",
    );
  }
  if (options.keyId.startsWith("arn:") && out.KeyId !== options.keyId) {
    throw new RecipientDecryptError(
      "wrong-key",
      `the Decrypt answer names key ${String(out.KeyId)}, expected ${options.keyId}`,
    );
  }
  const cms = out.CiphertextForRecipient;
  if (!(cms instanceof Uint8Array) || cms.length === 0) {
    throw new RecipientDecryptError(
      "no-ciphertext",
      "the Decrypt answer has no CiphertextForRecipient",
    );
  }
  try {
    return await openEnvelopedData(cms, keys.privateKey);
  } catch (e) {
    throw new RecipientDecryptError(
      "open-failed",
      `CiphertextForRecipient did not open with the enclave's key (${(e as Error)?.message})`,
    );
  }
}
