/**
 * Access control of the gateway's rooms (private to `gateway/`): the room token a request must
 * carry when access control is enabled (or, with anonymous requests allowed, may carry to be
 * exempt from the anonymous quotas), and the issuer secret that authorises issuing tokens.
 * @module
 */
import type { AccessConfig } from "./config.ts";
import { GatewayError } from "./errors.ts";
import {
  createRoomTokenAuthority,
  createSecretChecker,
  type RoomTokenAuthority,
} from "./tokens.ts";

/**
 * The `Authorization: Bearer` value of a request.
 *
 * @param req the request
 * @returns the token, `""` for a header of another shape, `null` without the header
 */
export function bearer(req: Request): string | null {
  const h = req.headers.get("authorization");
  if (h === null) return null;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(h);
  return m ? m[1] : "";
}

/** Room tokens and the issuer secret of one gateway; a no-op when access control is disabled. */
export class RoomAccess {
  /** Also accept the token in an `access_token` query parameter of subscribe. */
  readonly allowQueryToken: boolean;
  /** Longest lifetime of an issued token, in seconds. */
  readonly tokenTtlS: number;
  /** With access control on: requests without a token are served as anonymous. */
  readonly allowAnonymous: boolean;
  readonly #authority: Promise<RoomTokenAuthority> | null;
  readonly #issuerCheck: Promise<(presented: string) => Promise<boolean>> | null;

  /**
   * @param options access settings (defaults: disabled, tokens for a day, no query token)
   * @param now clock in milliseconds
   * @throws {RangeError} when access control is enabled without a 32-byte token secret, or the
   * issuer secret is neither empty nor 32 bytes long
   */
  constructor(options: Partial<AccessConfig>, now: () => number) {
    const access: AccessConfig = {
      enabled: false,
      tokenSecret: "",
      issuerSecret: "",
      tokenTtlS: 86_400,
      allowQueryToken: false,
      allowAnonymous: false,
      ...options,
    };
    if (access.enabled && new TextEncoder().encode(access.tokenSecret).length < 32) {
      throw new RangeError("access.tokenSecret: expected at least 32 bytes when access is enabled");
    }
    if (access.issuerSecret !== "" && new TextEncoder().encode(access.issuerSecret).length < 32) {
      throw new RangeError("access.issuerSecret: expected empty or at least 32 bytes");
    }
    this.allowQueryToken = access.allowQueryToken;
    this.tokenTtlS = access.tokenTtlS;
    this.allowAnonymous = access.allowAnonymous;
    this.#authority = access.enabled
      ? createRoomTokenAuthority({ secret: access.tokenSecret, now })
      : null;
    this.#issuerCheck = access.enabled && access.issuerSecret !== ""
      ? createSecretChecker(access.issuerSecret)
      : null;
    // Surface key-import failures on first use, not as unhandled rejections.
    this.#authority?.catch(() => {});
    this.#issuerCheck?.catch(() => {});
  }

  /** Whether requests to rooms need a room token. */
  get enabled(): boolean {
    return this.#authority !== null;
  }

  /**
   * Checks the room token of a request to `room`.
   *
   * @param req the request
   * @param url its parsed URL (for the `access_token` query parameter)
   * @param room the room the request is for
   * @param allowQuery whether the token may come in the query when the header is absent
   * @throws {GatewayError} `unauthorized` without a token, `forbidden` for a token not valid for
   * the room
   */
  async authorize(req: Request, url: URL, room: string, allowQuery: boolean): Promise<void> {
    await this.identify(req, url, room, allowQuery);
  }

  /**
   * Who a request to `room` is: `token` (it carries a valid room token), `anonymous` (no token,
   * and the gateway serves anonymous requests), or `open` (access control is off).
   *
   * @param req the request
   * @param url its parsed URL (for the `access_token` query parameter)
   * @param room the room the request is for
   * @param allowQuery whether the token may come in the query when the header is absent
   * @returns the kind of requester
   * @throws {GatewayError} `unauthorized` without a token when anonymous requests are not
   * served, `forbidden` for a token not valid for the room
   */
  async identify(
    req: Request,
    url: URL,
    room: string,
    allowQuery: boolean,
  ): Promise<"token" | "anonymous" | "open"> {
    if (!this.#authority) return "open";
    let token = bearer(req);
    if (token === null && allowQuery) token = url.searchParams.get("access_token");
    if (token === null) {
      if (this.allowAnonymous) return "anonymous";
      throw new GatewayError(
        "unauthorized",
        "this gateway requires a room token: send Authorization: Bearer <token>",
      );
    }
    const check = await (await this.#authority).verify(token, room);
    if (!check.ok) {
      throw new GatewayError("forbidden", "the room token is not valid for this room");
    }
    return "token";
  }

  /**
   * Checks that a token request carries the issuer secret.
   *
   * @param req the token request
   * @returns the token authority's `issue`
   * @throws {GatewayError} `not_found` when this gateway issues no tokens, `unauthorized` without
   * a bearer value, `forbidden` for a wrong one
   */
  async checkIssuer(req: Request): Promise<RoomTokenAuthority["issue"]> {
    if (!this.#authority || !this.#issuerCheck) {
      throw new GatewayError("not_found", "token issuing is not enabled on this gateway");
    }
    const presented = bearer(req);
    if (presented === null) {
      throw new GatewayError("unauthorized", "expected Authorization: Bearer <issuer secret>");
    }
    if (!(await (await this.#issuerCheck)(presented))) {
      throw new GatewayError("forbidden", "the issuer secret is not valid");
    }
    const authority = this.#authority;
    return async (room, party, ttlS) => await (await authority).issue(room, party, ttlS);
  }
}
