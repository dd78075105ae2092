/**
 * The key share file's container: age encryption at rest (X25519 identity or passphrase) of the
 * JSON that core/account_records.ts encodes, and the age identities of the tools. Used by the key
 * store (`key_store.ts`) of the client and of the service.
 *
 * ## File formats
 *
 * | format | recognised by | read with |
 * |---|---|---|
 * | `age` | starts with `age-encryption.org/` (the age v1 binary header) | an identity or passphrase |
 * | `age-armor` | starts (after blanks) with `-----BEGIN AGE ENCRYPTED FILE-----` | the same, after de-armoring |
 * | `plaintext` | anything else: the JSON itself | only when plaintext is allowed |
 *
 * Files made by the `age` command line tool load as they are (`age -r age1... -o keys.age`,
 * `age -p`, with or without `-a`), and files this module writes decrypt with `age -d`.
 *
 * ## Keys
 *
 * - identity: one X25519 age identity (`AGE-SECRET-KEY-1...`, as `age-keygen` writes;
 *   post-quantum `AGE-SECRET-KEY-PQ-1...` works too). Writes are encrypted to its recipient,
 *   plus the `recipients` option (e.g. an offline backup key): an age file does not name its
 *   recipients, so they must be configured to survive a rewrite.
 * - passphrase: scrypt (`age -p`). Writes use work factor 2^18 unless told otherwise; reads
 *   accept up to 2^20 (the decryption library's cap).
 * - plaintext: development only; reads and writes the JSON unencrypted.
 *
 * `allowPlaintext` with a key accepts a plaintext file on load (a migration): the next write
 * encrypts it.
 *
 * ## Errors
 *
 * Container problems are {@link KeyStoreError}s whose messages never hold a secret and, for
 * decryption, only say which kind of failure (age style): `malformed` (not an age file),
 * `decrypt-failed` (no configured key opens it), `corrupt` (the key opens the header but the
 * file is truncated or altered), `not-encrypted`, `needs-key`, `bad-key`, `wrong-party`,
 * `too-large`, `not-found`, `io`. Contents that fail validation are `InvalidKeyShare`
 * (core/errors.ts), naming the account.
 *
 * @module
 */

import {
  armor,
  Decrypter,
  Encrypter,
  generateX25519Identity,
  type Identity,
  identityToRecipient,
} from "age-encryption";
import { KeyStoreError } from "./errors.ts";

/** How a key share file is stored (module doc). */
export type KeyShareFileFormat = "age" | "age-armor" | "plaintext";

/** How to open a file: an age identity, a passphrase, or no encryption (development only). */
export type Decryptor =
  | { readonly identity: string }
  | { readonly passphrase: string }
  | { readonly plaintext: true };

/** Whom to encrypt to: age recipients (`age1...`), or a passphrase (scrypt). */
export type EncryptTo =
  | { readonly recipients: readonly string[] }
  | { readonly passphrase: string; readonly scryptWorkFactor?: number };

/** The scrypt work factor (log2 N) of passphrase writes, as `age -p` uses. */
export const DEFAULT_SCRYPT_WORK_FACTOR = 18;
/** The largest scrypt work factor the decryption library accepts. */
export const MAX_SCRYPT_WORK_FACTOR = 20;

const BINARY_MAGIC = new TextEncoder().encode("age-encryption.org/");
const ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----";
const IDENTITY_LINE = /^AGE-SECRET-KEY-(PQ-)?1[0-9A-Za-z]+$/;
export const RECIPIENT = /^age1[02-9ac-hj-np-z]{20,4000}$/;

// ---------------------------------------------------------------------------------------------
// Bytes

/**
 * Tells an age file, an armored age file and anything else (plaintext) apart (module doc).
 *
 * @param bytes the file's contents.
 * @returns the format.
 * @example
 * ```ts
 * import { detectKeyShareFileFormat } from "./age_file.ts";
 * console.assert(detectKeyShareFileFormat(new TextEncoder().encode("{}\n")) === "plaintext");
 * ```
 */
export function detectKeyShareFileFormat(bytes: Uint8Array): KeyShareFileFormat {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("expected the file's bytes");
  if (bytes.length >= BINARY_MAGIC.length && BINARY_MAGIC.every((b, i) => bytes[i] === b)) {
    return "age";
  }
  let i = 0;
  while (i < bytes.length && i < 4096 && [0x20, 0x09, 0x0d, 0x0a].includes(bytes[i])) i++;
  const head = new TextDecoder().decode(bytes.subarray(i, i + ARMOR_BEGIN.length));
  return head === ARMOR_BEGIN ? "age-armor" : "plaintext";
}

export function checkWorkFactor(logN: unknown): number {
  if (typeof logN !== "number" || !Number.isInteger(logN) || logN < 1) {
    throw new RangeError(`scryptWorkFactor: expected an integer in 1..${MAX_SCRYPT_WORK_FACTOR}`);
  }
  if (logN > MAX_SCRYPT_WORK_FACTOR) {
    throw new RangeError(
      `scryptWorkFactor: expected at most ${MAX_SCRYPT_WORK_FACTOR} (files above it do not load)`,
    );
  }
  return logN;
}

/**
 * Encrypts a key share file's JSON bytes with age, to recipients or with a passphrase.
 *
 * @param plaintext the JSON bytes (`encodeAccountsFile`'s text, UTF-8).
 * @param to `{ recipients }` (`age1...`) or `{ passphrase, scryptWorkFactor? }`.
 * @param options `armor: true` for the ASCII armored form (default binary).
 * @returns the encrypted file.
 * @throws {KeyStoreError} `bad-key` for no recipient, an invalid recipient or an empty passphrase.
 * @throws {RangeError} for a work factor outside 1..20.
 * @example
 * ```ts
 * import { decryptKeyShareFileBytes, encryptKeyShareFileBytes, generateAgeIdentity } from "./age_file.ts";
 * const { identity, recipient } = await generateAgeIdentity();
 * const plain = new TextEncoder().encode("{}\n");
 * const file = await encryptKeyShareFileBytes(plain, { recipients: [recipient] });
 * const back = await decryptKeyShareFileBytes(file, { identity });
 * console.assert(new TextDecoder().decode(back) === "{}\n");
 * ```
 */
export async function encryptKeyShareFileBytes(
  plaintext: Uint8Array,
  to: EncryptTo,
  options: { readonly armor?: boolean } = {},
): Promise<Uint8Array> {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError("expected the plaintext as bytes");
  const e = new Encrypter();
  if ("passphrase" in to) {
    if (typeof to.passphrase !== "string" || to.passphrase === "") {
      throw new KeyStoreError("bad-key", "key share file: expected a non-empty passphrase");
    }
    e.setScryptWorkFactor(checkWorkFactor(to.scryptWorkFactor ?? DEFAULT_SCRYPT_WORK_FACTOR));
    e.setPassphrase(to.passphrase);
  } else {
    const recipients = to.recipients;
    if (!Array.isArray(recipients) || recipients.length === 0) {
      throw new KeyStoreError("bad-key", "key share file: expected at least one age recipient");
    }
    for (const r of recipients) {
      if (typeof r !== "string" || !RECIPIENT.test(r)) {
        throw new KeyStoreError("bad-key", "key share file: expected age recipients (age1...)");
      }
      try {
        e.addRecipient(r);
      } catch (cause) {
        throw new KeyStoreError("bad-key", "key share file: an age recipient is invalid", {
          cause,
        });
      }
    }
  }
  let file: Uint8Array;
  try {
    file = await e.encrypt(plaintext);
  } catch (cause) {
    // An invalid recipient is only found when the file key is wrapped.
    throw new KeyStoreError("bad-key", "key share file: an age recipient is invalid", { cause });
  }
  return options.armor ? new TextEncoder().encode(armor.encode(file)) : file;
}

/** An identity that only records that it was asked (the header parsed). */
function spy(onCall: () => void): Identity {
  return {
    unwrapFileKey: () => {
      onCall();
      return null;
    },
  };
}

/**
 * Decrypts a key share file's bytes (any format of the module doc) to its JSON bytes.
 *
 * @param bytes the file's contents.
 * @param decryptor the identity or passphrase, or `{ plaintext: true }`.
 * @param options `allowPlaintext`: accept an unencrypted file with a key configured.
 * @returns the JSON bytes (the caller should zero them after use).
 * @throws {KeyStoreError} `not-encrypted`, `needs-key`, `bad-key`, `malformed`,
 *   `decrypt-failed` or `corrupt` (module doc); never with a secret in the message.
 * @example
 * ```ts
 * import { decryptKeyShareFileBytes } from "./age_file.ts";
 * const plain = new TextEncoder().encode("{}\n");
 * try {
 *   await decryptKeyShareFileBytes(plain, { passphrase: "x" });
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "not-encrypted");
 * }
 * ```
 */
export async function decryptKeyShareFileBytes(
  bytes: Uint8Array,
  decryptor: Decryptor,
  options: { readonly allowPlaintext?: boolean } = {},
): Promise<Uint8Array> {
  const format = detectKeyShareFileFormat(bytes);
  const plaintextMode = "plaintext" in decryptor && decryptor.plaintext === true;
  if (format === "plaintext") {
    if (bytes.length === 0) throw new KeyStoreError("malformed", "key share file is empty");
    if (plaintextMode || options.allowPlaintext) return Uint8Array.from(bytes);
    throw new KeyStoreError(
      "not-encrypted",
      "key share file is not encrypted (expected an age file; plaintext is allowed only in " +
        "development, with key_store.allow_plaintext)",
    );
  }
  if (plaintextMode) {
    throw new KeyStoreError(
      "needs-key",
      "key share file is age-encrypted but no age identity or passphrase is configured",
    );
  }
  let file = bytes;
  if (format === "age-armor") {
    try {
      file = armor.decode(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      throw new KeyStoreError("malformed", "key share file: invalid age armor");
    }
  }
  let sawHeader = false;
  let noMatch = false;
  const d = new Decrypter();
  d.addIdentity(spy(() => (sawHeader = true)));
  if ("identity" in decryptor) {
    checkIdentity(decryptor.identity);
    try {
      d.addIdentity(decryptor.identity);
    } catch {
      throw new KeyStoreError("bad-key", "key share file: the age identity is invalid");
    }
  } else if ("passphrase" in decryptor) {
    if (typeof decryptor.passphrase !== "string" || decryptor.passphrase === "") {
      throw new KeyStoreError("bad-key", "key share file: expected a non-empty passphrase");
    }
    d.addPassphrase(decryptor.passphrase);
  } else {
    throw new TypeError("decryptor: expected { identity }, { passphrase } or { plaintext: true }");
  }
  d.addIdentity(spy(() => (noMatch = true)));
  try {
    return await d.decrypt(file);
  } catch {
    // Coarse on purpose: which kind of failure, never which byte or which stanza.
    if (!sawHeader) {
      throw new KeyStoreError("malformed", "key share file: not a valid age file (bad header)");
    }
    if (noMatch) {
      throw new KeyStoreError(
        "decrypt-failed",
        "identity" in decryptor
          ? "key share file: the age identity is not a recipient of this file"
          : "key share file: wrong passphrase, or the file is not passphrase-encrypted",
      );
    }
    throw new KeyStoreError(
      "corrupt",
      "key share file: decryption failed after the header (truncated or altered file, or a " +
        "header the configured key cannot use)",
    );
  }
}

function checkIdentity(identity: unknown): string {
  if (typeof identity !== "string" || !IDENTITY_LINE.test(identity)) {
    throw new KeyStoreError(
      "bad-key",
      "key share file: expected an age identity (AGE-SECRET-KEY-1...)",
    );
  }
  return identity;
}

// ---------------------------------------------------------------------------------------------
// Identities

/**
 * A new X25519 age identity and its recipient, for key generation tools.
 *
 * @returns `identity` (`AGE-SECRET-KEY-1...`, secret: store it like `age-keygen` output) and
 *   `recipient` (`age1...`, public).
 * @example
 * ```ts
 * import { generateAgeIdentity } from "./age_file.ts";
 * const { identity, recipient } = await generateAgeIdentity();
 * console.assert(identity.startsWith("AGE-SECRET-KEY-1") && recipient.startsWith("age1"));
 * ```
 */
export async function generateAgeIdentity(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/**
 * The recipient (`age1...`) of an age identity.
 *
 * @param identity `AGE-SECRET-KEY-1...` (or `AGE-SECRET-KEY-PQ-1...`).
 * @returns the recipient.
 * @throws {KeyStoreError} `bad-key` when the identity is invalid (its text is not repeated).
 * @example
 * ```ts
 * import { ageRecipientOf, generateAgeIdentity } from "./age_file.ts";
 * const { identity, recipient } = await generateAgeIdentity();
 * console.assert((await ageRecipientOf(identity)) === recipient);
 * ```
 */
export async function ageRecipientOf(identity: string): Promise<string> {
  checkIdentity(identity);
  try {
    return await identityToRecipient(identity);
  } catch {
    throw new KeyStoreError("bad-key", "key share file: the age identity is invalid");
  }
}

/**
 * Extracts the one identity of an age identity file (as `age-keygen` writes: `#` comments,
 * blank lines, one `AGE-SECRET-KEY-1...` line).
 *
 * @param text the file's contents.
 * @returns the identity.
 * @throws {KeyStoreError} `bad-key` when there is not exactly one identity line, or another
 *   line; the file's text is never repeated.
 * @example
 * ```ts
 * import { parseAgeIdentityFile } from "./age_file.ts";
 * const id = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";
 * console.assert(parseAgeIdentityFile(`# created: now\n# public key: age1...\n${id}\n`) === id);
 * ```
 */
export function parseAgeIdentityFile(text: string): string {
  if (typeof text !== "string") throw new TypeError("expected the identity file's text");
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && l[0] !== "#");
  if (lines.length !== 1 || !IDENTITY_LINE.test(lines[0])) {
    throw new KeyStoreError(
      "bad-key",
      `age identity file: expected exactly one AGE-SECRET-KEY-1... line, got ${lines.length} ` +
        "non-comment lines" + (lines.length === 1 ? " that is not an identity" : ""),
    );
  }
  return lines[0];
}

/**
 * Turns the key store settings of the configuration into a {@link Decryptor}: reads the
 * identity file, or the passphrase from the environment. For `main.ts`.
 *
 * @param settings `mode`, `ageIdentityFile` and `passphraseEnv` (ServiceConfig.keyStore).
 * @param io `env` and a `readFile` returning the identity file's text.
 * @returns the decryptor.
 * @throws {KeyStoreError} `bad-key` for an unusable identity file or an unset passphrase.
 * @example
 * ```ts
 * import { resolveDecryptor } from "./age_file.ts";
 * const d = await resolveDecryptor(
 *   { mode: "passphrase", ageIdentityFile: "", passphraseEnv: "PASS" },
 *   { env: { PASS: "secret words" }, readFile: () => "" },
 * );
 * console.assert("passphrase" in d);
 * ```
 */
export async function resolveDecryptor(
  settings: {
    readonly mode: "identity" | "passphrase" | "plaintext";
    readonly ageIdentityFile: string;
    readonly passphraseEnv: string;
  },
  io: {
    readonly env: Readonly<Record<string, string | undefined>>;
    readonly readFile: (path: string) => string | Promise<string>;
  },
): Promise<Decryptor> {
  switch (settings.mode) {
    case "identity": {
      let text: string;
      try {
        text = await io.readFile(settings.ageIdentityFile);
      } catch (cause) {
        const code = (cause as { code?: unknown })?.code;
        throw new KeyStoreError(
          "bad-key",
          `age identity file ${settings.ageIdentityFile} cannot be read (${
            String(code ?? "error")
          })`,
          { cause },
        );
      }
      return { identity: parseAgeIdentityFile(text) };
    }
    case "passphrase": {
      const passphrase = io.env[settings.passphraseEnv] ?? "";
      if (passphrase === "") {
        throw new KeyStoreError(
          "bad-key",
          `passphrase variable ${settings.passphraseEnv} is unset`,
        );
      }
      return { passphrase };
    }
    case "plaintext":
      return { plaintext: true };
  }
}
