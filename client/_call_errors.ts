/**
 * The client's failures to reach something, named and typed (private to `client/`): a call
 * that could not reach the sign-service or the sign-gateway fails with a `ConnectError` whose
 * message names the URL, and whose code is the one Connect defines for the cause:
 *
 * | cause | code |
 * |---|---|
 * | connection refused, reset, DNS, TLS: the request never got an answer | `UNAVAILABLE` |
 * | the gateway unreachable beyond its retries (`TransportError` "io") | `UNAVAILABLE` |
 * | the call's deadline passed, or a protocol round's timeout (`TransportError` "timeout") | `DEADLINE_EXCEEDED` |
 * | the service refused for load or rate (its own `RESOURCE_EXHAUSTED`, retry hint kept) | `RESOURCE_EXHAUSTED` |
 *
 * Every other error passes unchanged: a protocol abort names its culprit, a tampered frame its
 * fault, an error the service answered keeps its code and message (prefixed with the URL).
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { TransportError } from "../core/errors.ts";

/** Where a client's calls go, for the messages. */
export interface CallEndpoints {
  /** The service's base URL (undefined when the client was given a transport). */
  readonly serviceUrl?: string;
  readonly gatewayUrl: string;
}

/** The text of an error's cause chain, a few levels deep ("fetch failed: connect ECONNREFUSED"). */
function causes(e: unknown): string {
  const parts: string[] = [];
  for (let c = e, k = 0; c instanceof Error && k < 4; c = c.cause, k++) {
    const code = (c as { code?: unknown }).code;
    const text = c instanceof ConnectError ? c.rawMessage : c.message;
    const part = typeof code === "string" && !text.includes(code) ? `${text} (${code})` : text;
    if (part && !parts.includes(part)) parts.push(part);
  }
  return parts.join(": ");
}

/** Whether a Connect error is a request that never got an answer (a network failure). */
function neverAnswered(e: ConnectError): boolean {
  if (e.code !== Code.Unknown && e.code !== Code.Unavailable && e.code !== Code.Internal) {
    return false;
  }
  return e.cause instanceof TypeError ||
    /fetch failed|failed to fetch|network|ECONNREFUSED|ECONNRESET|ENOTFOUND|EHOSTUNREACH|socket/i
      .test(causes(e));
}

/**
 * Names and types a failure of a service call (module doc).
 * @param e what the call threw.
 * @param where the URLs.
 * @param signal the call's signal: a cancellation by its deadline is DEADLINE_EXCEEDED.
 * @returns a `ConnectError` naming the service's URL (its metadata, such as `retry-after`,
 *   kept), or `e` when it is not a Connect error.
 */
export function serviceFailure(
  e: unknown,
  where: CallEndpoints,
  signal?: AbortSignal,
): unknown {
  if (!(e instanceof ConnectError)) return e;
  const url = where.serviceUrl ?? "(the configured transport)";
  const reason = signal?.aborted ? (signal.reason as { name?: unknown } | undefined) : undefined;
  if (e.code === Code.Canceled && reason?.name === "TimeoutError") {
    // Cancelled by the call's own deadline (queue and retries included), not by the caller.
    return new ConnectError(
      `sign-service at ${url}: the call's deadline passed`,
      Code.DeadlineExceeded,
      e.metadata,
      undefined,
      e,
    );
  }
  if (neverAnswered(e)) {
    return new ConnectError(
      `sign-service at ${url} unreachable: ${causes(e)}`,
      Code.Unavailable,
      e.metadata,
      undefined,
      e,
    );
  }
  if (e.rawMessage.includes(url)) return e;
  const named = new ConnectError(
    `sign-service at ${url}: ${e.rawMessage}`,
    e.code,
    e.metadata,
    undefined,
    e,
  );
  named.details.push(...e.details);
  return named;
}

/**
 * Names and types a failure of the client's own party, which talks to the gateway (module doc).
 * @param e what the party threw.
 * @param where the URLs.
 * @returns a `ConnectError` naming the gateway's URL for "io" (UNAVAILABLE) and "timeout"
 *   (DEADLINE_EXCEEDED); `e` otherwise.
 */
export function gatewayFailure(e: unknown, where: CallEndpoints): unknown {
  if (!(e instanceof TransportError)) return e;
  if (e.code === "io") {
    return new ConnectError(
      `sign-gateway at ${where.gatewayUrl} unreachable: ${causes(e)}`,
      Code.Unavailable,
      undefined,
      undefined,
      e,
    );
  }
  if (e.code === "timeout") {
    return new ConnectError(
      `no answer in time through the sign-gateway at ${where.gatewayUrl}: ${e.message}`,
      Code.DeadlineExceeded,
      undefined,
      undefined,
      e,
    );
  }
  return e;
}
