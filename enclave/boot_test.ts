/**
 * The boot program's gateway forwarder: which `gateway.url` the enclave accepts (plain http to
 * loopback only, https to a name the image maps to loopback) and where the forwarder listens.
 * The boot sequence itself runs in tests/enclave/isolated_test.ts.
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { gatewayEgressOf } from "./boot.ts";

test("gateway.url in the enclave: http to loopback, https to a name (TLS end to end)", () => {
  assert.deepEqual(gatewayEgressOf("http://127.0.0.1:8080"), {
    port: 8080,
    tls: false,
    hostName: null,
  });
  assert.deepEqual(gatewayEgressOf("http://localhost"), { port: 80, tls: false, hostName: null });
  assert.deepEqual(gatewayEgressOf("https://gateway.example:8443"), {
    port: 8443,
    tls: true,
    hostName: "gateway.example",
  });
  assert.deepEqual(gatewayEgressOf("https://gw.internal"), {
    port: 443,
    tls: true,
    hostName: "gw.internal",
  });
  assert.deepEqual(gatewayEgressOf("https://localhost:8443"), {
    port: 8443,
    tls: true,
    hostName: null,
  });
});

test("gateway.url in the enclave: hostile table", () => {
  const cases = [
    "",
    "not a url",
    "http://gateway.example:8080", // the parent would read it, and nothing maps the name
    "http://10.0.0.1:8080",
    "https://10.0.0.1:8443", // an address the enclave cannot route to
    "https://[::1]:8443",
    "http://[::1]:8080",
    "ftp://127.0.0.1:21",
    "ws://127.0.0.1:8080",
  ];
  for (const url of cases) {
    assert.throws(() => gatewayEgressOf(url), (e: unknown) => {
      assert.ok(e instanceof RangeError, `${url}: ${String(e)}`);
      assert.match(e.message, /gateway\.url: expected http:\/\/127\.0\.0\.1:<port>, or https:/);
      return true;
    }, url);
  }
});
