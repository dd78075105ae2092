import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  type AccountRecord,
  accountRecordMac,
  chooseEpoch,
  currentEntry,
  decodeAccountRecords,
  discard,
  encodeAccountRecords,
  epochDigest,
  fromEntry,
  promote,
  stagePending,
  statement,
} from "./account_records.ts";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { toHex, toHexInt } from "./bytes.ts";
import { InvalidKeyShare, KeyEpochError } from "./errors.ts";
import {
  type AccountEntry,
  decodeAccountsFile,
  decodeKeyShare,
  encodeAccountsFile,
} from "./keyshare.ts";
import { Point, PRIME_BITS, Q } from "./params.ts";
import { generateRingPedersen } from "./ring_pedersen.ts";
import { platformSafePrime } from "../platform/mod.ts";
import { SLOW } from "../testing/setup.ts";
import { FIXTURE_SAFE_PRIMES } from "../testing/fixtures/keys.ts";

const FIXTURE = readFileSync(new URL("../testing/fixtures/keyshare_v1.json", import.meta.url));
const all = decodeAccountsFile(new Uint8Array(FIXTURE));
const base = all.get("TEST-ONLY-fixture-b") as AccountEntry;

/** Another epoch of the same key: x_1 + d, X_0 - dG (what a refresh looks like publicly). */
function reshared(e: AccountEntry, d: bigint): AccountEntry {
  const ks = e.keyShare;
  const x = (ks.x + d) % Q;
  const D = Point.BASE.multiply(d);
  const publicShares = [ks.publicShares[0].subtract(D), ks.publicShares[1].add(D)];
  return { ...e, keyShare: { ...ks, x, publicShares } };
}

const e1 = reshared(base, 5n);
const e2 = reshared(base, 7n);
const refresh = { kind: "refresh" as const, sessionId: "ab" };

test("epoch digest: equal for equal public values, different for another epoch", () => {
  assert.match(epochDigest(base.keyShare), /^[0-9a-f]{64}$/);
  assert.equal(epochDigest(base.keyShare), epochDigest({ ...base.keyShare, x: 1n }));
  assert.notEqual(epochDigest(base.keyShare), epochDigest(e1.keyShare));
  const aux = base.keyShare.aux;
  const swapped = { ...aux, parties: aux.parties.map((p) => ({ ...p, s: p.t, t: p.s })) };
  assert.notEqual(epochDigest(base.keyShare), epochDigest({ ...base.keyShare, aux: swapped }));
});

test("stage, promote: the promoted epoch is the only one left, current", () => {
  let rec: AccountRecord = fromEntry(base);
  rec = stagePending(rec, e1, refresh);
  assert.deepEqual(rec.epochs.map((e) => [e.counter, e.state]), [[0, "current"], [1, "pending"]]);
  assert.equal(currentEntry(rec)?.keyShare.x, base.keyShare.x, "pending is not used yet");
  assert.equal(stagePending(rec, e1, refresh), rec, "staging again is idempotent");
  rec = promote(rec, epochDigest(e1.keyShare));
  assert.deepEqual(rec.epochs.map((e) => [e.counter, e.state]), [[1, "current"]]);
  assert.equal(currentEntry(rec)?.keyShare.x, e1.keyShare.x);
  assert.throws(() => promote(rec, epochDigest(e2.keyShare)), KeyEpochError);
});

test("stage refuses what does not continue the account; discard never drops current", () => {
  const rec = fromEntry(base);
  const other = all.get("TEST-ONLY-fixture-a") as AccountEntry;
  const conflict = (e: unknown) => e instanceof KeyEpochError && e.code === "conflict";
  assert.throws(() => stagePending(rec, other, refresh), conflict);
  assert.throws(() => stagePending(undefined, e1, refresh), conflict);
  assert.throws(() => stagePending(rec, e1, { kind: "keygen", sessionId: "" }), conflict);
  assert.throws(() => discard(rec, epochDigest(base.keyShare)), conflict);
  const pendingOnly = stagePending(undefined, e1, { kind: "keygen", sessionId: "" });
  assert.equal(discard(pendingOnly, epochDigest(e1.keyShare)), undefined);
});

test("chooseEpoch: the newest epoch both hold, current or pending, else none", () => {
  const a = stagePending(fromEntry(base), e1, refresh);
  const b = fromEntry(base);
  const d0 = epochDigest(base.keyShare);
  const d1 = epochDigest(e1.keyShare);
  assert.deepEqual(chooseEpoch(statement(a), statement(b)), { counter: 0, digest: d0 });
  assert.deepEqual(chooseEpoch(statement(a), statement(a)), { counter: 1, digest: d1 });
  assert.deepEqual(chooseEpoch(statement(promote(a, d1)), statement(a)), {
    counter: 1,
    digest: d1,
  });
  assert.equal(chooseEpoch(statement(promote(a, d1)), statement(b)), undefined);
  // Same counter, another digest: not the same epoch.
  assert.equal(
    chooseEpoch([{ counter: 0, digest: d1, state: "current" }], statement(b)),
    undefined,
  );
});

test("file v3 round trip is exact and every record carries a MAC; v2 and v1 files load as legacy and get MACs at the next write", () => {
  const rec = stagePending(fromEntry(base), e1, refresh);
  const text = encodeAccountRecords(new Map([["acct", rec]]));
  const o = JSON.parse(text);
  assert.equal(o.version, 3);
  assert.match(o.accounts.acct.mac, /^[0-9a-f]{64}$/);
  const back = decodeAccountRecords(text).get("acct")!;
  assert.deepEqual(statement(back), statement(rec));
  assert.equal(encodeAccountRecords(new Map([["acct", back]])), text);
  assert.equal(accountRecordMac("acct", o.accounts.acct), o.accounts.acct.mac);
  // Version 1 (core/keyshare.ts) loads as one current epoch, and is written as version 3.
  const v1Text = encodeAccountsFile(new Map([["acct", base]]));
  const v1 = decodeAccountRecords(v1Text);
  assert.deepEqual(v1.get("acct")!.epochs.map((e) => [e.counter, e.state, e.kind]), [
    [0, "current", "import"],
  ]);
  assert.equal(JSON.parse(encodeAccountRecords(v1)).version, 3);
  // Version 2 is version 3 without MACs: it loads, unauthenticated, and is written with MACs.
  const v2Text = JSON.stringify(legacyV2(o), null, 2) + "\n";
  const v2 = decodeAccountRecords(v2Text);
  assert.deepEqual(statement(v2.get("acct")!), statement(rec));
  assert.equal(encodeAccountRecords(v2), text);
  // requireMac refuses the legacy versions, not version 3.
  const legacy = (e: unknown) => e instanceof InvalidKeyShare && e.code === "legacy-format";
  assert.throws(() => decodeAccountRecords(v1Text, { requireMac: true }), legacy);
  assert.throws(() => decodeAccountRecords(v2Text, { requireMac: true }), legacy);
  assert.equal(decodeAccountRecords(text, { requireMac: true }).size, 1);
});

test("the memo reuses a record only for the exact same id and JSON: an altered record is checked again", () => {
  const rec = stagePending(fromEntry(base), e1, refresh);
  const text = encodeAccountRecords(new Map([["acct", rec]]));
  const memo = new Map<string, AccountRecord>();
  const first = decodeAccountRecords(text, { memo }).get("acct")!;
  assert.equal(memo.size, 1);
  assert.equal(decodeAccountRecords(text, { memo }).get("acct"), first, "reused, not decoded");
  const o = JSON.parse(text);
  o.accounts.acct.epochs[0].session_id = "ab".repeat(16);
  refused(() => decodeAccountRecords(JSON.stringify(o), { memo }), "tampered", "altered record");
  // Another id with the same JSON is another record: its MAC (over the id) does not match.
  const renamed = { version: 3, accounts: { other: JSON.parse(text).accounts.acct } };
  refused(() => decodeAccountRecords(JSON.stringify(renamed), { memo }), "tampered", "renamed");
});

/** A version-3 file as version 2 would have held it: no MACs. */
// deno-lint-ignore no-explicit-any
function legacyV2(o: Record<string, any>): Record<string, any> {
  const out = structuredClone(o);
  out.version = 2;
  for (const a of Object.values(out.accounts)) delete (a as Record<string, unknown>).mac;
  return out;
}

/** Recomputes every record's MAC, as a writer holding the secrets would. */
// deno-lint-ignore no-explicit-any
function resealed(o: Record<string, any>): Record<string, any> {
  for (const [id, a] of Object.entries(o.accounts)) {
    (a as Record<string, unknown>).mac = accountRecordMac(id, a);
  }
  return o;
}

/** Asserts an InvalidKeyShare with `code` (and a message matching `re`). */
function refused(f: () => unknown, code: InvalidKeyShare["code"], what: string, re?: RegExp) {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof InvalidKeyShare, `${what}: expected InvalidKeyShare, got ${String(e)}`);
    assert.equal(e.code, code, `${what}: ${e.message}`);
    if (re) assert.match(e.message, re, what);
    return true;
  }, what);
}

test("file v3 hostile table: every broken invariant is refused (resealed: by its own check; as is: by the MAC)", () => {
  const rec = stagePending(fromEntry(base), e1, refresh);
  const good = JSON.parse(encodeAccountRecords(new Map([["acct", rec]])));
  // deno-lint-ignore no-explicit-any
  const cases: [string, (o: Record<string, any>) => void, InvalidKeyShare["code"]][] = [
    [
      "digest of another epoch",
      (o) => (o.accounts.acct.epochs[1].digest = o.accounts.acct.epochs[0].digest),
      "inconsistent",
    ],
    ["digest not hex", (o) => (o.accounts.acct.epochs[0].digest = "zz".repeat(32)), "malformed"],
    ["two current epochs", (o) => (o.accounts.acct.epochs[1].state = "current"), "inconsistent"],
    ["unknown state", (o) => (o.accounts.acct.epochs[1].state = "committed"), "malformed"],
    ["counters not increasing", (o) => (o.accounts.acct.epochs[1].counter = 0), "inconsistent"],
    ["negative counter", (o) => (o.accounts.acct.epochs[0].counter = -1), "malformed"],
    ["no epochs", (o) => (o.accounts.acct.epochs = []), "malformed"],
    [
      "five epochs",
      (o) => (o.accounts.acct.epochs = Array(5).fill(o.accounts.acct.epochs[0])),
      "malformed",
    ],
    ["unknown epoch field", (o) => (o.accounts.acct.epochs[0].note = "x"), "malformed"],
    [
      "listed public key of another key",
      (o) => (o.accounts.acct.public_key = Point.BASE.multiply(11n).toHex(true)),
      "inconsistent",
    ],
    [
      "epochs of another key",
      (o) => (o.accounts.acct.epochs[1].key_share = JSON.parse(
        encodeAccountsFile(new Map([["x", all.get("TEST-ONLY-fixture-a")!]])),
      ).x.key_share),
      "inconsistent",
    ],
    [
      "key share as a nested JSON string",
      (
        o,
      ) => (o.accounts.acct.epochs[0].key_share = JSON.stringify(
        o.accounts.acct.epochs[0].key_share,
      )),
      "malformed",
    ],
  ];
  for (const [name, mutate, code] of cases) {
    const o = structuredClone(good);
    mutate(o);
    const syntaxOnly = code === "malformed";
    // As an attacker without the secrets leaves it: the MAC refuses it, unless the syntax does first.
    refused(
      () => decodeAccountRecords(JSON.stringify(o)),
      syntaxOnly ? "malformed" : "tampered",
      name,
    );
    // As a writer holding the secrets would seal it: its own check refuses it.
    if (!syntaxOnly) refused(() => decodeAccountRecords(JSON.stringify(resealed(o))), code, name);
    // And as a legacy version-2 file: its own check refuses it.
    refused(() => decodeAccountRecords(JSON.stringify(legacyV2(o))), code, `${name} (v2)`);
  }
  for (
    const [name, mutate, code] of [
      // deno-lint-ignore no-explicit-any
      ["later version", (o: any) => (o.version = 4), "unsupported-version"],
      // deno-lint-ignore no-explicit-any
      ["unknown top field", (o: any) => (o.extra = 1), "malformed"],
    ] as const
  ) {
    const o = structuredClone(good);
    mutate(o);
    refused(() => decodeAccountRecords(JSON.stringify(o)), code, name);
  }
});

// Issue 15, finding 2: what a load cannot check is bound by the record MAC. Each tampering below
// is one a load accepts once the record is resealed (so only the MAC refuses it).
// deno-lint-ignore no-explicit-any
type Edit = (o: Record<string, any>) => void;

/** Party 0's (the peer's) aux entry of epoch k of "acct". */
// deno-lint-ignore no-explicit-any
const peerAux = (o: Record<string, any>, k = 0) =>
  o.accounts.acct.epochs[k].key_share.aux.parties[0];

/** Recomputes the public epoch digests (anyone can: they are SHA-256 of public values). */
// deno-lint-ignore no-explicit-any
function redigest(o: Record<string, any>): void {
  for (const e of o.accounts.acct.epochs) e.digest = epochDigest(decodeKeyShare(e.key_share));
}

const hexAdd = (h: string, d: bigint) => toHexInt(BigInt("0x" + h) + d);

const MAC_TAMPERING: [string, Edit][] = [
  ["a peer's N (another valid modulus, digest recomputed)", (o) => {
    const N = FIXTURE_SAFE_PRIMES[0] * FIXTURE_SAFE_PRIMES[5]; // not the peer's (4, 5) nor ours
    peerAux(o).N = toHexInt(N);
    redigest(o);
  }],
  ["a peer's s (digest recomputed)", (o) => {
    peerAux(o).s = hexAdd(peerAux(o).s, 2n);
    redigest(o);
  }],
  ["a peer's t (digest recomputed)", (o) => {
    const { N, t } = peerAux(o);
    peerAux(o).t = toHexInt((BigInt("0x" + t) ** 2n) % BigInt("0x" + N));
    redigest(o);
  }],
  ["rid", (o) => {
    const ks = o.accounts.acct.epochs[0].key_share;
    ks.rid = (ks.rid[0] === "0" ? "1" : "0") + ks.rid.slice(1);
  }],
  ["the chain code", (o) => {
    const ks = o.accounts.acct.epochs[1].key_share;
    ks.chain_code = ks.chain_code.slice(0, -1) + (ks.chain_code.endsWith("0") ? "1" : "0");
  }],
  ["a peer's pinned identity key", (o) => {
    o.accounts.acct.identity.public_keys[0] = toHex(ed25519.getPublicKey(new Uint8Array(32)));
  }],
  ["an epoch's session id", (o) => (o.accounts.acct.epochs[1].session_id = "cd")],
  ["an epoch's kind", (o) => (o.accounts.acct.epochs[0].kind = "keygen")],
  ["the pending epoch dropped", (o) => o.accounts.acct.epochs.pop()],
  ["the account renamed", (o) => {
    o.accounts.other = o.accounts.acct;
    delete o.accounts.acct;
  }],
];

/** The record of the MAC tests: fixture b (party 1) with identities, a current and a pending epoch. */
function macFixture(): string {
  const own = new Uint8Array(32).fill(3);
  const identity = {
    secretKey: own,
    publicKeys: [ed25519.getPublicKey(new Uint8Array(32).fill(4)), ed25519.getPublicKey(own)],
  };
  const rec = stagePending(fromEntry({ ...base, identity }), { ...e1, identity }, refresh);
  return encodeAccountRecords(new Map([["acct", rec]]));
}

for (const [name, edit] of MAC_TAMPERING) {
  test(`file v3 refuses a record whose ${name} was altered: tampered (loads when resealed)`, () => {
    const o = JSON.parse(macFixture());
    edit(o);
    refused(() => decodeAccountRecords(JSON.stringify(o)), "tampered", name, /MAC does not match/);
    assert.equal(decodeAccountRecords(JSON.stringify(resealed(o))).size, 1, name);
  });
}

test("file v3 refuses a record with a missing, malformed or another record's MAC: tampered", () => {
  const text = macFixture();
  const cases: [string, Edit, RegExp][] = [
    ["missing", (o) => delete o.accounts.acct.mac, /no MAC/],
    ["null", (o) => (o.accounts.acct.mac = null), /mac: expected 64/],
    ["short", (o) => (o.accounts.acct.mac = o.accounts.acct.mac.slice(2)), /mac: expected 64/],
    ["uppercase", (o) => (o.accounts.acct.mac = o.accounts.acct.mac.toUpperCase()), /mac/],
    ["zero", (o) => (o.accounts.acct.mac = "00".repeat(32)), /MAC does not match/],
    [
      "another record's",
      (o) => (o.accounts.acct.mac = JSON.parse(
        encodeAccountRecords(new Map([["acct", fromEntry(base)]])),
      ).accounts.acct.mac),
      /MAC does not match/,
    ],
  ];
  for (const [name, edit, re] of cases) {
    const o = JSON.parse(text);
    edit(o);
    refused(() => decodeAccountRecords(JSON.stringify(o)), "tampered", name, re);
  }
  assert.equal(decodeAccountRecords(text).size, 1);
});

test("file v3 refuses the issue's own ring-Pedersen values even under a valid MAC: weak-aux-info", () => {
  const ks = base.keyShare;
  const i = ks.i;
  const own = ks.aux.parties[i];
  const withOwn = (s: bigint, t: bigint): string => {
    const parties = ks.aux.parties.map((p, j) => (j === i ? { ...p, s, t } : p));
    const keyShare = { ...ks, aux: { ...ks.aux, parties } };
    // encodeAccountRecords checks the shape only: the writer seals whatever it is given.
    return encodeAccountRecords(new Map([["acct", fromEntry({ keyShare })]]));
  };
  const random30 = BigInt("0x" + toHex(sha256(new TextEncoder().encode("issue-15"))).slice(0, 60));
  const cases: [string, string, RegExp][] = [
    ["s, t = 2, 3", withOwn(2n, 3n), /ring-Pedersen s has 2 bits/],
    [
      "t truncated to 28 bytes",
      withOwn(own.s, BigInt("0x" + toHexInt(own.t).slice(0, 56))),
      /t has 2\d\d bits/,
    ],
    ["a random 30-byte s", withOwn(random30 | (1n << 239n), own.t), /s has 240 bits/],
  ];
  for (const [name, text, re] of cases) {
    refused(() => decodeAccountRecords(text), "weak-aux-info", name, re);
  }
  assert.equal(decodeAccountRecords(withOwn(own.s, own.t)).size, 1);
});

test(
  "slow: a share with fresh 1536-bit safe primes and ring-Pedersen loads; own and peer tampering refused",
  {
    skip: !SLOW && "slow tier: generates two real 1536-bit safe primes",
  },
  async () => {
    let p: bigint, q: bigint;
    do {
      [p, q] = await Promise.all([platformSafePrime(PRIME_BITS), platformSafePrime(PRIME_BITS)]);
    } while (p === q);
    const rp = generateRingPedersen(p, q);
    const ks = base.keyShare;
    const parties = ks.aux.parties.map((e, j) => (j === ks.i ? { N: rp.N, s: rp.s, t: rp.t } : e));
    const keyShare = { ...ks, aux: { ...ks.aux, p, q, parties } };
    const text = encodeAccountRecords(new Map([["acct", fromEntry({ keyShare })]]));
    const started = performance.now();
    const back = decodeAccountRecords(text).get("acct")!;
    // Reported, not asserted: the load cost at real size (docs/key-lifecycle.md, "File format").
    console.log(`one account loaded in ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(back.epochs[0].keyShare.aux.p, p);
    assert.equal(encodeAccountRecords(new Map([["acct", back]])), text);
    // Own t replaced by a full-size non-residue, resealed: the own check refuses it.
    const own = JSON.parse(text);
    own.accounts.acct.epochs[0].key_share.aux.parties[ks.i].t = toHexInt(rp.N - rp.t);
    refused(
      () => decodeAccountRecords(JSON.stringify(resealed(own))),
      "weak-aux-info",
      "own t",
      /t is not a quadratic residue/,
    );
    // A peer's s altered: the MAC refuses it.
    const peer = JSON.parse(text);
    peerAux(peer).s = hexAdd(peerAux(peer).s, 2n);
    refused(() => decodeAccountRecords(JSON.stringify(peer)), "tampered", "peer s");
  },
);
