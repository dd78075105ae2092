import { test } from "node:test";
import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  type CallerConfig,
  createAuthenticator,
  generateToken,
  hashToken,
  parseCallersFile,
} from "./auth.ts";
import { AuthError, ConfigError } from "./errors.ts";

const TOKEN_A = "token-of-caller-a-0123456789abcdefghij";
const TOKEN_B = "token-of-caller-b-0123456789abcdefghij";
const TOKEN_C = "token-of-caller-c-0123456789abcdefghij";

const CALLERS: CallerConfig[] = [
  { id: "a", tokenSha256: hashToken(TOKEN_A), accounts: ["acct-1", "team-*"], mayKeygen: false },
  { id: "b", tokenSha256: hashToken(TOKEN_B), accounts: ["*"], mayKeygen: true },
  { id: "c", tokenSha256: hashToken(TOKEN_C), accounts: [], mayKeygen: true },
];

function isAuthError(code: AuthError["code"]) {
  return (e: unknown) => e instanceof AuthError && e.code === code;
}

test("hashToken is the hex SHA-256 of the token's UTF-8 bytes", () => {
  const want = Array.from(
    sha256(new TextEncoder().encode(TOKEN_A)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  assert.equal(hashToken(TOKEN_A), want);
  assert.throws(() => hashToken("short"), RangeError);
  assert.throws(() => hashToken("x".repeat(31)), RangeError);
  assert.throws(() => hashToken(`${"x".repeat(40)} y`), RangeError);
  assert.throws(() => hashToken("x".repeat(513)), RangeError);
});

test("generateToken gives distinct 43-character base64url tokens that hashToken accepts", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const t = generateToken();
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(hashToken(t).length, 64);
    seen.add(t);
  }
  assert.equal(seen.size, 50);
});

test("authenticate finds each caller by its bearer token; the scheme is case-insensitive", () => {
  const auth = createAuthenticator(CALLERS);
  assert.equal(auth.authenticate(`Bearer ${TOKEN_A}`).id, "a");
  assert.equal(auth.authenticate(`bearer ${TOKEN_B}`).id, "b");
  assert.equal(auth.authenticate(`BEARER  ${TOKEN_C} `).id, "c");
  const caller = auth.authenticate(`Bearer ${TOKEN_B}`);
  assert.deepEqual(Object.keys(caller).sort(), ["accounts", "id", "mayKeygen"]);
  assert.ok(Object.isFrozen(caller) && Object.isFrozen(caller.accounts));
});

const BAD_HEADERS: [string, string | null | undefined][] = [
  ["no header", null],
  ["undefined header", undefined],
  ["empty header", ""],
  ["scheme only", "Bearer"],
  ["scheme and space", "Bearer "],
  ["another scheme", `Basic ${TOKEN_A}`],
  ["no scheme", TOKEN_A],
  ["two tokens", `Bearer ${TOKEN_A} ${TOKEN_B}`],
  ["a short token", "Bearer abc"],
  ["31 characters", `Bearer ${"x".repeat(31)}`],
  ["unknown token", `Bearer ${"z".repeat(40)}`],
  ["token with one byte changed", `Bearer ${TOKEN_A.slice(0, -1)}k`],
  ["token prefix", `Bearer ${TOKEN_A.slice(0, 32)}`],
  ["token with a suffix", `Bearer ${TOKEN_A}x`],
  ["the token's hash instead", `Bearer ${hashToken(TOKEN_A)}`],
  ["non-ASCII token", `Bearer ${"é".repeat(40)}`],
  ["control character", `Bearer ${TOKEN_A}\u0000`],
  ["tab separator", `Bearer\t${TOKEN_A}`],
  ["newline injection", `Bearer ${TOKEN_A}\nX-Other: 1`],
  ["a megabyte header", `Bearer ${"x".repeat(1 << 20)}`],
  ["not a string", 42 as unknown as string],
];

for (const [name, header] of BAD_HEADERS) {
  test(`authenticate refuses ${name} as unauthenticated with the uniform message`, () => {
    const auth = createAuthenticator(CALLERS);
    assert.throws(() => auth.authenticate(header), (e: unknown) => {
      assert.ok(isAuthError("unauthenticated")(e), String(e));
      assert.equal((e as Error).message, "missing or invalid credentials");
      return true;
    });
  });
}

test("authenticate with no callers refuses everyone", () => {
  const auth = createAuthenticator([]);
  assert.throws(() => auth.authenticate(`Bearer ${TOKEN_A}`), isAuthError("unauthenticated"));
});

test("authorize allows exact ids, prefixes and *; keygen needs may_keygen", () => {
  const auth = createAuthenticator(CALLERS);
  const [a, b, c] = CALLERS.map((_, i) =>
    auth.authenticate(`Bearer ${[TOKEN_A, TOKEN_B, TOKEN_C][i]}`)
  );
  for (const action of ["sign", "read", "refresh"] as const) {
    auth.authorize(a, "acct-1", action);
    auth.authorize(a, "team-42", action);
    auth.authorize(b, "anything.at_all-1", action);
  }
  auth.authorize(b, "new-acct", "keygen");
  assert.throws(() => auth.authorize(a, "team-new", "keygen"), isAuthError("permission-denied"));
  assert.equal(auth.canAccess(a, "team-42"), true);
  assert.equal(auth.canAccess(c, "acct-1"), false);
});

const DENIED: [string, string, string][] = [
  ["another caller's account", "a", "acct-2"],
  ["an exact id's extension", "a", "acct-10"],
  ["an exact id's prefix", "a", "acct-"],
  ["the prefix without its star", "a", "team"],
  ["a case variant", "a", "ACCT-1"],
  ["an empty id", "a", ""],
  ["an id that is a pattern", "b", "team-*"],
  ["an id with a slash", "b", "team-/../x"],
  ["an overlong id", "b", "a".repeat(129)],
  ["any id for a caller with no accounts", "c", "acct-1"],
];

for (const [name, who, account] of DENIED) {
  test(`authorize refuses ${name} as permission-denied`, () => {
    const auth = createAuthenticator(CALLERS);
    const token = { a: TOKEN_A, b: TOKEN_B, c: TOKEN_C }[who] as string;
    const caller = auth.authenticate(`Bearer ${token}`);
    assert.throws(() => auth.authorize(caller, account, "sign"), isAuthError("permission-denied"));
    assert.equal(auth.canAccess(caller, account), false);
  });
}

test("authorize looks the caller up by id: a forged caller object gains nothing", () => {
  const auth = createAuthenticator(CALLERS);
  const forged = { id: "a", accounts: ["*"], mayKeygen: true };
  assert.throws(() => auth.authorize(forged, "acct-2", "sign"), isAuthError("permission-denied"));
  assert.throws(() => auth.authorize(forged, "acct-1", "keygen"), isAuthError("permission-denied"));
  auth.authorize({ id: "a" }, "acct-1", "sign");
  assert.throws(
    () => auth.authorize({ id: "nobody" }, "acct-1", "read"),
    isAuthError("permission-denied"),
  );
  assert.throws(
    () => auth.authorize(null as unknown as { id: string }, "acct-1", "read"),
    isAuthError("permission-denied"),
  );
  assert.equal(auth.canAccess({ id: "nobody" }, "acct-1"), false);
});

test("authorize refuses an unknown action", () => {
  const auth = createAuthenticator(CALLERS);
  const b = auth.authenticate(`Bearer ${TOKEN_B}`);
  assert.throws(
    () => auth.authorize(b, "acct-1", "delete" as "sign"),
    isAuthError("permission-denied"),
  );
});

test("parseCallersFile reads YAML and JSON", () => {
  const yaml = `callers:
  - id: wallet-backend
    token_sha256: ${hashToken(TOKEN_A)}
    accounts: ["acct-1", "team-*"]
    may_keygen: true
  - { id: reader, token_sha256: "${hashToken(TOKEN_B)}", accounts: [] }
`;
  const callers = parseCallersFile(yaml);
  assert.deepEqual(callers, [
    {
      id: "wallet-backend",
      tokenSha256: hashToken(TOKEN_A),
      accounts: ["acct-1", "team-*"],
      mayKeygen: true,
    },
    { id: "reader", tokenSha256: hashToken(TOKEN_B), accounts: [], mayKeygen: false },
  ]);
  const json = JSON.stringify({
    callers: [{ id: "x", token_sha256: hashToken(TOKEN_C), accounts: ["*"], may_keygen: false }],
  });
  assert.equal(parseCallersFile(json)[0].id, "x");
  const auth = createAuthenticator(callers);
  assert.equal(auth.authenticate(`Bearer ${TOKEN_A}`).id, "wallet-backend");
});

const H = hashToken(TOKEN_A);
const BAD_FILES: [string, string][] = [
  ["not YAML", "callers: [unclosed"],
  ["a list at the top", "- a"],
  ["a scalar", "42"],
  ["an empty file", ""],
  ["no callers key", "users: []"],
  ["an extra top-level key", "callers: []\nextra: 1"],
  ["callers not a list", "callers: {}"],
  ["a caller not a mapping", "callers: [x]"],
  ["an unknown caller key", `callers: [{ id: a, token_sha256: ${H}, accounts: [], token: x }]`],
  ["a missing id", `callers: [{ token_sha256: ${H}, accounts: [] }]`],
  ["an id with a space", `callers: [{ id: "a b", token_sha256: ${H}, accounts: [] }]`],
  ["an overlong id", `callers: [{ id: ${"a".repeat(65)}, token_sha256: ${H}, accounts: [] }]`],
  ["a missing hash", "callers: [{ id: a, accounts: [] }]"],
  ["an uppercase hash", `callers: [{ id: a, token_sha256: ${H.toUpperCase()}, accounts: [] }]`],
  ["a short hash", `callers: [{ id: a, token_sha256: ${H.slice(2)}, accounts: [] }]`],
  [
    "a plain token instead of a hash",
    `callers: [{ id: a, token_sha256: ${TOKEN_A}, accounts: [] }]`,
  ],
  ["missing accounts", `callers: [{ id: a, token_sha256: ${H} }]`],
  ["accounts a string", `callers: [{ id: a, token_sha256: ${H}, accounts: "*" }]`],
  ["a star in the middle", `callers: [{ id: a, token_sha256: ${H}, accounts: ["a*b"] }]`],
  ["a bare prefix star", `callers: [{ id: a, token_sha256: ${H}, accounts: ["**"] }]`],
  ["a number account", `callers: [{ id: a, token_sha256: ${H}, accounts: [1] }]`],
  [
    "may_keygen a string",
    `callers: [{ id: a, token_sha256: ${H}, accounts: [], may_keygen: "yes" }]`,
  ],
  [
    "a duplicate id",
    `callers: [{ id: a, token_sha256: ${H}, accounts: [] }, { id: a, token_sha256: ${
      hashToken(TOKEN_B)
    }, accounts: [] }]`,
  ],
  [
    "a duplicate hash",
    `callers: [{ id: a, token_sha256: ${H}, accounts: [] }, { id: b, token_sha256: ${H}, accounts: [] }]`,
  ],
];

for (const [name, text] of BAD_FILES) {
  test(`parseCallersFile refuses ${name} with a ConfigError naming auth.tokens_file`, () => {
    assert.throws(() => parseCallersFile(text), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.setting, "auth.tokens_file");
      assert.doesNotMatch(e.message, new RegExp(H.slice(0, 16), "i"));
      assert.doesNotMatch(e.message, /token-of-caller/);
      return true;
    });
  });
}

test("createAuthenticator validates callers given in code", () => {
  const bad = { ...CALLERS[0], tokenSha256: "nothex" };
  assert.throws(() => createAuthenticator([bad]), ConfigError);
  assert.throws(() => createAuthenticator([CALLERS[0], { ...CALLERS[1], id: "a" }]), ConfigError);
});
