/**
 * CORS for the configured origins (Fetch standard, "CORS protocol"), so that a browser page on
 * another origin can use `EventSource` and `fetch` against the gateway.
 *
 * @module
 */

import { GatewayError } from "./errors.ts";

/** Request headers a cross-origin client may send. */
const ALLOW_HEADERS = "authorization, content-type, last-event-id, cache-control";
const ALLOW_METHODS = "GET, POST, OPTIONS";

/** CORS decisions for one list of origins. */
export interface Cors {
  /**
   * Adds the CORS response headers for `origin` to `headers` when the origin is allowed.
   * @param origin the request's `Origin` header (or null)
   * @param headers response headers to extend
   */
  apply(origin: string | null, headers: Headers): void;
  /**
   * Answers a preflight (`OPTIONS` with `Access-Control-Request-Method`).
   * @param origin the request's `Origin` header
   * @returns a 204 response with the CORS headers
   * @throws {GatewayError} `cors_forbidden` when the origin is not allowed
   */
  preflight(origin: string | null): Response;
}

/**
 * Creates CORS handling for a list of allowed origins. `"*"` allows every origin (without
 * credentials); otherwise the request's origin is echoed when it is listed exactly.
 *
 * @param origins allowed origins, e.g. `["https://wallet.example"]`
 * @returns a {@link Cors}
 * @example
 * ```ts
 * import { createCors } from "./cors.ts";
 * const cors = createCors(["http://a.test"]);
 * const h = new Headers();
 * cors.apply("http://a.test", h);
 * console.assert(h.get("access-control-allow-origin") === "http://a.test");
 * ```
 */
export function createCors(origins: readonly string[]): Cors {
  const any = origins.includes("*");
  const allowed = new Set(origins);
  const allowOrigin = (origin: string | null): string | null => {
    if (any) return "*";
    return origin !== null && allowed.has(origin) ? origin : null;
  };
  return {
    apply(origin, headers) {
      if (origins.length === 0) return;
      const value = allowOrigin(origin);
      if (!any) headers.append("vary", "origin");
      if (value !== null) headers.set("access-control-allow-origin", value);
    },
    preflight(origin) {
      const value = allowOrigin(origin);
      if (value === null) {
        throw new GatewayError(
          "cors_forbidden",
          `origin ${JSON.stringify(origin ?? "")} is not in server.cors_origins`,
        );
      }
      const headers = new Headers({
        "access-control-allow-origin": value,
        "access-control-allow-methods": ALLOW_METHODS,
        "access-control-allow-headers": ALLOW_HEADERS,
        "access-control-max-age": "600",
      });
      if (!any) headers.set("vary", "origin");
      return new Response(null, { status: 204, headers });
    },
  };
}
