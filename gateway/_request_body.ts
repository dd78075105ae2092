/**
 * Request bodies under the gateway's limits (private to `gateway/`): one body's size
 * (`Content-Length` checked before reading, the bytes counted while streaming) and the bytes of
 * all bodies being received at once (`limits.maxInflightBodyBytes`, 503 `server_busy` beyond it).
 * @module
 */
import { GatewayError } from "./errors.ts";

/** Bodies declared up to this size are read in one call rather than streamed. */
const FAST_BODY_BYTES = 64 * 1024;

/** The bytes of all request bodies being received, held until each request is done with its body. */
export class BodyBudget {
  #inflight = 0;
  readonly #maxInflight: number;

  /** @param maxInflightBodyBytes largest sum of the bodies being received at once */
  constructor(maxInflightBodyBytes: number) {
    this.#maxInflight = maxInflightBodyBytes;
  }

  /** Bytes of request bodies being received (held by a {@link BodyBudget.withBody} call). */
  get inflight(): number {
    return this.#inflight;
  }

  /**
   * Reads the body of `req` and passes it to `use`; the body's bytes count against the budget
   * until `use` settles.
   *
   * @param req the request
   * @param max largest body accepted, in bytes
   * @param use what to do with the bytes
   * @returns what `use` returns
   * @throws {GatewayError} `invalid_request` for a Content-Length that is not decimal,
   * `body_too_large` beyond `max`, `server_busy` when the budget is spent
   */
  async withBody<T>(
    req: Request,
    max: number,
    use: (bytes: Uint8Array) => T | Promise<T>,
  ): Promise<T> {
    const held = { bytes: 0 };
    try {
      return await use(await this.#read(req, max, held));
    } finally {
      this.#inflight -= held.bytes;
    }
  }

  #reserve(bytes: number, held: { bytes: number }): void {
    if (this.#inflight + bytes > this.#maxInflight) {
      throw new GatewayError(
        "server_busy",
        "too many request bodies are being received at once; retry later",
      );
    }
    this.#inflight += bytes;
    held.bytes += bytes;
  }

  async #read(req: Request, max: number, held: { bytes: number }): Promise<Uint8Array> {
    const cl = req.headers.get("content-length");
    if (cl !== null) {
      if (!/^[0-9]{1,15}$/.test(cl)) {
        throw new GatewayError("invalid_request", "expected a decimal Content-Length");
      }
      const declared = Number(cl);
      if (declared > max) {
        throw new GatewayError(
          "body_too_large",
          `expected a body of at most ${max} bytes, got Content-Length ${cl}`,
        );
      }
      if (declared <= FAST_BODY_BYTES) {
        // Fast path for small declared bodies (the HTTP layer enforces the declared length; the
        // length is still checked, for requests built in-process). `req.body` is not touched:
        // creating the body stream would cost more than the whole read.
        this.#reserve(declared, held);
        const bytes = new Uint8Array(await req.arrayBuffer());
        if (bytes.length > declared) {
          throw new GatewayError(
            "body_too_large",
            `expected a body of ${declared} bytes as declared, got more`,
          );
        }
        return bytes;
      }
    }
    if (req.body === null) return new Uint8Array(0);
    const reader = req.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.length;
        if (total > max) {
          throw new GatewayError(
            "body_too_large",
            `expected a body of at most ${max} bytes, got more`,
          );
        }
        this.#reserve(value.length, held);
        chunks.push(value);
      }
    } catch (e) {
      reader.cancel().catch(() => {});
      throw e;
    }
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
