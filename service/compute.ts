/**
 * The sign-service's protocol compute, made from its configuration: the pool of compute
 * workers (platform/compute_pool.ts, one per core by default), admission control over it
 * (admission.ts, starting from the measured costs of this runtime), the metrics that watch
 * both (metrics.ts), and the prime generator of keygen and refresh on the same workers.
 * `startSignService` (start.ts) wires these into the RPC implementation and the `/metrics`
 * route.
 *
 * @example
 * ```ts
 * import { startServiceCompute } from "./compute.ts";
 * import { defaultServiceConfig } from "./config.ts";
 * const config = defaultServiceConfig();
 * const compute = await startServiceCompute({
 *   ...config,
 *   compute: { ...config.compute, workers: 1 },
 * });
 * // start.ts hands compute.pool, compute.admission, compute.metrics and compute.generatePrimes
 * // to createSignServiceImpl (sign_service.ts).
 * console.assert(compute.pool.size === 1);
 * await compute.close();
 * ```
 * @module
 */
import { generatePaillierPrimes, type PaillierPrimes } from "../core/protocols/aux_info.ts";
import { type ComputePool, createComputePool } from "../platform/compute_pool.ts";
import type { Logger } from "../platform/logger.ts";
import { detectRuntime } from "../platform/mod.ts";
import { type Admission, createAdmission, DEFAULT_COSTS_MS } from "./admission.ts";
import type { ServiceConfig } from "./config.ts";
import { createServiceMetrics, type ServiceMetrics } from "./metrics.ts";
import type { PrimeOptions } from "./sign_service.ts";

/** The compute of a running service. */
export interface ServiceCompute {
  readonly pool: ComputePool;
  readonly admission: Admission;
  readonly metrics: ServiceMetrics;
  /**
   * The retry hint of the session-count limits, ms: the expected time for one signing session
   * to end and free a slot (its cost over the workers).
   */
  readonly sessionRetryAfterMs: number;
  /** This party's Paillier primes, both generated on the workers. */
  generatePrimes(options?: PrimeOptions): Promise<PaillierPrimes>;
  /** Stops the workers (running jobs fail). */
  close(): Promise<void>;
}

/** Options of {@link startServiceCompute}. */
export interface ServiceComputeOptions {
  readonly logger?: Logger;
  /** The worker module (tests: one with crash hooks). */
  readonly workerUrl?: URL;
  readonly workerData?: unknown;
  /** Accounts the service holds: sizes the workers' per-modulus caches (`setAccounts` later). */
  readonly accounts?: number;
}

/**
 * Starts the compute workers and waits for the first one to be ready.
 * @param config the service configuration (`compute`, `mpc.round_timeout_ms`, and
 *   `rate_limit.max_concurrent_sessions`, the ceiling of the adaptive limit).
 * @param options logger, and a worker module for tests.
 * @returns the compute.
 * @throws {ComputeWorkerError} "unavailable" when no worker starts.
 */
export async function startServiceCompute(
  config: Pick<ServiceConfig, "compute" | "mpc" | "rateLimit" | "presignatures">,
  options: ServiceComputeOptions = {},
): Promise<ServiceCompute> {
  const { logger } = options;
  // The metrics read the pool and the admission made after them (the pool reports to them).
  const made: { pool?: ComputePool; admission?: Admission } = {};
  const metrics = createServiceMetrics({
    pool: () => made.pool!.stats(),
    admission: () => made.admission,
  });
  const pool = createComputePool({
    workers: config.compute.workers === 0 ? undefined : config.compute.workers,
    workerUrl: options.workerUrl,
    workerData: options.workerData,
    accounts: options.accounts,
    onEvent: (e) => {
      metrics.poolEvent(e);
      if (e.type === "worker-stopped" && e.reason === "crashed") {
        logger?.log("error", "compute worker crashed; it is replaced when needed", {});
      }
    },
  });
  const runtime = detectRuntime();
  const costMs = DEFAULT_COSTS_MS[runtime === "node" ? "node" : "deno"];
  const admission = createAdmission({
    workers: pool.size,
    costMs,
    maxWaitMs: config.compute.maxQueueWaitMs || config.mpc.roundTimeoutMs,
    maxConcurrent: config.rateLimit.maxConcurrentSessions,
    backgroundShare: config.presignatures.cpuPercent / 100,
  });
  made.pool = pool;
  made.admission = admission;
  try {
    await pool.ready();
  } catch (e) {
    await pool.close();
    throw e;
  }
  logger?.log("info", "compute workers ready", { workers: pool.size, runtime });
  const p = pool;
  return {
    pool,
    admission,
    metrics,
    sessionRetryAfterMs: Math.ceil(costMs.sign / p.size),
    generatePrimes: (o = {}) =>
      generatePaillierPrimes((bits) =>
        p.safePrime(bits, { signal: o.signal, priority: o.priority, onSettled: o.onSettled })
      ),
    close: () => p.close(),
  };
}
