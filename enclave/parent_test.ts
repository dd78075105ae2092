/**
 * The parent's issuer-secret file: its flag and variable, and the checks of its contents (a
 * binary KMS ciphertext; text, which may be the secret itself, is refused without being
 * quoted). The parent provisioning an enclave runs in tests/enclave/isolated_test.ts.
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_PAYLOAD_BYTES } from "./framing.ts";
import { issuerSecretCiphertext, parentSettings } from "./parent.ts";

const run = ["run", "--region", "eu-west-1", "--bucket", "b"];

test("--issuer-secret-file, or WALLET_MPC_PARENT_ISSUER_SECRET_FILE; none by default", () => {
  assert.equal(parentSettings(run, {})!.issuerSecretFile, "");
  assert.equal(
    parentSettings(run, { WALLET_MPC_PARENT_ISSUER_SECRET_FILE: "/etc/e/issuer.kms" })!
      .issuerSecretFile,
    "/etc/e/issuer.kms",
  );
  assert.equal(
    parentSettings([...run, "--issuer-secret-file", "x.kms"], {
      WALLET_MPC_PARENT_ISSUER_SECRET_FILE: "y.kms",
    })!.issuerSecretFile,
    "x.kms",
  );
});

test("the issuer secret's ciphertext file: binary, 1 to 16 KiB; text refused unquoted", () => {
  const blob = Uint8Array.from({ length: 200 }, (_, i) => (i * 37 + 1) & 0xff);
  assert.equal(issuerSecretCiphertext(blob), blob);
  const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA";
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["too large", new Uint8Array(MAX_PAYLOAD_BYTES["issuer-secret"] + 1).fill(0xfe)],
    ["the secret in the clear", new TextEncoder().encode(`${secret}\n`)],
    ["base64 text of a ciphertext", new TextEncoder().encode(btoa(String.fromCharCode(...blob)))],
    ["base64 wrapped in lines", new TextEncoder().encode(`${secret}\r\n${secret}\r\n\t`)],
  ];
  for (const [name, bytes] of cases) {
    assert.throws(() => issuerSecretCiphertext(bytes), (e: unknown) => {
      assert.ok(e instanceof RangeError, `${name}: ${String(e)}`);
      assert.match(e.message, /^--issuer-secret-file: /);
      assert.ok(!e.message.includes(secret.slice(0, 12)), `${name}: the message quotes the file`);
      return true;
    }, name);
  }
});
