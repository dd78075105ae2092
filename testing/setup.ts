/**
 * Imported first by tests and benchmarks that do heavy big-integer work: installs the fastest
 * backends of the runtime (OpenSSL in Node, the node:crypto polyfill in Deno).
 * @module
 */
import { installPlatformBackends } from "../platform/mod.ts";

installPlatformBackends();

/** Whether the slow tier (real-size generation) is enabled: `WALLET_MPC_SLOW=1`. */
export const SLOW: boolean = (() => {
  const g = globalThis as {
    Deno?: { env: { get(k: string): string | undefined } };
    process?: { env: Record<string, string | undefined> };
  };
  const v = g.Deno ? g.Deno.env.get("WALLET_MPC_SLOW") : g.process?.env.WALLET_MPC_SLOW;
  return v === "1";
})();
