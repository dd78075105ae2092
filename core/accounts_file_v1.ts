/**
 * The key share file, version 1 (described in `keyshare.ts`, "File"): one JSON object of
 * accounts for ONE party, each entry holding a version-1 key share, the account's public key
 * and, optionally, the identity keys pinned at key generation; plus the account id and identity
 * pieces that the version-3 accounts file (`account_records.ts`) shares.
 *
 * @example
 * ```ts
 * import { decodeAccountsFile, encodeAccountsFile } from "./accounts_file_v1.ts";
 * console.assert(decodeAccountsFile(encodeAccountsFile({})).size === 0);
 * ```
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  decodeBytes,
  expectArray,
  expectFields,
  type JsonObject,
  kindOf,
  parseJson,
  toHex,
} from "./bytes.ts";
import { InvalidKeyShare } from "./errors.ts";
import { MAX_KEY_SHARE_PARTIES } from "./params.ts";
import type { KeyShare } from "./protocols/types.ts";
import {
  asMalformed,
  decodeParsed,
  encodeKeyShare,
  type KeyShareJsonV1,
  malformed,
  MAX_FILE_BYTES,
  pointField,
} from "./keyshare_json.ts";
import { validateKeyShare } from "./keyshare_validation.ts";

/** Account ids: 1 to 128 characters of `A-Z a-z 0-9 . _ -`. */
export const ACCOUNT_ID_PATTERN: RegExp = /^[A-Za-z0-9._-]{1,128}$/;

function inconsistent(message: string): InvalidKeyShare {
  return new InvalidKeyShare("inconsistent", message);
}

/** Wire form of an account's pinned session identities (optional field of a file entry). */
export interface AccountIdentityJsonV1 {
  /** This party's Ed25519 identity secret key (32-byte seed, hex). */
  secret_key: string;
  /** Every party's Ed25519 identity public key (32 bytes hex), by party index. */
  public_keys: string[];
}

/** Wire form of one account of a key share file. */
export interface AccountEntryJsonV1 {
  key_share: KeyShareJsonV1;
  public_key: string;
  /** Identity keys pinned at key generation; absent in files made before sessions existed. */
  identity?: AccountIdentityJsonV1;
}

/**
 * The identity keys of an account, pinned at key generation: every message of a later session
 * of this account is authenticated with them (see transport/).
 */
export interface AccountIdentity {
  /** This party's Ed25519 secret key (RFC 8032 32-byte seed). */
  readonly secretKey: Uint8Array;
  /** Every party's Ed25519 public key, by party index (n entries). */
  readonly publicKeys: readonly Uint8Array[];
}

/** One account of a key share file: the validated key share and its pinned identities. */
export interface AccountEntry {
  readonly keyShare: KeyShare;
  readonly identity?: AccountIdentity;
}

/** Wire form of a key share file: account id -> entry. */
export type KeyShareFileJsonV1 = Record<string, AccountEntryJsonV1>;

/** Options of `decodeKeyShareFile`. */
export interface DecodeFileOptions {
  /** Largest file accepted, in bytes (default `MAX_FILE_BYTES`). */
  readonly maxBytes?: number;
}

/** @internal shared with `account_records.ts`. */
export function checkAccountId(id: unknown): string {
  if (typeof id !== "string" || !ACCOUNT_ID_PATTERN.test(id)) {
    const len = typeof id === "string" ? `${id.length} characters` : typeof id;
    throw malformed(`account id (${len}) does not match ${ACCOUNT_ID_PATTERN.source}`);
  }
  return id;
}

/** @internal shared with `account_records.ts`. */
export function inAccount<T>(id: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof InvalidKeyShare) {
      throw new InvalidKeyShare(e.code, `account "${id}": ${e.message}`);
    }
    throw e;
  }
}

/** @internal shared with `account_records.ts`. */
export function encodeIdentity(id: AccountIdentity, share: KeyShare): AccountIdentityJsonV1 {
  checkIdentity(id, share);
  return identityJson(id);
}

/** The wire form of identities, unchecked. @internal shared with `account_records.ts`. */
export function identityJson(id: AccountIdentity): AccountIdentityJsonV1 {
  return { secret_key: toHex(id.secretKey), public_keys: id.publicKeys.map(toHex) };
}

const IDENTITY_KEY_BYTES = 32;

/** @internal shared with `account_records.ts`. */
export function decodeIdentity(v: unknown): AccountIdentity {
  return asMalformed(() => {
    const o = expectFields<AccountIdentityJsonV1>(v, ["secret_key", "public_keys"], "identity");
    const what = "identity.public_keys";
    return {
      secretKey: decodeBytes(o.secret_key, "identity.secret_key", IDENTITY_KEY_BYTES),
      publicKeys: expectArray(o.public_keys, what, MAX_KEY_SHARE_PARTIES).map((k, j) =>
        decodeBytes(k, `${what}[${j}]`, IDENTITY_KEY_BYTES)
      ),
    };
  });
}

/** The identity must list n distinct keys, this party's being the one of its secret key. */
/** @internal shared with `account_records.ts`. */
export function checkIdentity(id: AccountIdentity, share: KeyShare): void {
  if (id.secretKey.length !== IDENTITY_KEY_BYTES) throw malformed("identity: bad secret key size");
  if (id.publicKeys.length !== share.n) {
    throw inconsistent(`identity: expected ${share.n} public keys, got ${id.publicKeys.length}`);
  }
  const hexes = id.publicKeys.map((k) => {
    if (k.length !== IDENTITY_KEY_BYTES) throw malformed("identity: bad public key size");
    return toHex(k);
  });
  if (new Set(hexes).size !== hexes.length) throw inconsistent("identity: repeated public key");
  if (hexes[share.i] !== toHex(ed25519.getPublicKey(id.secretKey))) {
    throw inconsistent(`identity: public_keys[${share.i}] is not this party's key`);
  }
}

/** The entries of a `Map` or of a plain record. */
function entriesOf<T>(m: ReadonlyMap<string, T> | Readonly<Record<string, T>>): [string, T][] {
  return m instanceof Map
    ? [...(m as ReadonlyMap<string, T>).entries()]
    : Object.entries(m as Readonly<Record<string, T>>);
}

/**
 * Encodes accounts (key share and pinned identities) as a key share file (`keyshare.ts`), accounts
 * sorted by id, two-space indentation, trailing newline: equal input always gives equal bytes.
 *
 * @param accounts account id -> entry (a `Map` or a plain record).
 * @returns the JSON text (encode it with `TextEncoder`, encrypt it, then write it atomically).
 * @throws {InvalidKeyShare} `malformed` for a bad account id; `inconsistent` for identities
 *   that do not fit the share; as `encodeKeyShare` otherwise.
 * @example
 * ```ts
 * import { encodeAccountsFile } from "./keyshare.ts";
 * console.assert(encodeAccountsFile({}) === "{}\n");
 * ```
 */
export function encodeAccountsFile(
  accounts: ReadonlyMap<string, AccountEntry> | Readonly<Record<string, AccountEntry>>,
): string {
  const out = entriesOf(accounts)
    .map(([id, entry]): [string, AccountEntryJsonV1] => {
      checkAccountId(id);
      return inAccount(id, () => {
        const key_share = encodeKeyShare(entry.keyShare);
        const json: AccountEntryJsonV1 = { key_share, public_key: key_share.public_key };
        if (entry.identity) json.identity = encodeIdentity(entry.identity, entry.keyShare);
        return [id, json];
      });
    })
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // fromEntries defines own properties, so an id such as "__proto__" stays an ordinary key.
  return JSON.stringify(Object.fromEntries(out), null, 2) + "\n";
}

/**
 * Decodes and validates a key share file: every account id, every entry, every key share and
 * every pinned identity. Nothing is returned unless everything is valid.
 *
 * @param json the file's contents (text or UTF-8 bytes, after decryption).
 * @param options `maxBytes` cap, checked before parsing.
 * @returns account id -> entry, in the file's order.
 * @throws {InvalidKeyShare} see `keyshare.ts`; the message names the account.
 * @example
 * ```ts
 * import { decodeAccountsFile } from "./keyshare.ts";
 * try {
 *   decodeAccountsFile('{"bad id!": {}}');
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed");
 * }
 * ```
 */
export function decodeAccountsFile(
  json: string | Uint8Array,
  options: DecodeFileOptions = {},
): Map<string, AccountEntry> {
  if (typeof json !== "string" && !(json instanceof Uint8Array)) {
    throw malformed("key share file: expected text or bytes");
  }
  const v = asMalformed(() =>
    parseJson(json, options.maxBytes ?? MAX_FILE_BYTES, "key share file")
  );
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw malformed(`key share file: expected an object of accounts, got ${kindOf(v)}`);
  }
  const ids = Object.keys(v);
  ids.forEach(checkAccountId); // all ids before any costly validation
  const out = new Map<string, AccountEntry>();
  for (const id of ids) {
    const entry = inAccount(id, (): AccountEntry => {
      const raw = (v as JsonObject)[id];
      const hasIdentity = typeof raw === "object" && raw !== null && Object.hasOwn(raw, "identity");
      const fields: (keyof AccountEntryJsonV1)[] = hasIdentity
        ? ["key_share", "public_key", "identity"]
        : ["key_share", "public_key"];
      const o = asMalformed(() => expectFields<AccountEntryJsonV1>(raw, fields, "account entry"));
      const listed = asMalformed(() => pointField(o.public_key, "public_key"));
      const identity = hasIdentity ? decodeIdentity(o.identity) : undefined;
      const keyShare = validateKeyShare(decodeParsed(o.key_share));
      if (!listed.equals(keyShare.publicKey)) {
        throw inconsistent("the entry's public_key differs from key_share.public_key");
      }
      if (!identity) return { keyShare };
      checkIdentity(identity, keyShare);
      return { keyShare, identity };
    });
    out.set(id, entry);
  }
  return out;
}

/**
 * Encodes key shares without identities as a key share file (see `encodeAccountsFile`).
 *
 * @param accounts account id -> key share (a `Map` or a plain record).
 * @returns the JSON text.
 * @throws {InvalidKeyShare} as `encodeAccountsFile`.
 * @example
 * ```ts
 * import { encodeKeyShareFile } from "./keyshare.ts";
 * console.assert(encodeKeyShareFile({}) === "{}\n");
 * ```
 */
export function encodeKeyShareFile(
  accounts: ReadonlyMap<string, KeyShare> | Readonly<Record<string, KeyShare>>,
): string {
  return encodeAccountsFile(
    new Map(entriesOf(accounts).map(([id, keyShare]) => [id, { keyShare }])),
  );
}

/**
 * Decodes and validates a key share file and returns its key shares only (identities are
 * validated, then dropped; see `decodeAccountsFile`).
 *
 * @param json the file's contents (text or UTF-8 bytes, after decryption).
 * @param options `maxBytes` cap, checked before parsing.
 * @returns account id -> validated key share, in the file's order.
 * @throws {InvalidKeyShare} see `keyshare.ts`; the message names the account.
 * @example
 * ```ts
 * import { decodeKeyShareFile } from "./keyshare.ts";
 * try {
 *   decodeKeyShareFile('{"bad id!": {}}');
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed");
 * }
 * ```
 */
export function decodeKeyShareFile(
  json: string | Uint8Array,
  options: DecodeFileOptions = {},
): Map<string, KeyShare> {
  const out = new Map<string, KeyShare>();
  for (const [id, e] of decodeAccountsFile(json, options)) out.set(id, e.keyShare);
  return out;
}
