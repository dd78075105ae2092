/**
 * Structured logging of the servers (sign-gateway, sign-service): one JSON object (or one
 * `key=value` text line) per event, written to an injected sink. Callers pass only non-secret
 * fields; neither server logs tokens, secrets, query strings or message bodies. The log level and
 * format types of both configurations are defined here, once.
 *
 * @module
 */

/** Log levels, lowest first. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** Log levels, lowest first. */
export type LogLevel = (typeof LOG_LEVELS)[number];
/** Log line formats: one JSON object per line, or `key=value` text. */
export const LOG_FORMATS = ["json", "text"] as const;
/** Log line formats: one JSON object per line, or `key=value` text. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Extra fields of a log line. Values must be JSON-serialisable. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** A leveled structured logger. */
export interface Logger {
  /** True when lines of this level are written (lets callers skip building fields). */
  enabled(level: LogLevel): boolean;
  /** Writes one line at `level`. */
  log(level: LogLevel, msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written (default `info`). */
  level?: LogLevel;
  /** `json` (default) or `text`. */
  format?: LogFormat;
  /** Receives each formatted line without a trailing newline (default: `console.log`). */
  sink?: (line: string) => void;
  /** Clock for the `ts` field (default: `Date.now`). */
  now?: () => number;
  /** Fields added to every line (e.g. `{ instance: "a" }`). */
  base?: LogFields;
}

/**
 * Creates a logger writing one line per event.
 *
 * @param options level, format, sink, clock and base fields
 * @returns a {@link Logger}
 * @example
 * ```ts
 * import { createLogger } from "./logger.ts";
 * const lines: string[] = [];
 * const log = createLogger({ sink: (l) => lines.push(l), now: () => 0 });
 * log.log("info", "started", { port: 8080 });
 * console.assert(JSON.parse(lines[0]).port === 8080);
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const format = options.format ?? "json";
  const sink = options.sink ?? ((line: string) => console.log(line));
  const now = options.now ?? Date.now;
  const base = options.base ?? {};
  return {
    enabled: (level) => RANK[level] >= min,
    log(level, msg, fields) {
      if (RANK[level] < min) return;
      const record: Record<string, unknown> = {
        ts: new Date(now()).toISOString(),
        level,
        msg,
        ...base,
        ...fields,
      };
      if (format === "json") {
        sink(JSON.stringify(record));
        return;
      }
      const parts: string[] = [];
      for (const [k, v] of Object.entries(record)) {
        if (v === undefined) continue;
        const s = String(v);
        parts.push(`${k}=${/^[\w.:/@+-]*$/.test(s) && s !== "" ? s : JSON.stringify(s)}`);
      }
      sink(parts.join(" "));
    },
  };
}

/** A logger that writes nothing. */
export const silentLogger: Logger = { enabled: () => false, log: () => {} };
