/**
 * The gateway's issuer secret inside the enclave (docs/enclave.md, "Room tokens in the
 * enclave"): the parent sends its KMS ciphertext (framing.ts, port 7104), boot.ts decrypts it
 * for the attested enclave (kms_recipient.ts), and this module checks the plaintext, refuses to
 * use it over a gateway link the parent could read, asks the gateway once whether it accepts the
 * secret, and names the service's environment variable that carries it into
 * `loadServiceConfig` (service/config.ts reads `gateway.issuer_secret` from the environment
 * only).
 *
 * The secret is sent to the gateway in an `Authorization` header on every token request: over
 * `http://` the parent, which relays the enclave's gateway connection, would read it. So an
 * enclave given the secret must reach the gateway over TLS end to end (`https://` in
 * `gateway.url`; {@link requireTlsGateway}).
 *
 * No error message here carries the secret, its length or which of its bytes was refused.
 *
 * @example
 * ```ts
 * import { issuerSecretFromPlaintext } from "./issuer_secret.ts";
 * const plain = new TextEncoder().encode("s".repeat(40) + "\n");
 * const secret = issuerSecretFromPlaintext(plain); // one trailing newline dropped
 * plain.fill(0);
 * console.assert(secret.length === 40);
 * ```
 * @module
 */
import { toHex } from "../core/bytes.ts";
import { TransportError } from "../core/errors.ts";
import { ENV_ONLY_SECRETS } from "../service/config_args.ts";
import { createRoomTokenIssuer, type FetchLike, type RetryOptions } from "../transport/mod.ts";

/** The service's variable of `gateway.issuer_secret` (`WALLET_MPC_SERVICE_GATEWAY_ISSUER_SECRET`). */
export const ISSUER_SECRET_VARIABLE: string = ENV_ONLY_SECRETS["gateway.issuer_secret"];

/** Why the issuer secret was refused. */
export type IssuerSecretErrorCode =
  | "malformed" // not 32 to 4096 visible ASCII characters
  | "cleartext-gateway" // gateway.url is http: the parent would read the secret
  | "rejected"; // the gateway refused it (a wrong secret, or a gateway that issues no tokens)

/**
 * The issuer secret was refused. The message never holds the secret or a detail of it.
 *
 * @example
 * ```ts
 * import { IssuerSecretError } from "./issuer_secret.ts";
 * const e = new IssuerSecretError("rejected", "the gateway refused the issuer secret (401)");
 * console.assert(e.name === "IssuerSecretError" && e.code === "rejected");
 * ```
 */
export class IssuerSecretError extends Error {
  override readonly name = "IssuerSecretError";
  /** Why. */
  readonly code: IssuerSecretErrorCode;
  /**
   * @param code why.
   * @param message what was expected (no secret).
   */
  constructor(code: IssuerSecretErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

const MIN_CHARS = 32;
const MAX_CHARS = 4096;

/**
 * The issuer secret of a decrypted KMS plaintext: 32 to 4096 visible ASCII characters (the rule
 * of service/config.ts), after dropping one trailing `\n` or `\r\n` (a secret written to a file
 * with `echo`; a newline can never be part of the secret). The caller zeroes `plain`.
 * @param plain the KMS plaintext (not modified).
 * @returns the secret.
 * @throws {IssuerSecretError} `malformed`, naming the rule only.
 * @example
 * ```ts
 * import { IssuerSecretError, issuerSecretFromPlaintext } from "./issuer_secret.ts";
 * try {
 *   issuerSecretFromPlaintext(new TextEncoder().encode("too short"));
 * } catch (e) {
 *   console.assert(e instanceof IssuerSecretError && e.code === "malformed");
 * }
 * ```
 */
export function issuerSecretFromPlaintext(plain: Uint8Array): string {
  let n = plain.length;
  if (n > 0 && plain[n - 1] === 0x0a) n -= n > 1 && plain[n - 2] === 0x0d ? 2 : 1;
  let visible = n >= MIN_CHARS && n <= MAX_CHARS;
  for (let i = 0; i < n; i++) visible &&= plain[i] >= 0x21 && plain[i] <= 0x7e;
  if (!visible) {
    throw new IssuerSecretError(
      "malformed",
      `the decrypted issuer secret is not ${MIN_CHARS} to ${MAX_CHARS} visible ASCII characters ` +
        "(the gateway's access.issuer_secret, at most one trailing newline)",
    );
  }
  return String.fromCharCode(...plain.subarray(0, n));
}

/**
 * Refuses a gateway URL the parent could read: an issuer secret goes only over `https://`.
 * @param gatewayUrl the service's `gateway.url`.
 * @throws {IssuerSecretError} `cleartext-gateway` for any other scheme.
 */
export function requireTlsGateway(gatewayUrl: string): void {
  if (new URL(gatewayUrl).protocol !== "https:") {
    throw new IssuerSecretError(
      "cleartext-gateway",
      `an issuer secret was provisioned, and gateway.url is ${
        new URL(gatewayUrl).protocol
      }//: the parent relays the gateway connection and would read the secret (it is sent on ` +
        "every token request); use an https:// gateway URL (TLS end to end through the parent)",
    );
  }
}

/** Options of {@link checkIssuerSecretWithGateway}. */
export interface GatewayCheckOptions {
  /** The service's `gateway.url`. */
  readonly url: string;
  /** The issuer secret. */
  readonly secret: string;
  /** fetch to use (default the global one). */
  readonly fetch?: FetchLike;
  /** Retry budget of the one token request (default 3 attempts, 200 ms to 1 s apart). */
  readonly retry?: Partial<RetryOptions>;
}

/**
 * Asks the gateway once for a short-lived token of a fresh random room (the token endpoint
 * keeps no state; the token is dropped): a wrong secret, or a gateway that issues no tokens, is
 * found at boot rather than by every OpenRoom.
 * @param o the gateway's URL, the secret, fetch, retry budget.
 * @returns `accepted`, or `unreachable` when no answer came within the budget (the gateway
 *   down, or the parent not relaying: the boot goes on and the service's requests tell).
 * @throws {IssuerSecretError} `rejected` when the gateway refused (its status only).
 */
export async function checkIssuerSecretWithGateway(
  o: GatewayCheckOptions,
): Promise<"accepted" | "unreachable"> {
  const issuer = createRoomTokenIssuer({
    url: o.url,
    secret: o.secret,
    ...(o.fetch ? { fetch: o.fetch } : {}),
    ttlS: 60,
    retry: { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000, ...o.retry },
  });
  const room = toHex(crypto.getRandomValues(new Uint8Array(16)));
  try {
    await issuer.issue(room, "enclave-boot-check");
    return "accepted";
  } catch (e) {
    if (e instanceof TransportError && e.code === "rejected") {
      const status = /gateway answered (\d{3})( [a-z_]+)?/.exec(e.message)?.slice(1).join("") ??
        "a refusal";
      throw new IssuerSecretError(
        "rejected",
        `the gateway refused the issuer secret (${status}): not its access.issuer_secret, or a ` +
          "gateway without access.enabled and an issuer secret",
      );
    }
    return "unreachable";
  }
}
