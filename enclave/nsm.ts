/**
 * The Nitro Secure Module (NSM) from TypeScript: the CBOR request / response of its Attestation
 * operation (pure, runs under Deno and Node) and the device `/dev/nsm` reached through libc's
 * `ioctl` with `Deno.dlopen` (Deno only: Node has no FFI).
 *
 * Wire form (aws-nitro-enclaves-nsm-api, src/api/mod.rs: serde's externally tagged enums):
 * request `{"Attestation": {"user_data": bytes|null, "nonce": bytes|null, "public_key":
 * bytes|null}}`, answer `{"Attestation": {"document": bytes}}` or `{"Error": "<ErrorCode>"}`.
 * The ioctl (src/driver/mod.rs) is `_IOWR(0x0A, 0, 32)` = `0xc0200a00` on a struct of two
 * iovecs (request, response); the driver writes the response length into the second iovec.
 * Sizes: request at most 0x1000 bytes, response buffer 0x3000 bytes.
 *
 * @example
 * ```ts
 * import { openNsmDevice } from "./nsm.ts";
 * // Inside a Nitro Enclave (the device /dev/nsm); enclave/testing/fake_nsm.ts stands in elsewhere.
 * async function attest(nonce: Uint8Array, spkiDer: Uint8Array): Promise<Uint8Array> {
 *   const nsm = openNsmDevice();
 *   try {
 *     return await nsm.attest({ nonce, publicKey: spkiDer });
 *   } finally {
 *     nsm.close();
 *   }
 * }
 * ```
 * @module
 */

import { decodeCbor, encodeCbor } from "./_cbor.ts";

/** What an attestation document should carry besides the PCRs. */
export interface AttestationRequest {
  /** At most {@linkcode NSM_MAX_NONCE_BYTES} bytes. */
  nonce?: Uint8Array;
  /** DER public key (the KMS recipient key), 1..{@linkcode NSM_MAX_PUBLIC_KEY_BYTES} bytes. */
  publicKey?: Uint8Array;
  /** At most {@linkcode NSM_MAX_USER_DATA_BYTES} bytes. */
  userData?: Uint8Array;
}

/** A Nitro Secure Module: the device, or a test stand-in. */
export interface Nsm {
  /**
   * Asks for a signed attestation document.
   * @returns the COSE_Sign1 document
   * @throws {NsmError}
   */
  attest(req: AttestationRequest): Promise<Uint8Array>;
  /** Releases the device once pending requests have finished; later calls fail. */
  close(): void;
}

/** Why an NSM call failed. */
export type NsmErrorCode =
  | "device" // the device could not be opened or the ioctl failed
  | "invalid-request" // a field too long (checked before anything is sent)
  | "nsm-error" // the NSM answered an error (see `nsmCode`)
  | "malformed-response" // the answer is not the documented CBOR shape
  | "closed"; // used after close()

/** An NSM call failed. */
export class NsmError extends Error {
  override readonly name = "NsmError";
  readonly code: NsmErrorCode;
  /** The NSM's own error code when `code` is "nsm-error" (e.g. "InvalidArgument"). */
  readonly nsmCode?: string;
  constructor(code: NsmErrorCode, message: string, nsmCode?: string) {
    super(`nsm: ${message}`);
    this.code = code;
    if (nsmCode !== undefined) this.nsmCode = nsmCode;
  }
}

/** Limits of the driver and of the attestation document's optional fields. */
export const NSM_REQUEST_MAX_BYTES = 0x1000;
export const NSM_RESPONSE_MAX_BYTES = 0x3000;
export const NSM_MAX_NONCE_BYTES = 512;
export const NSM_MAX_USER_DATA_BYTES = 512;
export const NSM_MAX_PUBLIC_KEY_BYTES = 1024;
/** `_IOWR(NSM_IOCTL_MAGIC = 0x0A, 0, sizeof(struct { iovec request, response }) = 32)`. */
export const NSM_IOCTL_REQUEST = 0xc0200a00;

/** The NSM's error codes (ErrorCode in src/api/mod.rs). */
export const NSM_ERROR_CODES = [
  "Success",
  "InvalidArgument",
  "InvalidIndex",
  "InvalidResponse",
  "ReadOnlyIndex",
  "InvalidOperation",
  "BufferTooSmall",
  "InputTooLarge",
  "InternalError",
] as const;

const FIELDS = [
  ["user_data", "userData", NSM_MAX_USER_DATA_BYTES, 0],
  ["nonce", "nonce", NSM_MAX_NONCE_BYTES, 0],
  ["public_key", "publicKey", NSM_MAX_PUBLIC_KEY_BYTES, 1],
] as const;

/**
 * Encodes an Attestation request (absent fields are CBOR null, as serde writes `None`).
 * @param req the optional fields
 * @returns the CBOR request
 * @throws {NsmError} "invalid-request" when a field is too long
 * @throws {TypeError} a field is not a Uint8Array
 */
export function encodeAttestationRequest(req: AttestationRequest): Uint8Array {
  const body = new Map<string, Uint8Array | null>();
  for (const [wire, key, max, min] of FIELDS) {
    const v = req[key];
    if (v === undefined) {
      body.set(wire, null);
      continue;
    }
    if (!(v instanceof Uint8Array)) throw new TypeError(`nsm: ${key}: expected a Uint8Array`);
    if (v.length < min || v.length > max) {
      throw new NsmError(
        "invalid-request",
        `${key}: expected ${min}..${max} bytes, got ${v.length}`,
      );
    }
    body.set(wire, v);
  }
  const out = encodeCbor(new Map([["Attestation", body]]));
  if (out.length > NSM_REQUEST_MAX_BYTES) {
    throw new NsmError(
      "invalid-request",
      `request of ${out.length} bytes exceeds ${NSM_REQUEST_MAX_BYTES}`,
    );
  }
  return out;
}

/** Decodes one externally tagged variant `{Name: value}`. */
function variant(bytes: Uint8Array, max: number, what: string, bad: (m: string) => never) {
  let m: unknown;
  try {
    m = decodeCbor(bytes, max, what);
  } catch (e) {
    return bad((e as Error).message);
  }
  if (!(m instanceof Map) || m.size !== 1) return bad(`${what}: expected a map of one entry`);
  const [[name, value]] = m;
  if (typeof name !== "string") return bad(`${what}: expected a text key`);
  return { name, value: value as unknown };
}

/**
 * Decodes an Attestation request (the NSM's side; used by test stand-ins).
 * @param bytes the CBOR request
 * @returns the optional fields present
 * @throws {NsmError} "invalid-request" for any other shape
 */
export function decodeAttestationRequest(bytes: Uint8Array): AttestationRequest {
  const bad = (m: string): never => {
    throw new NsmError("invalid-request", m);
  };
  const { name, value } = variant(bytes, NSM_REQUEST_MAX_BYTES, "request", bad);
  if (name !== "Attestation" || !(value instanceof Map)) bad("request: expected Attestation");
  const body = value as Map<unknown, unknown>;
  const out: AttestationRequest = {};
  for (const k of body.keys()) {
    if (!FIELDS.some(([wire]) => wire === k)) bad(`request: unexpected field ${String(k)}`);
  }
  for (const [wire, key, max, min] of FIELDS) {
    const v = body.get(wire);
    if (v === undefined || v === null) continue;
    if (!(v instanceof Uint8Array) || v.length < min || v.length > max) {
      bad(`request: ${wire}: expected ${min}..${max} bytes`);
    }
    out[key] = (v as Uint8Array).slice();
  }
  return out;
}

/**
 * Encodes the NSM's answer: a document, or an error code.
 * @param answer `{ document }` or `{ error }`
 * @returns the CBOR response
 */
export function encodeAttestationResponse(
  answer: { document: Uint8Array } | { error: (typeof NSM_ERROR_CODES)[number] },
): Uint8Array {
  return "document" in answer
    ? encodeCbor(new Map([["Attestation", new Map([["document", answer.document]])]]))
    : encodeCbor(new Map([["Error", answer.error]]));
}

/**
 * Decodes the NSM's answer to an Attestation request.
 * @param bytes the CBOR response (as many bytes as the driver reported)
 * @returns the attestation document
 * @throws {NsmError} "nsm-error" with `nsmCode` when the NSM answered an error;
 *   "malformed-response" for anything but the two documented shapes
 */
export function decodeAttestationResponse(bytes: Uint8Array): Uint8Array {
  const bad = (m: string): never => {
    throw new NsmError("malformed-response", m);
  };
  const { name, value } = variant(bytes, NSM_RESPONSE_MAX_BYTES, "response", bad);
  if (name === "Error") {
    const known = NSM_ERROR_CODES as readonly unknown[];
    if (typeof value !== "string" || !known.includes(value) || value === "Success") {
      return bad("response: Error without a known error code");
    }
    throw new NsmError("nsm-error", `the NSM answered ${value}`, value);
  }
  if (name !== "Attestation") {
    return bad(`response: expected Attestation, got ${JSON.stringify(name)}`);
  }
  if (!(value instanceof Map) || value.size !== 1) return bad("response: expected {document}");
  const document = value.get("document");
  if (!(document instanceof Uint8Array) || document.length === 0) {
    return bad("response: expected a non-empty document byte string");
  }
  return document.slice();
}

/**
 * An {@linkcode Nsm} over a request/response exchange: the ioctl, or a test stand-in. Requests
 * run one at a time.
 * @param exchange sends one CBOR request, resolves to the CBOR response
 * @param release called once by close(), after pending requests
 * @returns the Nsm
 */
export function createNsmClient(
  exchange: (request: Uint8Array) => Promise<Uint8Array>,
  release: () => void = () => {},
): Nsm {
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();
  return {
    attest(req) {
      if (closed) return Promise.reject(new NsmError("closed", "the NSM was closed"));
      let request: Uint8Array;
      try {
        request = encodeAttestationRequest(req);
      } catch (e) {
        return Promise.reject(e);
      }
      const run = queue.then(async () => decodeAttestationResponse(await exchange(request)));
      queue = run.catch(() => {});
      return run;
    },
    close() {
      if (closed) return;
      closed = true;
      queue = queue.then(release);
    },
  };
}

/** libc symbols used; `ioctl` runs off the main thread (it waits for the NSM). */
const LIBC_SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32", nonblocking: true },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

const O_RDWR = 0o2;
const O_CLOEXEC = 0o2000000;

/**
 * Opens the NSM device (Deno only; needs `--allow-ffi`).
 * @param path the device, `/dev/nsm` inside an enclave
 * @returns the Nsm; close() closes the descriptor and libc
 * @throws {NsmError} "device" when not under Deno, libc cannot be loaded or the device not opened
 */
export function openNsmDevice(path = "/dev/nsm"): Nsm {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno?.dlopen === undefined) throw new NsmError("device", "the NSM device needs Deno's FFI");
  let lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;
  try {
    lib = deno.dlopen("libc.so.6", LIBC_SYMBOLS);
  } catch (e) {
    throw new NsmError("device", `cannot load libc.so.6 (${(e as Error).message})`);
  }
  const fd = lib.symbols.open(new TextEncoder().encode(path + "\0"), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const errnoPtr = lib.symbols.__errno_location();
    const errno = errnoPtr === null ? -1 : new Deno.UnsafePointerView(errnoPtr).getInt32();
    lib.close();
    throw new NsmError("device", `cannot open ${path} (errno ${errno})`);
  }
  const exchange = async (request: Uint8Array): Promise<Uint8Array> => {
    const req = request.slice(); // own ArrayBuffer, alive until the call returns
    const resp = new Uint8Array(NSM_RESPONSE_MAX_BYTES);
    const address = (b: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
    // struct { struct iovec request; struct iovec response; } on a 64-bit ABI
    const message = new BigUint64Array([
      address(req),
      BigInt(req.length),
      address(resp),
      BigInt(resp.length),
    ]);
    const rc = await lib.symbols.ioctl(fd, BigInt(NSM_IOCTL_REQUEST), message);
    if (rc !== 0) throw new NsmError("device", `ioctl on ${path} returned ${rc}`);
    const length = message[3];
    if (length > BigInt(resp.length)) {
      throw new NsmError("malformed-response", `driver reported ${length} bytes`);
    }
    return resp.subarray(0, Number(length));
  };
  return createNsmClient(exchange, () => {
    lib.symbols.close(fd);
    lib.close();
  });
}
