/**
 * Request bodies under the gateway's limits (private to `gateway/`): one body's size
 * (`Content-Length` checked before reading, the bytes counted while streaming), the bytes of
 * all bodies being received at once (`limits.maxInflightBodyBytes`, 503 `server_busy` beyond it),
 * and the time a body may take to arrive (`server.request_timeout_ms`, 408 `request_timeout`,
 * enforced by {@link BodyBudget.expire} on the maintenance tick).
 * @module
 */
import { GatewayError } from "./errors.ts";

/** Bodies declared up to this size are read in one call rather than streamed. */
const FAST_BODY_BYTES = 64 * 1024;

/** A body being read: when it must be complete, and how to fail the read. */
interface Deadline {
  readonly at: number;
  fail: ((e: Error) => void) | null;
}

/** The bytes of all request bodies being received, held until each request is done with its body. */
export class BodyBudget {
  #inflight = 0;
  readonly #maxInflight: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #reading = new Set<Deadline>();

  /**
   * @param maxInflightBodyBytes largest sum of the bodies being received at once
   * @param timeoutMs time allowed to receive one body (default: unbounded)
   * @param now clock in milliseconds
   */
  constructor(maxInflightBodyBytes: number, timeoutMs = Infinity, now: () => number = Date.now) {
    this.#maxInflight = maxInflightBodyBytes;
    this.#timeoutMs = timeoutMs;
    this.#now = now;
  }

  /**
   * Fails the reads whose time is up (408 `request_timeout`); called by the maintenance tick.
   *
   * @param t the current time
   * @returns how many reads were failed
   */
  expire(t: number = this.#now()): number {
    let n = 0;
    for (const d of this.#reading) {
      if (d.at > t) continue;
      this.#reading.delete(d);
      n++;
      d.fail?.(
        new GatewayError(
          "request_timeout",
          `expected the request body within ${this.#timeoutMs} ms; it did not arrive in time`,
        ),
      );
    }
    return n;
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
    const deadline: Deadline = { at: this.#now() + this.#timeoutMs, fail: null };
    if (this.#timeoutMs !== Infinity) this.#reading.add(deadline);
    let bytes: Uint8Array;
    try {
      bytes = await this.#read(req, max, held, deadline);
    } catch (e) {
      this.#inflight -= held.bytes;
      throw e;
    } finally {
      this.#reading.delete(deadline);
    }
    try {
      return await use(bytes);
    } finally {
      this.#inflight -= held.bytes;
    }
  }

  /** `p`, or the deadline's failure if that comes first. */
  #timed<T>(p: Promise<T>, d: Deadline): Promise<T> {
    if (this.#timeoutMs === Infinity) return p;
    p.catch(() => {}); // a read abandoned at its deadline may still fail later
    return Promise.race([p, new Promise<never>((_, reject) => (d.fail = reject))]);
  }

  #reserve(bytes: number, held: { bytes: number }): void {
    if (this.#inflight + bytes > this.#maxInflight) {
      throw new GatewayError(
        "server_busy",
        "too many request bodies are being received at once; retry later",
        { limit: "max_inflight_body_bytes" },
      );
    }
    this.#inflight += bytes;
    held.bytes += bytes;
  }

  async #read(
    req: Request,
    max: number,
    held: { bytes: number },
    deadline: Deadline,
  ): Promise<Uint8Array> {
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
        const bytes = new Uint8Array(await this.#timed(req.arrayBuffer(), deadline));
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
        const { done, value } = await this.#timed(reader.read(), deadline);
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
