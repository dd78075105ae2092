/**
 * The key share file format, version 1: JSON, one file holding the key shares of many accounts
 * for ONE party, validated on load.
 *
 * ## File (`encodeKeyShareFile` / `decodeKeyShareFile`)
 *
 * The seed's shape: a JSON object keyed by account id (`^[A-Za-z0-9._-]{1,128}$`). Each entry
 * holds the versioned key share, for tools that only list accounts the account's public key
 * (which must equal `key_share.public_key`), and, optionally, the identity keys pinned at key
 * generation that authenticate every later session of the account (`encodeAccountsFile` /
 * `decodeAccountsFile`; n distinct Ed25519 public keys, this party's matching its secret key):
 *
 * ```json
 * {
 *   "<account_id>": {
 *     "key_share": { ...key share, below... },
 *     "public_key": "<33-byte compressed point, lowercase hex>",
 *     "identity": { "secret_key": "<32 bytes hex>", "public_keys": ["<32 bytes hex>", ...] }
 *   }
 * }
 * ```
 *
 * ## Key share, version 1 (`encodeKeyShare` / `decodeKeyShare`)
 *
 * ```json
 * {
 *   "version": 1,
 *   "curve": "secp256k1",
 *   "i": 0,                        // this party's index, 0 <= i < n
 *   "n": 2,                        // number of parties (n-of-n), 2 <= n <= 64
 *   "x": "<32 bytes hex>",         // secret share x_i, 0 < x_i < q, fixed width
 *   "public_key": "<point>",       // X = sum_j X_j
 *   "public_shares": ["<point>"],  // X_j = x_j G for every party j (n entries)
 *   "rid": "<48 bytes hex>",       // joint randomness of key generation
 *   "chain_code": "<32 bytes hex>",// joint BIP-32 chain code
 *   "aux": {
 *     "p": "<int>", "q": "<int>",  // this party's Paillier safe primes (secret)
 *     "parties": [{ "N": "<int>", "s": "<int>", "t": "<int>" }]  // every party (n entries)
 *   }
 * }
 * ```
 *
 * Points are compressed SEC1 (`02`/`03` + 32 bytes), lowercase hex. Integers other than `x` are
 * minimal lowercase even-length hex (`toHexInt`: no leading zero byte), at most 384 bytes.
 * Fields are exact: a missing or unknown field is an error, and a later format gets a new
 * `version` (older versions keep loading: `testing/fixtures/keyshare_v1.json` is kept for that).
 *
 * ## Validation on load (cggmp21 notes, "Key share validation on load")
 *
 * Decoding is two steps (house style): `decodeKeyShareUnchecked` checks the syntax, with a cap on
 * every field's length before it is parsed, into an `UncheckedKeyShare`; `validateKeyShare`
 * checks the meaning and returns a `KeyShare`. Checks: curve secp256k1; n >= 2; 0 <= i < n;
 * n public shares and n aux entries; X_i == x_i G; sum of X_j == X; for every party N_j of
 * 3071-3072 bits, odd, without a factor below 2^16, composite (base-2 Fermat), pairwise distinct,
 * and s_j, t_j units mod N_j with s_j != t_j, neither 1. For this party, whose factors the file
 * holds (issue 15, finding 2): N_i == p q, p != q, both safe primes of exactly 1536 bits and
 * 3 mod 4 (Blum): (r - 1) / 2 passes 20 Miller-Rabin rounds with random bases and r one base-2
 * Fermat test, which proves r prime once (r - 1) / 2 is (Pocklington); and its own s_i, t_i as aux
 * info makes them: both at least bitLength(N_i) - 128 bits (a truncated or small value is
 * refused), t_i a quadratic residue of full order modulo p and modulo q, s_i in <t_i> (a residue
 * modulo p and q). Every exponentiation with p or q runs on the secret slot of `math/modpow.ts`.
 * Cost: about 46 exponentiations modulo 1536-bit primes per share, plus one 3072-bit one per
 * other party (measured in docs/key-lifecycle.md, "File format").
 *
 * What this cannot check: the other parties' N_j, s_j, t_j beyond their shape, `rid`, the chain
 * code. They are bound to the holder's secrets by the MAC of the version-3 accounts file
 * (`account_records.ts`); this version-1 file format has no MAC.
 *
 * Every failure is an `InvalidKeyShare` with a code: `malformed` (not JSON, wrong shape or type,
 * unknown field, bad hex, oversized field, bad account id), `unsupported-version`,
 * `wrong-curve`, `inconsistent` (counts, indices, shares that do not match), `weak-aux-info`
 * (a modulus, prime or ring-Pedersen parameter that fails its checks), and in a version-3
 * accounts file `tampered` (a missing or wrong MAC). Messages never contain a secret.
 *
 * The code is split along these seams: `keyshare_json.ts` (the key share's wire form and its
 * syntax), `keyshare_validation.ts` (its meaning), `keyshare_own_aux.ts` (the checks of this
 * party's own primes and s, t) and `accounts_file_v1.ts` (the file of accounts); this module
 * re-exports their public API.
 *
 * @example
 * ```ts
 * import { decodeKeyShareFile, encodeKeyShareFile } from "./keyshare.ts";
 * const empty = encodeKeyShareFile(new Map());
 * console.assert(decodeKeyShareFile(empty).size === 0);
 * ```
 * @module
 */
import type { KeyShare } from "./protocols/types.ts";
import { decodeKeyShareUnchecked } from "./keyshare_json.ts";
import { validateKeyShare } from "./keyshare_validation.ts";

export {
  decodeKeyShareUnchecked,
  encodeKeyShare,
  KEY_SHARE_VERSION,
  type KeyShareJsonV1,
  MAX_FILE_BYTES,
  type PartyAuxJsonV1,
  type UncheckedKeyShare,
} from "./keyshare_json.ts";
export { validateKeyShare } from "./keyshare_validation.ts";
export {
  ACCOUNT_ID_PATTERN,
  type AccountEntry,
  type AccountEntryJsonV1,
  type AccountIdentity,
  type AccountIdentityJsonV1,
  decodeAccountsFile,
  type DecodeFileOptions,
  decodeKeyShareFile,
  encodeAccountsFile,
  encodeKeyShareFile,
  type KeyShareFileJsonV1,
} from "./accounts_file_v1.ts";

/**
 * Decodes and validates one key share: `validateKeyShare(decodeKeyShareUnchecked(json))`.
 *
 * @param json JSON text, UTF-8 bytes, or a parsed value.
 * @returns the validated key share.
 * @throws {InvalidKeyShare} see the module doc for the codes.
 * @example
 * ```ts
 * import { decodeKeyShare } from "./keyshare.ts";
 * try {
 *   decodeKeyShare({ version: 1, curve: "ed25519" });
 * } catch (e) {
 *   console.assert((e as { code: string }).code === "malformed"); // fields are checked first
 * }
 * ```
 */
export function decodeKeyShare(json: unknown): KeyShare {
  return validateKeyShare(decodeKeyShareUnchecked(json));
}
