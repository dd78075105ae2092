/**
 * Routing of the gateway (private to `gateway/`): CORS preflights, `/healthz`, `/metrics` and the
 * four room routes `/rooms/{room_id}/{action}`, each with its method; the room id is checked
 * against the configured pattern before any room route runs.
 * @module
 */
import type { Cors } from "./cors.ts";
import { GatewayError } from "./errors.ts";
import type { RoomRoutes } from "./_room_routes.ts";

const ROUTES = new Set(["subscribe", "broadcast", "issue_unique_idx", "tokens"]);
const MAX_ROOM_ID_LENGTH = 256;

/** What the router learnt of a request, for metrics and logs (filled in as it goes). */
export interface RouteInfo {
  /** `preflight`, `healthz`, `metrics`, a room action, or `other`. */
  route: string;
  /** The validated room id, when there is one. */
  room?: string;
  /** The requester's source key for the per-source quotas (null: none applies). */
  source: string | null;
  /** The peer's address when the source is the peer itself (null behind a proxy, or none). */
  peer: string | null;
}

/** Where the router sends requests. */
export interface RouteTargets {
  readonly cors: Cors;
  readonly rooms: RoomRoutes;
  /** Checks a room id (see {@link roomIdCheck}). */
  readonly validRoom: (id: string) => string;
  readonly health: () => Promise<Response>;
  readonly metrics: () => Response;
  /** Whether the gateway is shutting down (room routes answer 503). */
  readonly closing: () => boolean;
}

/**
 * The check of room ids against a pattern.
 *
 * @param pattern the room-id pattern of the limits, anchored here
 * @returns a function that returns a valid id and throws {GatewayError} `invalid_room_id` else
 * @throws {RangeError} when the pattern is not a regular expression
 */
export function roomIdCheck(pattern: string): (id: string) => string {
  let roomId: RegExp;
  try {
    roomId = new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    throw new RangeError(`limits.roomIdPattern: not a valid regular expression`, { cause: e });
  }
  return (id) => {
    if (id.length === 0 || id.length > MAX_ROOM_ID_LENGTH || !roomId.test(id)) {
      throw new GatewayError(
        "invalid_room_id",
        `expected a room id matching ${pattern}, got ${
          JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}...` : id)
        } (${id.length} characters)`,
      );
    }
    return id;
  };
}

/**
 * Sends a request to its route.
 *
 * @param req the request
 * @param url its parsed URL
 * @param info filled in with the route (and room) as soon as they are known
 * @param to the routes' targets
 * @returns the route's response
 * @throws {GatewayError} `not_found`, `method_not_allowed`, `invalid_room_id`, `shutting_down`,
 * or what the route throws
 */
export function route(
  req: Request,
  url: URL,
  info: RouteInfo,
  to: RouteTargets,
): Promise<Response> | Response {
  const path = url.pathname;
  if (req.method === "OPTIONS") {
    info.route = "preflight";
    if (req.headers.get("access-control-request-method") !== null) {
      return to.cors.preflight(req.headers.get("origin"));
    }
    return new Response(null, { status: 204, headers: { allow: "GET, POST, OPTIONS" } });
  }
  if (path === "/healthz" || path === "/metrics") {
    info.route = path.slice(1);
    if (req.method !== "GET") throw methodNotAllowed("GET");
    return path === "/healthz" ? to.health() : to.metrics();
  }
  const parts = path.split("/");
  if (parts.length !== 4 || parts[1] !== "rooms" || !ROUTES.has(parts[3])) {
    throw new GatewayError("not_found", `no route for ${req.method} ${truncate(path)}`);
  }
  const action = parts[3];
  info.route = action;
  const want = action === "subscribe" ? "GET" : "POST";
  if (req.method !== want) throw methodNotAllowed(want);
  const room = to.validRoom(parts[2]);
  info.room = room;
  if (to.closing()) throw new GatewayError("shutting_down", "the gateway is shutting down");
  switch (action) {
    case "subscribe":
      return to.rooms.subscribe(req, url, room, info.source);
    case "broadcast":
      return to.rooms.broadcast(req, url, room, info.source);
    case "issue_unique_idx":
      return to.rooms.issueIdx(req, url, room, info.source);
    default:
      return to.rooms.issueToken(req, room);
  }
}

function methodNotAllowed(allow: string): GatewayError {
  return new GatewayError("method_not_allowed", `expected method ${allow}`, {
    headers: { allow: `${allow}, OPTIONS` },
  });
}

function truncate(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);
}
