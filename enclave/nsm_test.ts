import { test } from "node:test";
import assert from "node:assert/strict";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { encode } from "cborg";
import {
  createNsmClient,
  decodeAttestationRequest,
  decodeAttestationResponse,
  encodeAttestationRequest,
  encodeAttestationResponse,
  NSM_ERROR_CODES,
  NSM_IOCTL_REQUEST,
  NSM_RESPONSE_MAX_BYTES,
  NsmError,
  openNsmDevice,
} from "./nsm.ts";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const hex = (s: string) => hexToBytes(s.replace(/\s+/g, ""));
const ascii = (s: string) => bytesToHex(new TextEncoder().encode(s));

function nsmError(code: string, nsmCode?: string) {
  return (e: Error & { code?: string; nsmCode?: string }) => {
    assert.equal(e.name, "NsmError", e.message);
    assert.equal(e.code, code, e.message);
    if (nsmCode !== undefined) assert.equal(e.nsmCode, nsmCode);
    return true;
  };
}

test("the ioctl number is _IOWR(0x0A, 0, 32)", () => {
  // _IOC(dir = read|write = 3, type, nr, size) = dir << 30 | size << 16 | type << 8 | nr
  assert.equal(NSM_IOCTL_REQUEST, ((3 << 30) | (32 << 16) | (0x0a << 8) | 0) >>> 0);
});

test("an Attestation request encodes as the NSM's externally tagged map, absent fields null", () => {
  const bytes = encodeAttestationRequest({ nonce: Uint8Array.of(1, 2, 3) });
  // {"Attestation": {"nonce": h'010203', "user_data": null, "public_key": null}}
  // (cborg orders keys length-first; serde accepts any order)
  assert.equal(
    bytesToHex(bytes),
    "a1" + "6b" + ascii("Attestation") + "a3" +
      "65" + ascii("nonce") + "43010203" +
      "69" + ascii("user_data") + "f6" +
      "6a" + ascii("public_key") + "f6",
  );
  const all = {
    nonce: new Uint8Array(512),
    publicKey: new Uint8Array(1024),
    userData: new Uint8Array(512),
  };
  assert.deepEqual(decodeAttestationRequest(encodeAttestationRequest(all)), all);
  assert.deepEqual(decodeAttestationRequest(encodeAttestationRequest({})), {});
  assert.deepEqual(
    decodeAttestationRequest(encodeAttestationRequest({ userData: new Uint8Array(0) })),
    {
      userData: new Uint8Array(0),
    },
  );
});

test("requests with oversized or wrong-typed fields are refused before anything is sent", () => {
  for (
    const req of [
      { nonce: new Uint8Array(513) },
      { userData: new Uint8Array(513) },
      { publicKey: new Uint8Array(1025) },
      { publicKey: new Uint8Array(0) },
    ]
  ) {
    assert.throws(() => encodeAttestationRequest(req), nsmError("invalid-request"));
  }
  assert.throws(
    () => encodeAttestationRequest({ nonce: "abc" as unknown as Uint8Array }),
    TypeError,
  );
});

test("the fake device side refuses other requests", () => {
  const bad = [
    encode(new Map([["DescribeNSM", null]])),
    encode(new Map([["Attestation", new Map([["nonce", "x"]])]])),
    encode(new Map([["Attestation", new Map([["extra", null]])]])),
    encode(new Map([["Attestation", new Map([["nonce", new Uint8Array(600)]])]])),
    encode([1]),
    new Uint8Array(0),
  ];
  for (const b of bad) {
    assert.throws(() => decodeAttestationRequest(b), nsmError("invalid-request"));
  }
});

test("an Attestation answer yields its document", () => {
  const document = hex("8444a1013822a0");
  const answer = encodeAttestationResponse({ document });
  assert.equal(
    bytesToHex(answer),
    "a1" + "6b" + ascii("Attestation") + "a1" + "68" + ascii("document") + "47" + "8444a1013822a0",
  );
  assert.deepEqual(decodeAttestationResponse(answer), document);
});

test("an Error answer is an nsm-error carrying the NSM's code", () => {
  for (const code of NSM_ERROR_CODES.filter((c) => c !== "Success")) {
    const bytes = encodeAttestationResponse({ error: code });
    assert.equal(
      bytesToHex(bytes),
      "a1" + "65" + ascii("Error") + (0x60 + code.length).toString(16) + ascii(code),
    );
    assert.throws(() => decodeAttestationResponse(bytes), nsmError("nsm-error", code));
  }
});

test("hostile answers are malformed-response, never a document", () => {
  const doc = new Uint8Array(10).fill(1);
  const att = (inner: unknown) => encode(new Map([["Attestation", inner]]));
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["not CBOR", Uint8Array.of(0xff)],
    ["too long", new Uint8Array(NSM_RESPONSE_MAX_BYTES + 1)],
    ["trailing byte", Uint8Array.of(...encodeAttestationResponse({ document: doc }), 0)],
    ["an array", encode([doc])],
    [
      "two variants",
      encode(
        new Map<string, unknown>([["Attestation", new Map([["document", doc]])], [
          "Error",
          "InternalError",
        ]]),
      ),
    ],
    ["integer variant key", encode(new Map([[1, doc]]))],
    ["another variant", encode(new Map([["GetRandom", new Map([["random", doc]])]]))],
    [
      "DescribePCR",
      encode(new Map([["DescribePCR", new Map<string, unknown>([["lock", true], ["data", doc]])]])),
    ],
    ["unknown error code", encode(new Map([["Error", "Bogus"]]))],
    ["Success as an error", encode(new Map([["Error", "Success"]]))],
    ["numeric error", encode(new Map([["Error", 3]]))],
    ["no document", att(new Map())],
    ["document text", att(new Map([["document", "abc"]]))],
    ["document empty", att(new Map([["document", new Uint8Array(0)]]))],
    ["document null", att(new Map([["document", null]]))],
    ["extra field", att(new Map<string, unknown>([["document", doc], ["extra", 1]]))],
    ["body a list", att([doc])],
    ["indefinite map", Uint8Array.of(0xbf, 0x65, ...new TextEncoder().encode("Error"), 0x60, 0xff)],
    ["duplicate key", hex("a2" + "65" + ascii("Error") + "60" + "65" + ascii("Error") + "60")],
    [
      "document undefined",
      hex("a1" + "6b" + ascii("Attestation") + "a1" + "68" + ascii("document") + "f7"),
    ],
  ];
  for (const [what, bytes] of cases) {
    assert.throws(() => decodeAttestationResponse(bytes), nsmError("malformed-response"), what);
  }
});

test("an NSM client runs requests one at a time, fails after close, releases once", async () => {
  let active = 0;
  let maxActive = 0;
  let released = 0;
  const seen: unknown[] = [];
  const nsm = createNsmClient(async (request) => {
    active++;
    maxActive = Math.max(maxActive, active);
    seen.push(decodeAttestationRequest(request));
    await new Promise((r) => setTimeout(r, 5));
    active--;
    return encodeAttestationResponse({ document: Uint8Array.of(seen.length) });
  }, () => released++);
  const docs = await Promise.all([1, 2, 3].map((n) => nsm.attest({ nonce: Uint8Array.of(n) })));
  assert.deepEqual(docs, [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]);
  assert.equal(maxActive, 1);
  assert.deepEqual(seen, [1, 2, 3].map((n) => ({ nonce: Uint8Array.of(n) })));
  const pending = nsm.attest({});
  nsm.close();
  nsm.close();
  await pending; // requests queued before close() still complete
  await assert.rejects(nsm.attest({}), nsmError("closed"));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(released, 1);
  // An exchange failure reaches the caller; the client stays usable.
  let calls = 0;
  const flaky = createNsmClient(() =>
    calls++ === 0
      ? Promise.reject(new NsmError("device", "ioctl returned -1"))
      : Promise.resolve(encodeAttestationResponse({ error: "InternalError" }))
  );
  await assert.rejects(flaky.attest({}), nsmError("device"));
  await assert.rejects(flaky.attest({}), nsmError("nsm-error", "InternalError"));
  await assert.rejects(flaky.attest({ nonce: new Uint8Array(999) }), nsmError("invalid-request"));
});

test("openNsmDevice: a missing device and a non-NSM device are device errors (Deno FFI)", async () => {
  if (!isDeno) {
    // Node has no FFI: the device cannot be opened there at all.
    assert.throws(() => openNsmDevice(), nsmError("device"));
    return;
  }
  assert.throws(() => openNsmDevice("/nonexistent/nsm"), (e: Error & { code?: string }) => {
    assert.equal(e.code, "device");
    assert.match(e.message, /errno 2\b/); // ENOENT
    return true;
  });
  // /dev/null accepts the open and refuses the NSM ioctl (ENOTTY): the FFI call path runs end to
  // end (libc loaded, struct of two iovecs built, nonblocking ioctl awaited).
  const nsm = openNsmDevice("/dev/null");
  await assert.rejects(nsm.attest({ nonce: Uint8Array.of(1) }), nsmError("device"));
  nsm.close();
  await assert.rejects(nsm.attest({}), nsmError("closed"));
});
