/**
 * The sign-service's Prometheus metrics (`GET /metrics`, text format 0.0.4, on the web port
 * and on the TLS port; no credentials, no account or caller names in any label):
 *
 * | metric | type | labels | what |
 * |---|---|---|---|
 * | `sign_service_sessions_total` | counter | `kind`, `outcome` | protocol sessions that ended, by kind (`sign`, `keygen`, `refresh`) and outcome (`ok`, or the Connect code in snake case: `aborted`, `deadline_exceeded`, `canceled`, `unavailable`, `internal`, ...) |
 * | `sign_service_rejections_total` | counter | `reason` | requests refused before any work: `rate_limited`, `too_many_sessions`, `too_many_caller_sessions`, `overloaded` (admission control), `draining` |
 * | `sign_service_sessions_active` | gauge | | sessions admitted and not ended |
 * | `sign_service_queue_length` | gauge | | compute jobs waiting for a worker |
 * | `sign_service_queue_wait_seconds` | histogram | | time a compute job waited for a worker |
 * | `sign_service_admission_limit` | gauge | | sessions admitted at once at most now (the adaptive limit of admission.ts) |
 * | `sign_service_backlog_seconds` | gauge | | worker time the admitted sessions are still expected to need |
 * | `sign_service_expected_wait_seconds` | gauge | | expected wait of a session admitted now (backlog / workers) |
 * | `sign_service_session_cost_seconds` | gauge | `kind` | current estimate of one session's worker time |
 * | `sign_service_workers` | gauge | | compute workers running or starting |
 * | `sign_service_workers_busy` | gauge | | workers running a job |
 * | `sign_service_worker_busy_seconds_total` | counter | | time workers spent on jobs |
 * | `sign_service_jobs_total` | counter | `outcome` | compute jobs by outcome: `ok`, `failed` (the machine threw: a protocol abort), `cancelled` (client gone, deadline, peer failed), `crashed` |
 * | `sign_service_worker_stops_total` | counter | `reason` | workers stopped: `cancelled` (terminated to stop a departed client's step), `crashed` |
 *
 * @example
 * ```ts
 * import { createServiceMetrics } from "./metrics.ts";
 * const metrics = createServiceMetrics({});
 * metrics.sessionEnded("sign", "ok");
 * metrics.rejected("overloaded");
 * console.assert(metrics.render().includes('sign_service_rejections_total{reason="overloaded"} 1'));
 * ```
 * @module
 */
import type { ComputePoolEvent, ComputePoolStats } from "../platform/compute_pool.ts";
import { MetricsRegistry } from "../platform/prometheus.ts";
import type { PoolStats } from "../session/presignature_pool.ts";
import { type Admission, SESSION_KINDS, type SessionKind } from "./admission.ts";

/** Why a request was refused before any work. */
export type RejectionReason =
  | "rate_limited"
  | "too_many_sessions"
  | "too_many_caller_sessions"
  | "overloaded"
  | "draining";

/** Where the sampled gauges come from (each optional: absent gauges read 0). */
export interface MetricsSources {
  readonly pool?: () => ComputePoolStats;
  readonly admission?: () => Admission | undefined;
}

/** The service's metrics (module doc). */
export interface ServiceMetrics {
  /** Counts a session that ended. */
  sessionEnded(kind: SessionKind, outcome: string): void;
  /** Counts a refused request. */
  rejected(reason: RejectionReason): void;
  /** Feeds the compute pool's events (`ComputePoolOptions.onEvent`). */
  poolEvent(e: ComputePoolEvent): void;
  /** Reads the presignature pool's counters at render time. */
  watchPresignatures(read: () => PoolStats): void;
  /** The `/metrics` page. */
  render(): string;
}

const WAIT_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Creates the service's metrics.
 * @param sources the pool's and the admission controller's state, read when rendered.
 * @returns the metrics.
 */
export function createServiceMetrics(sources: MetricsSources): ServiceMetrics {
  const m = new MetricsRegistry();
  let presignatures: (() => PoolStats) | undefined;
  m.gauge(
    "sign_service_presignatures",
    "Presignatures held unused (all accounts).",
    () => presignatures?.().held ?? 0,
  );
  m.counterFrom(
    "sign_service_presignatures_total",
    "Presignatures by event: made (Presign), used (signed with), evicted (a pool bound), " +
      "expired (their key epoch ended).",
    () => {
      const st = presignatures?.();
      return [
        [["made"], st?.added ?? 0],
        [["used"], st?.taken ?? 0],
        [["evicted"], st?.evicted ?? 0],
        [["expired"], st?.expired ?? 0],
      ];
    },
    ["event"],
  );
  const sessions = m.counter(
    "sign_service_sessions_total",
    "Protocol sessions that ended, by kind and outcome (ok or the Connect code).",
    ["kind", "outcome"],
  );
  const rejections = m.counter(
    "sign_service_rejections_total",
    "Requests refused before any work, by reason.",
    ["reason"],
  );
  const admission = () => sources.admission?.();
  m.gauge(
    "sign_service_sessions_active",
    "Sessions admitted and not ended.",
    () => admission()?.active() ?? 0,
  );
  const stats = () => sources.pool?.();
  m.gauge(
    "sign_service_queue_length",
    "Compute jobs waiting for a worker.",
    () => stats()?.queued ?? 0,
  );
  const wait = m.histogram(
    "sign_service_queue_wait_seconds",
    "Time a compute job waited for a worker.",
    [],
    WAIT_BUCKETS,
  );
  m.gauge(
    "sign_service_admission_limit",
    "Sessions admitted at once at most now (the adaptive limit).",
    () => admission()?.limit() ?? 0,
  );
  m.gauge(
    "sign_service_backlog_seconds",
    "Worker time the admitted sessions are still expected to need.",
    () => (admission()?.backlogMs() ?? 0) / 1000,
  );
  m.gauge(
    "sign_service_expected_wait_seconds",
    "Expected wait of a session admitted now (backlog / workers).",
    () => (admission()?.expectedStartMs() ?? 0) / 1000,
  );
  m.gauge(
    "sign_service_session_cost_seconds",
    "Current estimate of one session's worker time, by kind.",
    () => SESSION_KINDS.map((k) => [[k], (admission()?.cost(k) ?? 0) / 1000] as const),
    ["kind"],
  );
  m.gauge(
    "sign_service_workers",
    "Compute workers running or starting.",
    () => stats()?.live ?? 0,
  );
  m.gauge("sign_service_workers_busy", "Workers running a job.", () => stats()?.busy ?? 0);
  const busy = m.counter(
    "sign_service_worker_busy_seconds_total",
    "Time compute workers spent on jobs.",
  );
  const jobs = m.counter(
    "sign_service_jobs_total",
    "Compute jobs by outcome (ok, failed, cancelled, crashed).",
    ["outcome"],
  );
  const stops = m.counter(
    "sign_service_worker_stops_total",
    "Compute workers stopped, by reason (cancelled, crashed).",
    ["reason"],
  );
  return {
    sessionEnded: (kind, outcome) => sessions.inc([kind, outcome]),
    rejected: (reason) => rejections.inc([reason]),
    poolEvent(e) {
      if (e.type === "started") wait.observe([], e.waitMs / 1000);
      else if (e.type === "settled") {
        if (e.times.outcome === "cancelled" && e.times.busyMs === 0) {
          wait.observe([], e.times.waitMs / 1000);
        }
        if (e.times.busyMs > 0) busy.inc([], e.times.busyMs / 1000);
        jobs.inc([e.times.outcome]);
      } else if (e.type === "worker-stopped" && e.reason !== "closed") stops.inc([e.reason]);
    },
    watchPresignatures(read) {
      presignatures = read;
    },
    render: () => m.render(),
  };
}

/**
 * Wraps a fetch handler so that `GET /metrics` answers the metrics page; every other request
 * goes to `handler`.
 * @param handler the service's fetch handler.
 * @param metrics the metrics.
 * @returns the wrapped handler.
 */
export function withMetricsRoute(
  handler: (req: Request) => Promise<Response>,
  metrics: ServiceMetrics,
): (req: Request) => Promise<Response> {
  return (req) => {
    if (new URL(req.url).pathname === "/metrics" && req.method === "GET") {
      return Promise.resolve(
        new Response(metrics.render(), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        }),
      );
    }
    return handler(req);
  };
}
