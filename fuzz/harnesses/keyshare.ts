/**
 * Harnesses of the key share formats, decoders only (`core/keyshare.ts`,
 * `core/account_records.ts`): one key share's syntax, one key share validated, a file of accounts
 * (version 1) and a file of epoch records (the current version). Seeds are files the project's own
 * encoders write for dealt shares over the fixture primes, with and without pinned identities,
 * with a pending epoch.
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import {
  ACCOUNT_RECORDS_VERSION,
  decodeAccountRecords,
  encodeAccountRecords,
  fromEntry,
  stagePending,
} from "../../core/account_records.ts";
import { samePayload } from "../../core/bytes.ts";
import { InvalidKeyShare } from "../../core/errors.ts";
import {
  type AccountEntry,
  decodeAccountsFile,
  decodeKeyShare,
  decodeKeyShareUnchecked,
  encodeAccountsFile,
  encodeKeyShare,
  type UncheckedKeyShare,
} from "../../core/keyshare.ts";
import { dealKeyShares } from "../../testing/fixtures/protocol_fixtures.ts";
import {
  allowOnly,
  bytesOf,
  type Harness,
  OracleFailure,
  type Target,
  textOf,
  valueTarget,
} from "../_engine.ts";

const DICTIONARY = [
  '"version"',
  '"curve"',
  '"secp256k1"',
  '"public_key"',
  '"public_shares"',
  '"key_share"',
  '"identity"',
  '"aux"',
  '"parties"',
  '"epochs"',
  '"pending"',
  '"current"',
];

/** The secret shares of the dealt "alice" key (a refresh keeps them). */
let dealtX: bigint[] = [];

/** Both parties' accounts over dealt shares; "alice" pins identities. */
function entries(): Map<string, AccountEntry>[] {
  const alice = dealKeyShares(2);
  dealtX = alice.map((s) => s.x);
  const bob = dealKeyShares(2, { keyOffset: 1 });
  const secrets = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
  const publicKeys = secrets.map((s) => ed25519.getPublicKey(s));
  return [0, 1].map((i) =>
    new Map<string, AccountEntry>([
      ["alice", { keyShare: alice[i], identity: { secretKey: secrets[i], publicKeys } }],
      ["bob.2", { keyShare: bob[i] }],
    ])
  );
}

/** Whether the parsed input equals the canonical encoding of what was decoded. */
function sameAsEncoded(input: Uint8Array, encoded: unknown, what: string): void {
  if (!samePayload(JSON.parse(textOf(input)), encoded)) {
    throw new OracleFailure(`${what}: accepted an input that is not its own canonical encoding`);
  }
}

function harness(
  name: string,
  fast: boolean,
  oracle: string,
  seeds: () => Uint8Array[],
  run: (input: Uint8Array) => string,
): Harness {
  return {
    name,
    oracle,
    kind: "json",
    fast,
    seconds: fast ? 60 : 20,
    timeoutMs: 5000,
    maxBytes: 256 * 1024,
    dictionary: DICTIONARY,
    setup: (): Target => ({ seeds: seeds(), allowed: allowOnly(InvalidKeyShare), run }),
  };
}

function shareHarness(
  name: string,
  fast: boolean,
  oracle: string,
  decode: (v: unknown) => unknown,
) {
  return {
    name,
    oracle,
    kind: "value" as const,
    fast,
    seconds: fast ? 60 : 20,
    timeoutMs: 5000,
    dictionary: DICTIONARY,
    setup: (): Target =>
      valueTarget({
        seeds: dealKeyShares(2).map((s) => encodeKeyShare(s)),
        allowed: allowOnly(InvalidKeyShare),
        runValue(json) {
          const u = decode(json) as UncheckedKeyShare;
          let encoded: unknown;
          try {
            encoded = encodeKeyShare(u);
          } catch (e) {
            // A value out of range (x = 0, a short rid): validation refuses it, not syntax.
            if (fast && (e instanceof TypeError || e instanceof RangeError)) return "out of range";
            throw e;
          }
          if (!samePayload(json, encoded)) {
            throw new OracleFailure("accepted a key share that is not its own canonical encoding");
          }
          return "decoded";
        },
      }),
  };
}

/** A key share's syntax (`decodeKeyShareUnchecked`): every field's length capped and parsed. */
export const keyshareSyntax: Harness = shareHarness(
  "keyshare-syntax",
  true,
  "InvalidKeyShare, or an unchecked share that re-encodes to exactly the input's JSON value " +
    "(when its values are in range)",
  decodeKeyShareUnchecked,
);

/** A key share validated (`decodeKeyShare`): syntax, then every relation between its values. */
export const keyshare: Harness = shareHarness(
  "keyshare",
  false,
  "InvalidKeyShare, or a valid share that re-encodes to exactly the input's JSON value",
  decodeKeyShare,
);

/** A key share file of accounts, version 1 (`decodeAccountsFile`). */
export const accountsFile: Harness = harness(
  "accounts-file",
  false,
  "InvalidKeyShare, or accounts that re-encode to exactly the input's JSON value",
  () => entries().map((e) => bytesOf(encodeAccountsFile(e))),
  (input) => {
    const accounts = decodeAccountsFile(input);
    sameAsEncoded(input, JSON.parse(encodeAccountsFile(accounts)), "accounts file");
    return `${accounts.size} accounts`;
  },
);

/** A key share file of epoch records (`decodeAccountRecords`; older versions load too). */
export const accountRecords: Harness = harness(
  "account-records",
  false,
  "InvalidKeyShare, or records that re-encode to exactly the input's JSON value (the current " +
    "version; older ones load)",
  () =>
    entries().map((e, i) => {
      const records = new Map([...e].map(([id, entry]) => [id, fromEntry(entry)]));
      // A refreshed share of the same key (same x, public data; new aux info): a pending epoch.
      const alice = e.get("alice")!;
      const xs = dealtX.map((x) => x);
      const [next] = dealKeyShares(2, { x: xs, keyOffset: 2 }).filter((s) => s.i === i);
      const keyShare = { ...next, rid: alice.keyShare.rid, chainCode: alice.keyShare.chainCode };
      const pending = stagePending(records.get("alice"), { ...alice, keyShare }, {
        kind: "refresh",
        sessionId: "ab".repeat(32),
      });
      records.set("alice", pending);
      return bytesOf(encodeAccountRecords(records));
    }),
  (input) => {
    const records = decodeAccountRecords(input);
    const parsed = JSON.parse(textOf(input));
    // Older versions load (and are written again in the current one): only the current
    // version must be its own canonical encoding.
    if (parsed?.version === ACCOUNT_RECORDS_VERSION) {
      sameAsEncoded(input, JSON.parse(encodeAccountRecords(records)), "records");
    }
    return `${records.size} accounts`;
  },
);
