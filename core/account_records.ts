/**
 * The account records file, version 3: the epoch-versioned records of `key_epochs.ts` (whose
 * types and rules this module re-exports), one per account, each with its MAC
 * (docs/key-lifecycle.md).
 *
 * ## File format, version 3 (`encodeAccountRecords` / `decodeAccountRecords`)
 *
 * ```json
 * { "version": 3,
 *   "accounts": {
 *     "<account_id>": {
 *       "public_key": "<33-byte compressed point hex>",
 *       "identity": { ...as in version 1, optional },
 *       "epochs": [
 *         { "counter": 0, "digest": "<32 bytes hex>", "state": "current", "kind": "keygen",
 *           "session_id": "<hex or empty>", "key_share": { ...version-1 key share... } } ],
 *       "mac": "<32 bytes hex>" } } }
 * ```
 *
 * Validation on load: every key share as version 1 does (core/keyshare.ts, including the checks
 * of this party's own primes and s, t), every epoch's digest recomputed, one public key, party
 * index and party count per account, identities matching every share, at most one current
 * epoch, pending counters above the current one, distinct digests, at most {@link MAX_EPOCHS}
 * epochs.
 *
 * ### The record MAC (issue 15, finding 2)
 *
 * What a load cannot check (the other parties' N, s, t, `rid`, the chain code, the identities,
 * the epochs' counters and states) is bound by a MAC per account: HMAC-SHA256 over a domain
 * label, the account id and the compact JSON of the record without `mac` (exactly what the
 * writer emits, so `encode(decode(text)) == text`), keyed by HKDF-SHA256 of the record's secrets
 * (every epoch's x_i, p, q and the identity secret key) with its own label. It is checked before
 * anything else in the record; a missing or wrong MAC is `InvalidKeyShare` `tampered`. So a file
 * altered by anyone who does not hold the shares (a plaintext file edited in place, a corrupted
 * byte, a tool rewriting public values) is refused, not used. It does not stop whoever can read
 * the plaintext (that is what the age encryption is for), nor the removal of a whole account or
 * the restoration of an older authentic record (a rollback; see docs/key-lifecycle.md).
 *
 * Earlier versions still load, as unauthenticated legacy files: version 2 (the same records
 * without `mac`) and version 1 (core/keyshare.ts: an object of accounts, each decoding as one
 * current epoch of counter 0 and kind `import`). The next write of the file gives every record
 * its MAC. `requireMac` refuses them (`tampered`) for deployments that have rewritten their
 * files: without it, a file downgraded to version 2 by removing its MACs loads.
 *
 * @example
 * ```ts
 * import { decodeAccountRecords, encodeAccountRecords } from "./account_records.ts";
 * const text = encodeAccountRecords(new Map());
 * console.assert(decodeAccountRecords(text).size === 0);
 * ```
 * @module
 */
import { equalBytes } from "@noble/curves/utils.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { expectFields, fromHex, lengthPrefixed, parseJson, toHex, u32be } from "./bytes.ts";
import { InvalidKeyShare } from "./errors.ts";
import {
  type AccountEntry,
  type AccountIdentity,
  checkAccountId,
  decodeAccountsFile,
  decodeIdentity,
  identityJson,
  inAccount,
} from "./accounts_file_v1.ts";
import {
  asMalformed,
  decodeParsed,
  encodeKeyShare,
  MAX_FILE_BYTES,
  pointField,
  type UncheckedKeyShare,
} from "./keyshare_json.ts";
import { validateKeyShare } from "./keyshare_validation.ts";
import { toBytesBE } from "./math/mod.ts";
import type { Point } from "./params.ts";
import {
  type AccountRecord,
  assertRecord,
  epochDigest,
  type EpochKind,
  type EpochRecord,
  type EpochState,
  fromEntry,
  MAX_EPOCH_COUNTER,
  MAX_EPOCHS,
} from "./key_epochs.ts";

export * from "./key_epochs.ts";

/** The file format version this module writes (3: every account record carries a MAC). */
export const ACCOUNT_RECORDS_VERSION = 3;
/** The earlier version, still read: records without MACs (unauthenticated legacy). */
const LEGACY_VERSION = 2;

type Obj = Record<string, unknown>;

function malformed(message: string): InvalidKeyShare {
  return new InvalidKeyShare("malformed", message);
}

function tampered(message: string): InvalidKeyShare {
  return new InvalidKeyShare("tampered", message);
}

/** An epoch as read from a file: syntax checked, meaning (and digest) not yet. */
interface UncheckedEpoch {
  readonly counter: number;
  readonly digest: string;
  readonly state: EpochState;
  readonly kind: EpochKind;
  readonly sessionId: string;
  readonly keyShare: UncheckedKeyShare;
}

/** A record as read from a file, or an `AccountRecord`: what the MAC covers. */
interface UncheckedRecord {
  readonly identity?: AccountIdentity;
  readonly epochs: readonly UncheckedEpoch[];
}

const EPOCH_FIELDS = ["counter", "digest", "state", "kind", "session_id", "key_share"];

function decodeEpochSyntax(v: unknown, k: number): UncheckedEpoch {
  const what = `epochs[${k}]`;
  const o = asMalformed(() => expectFields(v, EPOCH_FIELDS, what));
  const counter = o.counter;
  if (
    typeof counter !== "number" || !Number.isSafeInteger(counter) || counter < 0 ||
    counter > MAX_EPOCH_COUNTER
  ) {
    throw malformed(`${what}.counter: expected an integer in 0..${MAX_EPOCH_COUNTER}`);
  }
  if (typeof o.digest !== "string" || !/^[0-9a-f]{64}$/.test(o.digest)) {
    throw malformed(`${what}.digest: expected 64 lowercase hex digits`);
  }
  if (o.state !== "current" && o.state !== "pending") {
    throw malformed(`${what}.state: expected "current" or "pending"`);
  }
  if (o.kind !== "keygen" && o.kind !== "refresh" && o.kind !== "import") {
    throw malformed(`${what}.kind: expected "keygen", "refresh" or "import"`);
  }
  if (typeof o.session_id !== "string" || !/^([0-9a-f]{2}){0,64}$/.test(o.session_id)) {
    throw malformed(`${what}.session_id: expected at most 64 bytes of lowercase hex`);
  }
  return {
    counter,
    digest: o.digest,
    state: o.state,
    kind: o.kind,
    sessionId: o.session_id,
    keyShare: decodeParsed(o.key_share),
  };
}

function validateEpoch(e: UncheckedEpoch, k: number): EpochRecord {
  const keyShare = validateKeyShare(e.keyShare);
  if (epochDigest(keyShare) !== e.digest) {
    throw new InvalidKeyShare(
      "inconsistent",
      `epochs[${k}]: the digest does not match the key share`,
    );
  }
  return { ...e, keyShare };
}

/** The canonical wire form of an account record without its MAC (the MAC's input). */
function accountBody(publicKey: Point, rec: UncheckedRecord): Obj {
  const out: Obj = { public_key: publicKey.toHex(true) };
  if (rec.identity) out.identity = identityJson(rec.identity);
  out.epochs = rec.epochs.map((e) => ({
    counter: e.counter,
    digest: e.digest,
    state: e.state,
    kind: e.kind,
    session_id: e.sessionId,
    key_share: encodeKeyShare(e.keyShare),
  }));
  return out;
}

const TEXT = new TextEncoder();
const MAC_KEY_INFO = TEXT.encode("wallet-mpc/account-record-mac-key/v3");
const MAC_DOMAIN = TEXT.encode("wallet-mpc/account-record-mac/v3");
const MAC_BYTES = 32;

/**
 * The MAC of an account record: HMAC-SHA256 over the domain label, the account id and the
 * canonical JSON of the record without its MAC (`accountBody`, compact), each length-prefixed,
 * under a key that only the holder of the record's secrets can make: HKDF-SHA256 of every
 * epoch's x_i, p and q and the identity secret key (length-prefixed), with its own label.
 */
function recordMac(id: string, body: Obj, rec: UncheckedRecord): Uint8Array {
  const secrets: Uint8Array[] = [u32be(rec.epochs.length)];
  for (const { keyShare: ks } of rec.epochs) {
    secrets.push(toBytesBE(ks.x, 32), toBytesBE(ks.aux.p), toBytesBE(ks.aux.q));
  }
  if (rec.identity) secrets.push(Uint8Array.from(rec.identity.secretKey));
  const ikm = lengthPrefixed(secrets);
  const key = hkdf(sha256, ikm, undefined, MAC_KEY_INFO, MAC_BYTES);
  for (const s of secrets) s.fill(0);
  ikm.fill(0);
  const mac = hmac(
    sha256,
    key,
    lengthPrefixed([MAC_DOMAIN, TEXT.encode(id), TEXT.encode(JSON.stringify(body))]),
  );
  key.fill(0);
  return mac;
}

/**
 * Encodes account records as a version-3 file, accounts sorted by id (equal input, equal bytes),
 * each record with its MAC (module doc).
 *
 * @param records account id -> record.
 * @returns the JSON text.
 * @throws {InvalidKeyShare} for a bad account id or a record that breaks the invariants.
 */
export function encodeAccountRecords(records: ReadonlyMap<string, AccountRecord>): string {
  const ids = [...records.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const accounts: [string, Obj][] = ids.map((id) => {
    checkAccountId(id);
    const rec = records.get(id) as AccountRecord;
    return inAccount(id, () => {
      assertRecord(rec);
      const body = accountBody(rec.epochs[0].keyShare.publicKey, rec);
      return [id, { ...body, mac: toHex(recordMac(id, body, rec)) }];
    });
  });
  return JSON.stringify(
    { version: ACCOUNT_RECORDS_VERSION, accounts: Object.fromEntries(accounts) },
    null,
    2,
  ) + "\n";
}

/** Options of {@link decodeAccountRecords}. */
export interface DecodeRecordsOptions {
  /** Largest file accepted, in bytes (default `MAX_FILE_BYTES`), checked before parsing. */
  readonly maxBytes?: number;
  /**
   * Refuse files without MACs (versions 1 and 2) as `legacy-format` (default false: they load
   * as unauthenticated legacy files and get their MACs at the next write). The key store sets
   * it unless told to migrate a legacy file (keystore/key_store.ts).
   */
  readonly requireMac?: boolean;
  /**
   * Records validated before, by id and exact JSON of the record (a version-3 file): a record
   * found here is reused, not checked again (decoding is a pure function of id and JSON), and
   * every record decoded is added. The key store re-reads its file under its lock before each
   * write, and a record's checks cost exponentiations modulo its primes.
   */
  readonly memo?: RecordMemo;
}

/** What {@link DecodeRecordsOptions.memo} needs: a map from a record's key to its record. */
export interface RecordMemo {
  get(key: string): AccountRecord | undefined;
  set(key: string, rec: AccountRecord): void;
}

/** One account of a version-2 or -3 file, syntax checked, MAC not yet. */
interface AccountSyntax {
  readonly listed: Point;
  readonly rec: UncheckedRecord;
  readonly mac?: unknown;
}

function decodeAccountSyntax(raw: unknown, withMac: boolean): AccountSyntax {
  const isObject = typeof raw === "object" && raw !== null && !Array.isArray(raw);
  const hasIdentity = isObject && Object.hasOwn(raw, "identity");
  if (withMac && isObject && !Object.hasOwn(raw, "mac")) {
    throw tampered(`the record has no MAC, which version ${ACCOUNT_RECORDS_VERSION} requires`);
  }
  const fields = ["public_key", ...(hasIdentity ? ["identity"] : []), "epochs"];
  const e = asMalformed(() => expectFields(raw, withMac ? [...fields, "mac"] : fields, "account"));
  const listed = asMalformed(() => pointField(e.public_key, "public_key"));
  if (!Array.isArray(e.epochs) || e.epochs.length === 0 || e.epochs.length > MAX_EPOCHS) {
    throw malformed(`epochs: expected an array of 1..${MAX_EPOCHS} epochs`);
  }
  const epochs = e.epochs.map(decodeEpochSyntax);
  const rec = hasIdentity ? { identity: decodeIdentity(e.identity), epochs } : { epochs };
  return withMac ? { listed, rec, mac: e.mac } : { listed, rec };
}

/**
 * The MAC a version-3 account record should carry, computed from the record's own contents
 * (syntax checked, meaning not; a `mac` field is ignored): what a writer holding the secrets
 * would store. For tests that build the hostile files an attacker holding the secrets could make.
 * @internal
 */
export function accountRecordMac(id: string, raw: unknown): string {
  const withoutMac = typeof raw === "object" && raw !== null && !Array.isArray(raw)
    ? Object.fromEntries(Object.entries(raw).filter(([k]) => k !== "mac"))
    : raw;
  const { listed, rec } = decodeAccountSyntax(withoutMac, false);
  return toHex(recordMac(id, accountBody(listed, rec), rec));
}

/**
 * Decodes and validates a key share file of version 3, or of an earlier version: version 2
 * (records without MACs) and version 1 (core/keyshare.ts: each account then one current epoch
 * of kind `import`) load as unauthenticated legacy files unless `requireMac`. In version 3 each
 * record's MAC is checked before anything else is; nothing is returned unless everything is
 * valid.
 *
 * @param json the file's contents (text or UTF-8 bytes, after decryption).
 * @param options `maxBytes` cap, checked before parsing; `requireMac`.
 * @returns account id -> record.
 * @throws {InvalidKeyShare} naming the account; `tampered` for a missing or wrong MAC;
 *   `legacy-format` for a file of version 1 or 2 under `requireMac`; `unsupported-version` for
 *   a later version.
 */
export function decodeAccountRecords(
  json: string | Uint8Array,
  options: DecodeRecordsOptions = {},
): Map<string, AccountRecord> {
  const maxBytes = options.maxBytes ?? MAX_FILE_BYTES;
  const v = asMalformed(() => parseJson(json, maxBytes, "key share file"));
  const versioned = typeof v === "object" && v !== null && !Array.isArray(v) &&
    typeof (v as Obj).version === "number";
  const legacy = (version: number) =>
    new InvalidKeyShare(
      "legacy-format",
      `key share file: version ${version} has no MACs, and they are required`,
    );
  const out = new Map<string, AccountRecord>();
  if (!versioned) {
    if (options.requireMac) throw legacy(1);
    for (const [id, entry] of decodeAccountsFile(json, { maxBytes })) {
      out.set(id, fromEntry(entry));
    }
    return out;
  }
  const top = v as Obj;
  if (top.version !== ACCOUNT_RECORDS_VERSION && top.version !== LEGACY_VERSION) {
    throw new InvalidKeyShare(
      "unsupported-version",
      `key share file: expected version ${ACCOUNT_RECORDS_VERSION}, got ${String(top.version)}`,
    );
  }
  const withMac = top.version === ACCOUNT_RECORDS_VERSION;
  if (!withMac && options.requireMac) throw legacy(LEGACY_VERSION);
  const o = asMalformed(() => expectFields(top, ["version", "accounts"], "key share file"));
  const accounts = o.accounts;
  if (typeof accounts !== "object" || accounts === null || Array.isArray(accounts)) {
    throw malformed("key share file: expected an object of accounts");
  }
  const ids = Object.keys(accounts);
  ids.forEach(checkAccountId);
  for (const id of ids) {
    const memoKey = withMac && options.memo
      ? `${id}\n${JSON.stringify((accounts as Obj)[id])}`
      : undefined;
    const known = memoKey === undefined ? undefined : options.memo?.get(memoKey);
    if (known) {
      out.set(id, known);
      continue;
    }
    out.set(
      id,
      inAccount(id, () => {
        const { listed, rec: raw, mac } = decodeAccountSyntax((accounts as Obj)[id], withMac);
        if (withMac) {
          if (typeof mac !== "string" || !/^[0-9a-f]{64}$/.test(mac)) {
            throw tampered("mac: expected 64 lowercase hex digits");
          }
          if (!equalBytes(fromHex(mac), recordMac(id, accountBody(listed, raw), raw))) {
            throw tampered("the record's MAC does not match: the file was altered");
          }
        }
        const epochs = raw.epochs.map(validateEpoch);
        const rec: AccountRecord = raw.identity ? { identity: raw.identity, epochs } : { epochs };
        assertRecord(rec);
        if (!listed.equals(epochs[0].keyShare.publicKey)) {
          throw new InvalidKeyShare("inconsistent", "public_key differs from the key shares'");
        }
        if (memoKey !== undefined) options.memo?.set(memoKey, rec);
        return rec;
      }),
    );
  }
  return out;
}

/**
 * A new key share file (the current version, with MACs) holding the given accounts, each as one
 * current epoch of kind `import`: what `keygen offline` and the local stack write.
 * @param entries account id -> entry.
 * @returns the file's JSON text.
 */
export function encodeAccountEntries(entries: ReadonlyMap<string, AccountEntry>): string {
  return encodeAccountRecords(new Map([...entries].map(([id, e]) => [id, fromEntry(e)])));
}
