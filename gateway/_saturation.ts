/**
 * Which capacity limits refused something lately (private to `gateway/`): every refusal by a
 * limit (`max_rooms`, `max_rooms_per_source`, `max_connections`, ...) is counted here, for
 * `gateway_limit_refusals_total{limit}`, and a limit that refused within the window is reported
 * by `/healthz` as saturated.
 * @module
 */

/** One saturated limit as `/healthz` reports it. */
export interface SaturatedLimit {
  /** The limit's setting name (`max_rooms_per_source`). */
  readonly limit: string;
  /** Refusals since the start. */
  readonly refused: number;
  /** Milliseconds since the last refusal; null when it never refused (a gauge at its maximum). */
  readonly last_refusal_ms_ago: number | null;
}

/** Refusals per limit, and when each limit last refused. */
export class Saturation {
  readonly #count = new Map<string, number>();
  readonly #last = new Map<string, number>();
  readonly #windowMs: number;
  readonly #now: () => number;

  /**
   * @param windowMs how long a limit counts as saturated after its last refusal
   * @param now clock in milliseconds
   */
  constructor(windowMs: number, now: () => number) {
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /**
   * Records a refusal by `limit` (or several, counted elsewhere, with `count` and `at`).
   *
   * @param limit the limit's setting name
   * @param count refusals to add (default 1)
   * @param at when the last of them happened (default now)
   * @returns true when this starts a saturation of the limit (it had not refused within the
   * window): the one refusal worth a log line
   */
  hit(limit: string, count = 1, at: number = this.#now()): boolean {
    this.#count.set(limit, (this.#count.get(limit) ?? 0) + count);
    const last = this.#last.get(limit) ?? -Infinity;
    if (at > last) this.#last.set(limit, at);
    return at - last >= this.#windowMs;
  }

  /** Refusals per limit since the start. */
  counts(): ReadonlyMap<string, number> {
    return this.#count;
  }

  /**
   * The limits that refused within the window, plus those `atMax` names (gauges at their
   * maximum right now).
   *
   * @param atMax limits saturated by their current value
   * @returns the saturated limits, sorted by name
   */
  saturated(atMax: readonly string[] = []): SaturatedLimit[] {
    const t = this.#now();
    const out = new Map<string, SaturatedLimit>();
    for (const [limit, last] of this.#last) {
      if (t - last < this.#windowMs) {
        out.set(limit, {
          limit,
          refused: this.#count.get(limit) ?? 0,
          last_refusal_ms_ago: Math.max(0, t - last),
        });
      }
    }
    for (const limit of atMax) {
      if (!out.has(limit)) {
        const last = this.#last.get(limit);
        out.set(limit, {
          limit,
          refused: this.#count.get(limit) ?? 0,
          last_refusal_ms_ago: last === undefined ? null : Math.max(0, t - last),
        });
      }
    }
    return [...out.values()].sort((a, b) => (a.limit < b.limit ? -1 : 1));
  }
}
