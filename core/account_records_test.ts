import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  type AccountRecord,
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
import { InvalidKeyShare, KeyEpochError } from "./errors.ts";
import { type AccountEntry, decodeAccountsFile, encodeAccountsFile } from "./keyshare.ts";
import { Point, Q } from "./params.ts";

const FIXTURE = readFileSync(new URL("../tests/fixtures/keyshare_v1.json", import.meta.url));
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

test("file v2 round trip; v1 files load as one current epoch", () => {
  const rec = stagePending(fromEntry(base), e1, refresh);
  const text = encodeAccountRecords(new Map([["acct", rec]]));
  const back = decodeAccountRecords(text).get("acct")!;
  assert.deepEqual(statement(back), statement(rec));
  assert.equal(encodeAccountRecords(new Map([["acct", back]])), text);
  const v1 = decodeAccountRecords(encodeAccountsFile(new Map([["acct", base]])));
  assert.deepEqual(v1.get("acct")!.epochs.map((e) => [e.counter, e.state, e.kind]), [
    [0, "current", "import"],
  ]);
});

test("file v2 hostile table: every broken invariant is refused", () => {
  const rec = stagePending(fromEntry(base), e1, refresh);
  const good = JSON.parse(encodeAccountRecords(new Map([["acct", rec]])));
  // deno-lint-ignore no-explicit-any
  const cases: [string, (o: Record<string, any>) => void][] = [
    ["later version", (o) => (o.version = 3)],
    ["unknown top field", (o) => (o.extra = 1)],
    [
      "digest of another epoch",
      (o) => (o.accounts.acct.epochs[1].digest = o.accounts.acct.epochs[0].digest),
    ],
    ["digest not hex", (o) => (o.accounts.acct.epochs[0].digest = "zz".repeat(32))],
    ["two current epochs", (o) => (o.accounts.acct.epochs[1].state = "current")],
    ["unknown state", (o) => (o.accounts.acct.epochs[1].state = "committed")],
    ["counters not increasing", (o) => (o.accounts.acct.epochs[1].counter = 0)],
    ["negative counter", (o) => (o.accounts.acct.epochs[0].counter = -1)],
    ["no epochs", (o) => (o.accounts.acct.epochs = [])],
    ["five epochs", (o) => (o.accounts.acct.epochs = Array(5).fill(o.accounts.acct.epochs[0]))],
    ["unknown epoch field", (o) => (o.accounts.acct.epochs[0].note = "x")],
    [
      "listed public key of another key",
      (o) => (o.accounts.acct.public_key = "02" + "11".repeat(32)),
    ],
    [
      "epochs of another key",
      (o) => (o.accounts.acct.epochs[1].key_share = JSON.parse(
        encodeAccountsFile(new Map([["x", all.get("TEST-ONLY-fixture-a")!]])),
      ).x.key_share),
    ],
  ];
  for (const [name, mutate] of cases) {
    const o = structuredClone(good);
    mutate(o);
    assert.throws(() => decodeAccountRecords(JSON.stringify(o)), InvalidKeyShare, name);
  }
});
