/**
 * TEST ONLY. A KMS stand-in in front of moto, over real TLS (a test CA made with the `openssl`
 * tool, trusted by the client through `NODE_EXTRA_CA_CERTS`), that does what moto does not: it
 * enforces `Recipient` and a key policy on PCR0. A `Decrypt` must carry an attestation document
 * that verifies against the test NSM's root (enclave/attestation.ts), is fresh, has the policy's
 * PCR0 and a public key; moto then decrypts (its `Recipient` stripped) and the plaintext goes
 * back only as `CiphertextForRecipient` (sealEnvelopedData to the document's key), never as
 * `Plaintext`. Refusals answer `AccessDeniedException`, as KMS does.
 *
 * `mode = "plaintext"` turns it into what a host answering KMS itself (or moto) would send: the
 * plaintext, for the test that the enclave refuses such an answer; `plaintextFor` does that for
 * one ciphertext only (the second Decrypt of a boot, the issuer secret's).
 * @module
 */
import { Buffer } from "node:buffer";
import type { TestCa } from "../../testing/tls_ca.ts";
import { verifyAttestationDocument } from "../attestation.ts";
import { sealEnvelopedData } from "../cms.ts";

/** Options of {@link startKmsStandIn}. */
export interface KmsStandInOptions {
  /** moto's endpoint (`http://127.0.0.1:PORT`). */
  readonly moto: string;
  readonly tls: Pick<TestCa, "cert" | "key">;
  /** The key policy: the PCR0 an enclave must have. */
  readonly pcr0: Uint8Array;
  /** The trusted roots of attestation documents (the test NSM's), read at each request. */
  readonly roots: () => readonly Uint8Array[];
}

/** A running stand-in. */
export interface KmsStandIn {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `enforce` (default) or `plaintext` (module doc). */
  mode: "enforce" | "plaintext";
  /** A `CiphertextBlob` answered as in `plaintext` mode whatever the mode (null: none). */
  plaintextFor: Uint8Array | null;
  /** Decrypts answered with CiphertextForRecipient. */
  readonly sealed: number;
  /** The refusals' messages, in order. */
  readonly refusals: readonly string[];
  stop(): Promise<void>;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/x-amz-json-1.1" },
  });

/**
 * Starts the stand-in on 127.0.0.1, a free port it binds itself.
 * @param o moto, TLS, the PCR0 policy and the trusted roots.
 * @returns the stand-in.
 */
export function startKmsStandIn(o: KmsStandInOptions): Promise<KmsStandIn> {
  let sealed = 0;
  const refusals: string[] = [];
  const deny = (message: string) => {
    refusals.push(message);
    return json(400, { __type: "AccessDeniedException", message });
  };
  const state = {
    mode: "enforce" as "enforce" | "plaintext",
    plaintextFor: null as Uint8Array | null,
  };
  const toMoto = (req: Request, body: string) =>
    fetch(`${o.moto}/`, {
      method: "POST",
      headers: {
        "content-type": req.headers.get("content-type") ?? "application/x-amz-json-1.1",
        "x-amz-target": req.headers.get("x-amz-target") ?? "",
        authorization: req.headers.get("authorization") ?? "",
        "x-amz-date": req.headers.get("x-amz-date") ?? "",
      },
      body,
    });

  const handler = async (req: Request): Promise<Response> => {
    const target = req.headers.get("x-amz-target");
    if (target !== "TrentService.Decrypt") {
      return json(400, { __type: "UnsupportedOperationException", message: `${target}` });
    }
    const input = JSON.parse(await req.text());
    const forBlob = state.plaintextFor &&
      input.CiphertextBlob === Buffer.from(state.plaintextFor).toString("base64");
    if (state.mode === "plaintext" || forBlob) {
      delete input.Recipient;
      const r = await toMoto(req, JSON.stringify(input));
      return new Response(await r.text(), { status: r.status, headers: r.headers });
    }
    const recipient = input.Recipient;
    if (!recipient?.AttestationDocument) {
      return deny("the key policy requires kms:RecipientAttestation:PCR0: no Recipient");
    }
    if (recipient.KeyEncryptionAlgorithm !== "RSAES_OAEP_SHA_256") {
      return json(400, { __type: "ValidationException", message: "KeyEncryptionAlgorithm" });
    }
    let doc;
    try {
      doc = await verifyAttestationDocument(
        new Uint8Array(Buffer.from(recipient.AttestationDocument, "base64")),
        { roots: o.roots() },
      );
    } catch (e) {
      return deny(`attestation document refused (${(e as { code?: string }).code})`);
    }
    if (Math.abs(Date.now() - doc.timestamp) > 5 * 60_000) {
      return deny("attestation document is not fresh");
    }
    const pcr0 = doc.pcrs.get(0);
    if (!pcr0 || Buffer.compare(Buffer.from(pcr0), Buffer.from(o.pcr0)) !== 0) {
      return deny("kms:RecipientAttestation:PCR0 condition not met");
    }
    if (!doc.publicKey) return json(400, { __type: "ValidationException", message: "no key" });
    delete input.Recipient;
    const r = await toMoto(req, JSON.stringify(input));
    const out = await r.json();
    if (r.status !== 200) return json(r.status, out);
    const plain = new Uint8Array(Buffer.from(out.Plaintext, "base64"));
    const cms = await sealEnvelopedData(plain, doc.publicKey);
    plain.fill(0);
    sealed++;
    return json(200, {
      KeyId: out.KeyId,
      EncryptionAlgorithm: out.EncryptionAlgorithm ?? "SYMMETRIC_DEFAULT",
      CiphertextForRecipient: Buffer.from(cms).toString("base64"),
    });
  };

  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: o.tls.cert,
      key: o.tls.key,
      onListen: ({ port }) =>
        resolve({
          port,
          get mode() {
            return state.mode;
          },
          set mode(m) {
            state.mode = m;
          },
          get plaintextFor() {
            return state.plaintextFor;
          },
          set plaintextFor(b) {
            state.plaintextFor = b;
          },
          get sealed() {
            return sealed;
          },
          refusals,
          stop: () => server.shutdown(),
        }),
    }, handler);
  });
}
