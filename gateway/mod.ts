/**
 * sign-gateway: the SSE relay between the two parties of a wallet-mpc session, as a Web-standard
 * fetch handler.
 *
 * Public API: {@link createGatewayHandler} and its options, the configuration loader, the backend
 * interface with the in-memory backend, room tokens, the logger, and the error type. The Redis
 * backend lives in `./redis_backend.ts` (it pulls in ioredis, a Node library) and the `node:http`
 * adapter in `../platform/node_adapter.ts`; import them directly. `main.ts` is the runnable server.
 *
 * @example
 * ```ts
 * import { createGatewayHandler } from "./mod.ts";
 *
 * const handler = createGatewayHandler({ timers: false, corsOrigins: ["https://wallet.example"] });
 * const res = await handler(new Request("http://gw/rooms/s1/issue_unique_idx", { method: "POST" }));
 * console.assert((await res.json()).unique_idx === 1);
 * await handler.close();
 * // Deno: Deno.serve(handler); Node: serveNode(handler, { port: 8080 }) from ../platform/node_adapter.ts
 * ```
 *
 * @module
 */

export {
  createGatewayHandler,
  type GatewayHandler,
  type GatewayOptions,
  type GatewayStats,
  type Gauge,
} from "./handler.ts";
export type {
  Backend,
  BackendEvent,
  BackendHealth,
  BackendMessage,
  HistoryRead,
  MessageListener,
} from "./backend.ts";
export { createMemoryBackend, type MemoryBackendOptions } from "./memory_backend.ts";
export {
  type AccessConfig,
  applyOverrides,
  type BackendConfig,
  DEFAULT_LIMITS,
  DEFAULT_SSE,
  defaultConfig,
  type GatewayConfig,
  type GatewayLimits,
  type LogFormat,
  type LogLevel,
  parseConfig,
  type RedisConfig,
  resolveConfig,
  type SseOptions,
} from "./config.ts";
export { GatewayError, type GatewayErrorCode, isGatewayError, STATUS_BY_CODE } from "./errors.ts";
export {
  constantTimeEqual,
  createRoomTokenAuthority,
  createSecretChecker,
  type RoomTokenAuthority,
  type TokenCheck,
} from "./tokens.ts";
export {
  createLogger,
  type LogFields,
  type Logger,
  type LoggerOptions,
  silentLogger,
} from "../platform/logger.ts";
export { encodeMessageEvent, ERROR_EVENT, MESSAGE_EVENT, parseLastEventId } from "./sse.ts";
