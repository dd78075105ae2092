/**
 * The issuer secret inside the enclave: the decrypted plaintext's rule (a table of hostile
 * plaintexts, none of which appears in its error), the refusal of a gateway link the parent
 * reads, and the boot's one question to the gateway (an in-process gateway with access on).
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createGatewayHandler } from "../gateway/handler.ts";
import {
  checkIssuerSecretWithGateway,
  ISSUER_SECRET_VARIABLE,
  IssuerSecretError,
  type IssuerSecretErrorCode,
  issuerSecretFromPlaintext,
  requireTlsGateway,
} from "./issuer_secret.ts";

const text = (s: string) => new TextEncoder().encode(s);
const GOOD = "k3Y!".repeat(10); // 40 visible characters

function refusedWith(code: IssuerSecretErrorCode, f: () => unknown, secret?: string) {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof IssuerSecretError, String(e));
    assert.equal(e.code, code);
    if (secret) assert.ok(!e.message.includes(secret), "the message holds the secret");
    return true;
  });
}

test("the variable is the service's own (gateway.issuer_secret, environment only)", () => {
  assert.equal(ISSUER_SECRET_VARIABLE, "WALLET_MPC_SERVICE_GATEWAY_ISSUER_SECRET");
});

test("a decrypted issuer secret: 32 to 4096 visible ASCII characters, one trailing newline dropped", () => {
  assert.equal(issuerSecretFromPlaintext(text(GOOD)), GOOD);
  assert.equal(issuerSecretFromPlaintext(text(`${GOOD}\n`)), GOOD);
  assert.equal(issuerSecretFromPlaintext(text(`${GOOD}\r\n`)), GOOD);
  assert.equal(issuerSecretFromPlaintext(text("a".repeat(32))), "a".repeat(32));
  assert.equal(issuerSecretFromPlaintext(text("~".repeat(4096))), "~".repeat(4096));
  const plain = text(GOOD);
  issuerSecretFromPlaintext(plain);
  assert.deepEqual(plain, text(GOOD), "the caller's buffer is not modified (it zeroes it)");
});

test("a decrypted issuer secret: hostile plaintexts are refused without a detail", () => {
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["a newline only", text("\n")],
    ["31 characters", text("a".repeat(31))],
    ["31 characters and a newline", text(`${"a".repeat(31)}\n`)],
    ["4097 characters", text("a".repeat(4097))],
    ["two trailing newlines", text(`${GOOD}\n\n`)],
    ["a trailing carriage return", text(`${GOOD}\r`)],
    ["a leading newline", text(`\n${GOOD}`)],
    ["a space inside", text(`${GOOD.slice(0, 20)} ${GOOD.slice(20)}`)],
    ["a tab", text(`${GOOD}\t`)],
    ["a NUL byte", Uint8Array.from([...text(GOOD), 0])],
    ["DEL", Uint8Array.from([...text(GOOD), 0x7f])],
    ["UTF-8 (é)", text(`${GOOD}é`)],
    ["binary (an age identity's bytes are not it either)", new Uint8Array(64).fill(0xff)],
  ];
  for (const [name, plain] of cases) {
    assert.throws(() => issuerSecretFromPlaintext(plain), (e: unknown) => {
      assert.ok(e instanceof IssuerSecretError, `${name}: ${String(e)}`);
      assert.equal(e.code, "malformed", name);
      assert.ok(!e.message.includes(GOOD.slice(0, 8)), `${name}: the message holds the secret`);
      assert.ok(!/\d+ bytes|got/.test(e.message), `${name}: the message gives a detail`);
      return true;
    }, name);
  }
});

test("an issuer secret is only for an https gateway URL: the parent relays the link", () => {
  requireTlsGateway("https://gateway.example:8443");
  requireTlsGateway("https://localhost:8443/");
  refusedWith("cleartext-gateway", () => requireTlsGateway("http://127.0.0.1:8080"));
  refusedWith("cleartext-gateway", () => requireTlsGateway("http://localhost:8080"));
});

test("the boot's question to the gateway: accepted, rejected (wrong secret, no token endpoint), unreachable", async () => {
  const tokenSecret = "t".repeat(32);
  const withIssuer = createGatewayHandler({
    timers: false,
    access: { enabled: true, tokenSecret, issuerSecret: GOOD },
  });
  const noIssuer = createGatewayHandler({ timers: false, access: { enabled: true, tokenSecret } });
  const asked: string[] = [];
  const fetchOf = (h: typeof withIssuer) => (input: string, init: RequestInit) => {
    asked.push(input);
    return h(new Request(input, init));
  };
  try {
    const url = "https://gateway.example:8443";
    const fetch = fetchOf(withIssuer);
    assert.equal(await checkIssuerSecretWithGateway({ url, secret: GOOD, fetch }), "accepted");
    assert.match(asked[0], /^https:\/\/gateway\.example:8443\/rooms\/[0-9a-f]{32}\/tokens$/);
    const wrong = "w".repeat(40);
    await assert.rejects(
      checkIssuerSecretWithGateway({ url, secret: wrong, fetch }),
      (e: unknown) => {
        assert.ok(e instanceof IssuerSecretError && e.code === "rejected", String(e));
        assert.match(e.message, /\(403 forbidden\)/);
        assert.ok(!e.message.includes(wrong));
        return true;
      },
    );
    await assert.rejects(
      checkIssuerSecretWithGateway({ url, secret: GOOD, fetch: fetchOf(noIssuer) }),
      (e: unknown) => e instanceof IssuerSecretError && e.code === "rejected",
    );
    let tries = 0;
    const down = () => {
      tries++;
      return Promise.reject(new TypeError("connection refused"));
    };
    assert.equal(
      await checkIssuerSecretWithGateway({
        url,
        secret: GOOD,
        fetch: down,
        retry: { baseDelayMs: 0, maxDelayMs: 0 },
      }),
      "unreachable",
    );
    assert.equal(tries, 3, "a bounded number of tries");
  } finally {
    await withIssuer.close();
    await noIssuer.close();
  }
});
