/**
 * The parties' end-to-end secure channel through the untrusted sign-gateway.
 *
 * - {@link createGatewayClient}: the gateway's room API over `fetch` (SSE subscribe with resume,
 *   broadcast with retries, unique indices); {@link createRoomTokenIssuer}: room tokens from the
 *   gateway's token endpoint, for the party holding the issuer secret.
 * - {@link openSecureSession}: signed handshake with pinned Ed25519 identity keys, X25519 key
 *   agreement, key confirmation bound to a context, then ChaCha20-Poly1305 frames in strict
 *   sequence; the session is a `Transport` for `runProtocol`.
 * - {@link generateIdentity}, {@link identityFromSecret} and hex helpers for identity keys.
 *
 * The gateway sees room ids, frame sizes and timing, the parties' identity public keys and
 * ephemeral keys; it cannot read, alter, drop, reorder, replay or inject a frame undetected.
 * Design and limits: `docs/transport.md`.
 *
 * @example
 * ```ts
 * import { createGatewayHandler } from "../gateway/handler.ts";
 * import { keygen } from "../core/protocols/keygen.ts";
 * import { runProtocol } from "../core/protocols/driver.ts";
 * import { createGatewayClient, generateIdentity, openSecureSession } from "./mod.ts";
 *
 * const handler = createGatewayHandler({ timers: false });
 * const gateway = createGatewayClient({
 *   url: "http://gw",
 *   fetch: (input, init) => handler(new Request(input, init)),
 * });
 * const ids = [generateIdentity(), generateIdentity()];
 * const room = "00112233445566778899aabbccddeeff";
 * const context = new TextEncoder().encode("keygen alice");
 * const shares = await Promise.all([0, 1].map(async (i) => {
 *   const s = await openSecureSession({
 *     gateway, room, i, n: 2, identity: ids[i], peers: ids.map((id) => id.publicKey), context,
 *   });
 *   try {
 *     return await runProtocol(keygen, { sid: s.protocolSid("keygen"), i, n: 2 }, s);
 *   } finally {
 *     await s.close();
 *   }
 * }));
 * console.assert(shares[0].publicKey.equals(shares[1].publicKey));
 * await handler.close();
 * ```
 * @module
 */
export {
  createGatewayClient,
  createRoomTokenIssuer,
  type FetchLike,
  type GatewayClient,
  type GatewayClientOptions,
  type GatewayEvent,
  type IssuedRoomToken,
  type RetryOptions,
  type RoomTokenIssuer,
  type RoomTokenIssuerOptions,
} from "./gateway_client.ts";
export {
  generateIdentity,
  type Identity,
  IDENTITY_KEY_BYTES,
  identityFromHex,
  identityFromSecret,
  publicKeyFromHex,
  publicKeyToHex,
} from "./identity.ts";
export {
  openSecureSession,
  type SecureSession,
  type SecureSessionOptions,
} from "./secure_session.ts";
