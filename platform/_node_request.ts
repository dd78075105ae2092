/**
 * A light `Request` for the `node:http` adapter. Building a real `Request` with a body costs tens
 * of microseconds in Node 20 (undici creates streams and an abort signal per request), more than
 * the gateway's own work on a post. This object answers what handlers use most (`method`, `url`,
 * `headers`, `body`, `arrayBuffer()`, `text()`, `json()`, `bytes()`, `signal`) directly, and builds
 * the real `Request` only if anything else is asked for. It inherits from `Request.prototype`, so
 * `instanceof Request` holds. Private to the adapter.
 *
 * @module
 */

const REAL = Symbol("real request");
const decoder = new TextDecoder();

/** Fields of a {@link LightRequest}. */
export interface LightRequestInit {
  /** HTTP method. */
  method: string;
  /** Absolute URL. */
  url: string;
  /** Request headers. */
  headers: Headers;
  /** The whole body (already read), a stream of it, or null. */
  body: Uint8Array | ReadableStream<Uint8Array> | null;
}

/** A `Request` look-alike whose common members are plain fields. */
export class LightRequest {
  #init: LightRequestInit;
  #stream: ReadableStream<Uint8Array> | null = null;
  #used = false;
  #abort: AbortController | null = null;
  #real: Request | null = null;

  /** @param init method, URL, headers and body */
  constructor(init: LightRequestInit) {
    this.#init = init;
  }

  /** HTTP method. */
  get method(): string {
    return this.#init.method;
  }

  /** Absolute URL. */
  get url(): string {
    return this.#init.url;
  }

  /** Request headers. */
  get headers(): Headers {
    return this.#init.headers;
  }

  /** The body as a stream (created on first access), or null. */
  get body(): ReadableStream<Uint8Array> | null {
    const b = this.#init.body;
    if (b === null) return null;
    if (!this.#stream) {
      if (b instanceof ReadableStream) {
        this.#stream = b;
      } else {
        const used = this.#used;
        this.#stream = new ReadableStream<Uint8Array>({
          start(c) {
            if (!used) c.enqueue(b);
            c.close();
          },
        });
      }
    }
    return this.#stream;
  }

  /** True once the body was read. */
  get bodyUsed(): boolean {
    return this.#used || (this.#stream !== null && this.#stream.locked);
  }

  /** Aborted when the client goes away (created on first access). */
  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    return this.#abort.signal;
  }

  /** Called by the adapter when the client disconnects. */
  abortNow(): void {
    this.#abort?.abort();
  }

  /** Reads the whole body. */
  async bytes(): Promise<Uint8Array> {
    if (this.bodyUsed) throw new TypeError("Body is unusable: Body has already been read");
    const b = this.#init.body;
    if (b === null) {
      this.#used = true;
      return new Uint8Array(0);
    }
    if (b instanceof Uint8Array && this.#stream === null) {
      this.#used = true;
      return b;
    }
    const chunks: Uint8Array[] = [];
    let n = 0;
    const reader = this.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
    this.#used = true;
    const out = new Uint8Array(n);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  /** Reads the whole body as an `ArrayBuffer`. */
  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this.bytes();
    return b.buffer.byteLength === b.length && b.byteOffset === 0
      ? b.buffer as ArrayBuffer
      : b.slice().buffer as ArrayBuffer;
  }

  /** Reads the whole body as UTF-8 text. */
  async text(): Promise<string> {
    return decoder.decode(await this.bytes());
  }

  /** Reads the whole body as JSON. */
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /** The real `Request`, built on demand for members this class does not answer itself. */
  [REAL](): Request {
    if (!this.#real) {
      const usable = !this.bodyUsed ? this.body : null;
      this.#real = new Request(this.#init.url, {
        method: this.#init.method,
        headers: this.#init.headers,
        body: usable,
        // @ts-ignore: `duplex` is required by Node's fetch for streamed bodies
        duplex: "half",
      });
    }
    return this.#real;
  }
}

// Every other member of Request.prototype (cache, credentials, clone, formData, ...) is forwarded
// to the real request.
for (const key of Object.getOwnPropertyNames(Request.prototype)) {
  if (key === "constructor" || Object.hasOwn(LightRequest.prototype, key)) continue;
  const desc = Object.getOwnPropertyDescriptor(Request.prototype, key)!;
  if (desc.get) {
    Object.defineProperty(LightRequest.prototype, key, {
      get(this: LightRequest) {
        return Reflect.get(this[REAL](), key);
      },
      configurable: true,
    });
  } else if (typeof desc.value === "function") {
    Object.defineProperty(LightRequest.prototype, key, {
      value(this: LightRequest, ...args: unknown[]) {
        const real = this[REAL]();
        return (Reflect.get(real, key) as (...a: unknown[]) => unknown).apply(real, args);
      },
      configurable: true,
      writable: true,
    });
  }
}
Object.setPrototypeOf(LightRequest.prototype, Request.prototype);
