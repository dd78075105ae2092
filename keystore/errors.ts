/**
 * The typed error of the key store (`key_store.ts`, `age_file.ts`), shared by the client and the
 * service. Key share contents that fail validation keep their core error, `InvalidKeyShare`
 * (core/errors.ts).
 * @module
 */

/** Why the key store refused to open, decrypt or write. */
export type KeyStoreErrorCode =
  | "not-encrypted" // a plaintext file while encryption is required
  | "needs-key" // an encrypted file but no identity or passphrase was configured
  | "bad-key" // the configured identity, recipient or passphrase is unusable (not its value)
  | "malformed" // not an age file: empty, a broken header or armor
  | "decrypt-failed" // no configured identity or passphrase opens the file
  | "corrupt" // the key opens the header but the file is truncated or altered
  | "wrong-party" // a share's party index (or party count) differs from this service's
  | "too-large" // the file (or what would be written) exceeds the size cap
  | "account-exists" // put() of an account that is already stored
  | "unknown-account" // replace() of an account that is not stored
  | "not-found" // the file does not exist (and a missing file is not allowed)
  | "locked" // another process held the file's write lock past the timeout
  | "legacy-format" // a file without record MACs (versions 1, 2) and no migration was asked for
  | "io"; // the file system failed (the errno code is in the message, the error in `cause`)

/**
 * The key store could not open, decrypt or write its file. Decryption failures are coarse on
 * purpose (age style): they say which kind of failure, never which byte or which key.
 *
 * @example
 * ```ts
 * import { KeyStoreError } from "./errors.ts";
 * const e = new KeyStoreError("not-encrypted", "key share file is not encrypted");
 * console.assert(e.name === "KeyStoreError" && e.code === "not-encrypted");
 * ```
 */
export class KeyStoreError extends Error {
  override readonly name = "KeyStoreError";
  readonly code: KeyStoreErrorCode;
  /**
   * @param code what kind of failure.
   * @param message what was expected and what was got (never a secret).
   * @param options an optional `cause` (a file-system error; never a decryption internals).
   */
  constructor(code: KeyStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
