/**
 * Prometheus text-format metrics (exposition format 0.0.4) for the gateway. Counters are plain
 * numbers bumped on the hot path; gauges are sampled when `/metrics` is scraped.
 *
 * @module
 */

/** A labelled counter family. */
export class CounterFamily {
  /** Metric name (`gateway_..._total`). */
  readonly name: string;
  /** HELP text. */
  readonly help: string;
  /** Label names, in order. */
  readonly labels: readonly string[];
  #values = new Map<string, number>();

  /**
   * @param name metric name
   * @param help HELP text
   * @param labels label names
   */
  constructor(name: string, help: string, labels: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labels = labels;
  }

  /**
   * Adds `by` to the series with these label values.
   *
   * @param values label values, in the order of {@link labels}
   * @param by amount (default 1)
   */
  inc(values: readonly string[], by = 1): void {
    const key = values.join("\u0000");
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  /**
   * Reads one series.
   *
   * @param values label values
   * @returns the current value (0 when never incremented)
   */
  get(values: readonly string[]): number {
    return this.#values.get(values.join("\u0000")) ?? 0;
  }

  /**
   * Renders the family in text format.
   *
   * @returns HELP, TYPE and one line per series
   */
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const [key, v] of this.#values) {
      const vals = key.split("\u0000");
      const lbl = this.labels.map((l, i) => `${l}="${escapeLabel(vals[i] ?? "")}"`).join(",");
      out += `${this.name}${lbl ? `{${lbl}}` : ""} ${v}\n`;
    }
    return out;
  }
}

function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

/** The gateway's counters. */
export class GatewayMetrics {
  /** HTTP requests by route and status (fed by {@link countRequest}). */
  readonly requests: CounterFamily = new CounterFamily(
    "gateway_http_requests_total",
    "HTTP requests by route and status code.",
    ["route", "status"],
  );
  #byRoute = new Map<string, Map<number, number>>();
  /** Subscribers removed by the gateway, by reason. */
  readonly dropped: CounterFamily = new CounterFamily(
    "gateway_subscribers_dropped_total",
    "Subscribers disconnected by the gateway, by reason (slow, queue_total, history_gone, room_reset, shutdown).",
    ["reason"],
  );
  /** Backend state changes. */
  readonly backendEvents: CounterFamily = new CounterFamily(
    "gateway_backend_events_total",
    "Backend connectivity events (down, up).",
    ["event"],
  );
  /** Messages accepted by broadcast. */
  messagesPosted = 0;
  /** Message bytes accepted by broadcast. */
  bytesPosted = 0;
  /** Message events written to subscriber queues. */
  eventsDelivered = 0;
  /** Keep-alive comments written. */
  keepalives = 0;

  /**
   * Counts one HTTP request (hot path: two map lookups, no string building).
   *
   * @param route route label
   * @param status HTTP status
   */
  countRequest(route: string, status: number): void {
    let m = this.#byRoute.get(route);
    if (!m) this.#byRoute.set(route, m = new Map());
    m.set(status, (m.get(status) ?? 0) + 1);
  }

  /**
   * Requests counted for a route and status.
   *
   * @param route route label
   * @param status HTTP status
   * @returns the count
   */
  requestCount(route: string, status: number): number {
    return this.#byRoute.get(route)?.get(status) ?? 0;
  }

  /**
   * Renders all counters plus the given gauges in text format.
   *
   * @param gauges current gauge values by metric name, each with its HELP text
   * @param families more counter families (sampled elsewhere)
   * @returns the `/metrics` body
   */
  render(
    gauges: Record<string, { help: string; value: number }>,
    families: readonly CounterFamily[] = [],
  ): string {
    const simple: [string, string, number][] = [
      ["gateway_messages_posted_total", "Messages accepted by broadcast.", this.messagesPosted],
      ["gateway_message_bytes_posted_total", "Message body bytes accepted.", this.bytesPosted],
      [
        "gateway_events_delivered_total",
        "Message events queued to subscribers.",
        this.eventsDelivered,
      ],
      ["gateway_keepalives_total", "Keep-alive comments sent.", this.keepalives],
    ];
    let out = "";
    for (const [name, help, v] of simple) {
      out += `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${v}\n`;
    }
    const requests = new CounterFamily(
      this.requests.name,
      this.requests.help,
      this.requests.labels,
    );
    for (const [route, m] of this.#byRoute) {
      for (const [status, n] of m) requests.inc([route, String(status)], n);
    }
    out += requests.render() + this.dropped.render() + this.backendEvents.render();
    for (const f of families) out += f.render();
    for (const [name, g] of Object.entries(gauges)) {
      out += `# HELP ${name} ${g.help}\n# TYPE ${name} gauge\n${name} ${g.value}\n`;
    }
    return out;
  }
}
