/**
 * TEST-ONLY: the part of a sign-service's surroundings (`SignServiceDeps`) that in-process tests
 * build the same way: accounts from a memory key store, the authenticator, the limiters and
 * the audit log, each wired to its method.
 * @module
 */
import { createGatewayHandler } from "../gateway/handler.ts";
import type { MemoryKeyStore } from "../keystore/memory_key_store.ts";
import { type AuditLog, createAuditLog } from "../service/audit.ts";
import type { Authenticator } from "../service/auth.ts";
import type { RateLimiter, SessionLimiter } from "../service/rate_limit.ts";
import type { SignServiceDeps } from "../service/sign_service.ts";
import { createGatewayClient } from "../transport/mod.ts";

/** The wired parts. */
export type MemoryServiceParts = Pick<
  SignServiceDeps,
  "accounts" | "authenticate" | "authorize" | "rateLimit" | "acquireSession" | "audit"
>;

/**
 * Wires memory parts into a service's surroundings.
 * @param o the key store, authenticator, limiters and audit log.
 * @returns the fields of `SignServiceDeps` they serve.
 */
export function memoryServiceParts(o: {
  readonly store: MemoryKeyStore;
  readonly auth: Authenticator;
  readonly rate: RateLimiter;
  readonly sessions: SessionLimiter;
  readonly audit: AuditLog;
}): MemoryServiceParts {
  const { store, auth, rate, sessions, audit } = o;
  return {
    accounts: {
      ids: () => store.accounts(),
      get: (id) => store.entry(id),
      record: (id) => store.record(id),
      update: (id, f) => store.update(id, f),
    },
    authenticate: (h) => auth.authenticate(h),
    authorize: (caller, id, action) => auth.authorize(caller as never, id, action),
    rateLimit: (caller) => rate.take(caller.id),
    acquireSession: (caller) => sessions.acquire(caller.id),
    audit: (r) => audit.record(r),
  };
}

/**
 * An in-process sign-gateway (the real handler, no timers) behind a fetch that records every
 * call the service makes, and the audit lines of a memory audit log.
 * @returns the gateway handler, the service's recorded gateway client and calls, the client
 *   party's (unrecorded) gateway client, and the audit log with its lines.
 */
export function recordedSurroundings() {
  const lines: string[] = [];
  const audit = createAuditLog({ write: (l) => void lines.push(l) });
  const gatewayHandler = createGatewayHandler({ timers: false });
  const gatewayCalls: string[] = [];
  const gateway = createGatewayClient({
    url: "http://gateway.test",
    fetch: (input, init) => {
      gatewayCalls.push(`${init.method ?? "GET"} ${new URL(input).pathname}`);
      return gatewayHandler(new Request(input, init));
    },
  });
  const clientGateway = createGatewayClient({
    url: "http://gateway.test",
    fetch: (input, init) => gatewayHandler(new Request(input, init)),
  });
  return { lines, audit, gatewayHandler, gatewayCalls, gateway, clientGateway };
}
