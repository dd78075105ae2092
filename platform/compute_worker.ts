/**
 * The module a compute worker thread runs (platform/compute_pool.ts starts it): protocol
 * machine calls and safe primes, one at a time, with the runtime's fastest big-integer
 * backends (platform/mod.ts).
 * @module
 */
import { serveComputeJobs } from "./_compute_jobs.ts";

serveComputeJobs();
