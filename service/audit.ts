/**
 * The sign-service's audit log: one JSON object per line for every request that reached the
 * service, allowed or not. Runtime-free: the caller injects where lines go (a file writer from
 * `audit_file.ts`, standard output, a test array) and the clock.
 *
 * ## Line format
 *
 * Fields in this fixed order; optional fields are left out when absent:
 *
 * | field | type | meaning |
 * |---|---|---|
 * | `ts` | string | ISO 8601 time of the record (from the injected clock) |
 * | `type` | `"audit"` | tells audit lines from log lines when both go to one stream |
 * | `caller` | string or null | authenticated caller id; null when authentication failed |
 * | `action` | string | `sign`, `read`, `keygen`, `refresh`, `list`, ... |
 * | `account` | string or null | the account id asked for |
 * | `digest` | string | optional: the digest signed, hex |
 * | `path` | string | optional: the derivation path |
 * | `session_id` | string | optional: the protocol session id |
 * | `call_id` | string | optional: pairs a session's `started` record with its end |
 * | `outcome` | string | `ok`, `denied`, `rate-limited`, `invalid`, `aborted`, `error`; `started`, `interrupted` (below) |
 * | `error_code` | string | optional: the error's code (`permission-denied`, `proof-failed`, ...) |
 * | `blame` | number[] | optional: party indices blamed by an aborted protocol |
 * | `duration_ms` | number | time the request took |
 *
 * ## Write-ahead records of sessions
 *
 * A protocol session (sign, keygen, refresh) writes a `started` record, with a fresh `call_id`,
 * before it does anything, and its end record repeats that `call_id`. A process that dies in
 * between (a crash, `kill -9`, power loss with `fsync`) leaves a `started` record without an
 * end: at its next start the service writes, for each, an `interrupted` record with the same
 * fields ({@link findInterrupted}), then a `service_start` record, which bounds the next search
 * (audit_file.ts reads the file back to the last one).
 *
 * ## What is never written
 *
 * Only these fields are read from a record, by name; anything else in the object (a token, a
 * key share, a request) is ignored, so passing a larger object by mistake leaks nothing. A
 * `caller` given as an object contributes its `id` only. Strings are cut to a fixed length
 * (hostile account ids cannot grow the log without bound) and JSON escaping keeps each record
 * on one line.
 *
 * @example
 * ```ts
 * import { createAuditLog } from "./audit.ts";
 * const lines: string[] = [];
 * const audit = createAuditLog({ write: (l) => void lines.push(l), clock: () => 0 });
 * await audit.record({ caller: "app", action: "sign", account: "acct-1", outcome: "ok", durationMs: 12 });
 * console.assert(lines[0] ===
 *   '{"ts":"1970-01-01T00:00:00.000Z","type":"audit","caller":"app","action":"sign",' +
 *   '"account":"acct-1","outcome":"ok","duration_ms":12}');
 * ```
 * @module
 */

/** How a request ended. */
export type AuditOutcome =
  | "ok"
  | "denied"
  | "rate-limited"
  | "invalid"
  | "aborted"
  | "error"
  | "started" // write-ahead record of a session (module doc)
  | "interrupted"; // a session whose process died before its end record

const OUTCOMES: readonly AuditOutcome[] = [
  "ok",
  "denied",
  "rate-limited",
  "invalid",
  "aborted",
  "error",
  "started",
  "interrupted",
];

/** The action of the record a service writes when it starts (after its recovery). */
export const SERVICE_START_ACTION = "service_start";

/** One audit record; see the module doc for each field. */
export interface AuditRecord {
  /** The authenticated caller (its id, or an object whose `id` is used), or null. */
  readonly caller: string | { readonly id: string } | null;
  /** What was asked. */
  readonly action: string;
  /** The account asked for, or null (e.g. a list of accounts). */
  readonly account: string | null;
  /** The digest signed: hex text or bytes (written as lowercase hex). */
  readonly digest?: string | Uint8Array;
  /** The derivation path. */
  readonly path?: string;
  /** The protocol session id (written as `session_id`). */
  readonly sessionId?: string;
  /** Pairs a session's `started` record with its end (written as `call_id`). */
  readonly callId?: string;
  /** How the request ended. */
  readonly outcome: AuditOutcome;
  /** The error's code, when it failed (written as `error_code`). */
  readonly errorCode?: string;
  /** Party indices blamed by an aborted protocol. */
  readonly blame?: readonly number[];
  /** How long the request took, in milliseconds (written as `duration_ms`). */
  readonly durationMs: number;
}

/** Options of {@link createAuditLog}. */
export interface AuditLogOptions {
  /** Receives each line, without its newline; may be async (its promise is awaited). */
  readonly write: (line: string) => Promise<void> | void;
  /** Milliseconds since the epoch (default `Date.now`). */
  readonly clock?: () => number;
}

/** What {@link createAuditLog} returns. */
export interface AuditLog {
  /**
   * Writes one record as one line.
   *
   * @param record the record; only its whitelisted fields are read.
   * @returns when `write` has accepted the line.
   * @throws what `write` throws (the caller decides whether a lost audit line fails a request).
   */
  record(record: AuditRecord): Promise<void>;
}

/** Longest string field written, per field (longer values are cut and marked with `...`). */
const CAPS = {
  caller: 64,
  action: 32,
  account: 128,
  digest: 128,
  path: 256,
  session_id: 128,
  call_id: 64,
  error_code: 64,
} as const;
const MAX_BLAME = 64;

function cut(v: unknown, cap: number): string | undefined {
  if (typeof v !== "string") return undefined;
  return v.length <= cap ? v : `${v.slice(0, cap)}...`;
}

function callerId(v: unknown): string | null {
  if (typeof v === "string") return cut(v, CAPS.caller) as string;
  if (typeof v === "object" && v !== null && typeof (v as { id?: unknown }).id === "string") {
    return cut((v as { id: string }).id, CAPS.caller) as string;
  }
  return null;
}

function digestText(v: unknown): string | undefined {
  if (v instanceof Uint8Array) {
    const hex = Array.from(v.subarray(0, CAPS.digest / 2), (b) => b.toString(16).padStart(2, "0"))
      .join("");
    return v.length > CAPS.digest / 2 ? `${hex}...` : hex;
  }
  return cut(v, CAPS.digest);
}

function blameList(v: unknown): number[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const ok = v.slice(0, MAX_BLAME).filter((i): i is number =>
    Number.isSafeInteger(i) && i >= 0 && i < 1024
  );
  return [...new Set(ok)].sort((a, b) => a - b);
}

/**
 * Builds the ordered object of one line from a record: whitelisted fields only (module doc).
 *
 * @param record the record (any object: unknown fields are ignored).
 * @param ts the time, in milliseconds since the epoch.
 * @returns the line's JSON text, one line.
 */
function formatLine(record: AuditRecord, ts: number): string {
  const r = (typeof record === "object" && record !== null ? record : {}) as Record<
    string,
    unknown
  >;
  const outcome = OUTCOMES.includes(r.outcome as AuditOutcome) ? r.outcome : "error";
  const duration = typeof r.durationMs === "number" && Number.isFinite(r.durationMs)
    ? Math.max(0, Math.round(r.durationMs))
    : null;
  const time = Number.isFinite(ts) ? new Date(ts).toISOString() : null;
  const line: Record<string, unknown> = {
    ts: time,
    type: "audit",
    caller: callerId(r.caller),
    action: cut(r.action, CAPS.action) ?? null,
    account: cut(r.account, CAPS.account) ?? null,
    digest: digestText(r.digest),
    path: cut(r.path, CAPS.path),
    session_id: cut(r.sessionId, CAPS.session_id),
    call_id: cut(r.callId, CAPS.call_id),
    outcome,
    error_code: cut(r.errorCode, CAPS.error_code),
    blame: blameList(r.blame),
    duration_ms: duration,
  };
  // JSON.stringify drops undefined fields; U+2028/2029 are escaped so no splitter sees a break.
  return JSON.stringify(line).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/**
 * Creates an audit log writing one JSON line per record (module doc).
 *
 * @param options the line sink and the clock.
 * @returns `record`.
 * @throws {TypeError} when `write` is not a function.
 * @example
 * ```ts
 * import { createAuditLog } from "./audit.ts";
 * const lines: string[] = [];
 * const audit = createAuditLog({ write: (l) => void lines.push(l) });
 * const withSecrets = { caller: { id: "app", token: "s3cret" }, action: "sign", account: "a",
 *   outcome: "denied", durationMs: 1, keyShare: { x: "..." } } as const;
 * await audit.record(withSecrets);
 * console.assert(!lines[0].includes("s3cret") && !lines[0].includes("keyShare"));
 * ```
 */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const { write } = options;
  if (typeof write !== "function") throw new TypeError("write: expected a function");
  const clock = options.clock ?? Date.now;
  return {
    async record(record: AuditRecord): Promise<void> {
      await write(formatLine(record, clock()));
    },
  };
}

/**
 * The sessions a dead process left without an end: the `started` records among `lines` (the
 * audit file since the last `service_start` record, oldest first) whose `call_id` no later
 * record repeats. Lines that do not parse are skipped.
 *
 * @param lines audit lines, oldest first.
 * @returns one `interrupted` record per such session, with the started record's fields and
 *   the time since it was started (`durationMs`, from `now`).
 * @example
 * ```ts
 * import { findInterrupted } from "./audit.ts";
 * const started = '{"ts":"1970-01-01T00:00:00.000Z","type":"audit","caller":"app",' +
 *   '"action":"sign","account":"a","call_id":"c1","outcome":"started","duration_ms":0}';
 * const [r] = findInterrupted([started], 5000);
 * console.assert(r.outcome === "interrupted" && r.callId === "c1" && r.durationMs === 5000);
 * console.assert(findInterrupted([started, started.replace('"started"', '"ok"')], 0).length === 0);
 * ```
 */
export function findInterrupted(lines: Iterable<string>, now: number): AuditRecord[] {
  const open = new Map<string, Record<string, unknown>>();
  for (const line of lines) {
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof o !== "object" || o === null) continue;
    const r = o as Record<string, unknown>;
    if (typeof r.call_id !== "string") continue;
    if (r.outcome === "started") open.set(r.call_id, r);
    else open.delete(r.call_id);
  }
  return [...open.values()].map((r) => {
    const ts = typeof r.ts === "string" ? Date.parse(r.ts) : NaN;
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    return {
      caller: str(r.caller) ?? null,
      action: str(r.action) ?? "unknown",
      account: str(r.account) ?? null,
      digest: str(r.digest),
      path: str(r.path),
      callId: str(r.call_id),
      outcome: "interrupted",
      errorCode: "process-died",
      durationMs: Number.isFinite(ts) ? Math.max(0, now - ts) : 0,
    };
  });
}
