import { test } from "node:test";
import assert from "node:assert/strict";
import { constantTimeEqual, createRoomTokenAuthority, createSecretChecker } from "./tokens.ts";

const SECRET = "test-secret-0123456789abcdef0123456789";
let clock = 1_700_000_000_000;
const now = () => clock;

test("a token verifies for its room and names its party", async () => {
  const auth = await createRoomTokenAuthority({ secret: SECRET, now });
  const { token, expiresAt } = await auth.issue("session-1", "p1", 60);
  assert.match(token, /^v1\.p1\.\d+\.[A-Za-z0-9_-]{43}$/);
  assert.equal(expiresAt, clock / 1000 + 60);
  assert.deepEqual(await auth.verify(token, "session-1"), { ok: true, party: "p1", expiresAt });
});

test("a token for another room, or under another secret, is invalid", async () => {
  const auth = await createRoomTokenAuthority({ secret: SECRET, now });
  const other = await createRoomTokenAuthority({ secret: SECRET + "x", now });
  const { token } = await auth.issue("session-1", "p1", 60);
  assert.deepEqual(await auth.verify(token, "session-2"), { ok: false, reason: "invalid" });
  assert.deepEqual(await other.verify(token, "session-1"), { ok: false, reason: "invalid" });
});

test("editing the party, the expiry or the MAC invalidates a token", async () => {
  const auth = await createRoomTokenAuthority({ secret: SECRET, now });
  const { token } = await auth.issue("r", "p1", 60);
  const [v, party, exp, mac] = token.split(".");
  const flip = mac[0] === "A" ? "B" + mac.slice(1) : "A" + mac.slice(1);
  for (
    const forged of [
      `${v}.p2.${exp}.${mac}`,
      `${v}.${party}.${Number(exp) + 1}.${mac}`,
      `${v}.${party}.${exp}.${flip}`,
    ]
  ) {
    assert.equal((await auth.verify(forged, "r")).ok, false, forged);
  }
});

test("room and party boundaries cannot be shifted (length-prefixed MAC input)", async () => {
  const auth = await createRoomTokenAuthority({ secret: SECRET, now });
  const { token } = await auth.issue("ab", "c", 60);
  const [, , exp, mac] = token.split(".");
  assert.equal((await auth.verify(`v1.bc.${exp}.${mac}`, "a")).ok, false);
});

test("an expired token is refused", async () => {
  const auth = await createRoomTokenAuthority({ secret: SECRET, now });
  const { token } = await auth.issue("r", "p1", 10);
  clock += 10_000;
  assert.deepEqual(await auth.verify(token, "r"), { ok: false, reason: "expired" });
  clock -= 10_000;
});

const MALFORMED = [
  "",
  "v1",
  "v1...",
  "v2.p1.1999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  "v1.p 1.1999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  "v1.p1.-5.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  "v1.p1.1999999999.AAAA",
  "v1.p1.1999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.extra",
  "v1.p1.1999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
  "x".repeat(100_000),
];

for (const bad of MALFORMED) {
  test(`a malformed token ${JSON.stringify(bad.slice(0, 24))} is refused`, async () => {
    const auth = await createRoomTokenAuthority({ secret: SECRET, now });
    assert.equal((await auth.verify(bad, "r")).ok, false);
  });
}

test("issuing refuses bad party labels and lifetimes; short secrets are refused", async () => {
  const auth = await createRoomTokenAuthority({ secret: SECRET, now });
  await assert.rejects(auth.issue("r", "", 60), RangeError);
  await assert.rejects(auth.issue("r", "a.b", 60), RangeError);
  await assert.rejects(auth.issue("r", "x".repeat(33), 60), RangeError);
  await assert.rejects(auth.issue("r", "p", 0), RangeError);
  await assert.rejects(createRoomTokenAuthority({ secret: "short" }), RangeError);
});

test("the issuer-secret checker accepts only the exact secret", async () => {
  const check = await createSecretChecker(SECRET);
  assert.equal(await check(SECRET), true);
  assert.equal(await check(SECRET.slice(0, -1)), false);
  assert.equal(await check(SECRET + "x"), false);
  assert.equal(await check(""), false);
});

test("constantTimeEqual compares content and length", () => {
  assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
  assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  assert.equal(constantTimeEqual(new Uint8Array([1]), new Uint8Array([1, 0])), false);
});
