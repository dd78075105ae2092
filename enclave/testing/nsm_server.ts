/**
 * TEST ONLY. Serves a (fake) NSM on a channel for the boot program's test mode
 * (`--nsm channel:<port>`): one request per connection, the device's CBOR request in, the CBOR
 * response out, so the enclave's code reaches the NSM through the same encoding as the device
 * while the test decides the PCRs (the "hardware" measures the image, not the enclave).
 * @module
 */
import { acceptEach, closeQuietly } from "../channel.ts";
import { writeAll } from "../framing.ts";
import {
  decodeAttestationRequest,
  encodeAttestationResponse,
  type Nsm,
  NSM_REQUEST_MAX_BYTES,
} from "../nsm.ts";

/**
 * Answers NSM requests on `listener` with the NSM `current()` returns at each request.
 * @param listener the channel's listener.
 * @param current the NSM to ask.
 * @returns when the listener is closed.
 */
export async function serveNsm(listener: Deno.Listener, current: () => Nsm): Promise<void> {
  const handle = async (conn: Deno.Conn) => {
    try {
      const buf = new Uint8Array(NSM_REQUEST_MAX_BYTES + 1);
      let n = 0;
      for (;;) {
        const got = await conn.read(buf.subarray(n));
        if (got === null) break;
        n += got;
        if (n > NSM_REQUEST_MAX_BYTES) return;
      }
      const document = await current().attest(decodeAttestationRequest(buf.subarray(0, n)));
      await writeAll(conn, encodeAttestationResponse({ document }));
    } catch {
      // a bad request gets no answer (the enclave sees a malformed response)
    } finally {
      closeQuietly(conn);
    }
  };
  await acceptEach(listener, (conn) => void handle(conn));
}
