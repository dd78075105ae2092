/**
 * A small Prometheus registry for the servers' `/metrics` (text exposition format 0.0.4):
 * labelled counters, labelled histograms, and gauges read when the page is rendered. Series
 * appear in the order they were first used; label values are escaped.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./prometheus.ts";
 * const m = new MetricsRegistry();
 * const calls = m.counter("app_calls_total", "Calls by method.", ["method"]);
 * calls.inc(["sign"]);
 * const wait = m.histogram("app_wait_seconds", "Time in the queue.", [], [0.1, 1]);
 * wait.observe([], 0.25);
 * m.gauge("app_queue_length", "Jobs waiting.", () => 3);
 * const text = m.render();
 * console.assert(text.includes('app_calls_total{method="sign"} 1'));
 * console.assert(text.includes('app_wait_seconds_bucket{le="1"} 1'));
 * console.assert(text.includes("app_queue_length 3"));
 * ```
 * @module
 */

function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((l, k) => `${l}="${escapeLabel(values[k] ?? "")}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${
    help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")
  }\n# TYPE ${name} ${type}\n`;
}

/** A labelled counter. */
export interface Counter {
  /** Adds `by` (default 1) to the series of these label values. */
  inc(values: readonly string[], by?: number): void;
  /** The series' value (0 when never counted). */
  get(values: readonly string[]): number;
}

/** A labelled histogram with fixed bucket bounds. */
export interface Histogram {
  /** Records one observation in the series of these label values. */
  observe(values: readonly string[], v: number): void;
  /** Observations recorded in a series. */
  count(values: readonly string[]): number;
}

interface Family {
  render(): string;
}

/** The metrics of one server (module doc). */
export class MetricsRegistry {
  readonly #families: Family[] = [];
  readonly #names = new Set<string>();

  #name(name: string): void {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new RangeError(`bad metric name ${name}`);
    if (this.#names.has(name)) throw new RangeError(`metric ${name} defined twice`);
    this.#names.add(name);
  }

  /**
   * Defines a counter.
   * @param name metric name (`..._total`).
   * @param help HELP text.
   * @param labels label names.
   * @returns the counter.
   * @throws {RangeError} for a bad or repeated name.
   */
  counter(name: string, help: string, labels: readonly string[] = []): Counter {
    this.#name(name);
    const values = new Map<string, { labels: readonly string[]; v: number }>();
    this.#families.push({
      render: () => {
        let out = header(name, help, "counter");
        for (const s of values.values()) out += `${name}${labelText(labels, s.labels)} ${s.v}\n`;
        return out;
      },
    });
    return {
      inc(vals, by = 1) {
        const key = vals.join("\u0000");
        const s = values.get(key);
        if (s) s.v += by;
        else values.set(key, { labels: [...vals], v: by });
      },
      get: (vals) => values.get(vals.join("\u0000"))?.v ?? 0,
    };
  }

  /**
   * Defines a gauge read at render time.
   * @param name metric name.
   * @param help HELP text.
   * @param read the current value, or one value per label set.
   * @param labels label names when `read` returns several series.
   * @throws {RangeError} for a bad or repeated name.
   */
  gauge(
    name: string,
    help: string,
    read: () => number | readonly (readonly [readonly string[], number])[],
    labels: readonly string[] = [],
  ): void {
    this.#read(name, help, "gauge", read, labels);
  }

  /**
   * Defines a counter whose value is read at render time (a total kept elsewhere).
   * @param name metric name (`..._total`).
   * @param help HELP text.
   * @param read the current value, or one value per label set (never decreasing).
   * @param labels label names when `read` returns several series.
   * @throws {RangeError} for a bad or repeated name.
   */
  counterFrom(
    name: string,
    help: string,
    read: () => number | readonly (readonly [readonly string[], number])[],
    labels: readonly string[] = [],
  ): void {
    this.#read(name, help, "counter", read, labels);
  }

  #read(
    name: string,
    help: string,
    type: "gauge" | "counter",
    read: () => number | readonly (readonly [readonly string[], number])[],
    labels: readonly string[],
  ): void {
    this.#name(name);
    this.#families.push({
      render: () => {
        let out = header(name, help, type);
        const v = read();
        if (typeof v === "number") return `${out}${name} ${v}\n`;
        for (const [vals, x] of v) out += `${name}${labelText(labels, vals)} ${x}\n`;
        return out;
      },
    });
  }

  /**
   * Defines a histogram.
   * @param name metric name (`..._seconds`).
   * @param help HELP text.
   * @param labels label names.
   * @param bounds the buckets' upper bounds, increasing (`+Inf` is added).
   * @returns the histogram.
   * @throws {RangeError} for a bad or repeated name or unsorted bounds.
   */
  histogram(
    name: string,
    help: string,
    labels: readonly string[],
    bounds: readonly number[],
  ): Histogram {
    this.#name(name);
    if (bounds.some((b, k) => k > 0 && b <= bounds[k - 1])) {
      throw new RangeError(`${name}: bucket bounds must increase`);
    }
    type Series = { labels: readonly string[]; buckets: number[]; sum: number; count: number };
    const series = new Map<string, Series>();
    this.#families.push({
      render: () => {
        let out = header(name, help, "histogram");
        for (const s of series.values()) {
          let cum = 0;
          bounds.forEach((b, k) => {
            cum += s.buckets[k];
            out += `${name}_bucket${labelText(labels, s.labels, `le="${b}"`)} ${cum}\n`;
          });
          out += `${name}_bucket${labelText(labels, s.labels, 'le="+Inf"')} ${s.count}\n`;
          out += `${name}_sum${labelText(labels, s.labels)} ${s.sum}\n`;
          out += `${name}_count${labelText(labels, s.labels)} ${s.count}\n`;
        }
        return out;
      },
    });
    return {
      observe(vals, v) {
        const key = vals.join("\u0000");
        let s = series.get(key);
        if (!s) {
          s = { labels: [...vals], buckets: bounds.map(() => 0), sum: 0, count: 0 };
          series.set(key, s);
        }
        const k = bounds.findIndex((b) => v <= b);
        if (k >= 0) s.buckets[k]++;
        s.sum += v;
        s.count++;
      },
      count: (vals) => series.get(vals.join("\u0000"))?.count ?? 0,
    };
  }

  /** The page: every family in definition order. */
  render(): string {
    return this.#families.map((f) => f.render()).join("");
  }
}
