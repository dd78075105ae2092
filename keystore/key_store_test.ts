import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { type AccountRecord, encodeAccountEntries, stagePending } from "../core/account_records.ts";
import { InvalidKeyShare, KeyEpochError } from "../core/errors.ts";
import { type AccountEntry, encodeAccountsFile } from "../core/keyshare.ts";
import {
  decryptKeyShareFileBytes,
  type Decryptor,
  detectKeyShareFileFormat,
  encryptKeyShareFileBytes,
  type EncryptTo,
  generateAgeIdentity,
  openKeyStore,
  parseAgeIdentityFile,
  resolveDecryptor,
} from "./key_store.ts";
import { KeyStoreError, type KeyStoreErrorCode } from "./errors.ts";
import { failingFs, fixtureEntries, strays, withDir } from "./_key_store_test_util.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
/** A low scrypt work factor keeps the tests fast; production writes use 18. */
const LOGN = 10;
const PASSPHRASE = "correct horse battery staple of the tests";
const { identity: ID, recipient: RCPT } = await generateAgeIdentity();
const { identity: OTHER_ID } = await generateAgeIdentity();
const { party0, party1, party1Other } = await fixtureEntries();

function fileText(accounts: Record<string, AccountEntry>): Uint8Array {
  return enc.encode(encodeAccountEntries(new Map(Object.entries(accounts))));
}

async function writeFile(
  path: string,
  accounts: Record<string, AccountEntry>,
  to: EncryptTo | null,
  armor = false,
): Promise<Uint8Array> {
  const plain = fileText(accounts);
  const bytes = to === null ? plain : await encryptKeyShareFileBytes(plain, to, { armor });
  await fsp.writeFile(path, bytes);
  return bytes;
}

function storeError(code: KeyStoreErrorCode, ...forbidden: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof KeyStoreError, String(e));
    assert.equal(e.code, code, e.message);
    for (const s of forbidden.filter((f) => f !== "")) {
      assert.ok(!e.message.includes(s), "a secret in the message");
    }
    return true;
  };
}

const BY_ID: Decryptor = { identity: ID };
const BY_PASS: Decryptor = { passphrase: PASSPHRASE };
const TO_ID: EncryptTo = { recipients: [RCPT] };
const TO_PASS: EncryptTo = { passphrase: PASSPHRASE, scryptWorkFactor: LOGN };

test("key store round trip with an X25519 identity: load, put, reload", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    await writeFile(path, { "acct-1": party1 }, TO_ID);
    const store = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1, parties: 2 });
    assert.deepEqual(store.accounts(), ["acct-1"]);
    assert.equal(store.format(), "age");
    assert.ok(store.has("acct-1") && !store.has("acct-2"));
    assert.ok(store.get("acct-1")?.keyShare.publicKey.equals(party1.keyShare.publicKey));
    assert.equal(store.get("acct-2"), undefined);

    await store.put("acct-2", party1);
    assert.deepEqual(store.accounts(), ["acct-1", "acct-2"]);
    const bytes = new Uint8Array(await fsp.readFile(path));
    assert.equal(detectKeyShareFileFormat(bytes), "age");
    assert.ok(!dec.decode(bytes).includes("key_share"), "the file is encrypted");
    assert.deepEqual(await strays(dir, "keys.age"), []);
    if (process.platform !== "win32") assert.equal((await fsp.stat(path)).mode & 0o777, 0o600);

    const again = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    assert.deepEqual(again.accounts(), ["acct-1", "acct-2"]);
    assert.equal(again.get("acct-2")?.keyShare.x, party1.keyShare.x);
  });
});

test("key store round trip with a passphrase keeps the configured scrypt work factor", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    await writeFile(path, { "acct-1": party1 }, TO_PASS);
    const store = await openKeyStore({
      path,
      decryptor: BY_PASS,
      partyIndex: 1,
      scryptWorkFactor: LOGN,
    });
    await store.put("acct-2", party1);
    const header = dec.decode((await fsp.readFile(path)).subarray(0, 200));
    assert.match(header, new RegExp(`^-> scrypt \\S+ ${LOGN}$`, "m"));
    const again = await openKeyStore({ path, decryptor: BY_PASS, partyIndex: 1 });
    assert.deepEqual(again.accounts(), ["acct-1", "acct-2"]);
  });
});

test("key store keeps pinned identity keys of an entry across a rewrite", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    const { ed25519 } = await import("@noble/curves/ed25519.js");
    const mine = ed25519.utils.randomSecretKey();
    const theirs = ed25519.getPublicKey(ed25519.utils.randomSecretKey());
    const withIdentity: AccountEntry = {
      keyShare: party1.keyShare,
      identity: { secretKey: mine, publicKeys: [theirs, ed25519.getPublicKey(mine)] },
    };
    await writeFile(path, { "acct-1": withIdentity }, TO_ID);
    const store = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    await store.put("acct-2", party1);
    const again = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    assert.deepEqual(again.get("acct-1")?.identity?.secretKey, mine);
    assert.equal(again.get("acct-2")?.identity, undefined);
  });
});

test("key store writes armor back when it read armor, binary when told", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    await writeFile(path, { "acct-1": party1 }, TO_ID, true);
    const store = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    assert.equal(store.format(), "age-armor");
    await store.put("acct-2", party1);
    assert.match(await fsp.readFile(path, "utf8"), /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
    const binary = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1, armor: false });
    await binary.put("acct-3", party1);
    assert.equal(binary.format(), "age");
    assert.equal(detectKeyShareFileFormat(new Uint8Array(await fsp.readFile(path))), "age");
  });
});

test("key store encrypts to extra recipients too (a backup key can decrypt)", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    const backup = await generateAgeIdentity();
    await writeFile(path, { "acct-1": party1 }, TO_ID);
    const store = await openKeyStore({
      path,
      decryptor: BY_ID,
      partyIndex: 1,
      recipients: [backup.recipient, RCPT],
    });
    await store.put("acct-2", party1);
    const bytes = new Uint8Array(await fsp.readFile(path));
    const plain = await decryptKeyShareFileBytes(bytes, { identity: backup.identity });
    assert.match(dec.decode(plain), /"acct-2"/);
    assert.equal((dec.decode(bytes.subarray(0, 400)).match(/^-> X25519 /gm) ?? []).length, 2);
  });
});

test("key store: a wrong identity or passphrase is a clear decrypt-failed, without secrets", async () => {
  await withDir(async (dir) => {
    const byId = join(dir, "id.age");
    const byPass = join(dir, "pass.age");
    await writeFile(byId, { "acct-1": party1 }, TO_ID);
    await writeFile(byPass, { "acct-1": party1 }, TO_PASS);
    const cases: [string, Decryptor, string][] = [
      [byId, { identity: OTHER_ID }, OTHER_ID],
      [byId, BY_PASS, PASSPHRASE],
      [byPass, { passphrase: "xyzzy-not-the-passphrase" }, "xyzzy"],
      [byPass, BY_ID, ID],
    ];
    for (const [path, decryptor, secret] of cases) {
      await assert.rejects(
        openKeyStore({ path, decryptor, partyIndex: 1 }),
        storeError("decrypt-failed", secret, secret.slice(16, 40)),
      );
    }
  });
});

test("key store refuses a plaintext file unless plaintext is allowed", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.json");
    await writeFile(path, { "acct-1": party1 }, null);
    await assert.rejects(
      openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 }),
      (e: unknown) =>
        storeError("not-encrypted")(e) && /is not encrypted/.test((e as Error).message),
    );
    await assert.rejects(
      openKeyStore({ path, decryptor: BY_PASS, partyIndex: 1 }),
      storeError("not-encrypted"),
    );

    // Development: plaintext in, plaintext out.
    const dev = await openKeyStore({ path, decryptor: { plaintext: true }, partyIndex: 1 });
    await dev.put("acct-2", party1);
    assert.equal(dev.format(), "plaintext");
    assert.match(await fsp.readFile(path, "utf8"), /"acct-2"/);

    // Migration: a key plus allowPlaintext reads the plaintext and writes it encrypted.
    const migrate = await openKeyStore({
      path,
      decryptor: BY_ID,
      partyIndex: 1,
      allowPlaintext: true,
    });
    assert.equal(migrate.format(), "plaintext");
    await migrate.put("acct-3", party1);
    assert.equal(migrate.format(), "age");
    const encrypted = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    assert.deepEqual(encrypted.accounts(), ["acct-1", "acct-2", "acct-3"]);
  });
});

test("a file without record MACs (versions 1, 2) is refused unless migrated; migration rewrites it with MACs", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    const v1 = enc.encode(encodeAccountsFile(new Map([["acct-1", party1]])));
    await fsp.writeFile(path, await encryptKeyShareFileBytes(v1, { recipients: [RCPT] }));
    const before = await fsp.readFile(path);
    const open = (migrateLegacy?: boolean) =>
      openKeyStore({ path, decryptor: { identity: ID }, partyIndex: 1, migrateLegacy });
    await assert.rejects(open(), (e: unknown) => {
      storeError("legacy-format")(e);
      assert.match((e as Error).message, /admin key-file migrate/);
      return true;
    });
    assert.deepEqual(await fsp.readFile(path), before, "a refusal leaves the file alone");
    const migrated = await open(true);
    assert.equal(migrated.get("acct-1")?.keyShare.x, party1.keyShare.x);
    const plain = await decryptKeyShareFileBytes(await fsp.readFile(path), { identity: ID });
    const o = JSON.parse(dec.decode(plain));
    assert.equal(o.version, 3);
    assert.match(o.accounts["acct-1"].mac, /^[0-9a-f]{64}$/);
    assert.deepEqual((await open()).accounts(), ["acct-1"], "opens without migration from now on");
  });
});

test("key store in plaintext mode refuses an encrypted file as needs-key", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    await writeFile(path, { "acct-1": party1 }, TO_ID);
    await assert.rejects(
      openKeyStore({ path, decryptor: { plaintext: true }, partyIndex: 1 }),
      storeError("needs-key"),
    );
  });
});

/** Hostile files: [name, bytes from a valid identity-encrypted file, expected error]. */
type Mangle = (valid: Uint8Array, armored: string) => Uint8Array;
const HOSTILE_FILES: [string, Mangle, KeyStoreErrorCode | "invalid-key-share"][] = [
  ["an empty file", () => new Uint8Array(0), "malformed"],
  ["only the version line", () => enc.encode("age-encryption.org/v1\n"), "malformed"],
  [
    "another age version",
    (v) => enc.encode(dec.decode(v).replace("org/v1", "org/v9")),
    "malformed",
  ],
  ["the header cut in half", (v) => v.subarray(0, 60), "malformed"],
  [
    "the header without its MAC line",
    (v) => v.subarray(0, dec.decode(v).indexOf("\n---")),
    "malformed",
  ],
  ["the payload cut off", (v) => v.subarray(0, v.length - 100), "corrupt"],
  [
    "the payload cut to the nonce",
    (v) => v.subarray(0, dec.decode(v).indexOf("\n", dec.decode(v).indexOf("\n---") + 1) + 1 + 16),
    "corrupt",
  ],
  ["one payload byte flipped", (v) => flip(v, v.length - 50), "corrupt"],
  ["the last byte flipped (tag)", (v) => flip(v, v.length - 1), "corrupt"],
  // Another base64 letter (XOR of a bit could make "+" or "/" an invalid character: malformed).
  ["the header MAC altered", (v) => swapBase64(v, dec.decode(v).indexOf("\n---") + 6), "corrupt"],
  ["a trailing byte appended", (v) => Uint8Array.of(...v, 0), "corrupt"],
  ["random bytes", () => crypto.getRandomValues(new Uint8Array(4096)), "not-encrypted"],
  [
    "armor with bad base64",
    (_, a) => enc.encode(a.replace(/\n[A-Za-z0-9+/]{10}/, "\n!!!!!!!!!!")),
    "malformed",
  ],
  [
    "armor without its end line",
    (_, a) => enc.encode(a.replace(/-----END[^\n]*\n?$/, "")),
    "malformed",
  ],
  ["armor cut in the middle", (_, a) => enc.encode(a.slice(0, a.length >> 1)), "malformed"],
  ["armor that is not UTF-8", (_, a) => Uint8Array.of(...enc.encode(a), 0xff, 0xfe), "malformed"],
];

function swapBase64(v: Uint8Array, i: number): Uint8Array {
  const out = Uint8Array.from(v);
  out[i] = out[i] === 0x41 ? 0x42 : 0x41; // "A" <-> anything else
  return out;
}

function flip(v: Uint8Array, i: number): Uint8Array {
  const out = Uint8Array.from(v);
  out[i] ^= 0x01;
  return out;
}

let validCache: Promise<{ binary: Uint8Array; armored: string }> | undefined;
function validFile() {
  validCache ??= (async () => {
    const binary = await encryptKeyShareFileBytes(fileText({ "acct-1": party1 }), TO_ID);
    const armored = dec.decode(
      await encryptKeyShareFileBytes(fileText({ "acct-1": party1 }), TO_ID, { armor: true }),
    );
    return { binary, armored };
  })();
  return validCache;
}

for (const [name, mangle, expected] of HOSTILE_FILES) {
  test(`key store refuses ${name} with ${expected}, leaving the file untouched`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "keys.age");
      const { binary, armored } = await validFile();
      const bytes = mangle(binary, armored);
      await fsp.writeFile(path, bytes);
      await assert.rejects(
        openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 }),
        (e: unknown) => {
          if (expected === "invalid-key-share") return e instanceof InvalidKeyShare;
          return storeError(expected, ID)(e);
        },
      );
      assert.deepEqual(new Uint8Array(await fsp.readFile(path)), bytes);
    });
  });
}

const HOSTILE_CONTENTS: [string, string][] = [
  ["not JSON", '{"acct-1": '],
  ["a JSON list", "[]"],
  ["an account with a bad id", '{"bad id!": {}}'],
  ["an entry missing its key share", '{"acct-1": {"public_key": "02"}}'],
];

for (const [name, text] of HOSTILE_CONTENTS) {
  test(`key store refuses encrypted contents that are ${name} with InvalidKeyShare`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "keys.age");
      await fsp.writeFile(path, await encryptKeyShareFileBytes(enc.encode(text), TO_ID));
      // Unversioned JSON is a legacy (version-1) file: refused as such, and when migration is
      // asked for, by its own decoder.
      await assert.rejects(
        openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 }),
        name === "not JSON" ? InvalidKeyShare : storeError("legacy-format"),
      );
      await assert.rejects(
        openKeyStore({ path, decryptor: BY_ID, partyIndex: 1, migrateLegacy: true }),
        InvalidKeyShare,
      );
    });
  });
}

test("key store refuses shares of another party index or party count", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    await writeFile(path, { "acct-0": party0, "acct-1": party1 }, TO_ID);
    await assert.rejects(
      openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 }),
      storeError("wrong-party"),
    );
    await assert.rejects(
      openKeyStore({ path, decryptor: BY_ID, partyIndex: 0 }),
      storeError("wrong-party"),
    );
    await writeFile(path, { "acct-1": party1 }, TO_ID);
    await assert.rejects(
      openKeyStore({ path, decryptor: BY_ID, partyIndex: 1, parties: 3 }),
      storeError("wrong-party"),
    );
  });
});

test("put refuses an existing account, another party's share and an invalid entry; nothing changes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    const before = await writeFile(path, { "acct-1": party1 }, TO_ID);
    const store = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    await assert.rejects(store.put("acct-1", party1), storeError("account-exists"));
    await assert.rejects(store.put("acct-0", party0), storeError("wrong-party"));
    await assert.rejects(store.put("bad id!", party1), InvalidKeyShare);
    await assert.rejects(store.put("", party1), InvalidKeyShare);
    await assert.rejects(store.put("a".repeat(129), party1), InvalidKeyShare);
    const broken = { keyShare: { ...party1.keyShare, x: party1.keyShare.x + 1n } };
    await assert.rejects(store.put("acct-2", broken), InvalidKeyShare);
    await assert.rejects(store.put("acct-2", {} as AccountEntry));
    await assert.rejects(store.put("acct-2", null as unknown as AccountEntry));
    assert.deepEqual(store.accounts(), ["acct-1"]);
    assert.deepEqual(new Uint8Array(await fsp.readFile(path)), before);
  });
});

test("a refresh epoch needs a committed account and the same public key", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    await writeFile(path, { "acct-1": party1 }, TO_ID);
    const store = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    const refresh = (e: AccountEntry) => (r: AccountRecord | undefined) =>
      stagePending(r, e, { kind: "refresh", sessionId: "" });
    await assert.rejects(
      store.update("acct-9", refresh(party1)),
      (e: unknown) => e instanceof KeyEpochError && e.code === "conflict",
    );
    await assert.rejects(
      store.update("acct-1", refresh(party1Other)),
      (e: unknown) => e instanceof KeyEpochError && e.code === "conflict",
    );
    await store.update("acct-1", refresh(party1)); // the same epoch: nothing to stage
    assert.equal(store.record("acct-1")?.epochs.length, 1);
    await store.put("acct-2", party1Other);
    const again = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    assert.ok(again.get("acct-2")?.keyShare.publicKey.equals(party1Other.keyShare.publicKey));
  });
});

for (const step of ["write", "sync", "rename"] as const) {
  test(`a crash at "${step}" during put leaves the old file loadable and memory unchanged`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "keys.age");
      const before = await writeFile(path, { "acct-1": party1 }, TO_ID);
      const store = await openKeyStore({
        path,
        decryptor: BY_ID,
        partyIndex: 1,
        fs: failingFs(step),
      });
      await assert.rejects(store.put("acct-2", party1), (e: unknown) => {
        assert.ok(storeError("io")(e));
        assert.match((e as Error).message, /EIO/);
        return true;
      });
      assert.deepEqual(store.accounts(), ["acct-1"]);
      assert.equal(store.has("acct-2"), false);
      assert.deepEqual(new Uint8Array(await fsp.readFile(path)), before);
      assert.deepEqual(await strays(dir, "keys.age"), []);
      const again = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
      assert.deepEqual(again.accounts(), ["acct-1"]);
    });
  });
}

test("concurrent writes are serialized: every put lands, a duplicate put fails", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    await writeFile(path, { "acct-1": party1 }, TO_ID);
    const store = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    const results = await Promise.allSettled([
      store.put("acct-2", party1),
      store.put("acct-3", party1Other),
      store.put("acct-2", party1),
      store.update("acct-1", (r) => r && { ...r }),
    ]);
    assert.deepEqual(results.map((r) => r.status), [
      "fulfilled",
      "fulfilled",
      "rejected",
      "fulfilled",
    ]);
    assert.ok(storeError("account-exists")((results[2] as PromiseRejectedResult).reason));
    const again = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    assert.deepEqual(again.accounts(), ["acct-1", "acct-2", "acct-3"]);
  });
});

test("a missing file is not-found, or an empty store created at the first write", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    await assert.rejects(
      openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 }),
      storeError("not-found"),
    );
    const store = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1, allowMissing: true });
    assert.deepEqual(store.accounts(), []);
    assert.equal(store.format(), null);
    await store.put("acct-1", party1);
    assert.equal(store.format(), "age");
    const again = await openKeyStore({ path, decryptor: BY_ID, partyIndex: 1 });
    assert.deepEqual(again.accounts(), ["acct-1"]);
  });
});

test("key store refuses a file above the size cap, read or written", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.age");
    await writeFile(path, { "acct-1": party1 }, TO_ID);
    await assert.rejects(
      openKeyStore({ path, decryptor: BY_ID, partyIndex: 1, maxBytes: 1000 }),
      storeError("too-large"),
    );
    const size = (await fsp.stat(path)).size;
    const store = await openKeyStore({
      path,
      decryptor: BY_ID,
      partyIndex: 1,
      maxBytes: size + 100,
    });
    await assert.rejects(store.put("acct-2", party1), storeError("too-large"));
    assert.deepEqual(store.accounts(), ["acct-1"]);
  });
});

const BAD_OPTIONS: [
  string,
  Record<string, unknown>,
  KeyStoreErrorCode | "TypeError" | "RangeError",
][] = [
  ["an identity that is not one", { decryptor: { identity: "AGE-SECRET-KEY-1nope" } }, "bad-key"],
  ["an identity of another kind", { decryptor: { identity: "ssh-ed25519 AAAA" } }, "bad-key"],
  ["a recipient as identity", { decryptor: { identity: "age1qqqq" } }, "bad-key"],
  ["an empty passphrase", { decryptor: { passphrase: "" } }, "bad-key"],
  ["a passphrase with recipients", { decryptor: BY_PASS, recipients: [RCPT] }, "bad-key"],
  ["a bad extra recipient", { decryptor: BY_ID, recipients: ["age1NOTBECH32"] }, "bad-key"],
  ["no decryptor kind", { decryptor: {} }, "TypeError"],
  ["plaintext: false", { decryptor: { plaintext: false } }, "TypeError"],
  ["an empty path", { path: "" }, "TypeError"],
  ["a negative party index", { partyIndex: -1 }, "RangeError"],
  ["a fractional party index", { partyIndex: 0.5 }, "RangeError"],
  ["parties not above the index", { partyIndex: 1, parties: 1 }, "RangeError"],
  ["a work factor above 20", { decryptor: BY_PASS, scryptWorkFactor: 21 }, "RangeError"],
  ["a work factor of 0", { decryptor: BY_PASS, scryptWorkFactor: 0 }, "RangeError"],
];

for (const [name, patch, expected] of BAD_OPTIONS) {
  test(`openKeyStore refuses ${name} before reading`, async () => {
    const options = { path: "/nonexistent/keys.age", decryptor: BY_ID, partyIndex: 1, ...patch };
    await assert.rejects(
      openKeyStore(options as Parameters<typeof openKeyStore>[0]),
      (e: unknown) => {
        if (expected === "TypeError") return e instanceof TypeError;
        if (expected === "RangeError") return e instanceof RangeError;
        return storeError(expected, "nope")(e);
      },
    );
  });
}

test("encryptKeyShareFileBytes refuses unusable targets", async () => {
  const plain = enc.encode("{}\n");
  await assert.rejects(encryptKeyShareFileBytes(plain, { recipients: [] }), storeError("bad-key"));
  await assert.rejects(
    encryptKeyShareFileBytes(plain, { recipients: ["age1x"] }),
    storeError("bad-key"),
  );
  await assert.rejects(encryptKeyShareFileBytes(plain, { passphrase: "" }), storeError("bad-key"));
  await assert.rejects(
    encryptKeyShareFileBytes("{}" as unknown as Uint8Array, TO_ID),
    TypeError,
  );
  // A well-formed but invalid bech32 recipient fails when the file key is wrapped.
  const bad = RCPT.slice(0, -1) + (RCPT.endsWith("q") ? "p" : "q");
  await assert.rejects(
    encryptKeyShareFileBytes(plain, { recipients: [bad] }),
    storeError("bad-key"),
  );
});

test("parseAgeIdentityFile reads age-keygen output and refuses anything else without echoing it", () => {
  const file = `# created: 2025-01-01T00:00:00Z\n# public key: ${RCPT}\n${ID}\n`;
  assert.equal(parseAgeIdentityFile(file), ID);
  assert.equal(parseAgeIdentityFile(`\r\n${ID}\r\n\r\n`), ID);
  const bad = [
    "",
    "# only a comment\n",
    `${ID}\n${OTHER_ID}\n`,
    `${ID} trailing\n`,
    "hunter2\n",
    RCPT,
  ];
  for (const text of bad) {
    assert.throws(() => parseAgeIdentityFile(text), storeError("bad-key", ID, "hunter2"));
  }
});

test("resolveDecryptor reads the identity file or the passphrase variable", async () => {
  const settings = { ageIdentityFile: "/keys/id.txt", passphraseEnv: "PASS" };
  const id = await resolveDecryptor({ ...settings, mode: "identity" }, {
    env: {},
    readFile: (p) => (p === "/keys/id.txt" ? `# c\n${ID}\n` : ""),
  });
  assert.deepEqual(id, { identity: ID });
  const pass = await resolveDecryptor({ ...settings, mode: "passphrase" }, {
    env: { PASS: PASSPHRASE },
    readFile: () => "",
  });
  assert.deepEqual(pass, { passphrase: PASSPHRASE });
  const plain = await resolveDecryptor({ ...settings, mode: "plaintext" }, {
    env: {},
    readFile: () => "",
  });
  assert.deepEqual(plain, { plaintext: true });
  await assert.rejects(
    resolveDecryptor({ ...settings, mode: "passphrase" }, { env: {}, readFile: () => "" }),
    storeError("bad-key"),
  );
  await assert.rejects(
    resolveDecryptor({ ...settings, mode: "identity" }, {
      env: {},
      readFile: () => {
        throw Object.assign(new Error("x"), { code: "EACCES" });
      },
    }),
    (e: unknown) => storeError("bad-key")(e) && /EACCES/.test((e as Error).message),
  );
});

test("detectKeyShareFileFormat tells binary, armor (after blanks) and plaintext apart", () => {
  assert.equal(detectKeyShareFileFormat(enc.encode("age-encryption.org/v1\n-> X25519")), "age");
  assert.equal(
    detectKeyShareFileFormat(enc.encode("\n  -----BEGIN AGE ENCRYPTED FILE-----\n")),
    "age-armor",
  );
  assert.equal(detectKeyShareFileFormat(enc.encode("{}")), "plaintext");
  assert.equal(detectKeyShareFileFormat(enc.encode("age-encryption")), "plaintext");
  assert.equal(detectKeyShareFileFormat(new Uint8Array(0)), "plaintext");
  assert.throws(() => detectKeyShareFileFormat("age" as unknown as Uint8Array), TypeError);
});
