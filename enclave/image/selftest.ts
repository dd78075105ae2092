/**
 * Self-test run INSIDE a built root filesystem (the image smoke test bundles this file in place
 * of the boot program and runs it under `unshare --net` + `chroot`). Prints one JSON line:
 * the deno version, whether FFI loads libc and reaches ioctl (through the NSM binding), whether
 * Web Crypto works, whether the CA bundle and hosts file are there, and whether the network is
 * unreachable (a connect to 127.0.0.1 in a namespace whose loopback is down).
 * @module
 */

import { NsmError, openNsmDevice } from "../nsm.ts";

const result: Record<string, unknown> = { deno: Deno.version.deno };

// FFI: libc.so.6 loads, open(2) works, and the NSM ioctl on a non-NSM file fails as a device
// error (ENOTTY) rather than a load error.
try {
  const nsm = openNsmDevice("/app/boot.js");
  try {
    await nsm.attest({ nonce: Uint8Array.of(1) });
    result.ffi = "unexpected success";
  } catch (e) {
    result.ffi = e instanceof NsmError && e.code === "device" ? "ok" : String(e);
  }
  nsm.close();
} catch (e) {
  result.ffi = String(e);
}

const digest = await crypto.subtle.digest("SHA-384", new TextEncoder().encode("abc"));
result.crypto = new Uint8Array(digest)[0] === 0xcb ? "ok" : "wrong digest";

const ca = Deno.readTextFileSync("/etc/ssl/certs/ca-certificates.crt");
result.caCertificates = ca.split("BEGIN CERTIFICATE").length - 1;
result.hosts = Deno.readTextFileSync("/etc/hosts").includes("localhost");

try {
  const c = await Deno.connect({ hostname: "127.0.0.1", port: 9 });
  c.close();
  result.network = "reachable";
} catch (e) {
  result.network = `unreachable (${(e as Error).name})`;
}

console.log(JSON.stringify(result));
