/**
 * The room routes of the gateway (private to `gateway/`): subscribe (an SSE stream from the hub),
 * broadcast (append a body), issue_unique_idx and tokens. Each takes a validated room id and the
 * requester's source key (null when no per-source quota applies); the router has checked the
 * method and that the gateway is not shutting down.
 * @module
 */
import type { Backend, RoomCreator } from "./backend.ts";
import { GatewayError, isGatewayError } from "./errors.ts";
import type { Hub } from "./hub.ts";
import type { GatewayMetrics } from "./metrics.ts";
import type { BodyBudget } from "./_request_body.ts";
import { JSON_HEADERS, SSE_HEADERS } from "./_responses.ts";
import type { RoomAccess } from "./_room_access.ts";
import { parseLastEventId } from "./sse.ts";

const TOKEN_REQUEST_MAX_BYTES = 1024;

/** A requester with a valid room token: no per-source or anonymous quota. */
const WITH_TOKEN: RoomCreator = Object.freeze({ source: null, anonymous: false });

/** What the room routes work with. */
export interface RoomRoutesDeps {
  readonly backend: Backend;
  readonly hub: Hub;
  readonly metrics: GatewayMetrics;
  readonly access: RoomAccess;
  readonly bodies: BodyBudget;
  /** Largest broadcast body, in bytes. */
  readonly maxBodyBytes: number;
}

/** The four routes under `/rooms/{room_id}/`. */
export class RoomRoutes {
  readonly #d: RoomRoutesDeps;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

  /** @param deps backend, hub, counters, access control and the body budget */
  constructor(deps: RoomRoutesDeps) {
    this.#d = deps;
  }

  /**
   * Who a room request is for the quotas: a token holder is exempt; without a token the source
   * is charged, and counted as anonymous when the gateway checks tokens. Synchronous when access
   * control is off (the hot path of an open gateway awaits nothing here).
   *
   * @throws {GatewayError} as the access control refuses it
   */
  #requester(
    req: Request,
    url: URL,
    room: string,
    allowQuery: boolean,
    source: string | null,
  ): RoomCreator | Promise<RoomCreator> {
    const { access } = this.#d;
    if (!access.enabled) return { source, anonymous: false };
    return access.identify(req, url, room, allowQuery).then((who) =>
      who === "token" ? WITH_TOKEN : { source, anonymous: who === "anonymous" }
    );
  }

  /**
   * `GET /rooms/{room_id}/subscribe`: the room's SSE stream from `Last-Event-ID` (header, else
   * the `last_event_id` query parameter).
   *
   * @param req the request
   * @param url its parsed URL
   * @param room the room
   * @param source the requester's source key, or null
   * @returns the stream response
   * @throws {GatewayError} as the access control and the hub refuse it
   */
  async subscribe(req: Request, url: URL, room: string, source: string | null): Promise<Response> {
    const { access, hub } = this.#d;
    let requester = this.#requester(req, url, room, access.allowQueryToken, source);
    if (requester instanceof Promise) requester = await requester;
    const header = req.headers.get("last-event-id");
    const after = parseLastEventId(
      header !== null ? header : url.searchParams.get("last_event_id"),
    );
    const sub = await hub.subscribe(room, after, requester);
    return new Response(sub.stream, { status: 200, headers: SSE_HEADERS });
  }

  /**
   * `POST /rooms/{room_id}/broadcast`: appends the body (non-empty UTF-8 text without CR).
   *
   * @param req the request
   * @param url its parsed URL
   * @param room the room
   * @param source the requester's source key, or null
   * @returns 200 with an empty body
   * @throws {GatewayError} `empty_body`, `invalid_body`, the body limits' and the backend's codes
   */
  async broadcast(req: Request, url: URL, room: string, source: string | null): Promise<Response> {
    const { backend, metrics } = this.#d;
    let requester = this.#requester(req, url, room, false, source);
    if (requester instanceof Promise) requester = await requester;
    const creator = requester;
    return await this.#d.bodies.withBody(req, this.#d.maxBodyBytes, async (bytes) => {
      if (bytes.length === 0) {
        throw new GatewayError(
          "empty_body",
          "expected a non-empty body (an empty SSE data field is not delivered by EventSource)",
        );
      }
      let text: string;
      try {
        text = this.#decoder.decode(bytes);
      } catch {
        throw new GatewayError("invalid_body", "expected a UTF-8 text body");
      }
      if (text.includes("\r")) {
        throw new GatewayError(
          "invalid_body",
          "expected a body without carriage returns (SSE cannot carry CR exactly; use LF)",
        );
      }
      await backend.append(room, text, bytes.length, creator);
      metrics.messagesPosted++;
      metrics.bytesPosted += bytes.length;
      return new Response(null, { status: 200 });
    });
  }

  /**
   * `POST /rooms/{room_id}/issue_unique_idx`: `{"unique_idx": n}`, n = 1, 2, ... per room.
   *
   * @param req the request
   * @param url its parsed URL
   * @param room the room
   * @param source the requester's source key, or null
   * @returns the JSON answer
   * @throws {GatewayError} as the access control and the backend refuse it
   */
  async issueIdx(req: Request, url: URL, room: string, source: string | null): Promise<Response> {
    const { backend } = this.#d;
    let requester = this.#requester(req, url, room, false, source);
    if (requester instanceof Promise) requester = await requester;
    const n = await backend.issueUniqueIdx(room, requester);
    return new Response(`{"unique_idx":${n}}`, { status: 200, headers: JSON_HEADERS });
  }

  /**
   * `POST /rooms/{room_id}/tokens` with the issuer secret and `{"party", "ttl_s"?}`: a room token.
   *
   * @param req the request
   * @param room the room
   * @returns `{"token", "room", "party", "expires_at"}`, not to be cached
   * @throws {GatewayError} `not_found` when tokens are not issued here, `unauthorized`,
   * `forbidden`, `invalid_request` for a body that is not the expected JSON
   */
  async issueToken(req: Request, room: string): Promise<Response> {
    const { access } = this.#d;
    const issue = await access.checkIssuer(req);
    let party: unknown;
    let ttl: unknown;
    try {
      const parsed = await this.#d.bodies.withBody(
        req,
        TOKEN_REQUEST_MAX_BYTES,
        (body) => JSON.parse(this.#decoder.decode(body)),
      );
      party = parsed?.party;
      ttl = parsed?.ttl_s ?? access.tokenTtlS;
    } catch (e) {
      if (isGatewayError(e)) throw e;
      throw new GatewayError("invalid_request", 'expected a JSON body {"party": "<label>"}');
    }
    if (typeof party !== "string" || !/^[A-Za-z0-9_-]{1,32}$/.test(party)) {
      throw new GatewayError("invalid_request", "expected party to match ^[A-Za-z0-9_-]{1,32}$");
    }
    if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 1 || ttl > access.tokenTtlS) {
      throw new GatewayError(
        "invalid_request",
        `expected ttl_s to be an integer from 1 to ${access.tokenTtlS}`,
      );
    }
    const { token, expiresAt } = await issue(room, party, ttl);
    return new Response(JSON.stringify({ token, room, party, expires_at: expiresAt }), {
      status: 200,
      headers: { ...JSON_HEADERS, "cache-control": "no-store" },
    });
  }
}
