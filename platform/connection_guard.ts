/**
 * Connection limits and timeouts of a server, runtime-free: how many connections may be open in
 * total and per source, and how long a connection may stay without a request in progress. The
 * servers (`platform/deno_server.ts`, `platform/node_adapter.ts`) report each accepted
 * connection ({@link ConnectionGuard.admit}), each request's start and end, and each close; the
 * guard refuses connections beyond the limits and closes the ones past their deadline on its
 * sweep:
 *
 * - a new connection must finish its TLS handshake and deliver a complete request head within
 *   `headersTimeoutMs` (a half-open connection that sends nothing, or a slowloris client that
 *   never finishes its headers, is closed then);
 * - a connection with no request in progress (HTTP/1.1 keep-alive between requests, an HTTP/2
 *   session without streams) is closed after `keepAliveTimeoutMs`;
 * - a connection with a request in progress (a long SSE stream) has no deadline here: the
 *   handler bounds what it buffers for it, and request bodies have their own deadline.
 *
 * @example
 * ```ts
 * import { ConnectionGuard } from "./connection_guard.ts";
 * let t = 0;
 * const guard = new ConnectionGuard({
 *   maxConnections: 10, maxConnectionsPerSource: 1, headersTimeoutMs: 100,
 *   keepAliveTimeoutMs: 50, now: () => t, timers: false,
 * });
 * let closed = false;
 * const c = guard.admit("192.0.2.1", () => (closed = true));
 * console.assert(guard.admit("192.0.2.1", () => {}) === "max_connections_per_source");
 * t = 100;
 * guard.sweep();
 * console.assert(closed && typeof c !== "string");
 * ```
 * @module
 */
import { AddressSet, sourceKey } from "./net_address.ts";

/**
 * Why a connection was refused: the limit's setting name, or `source_ban` for a source banned
 * for a while ({@link ConnectionGuard.ban}).
 */
export type ConnectionRefusal = "max_connections" | "max_connections_per_source" | "source_ban";

/** Which deadline closed a connection. */
export type ConnectionTimeout = "headers" | "keep_alive";

/**
 * The raw `HTTP/1.1 503` a server writes to a connection refused by a limit (plain HTTP) before
 * closing it; a banned source's connections are closed without it.
 *
 * @param refusal why it is refused
 * @returns the response text
 */
export function refusalResponse(refusal: ConnectionRefusal): string {
  const body = JSON.stringify({
    error: "too_many_connections",
    message: `the connection limit ${refusal} is reached; retry later`,
  });
  return `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n` +
    `content-length: ${body.length}\r\nconnection: close\r\nretry-after: 1\r\n\r\n${body}`;
}

/** Options of {@link ConnectionGuard}. */
export interface ConnectionGuardOptions {
  /** Open connections at most. */
  readonly maxConnections: number;
  /** Open connections of one source at most (IPv4 address or IPv6 /64). */
  readonly maxConnectionsPerSource: number;
  /** Time from accepting a connection to its first complete request head. */
  readonly headersTimeoutMs: number;
  /** Time a connection may stay without a request in progress. */
  readonly keepAliveTimeoutMs: number;
  /** Sources the per-source limit does not apply to (default none). */
  readonly exempt?: AddressSet;
  /** Clock in milliseconds (default `Date.now`). */
  readonly now?: () => number;
  /** Sweep on a timer (default true); tests call {@link ConnectionGuard.sweep}. */
  readonly timers?: boolean;
}

/** Counters and gauges of a {@link ConnectionGuard}. */
export interface ConnectionStats {
  /** Open connections. */
  readonly open: number;
  /** The limit of open connections. */
  readonly max: number;
  /** Sources with open connections. */
  readonly sources: number;
  /** Sources banned now. */
  readonly banned: number;
  /** Connections refused, by limit. */
  readonly refused: Readonly<Record<ConnectionRefusal, number>>;
  /** When each limit last refused (ms; -Infinity: never). */
  readonly lastRefusedAt: Readonly<Record<ConnectionRefusal, number>>;
  /** Connections closed by a deadline, by deadline. */
  readonly timedOut: Readonly<Record<ConnectionTimeout, number>>;
}

/** One admitted connection. */
export class GuardedConnection {
  /** Source key, or null when the per-source limit does not apply. */
  readonly source: string | null;
  /** When the connection is closed unless a request starts (Infinity: while one runs). */
  deadline: number;
  /** Which deadline runs: before the first request head, or between requests. */
  phase: ConnectionTimeout = "headers";
  /** Requests in progress. */
  active = 0;
  /** Set once released (closed). */
  released = false;
  readonly #guard: ConnectionGuard;
  readonly #close: () => void;

  /**
   * @param guard the guard that admitted it
   * @param source its source key
   * @param deadline when it must have sent a request head
   * @param close closes the connection
   */
  constructor(guard: ConnectionGuard, source: string | null, deadline: number, close: () => void) {
    this.#guard = guard;
    this.source = source;
    this.deadline = deadline;
    this.#close = close;
  }

  /** A request (its head complete) started on the connection. */
  requestStarted(): void {
    this.active++;
    this.phase = "keep_alive";
    this.deadline = Infinity;
  }

  /** A request of the connection ended (its response was sent or abandoned). */
  requestEnded(): void {
    if (this.active > 0) this.active--;
    if (this.active === 0 && !this.released) this.deadline = this.#guard.keepAliveDeadline();
  }

  /** Closes the connection now (the server then calls {@link release}). */
  close(): void {
    this.deadline = Infinity;
    try {
      this.#close();
    } catch {
      // already closed
    }
  }

  /** The connection closed: it no longer counts. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.deadline = Infinity;
    this.#guard.forget(this);
  }
}

/** The connection limits and deadlines of one server (module doc). */
export class ConnectionGuard {
  readonly #o: Required<ConnectionGuardOptions>;
  readonly #open = new Set<GuardedConnection>();
  readonly #bySource = new Map<string, number>();
  readonly #refused: Record<ConnectionRefusal, number> = {
    max_connections: 0,
    max_connections_per_source: 0,
    source_ban: 0,
  };
  readonly #lastRefusedAt: Record<ConnectionRefusal, number> = {
    max_connections: -Infinity,
    max_connections_per_source: -Infinity,
    source_ban: -Infinity,
  };
  /** Banned source keys and when each ban ends. */
  readonly #bans = new Map<string, number>();
  readonly #timedOut: Record<ConnectionTimeout, number> = { headers: 0, keep_alive: 0 };
  #timer: ReturnType<typeof setInterval> | undefined;

  /** @param options limits, timeouts, exempt sources, clock */
  constructor(options: ConnectionGuardOptions) {
    this.#o = { exempt: AddressSet.EMPTY, now: Date.now, timers: true, ...options };
    if (this.#o.timers) {
      const every = Math.max(
        25,
        Math.min(
          1000,
          Math.floor(Math.min(options.headersTimeoutMs, options.keepAliveTimeoutMs) / 4),
        ),
      );
      this.#timer = setInterval(() => this.sweep(), every);
    }
  }

  /**
   * Admits an accepted connection, or refuses it.
   *
   * @param address the peer's address
   * @param close closes the connection (called at a deadline)
   * @returns the connection, or the limit that refuses it (the caller closes it)
   */
  admit(address: string, close: () => void): GuardedConnection | ConnectionRefusal {
    const source = this.#o.exempt.has(address) ? null : sourceKey(address);
    let refusal: ConnectionRefusal | null = null;
    if (source !== null && this.#banned(source)) refusal = "source_ban";
    else if (this.#open.size >= this.#o.maxConnections) refusal = "max_connections";
    else if (
      source !== null && (this.#bySource.get(source) ?? 0) >= this.#o.maxConnectionsPerSource
    ) {
      refusal = "max_connections_per_source";
    }
    if (refusal !== null) {
      this.#refused[refusal]++;
      this.#lastRefusedAt[refusal] = this.#o.now();
      return refusal;
    }
    const c = new GuardedConnection(this, source, this.#o.now() + this.#o.headersTimeoutMs, close);
    this.#open.add(c);
    if (source !== null) this.#bySource.set(source, (this.#bySource.get(source) ?? 0) + 1);
    return c;
  }

  /**
   * Bans a source for `ms`: its open connections are closed, new ones refused until then. An
   * exempt source is not banned.
   *
   * @param address an address of the source (its key is what is banned)
   * @param ms how long
   * @returns the banned source key, or null (exempt, or not an address)
   */
  ban(address: string, ms: number): string | null {
    const source = this.#o.exempt.has(address) ? null : sourceKey(address);
    if (source === null) return null;
    this.#bans.set(source, this.#o.now() + ms);
    for (const c of this.#open) if (c.source === source) c.close();
    return source;
  }

  #banned(source: string): boolean {
    const until = this.#bans.get(source);
    if (until === undefined) return false;
    if (until > this.#o.now()) return true;
    this.#bans.delete(source);
    return false;
  }

  /** The deadline of a connection that has just become idle. */
  keepAliveDeadline(): number {
    return this.#o.now() + this.#o.keepAliveTimeoutMs;
  }

  /**
   * Removes a closed connection (called by {@link GuardedConnection.release}).
   *
   * @param c the connection
   */
  forget(c: GuardedConnection): void {
    if (!this.#open.delete(c)) return;
    if (c.source !== null) {
      const n = (this.#bySource.get(c.source) ?? 1) - 1;
      if (n > 0) this.#bySource.set(c.source, n);
      else this.#bySource.delete(c.source);
    }
  }

  /**
   * Closes the connections past their deadline.
   *
   * @param t the current time (default now)
   * @returns how many were closed
   */
  sweep(t: number = this.#o.now()): number {
    for (const [source, until] of this.#bans) if (until <= t) this.#bans.delete(source);
    let n = 0;
    for (const c of this.#open) {
      if (c.deadline > t) continue;
      this.#timedOut[c.phase]++;
      n++;
      c.close();
    }
    return n;
  }

  /** Open connections. */
  get size(): number {
    return this.#open.size;
  }

  /** The open connections (for a shutdown). */
  connections(): GuardedConnection[] {
    return [...this.#open];
  }

  /** Counters and gauges. */
  stats(): ConnectionStats {
    return {
      open: this.#open.size,
      max: this.#o.maxConnections,
      sources: this.#bySource.size,
      banned: this.#bans.size,
      refused: { ...this.#refused },
      lastRefusedAt: { ...this.#lastRefusedAt },
      timedOut: { ...this.#timedOut },
    };
  }

  /** Stops the sweep timer. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
