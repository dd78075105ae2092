/**
 * Typed errors of the sign-gateway and their HTTP mapping.
 *
 * Every refusal the gateway makes is a {@link GatewayError} with a stable string `code`; the
 * handler turns it into a JSON body `{ "error": code, "message": text }` with the status listed in
 * {@link STATUS_BY_CODE}. Messages say what was expected and what was got, never a token or a
 * message body.
 *
 * @module
 */

/** Every error code the gateway answers with. */
export type GatewayErrorCode =
  | "invalid_room_id"
  | "invalid_last_event_id"
  | "invalid_body"
  | "empty_body"
  | "body_too_large"
  | "invalid_request"
  | "not_found"
  | "method_not_allowed"
  | "unauthorized"
  | "forbidden"
  | "cors_forbidden"
  | "history_gone"
  | "unknown_event_id"
  | "too_many_subscribers"
  | "too_many_rooms"
  | "too_many_source_rooms"
  | "too_many_anonymous_rooms"
  | "too_many_source_subscribers"
  | "too_many_source_bytes"
  | "request_timeout"
  | "server_busy"
  | "storage_full"
  | "backend_unavailable"
  | "shutting_down"
  | "internal";

/** The HTTP status of each error code. */
export const STATUS_BY_CODE: Readonly<Record<GatewayErrorCode, number>> = {
  invalid_room_id: 400,
  invalid_last_event_id: 400,
  invalid_body: 400,
  empty_body: 400,
  invalid_request: 400,
  body_too_large: 413,
  not_found: 404,
  method_not_allowed: 405,
  unauthorized: 401,
  forbidden: 403,
  cors_forbidden: 403,
  history_gone: 410,
  unknown_event_id: 410,
  too_many_subscribers: 429,
  too_many_rooms: 503,
  too_many_source_rooms: 429,
  too_many_anonymous_rooms: 503,
  too_many_source_subscribers: 429,
  too_many_source_bytes: 429,
  request_timeout: 408,
  server_busy: 503,
  storage_full: 503,
  backend_unavailable: 503,
  shutting_down: 503,
  internal: 500,
};

/**
 * An error the gateway reports to its caller: a refused request (4xx), an exhausted limit or an
 * unavailable backend (5xx).
 *
 * @example
 * ```ts
 * import { GatewayError } from "./errors.ts";
 * const e = new GatewayError("body_too_large", "expected a body of at most 10 bytes, got 11");
 * console.assert(e.status === 413);
 * ```
 */
export class GatewayError extends Error {
  /** Stable machine-readable code, also the `error` field of the JSON body. */
  readonly code: GatewayErrorCode;
  /** HTTP status the code maps to. */
  readonly status: number;
  /** Extra response headers (e.g. `allow` for 405). */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The capacity limit that refused the request (its setting name, e.g. `max_rooms`), for
   * `/healthz` and `gateway_limit_refusals_total`; undefined for other refusals.
   */
  readonly limit: string | undefined;

  /**
   * @param code one of {@link GatewayErrorCode}
   * @param message human-readable text; must not contain secrets or message bodies
   * @param options standard `cause`, extra response headers, the capacity limit that refused
   */
  constructor(
    code: GatewayErrorCode,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string>; limit?: string },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.code = code;
    this.status = STATUS_BY_CODE[code];
    this.headers = options?.headers ?? {};
    this.limit = options?.limit;
  }
}

/**
 * Whether a value is a {@link GatewayError} (works across module copies).
 *
 * @param e any thrown value
 * @returns true when `e` carries a gateway error code
 */
export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError ||
    (e instanceof Error && e.name === "GatewayError" && typeof (e as GatewayError).code ===
        "string" &&
      (e as GatewayError).code in STATUS_BY_CODE);
}
