/**
 * Response shapes of the gateway (private to `gateway/`): the JSON and SSE headers, and the JSON
 * error body every refusal becomes.
 * @module
 */
import { GatewayError, isGatewayError } from "./errors.ts";
import type { Logger } from "../platform/logger.ts";

/** Headers of a JSON answer. */
export const JSON_HEADERS = { "content-type": "application/json" };

/** Headers of an SSE stream (no caching, no proxy buffering). */
export const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/**
 * The JSON answer `{"error": code, "message": text}` of an error; an error that is not a
 * {@link GatewayError} is logged and answered as `internal`.
 *
 * @param e what the request's handling threw
 * @param logger operator log for unexpected errors
 * @returns the response, with the status of the error's code
 */
export function errorResponse(e: unknown, logger: Logger): Response {
  const err = isGatewayError(e) ? e : new GatewayError("internal", "internal error");
  if (!isGatewayError(e)) {
    logger.log("error", "internal error", {
      error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    });
  }
  const headers = new Headers({ ...JSON_HEADERS, ...err.headers });
  if (err.code === "unauthorized") headers.set("www-authenticate", 'Bearer realm="sign-gateway"');
  return new Response(JSON.stringify({ error: err.code, message: err.message }), {
    status: err.status,
    headers,
  });
}
