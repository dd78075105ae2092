/**
 * Harness of the sign-gateway's fetch handler in process (`createGatewayHandler`, memory
 * backend, no timers): an input is a short sequence of requests (method, path, headers, body),
 * to an open gateway or to one with room tokens, CORS and a token issuer. Seeds are the requests
 * the project's own gateway client makes: broadcast, subscribe (with Last-Event-ID), unique
 * index, token issue, health, metrics, a CORS preflight.
 * @module
 */
import { createGatewayHandler, type GatewayHandler } from "../../gateway/handler.ts";
import type { LogLevel } from "../../platform/logger.ts";
import { bytesOf, type Harness, jsonText, OracleFailure, textOf } from "../_engine.ts";

interface Req {
  method?: unknown;
  path?: unknown;
  headers?: unknown;
  body?: unknown;
}
interface Recipe {
  protected?: unknown;
  requests?: unknown;
}

const ISSUER = "issuer-secret-".padEnd(40, "x");
const ROOM = "room_1";

/** Builds a Request, or null when the recipe names something fetch cannot send. */
function request(r: Req, token: string): Request | null {
  try {
    const method = typeof r.method === "string" ? r.method : "GET";
    const path = typeof r.path === "string" ? r.path : "/";
    const headers = new Headers();
    if (r.headers !== null && typeof r.headers === "object") {
      for (const [k, v] of Object.entries(r.headers)) {
        headers.set(k, String(v).replace("$TOKEN", token));
      }
    }
    const body = typeof r.body === "string" && method !== "GET" && method !== "HEAD"
      ? r.body
      : undefined;
    return new Request(`http://gw${path.startsWith("/") ? "" : "/"}${path}`, {
      method,
      headers,
      body,
    });
  } catch {
    return null;
  }
}

/** The gateway handler: no internal error, no 5xx, answers every request in time. */
export const gatewayHandler: Harness = {
  name: "gateway-handler",
  oracle: "every request answered in time with a status below 500 (503 only for shutdown), " +
    "a JSON error body for every 4xx, and nothing logged at error level",
  kind: "json",
  fast: false,
  seconds: 20,
  timeoutMs: 5000,
  maxBytes: 32 * 1024,
  dictionary: [
    '"/rooms/room_1/broadcast"',
    '"/rooms/room_1/subscribe"',
    '"/rooms/room_1/issue_unique_idx"',
    '"/rooms/room_1/tokens"',
    '"/healthz"',
    '"/metrics"',
    '"authorization"',
    '"last-event-id"',
    '"content-length"',
    '"origin"',
    '"Bearer $TOKEN"',
    '"OPTIONS"',
    '"POST"',
    '"GET"',
  ],
  async setup() {
    const errors: string[] = [];
    const logger = {
      enabled: (level: LogLevel) => level === "error",
      log: (level: LogLevel, msg: string, fields?: unknown) => {
        if (level === "error") errors.push(`${msg} ${jsonText(fields ?? {})}`);
      },
    };
    let handlers: GatewayHandler[] = [];
    let used = 0;
    const fresh = () => {
      handlers = [
        createGatewayHandler({ timers: false, logger, limits: { maxBodyBytes: 16 * 1024 } }),
        createGatewayHandler({
          timers: false,
          logger,
          corsOrigins: ["https://wallet.example"],
          access: { enabled: true, tokenSecret: "t".repeat(32), issuerSecret: ISSUER },
          limits: { maxBodyBytes: 16 * 1024 },
        }),
      ];
    };
    fresh();
    const issue = await handlers[1](
      new Request(`http://gw/rooms/${ROOM}/tokens`, {
        method: "POST",
        headers: { authorization: `Bearer ${ISSUER}` },
        body: '{"party":"p0"}',
      }),
    );
    const { token } = await issue.json();
    const bearer = { authorization: "Bearer $TOKEN" };
    const seeds: Recipe[] = [
      {
        protected: false,
        requests: [{ method: "POST", path: `/rooms/${ROOM}/broadcast`, body: "a\nb" }],
      },
      {
        protected: false,
        requests: [
          { method: "POST", path: `/rooms/${ROOM}/broadcast`, body: "x" },
          { method: "GET", path: `/rooms/${ROOM}/subscribe`, headers: { "last-event-id": "0" } },
        ],
      },
      { protected: false, requests: [{ method: "POST", path: `/rooms/${ROOM}/issue_unique_idx` }] },
      {
        protected: false,
        requests: [{ method: "GET", path: "/healthz" }, { method: "GET", path: "/metrics" }],
      },
      {
        protected: true,
        requests: [{
          method: "POST",
          path: `/rooms/${ROOM}/tokens`,
          headers: { authorization: `Bearer ${ISSUER}` },
          body: '{"party":"p1","ttl_s":60}',
        }],
      },
      {
        protected: true,
        requests: [
          { method: "POST", path: `/rooms/${ROOM}/broadcast`, headers: bearer, body: "m" },
          { method: "GET", path: `/rooms/${ROOM}/subscribe?access_token=x`, headers: bearer },
        ],
      },
      {
        protected: true,
        requests: [{
          method: "OPTIONS",
          path: `/rooms/${ROOM}/broadcast`,
          headers: {
            origin: "https://wallet.example",
            "access-control-request-method": "POST",
          },
        }],
      },
    ];
    return {
      seeds: seeds.map((s) => bytesOf(JSON.stringify(s))),
      allowed: (e) => e instanceof SyntaxError,
      async run(input) {
        let recipe: Recipe;
        try {
          recipe = JSON.parse(textOf(input));
        } catch {
          throw new SyntaxError("not a recipe");
        }
        if (++used % 2000 === 0) {
          await Promise.all(handlers.map((h) => h.close()));
          fresh();
        }
        const h = handlers[recipe?.protected === true ? 1 : 0];
        const list = Array.isArray(recipe?.requests) ? recipe.requests.slice(0, 4) : [];
        const statuses: number[] = [];
        for (const r of list) {
          const req = request(r ?? {}, token);
          if (!req) continue;
          errors.length = 0;
          const res = await h(req);
          statuses.push(res.status);
          if (res.headers.get("content-type") === "text/event-stream") {
            await res.body?.cancel();
          } else {
            const text = await res.text();
            if (res.status >= 400 && res.status !== 405) {
              let ok = false;
              try {
                ok = typeof JSON.parse(text).error === "string";
              } catch {
                ok = false;
              }
              if (!ok && req.method !== "OPTIONS") {
                throw new OracleFailure(`status ${res.status} without a JSON error body`);
              }
            }
          }
          if (res.status >= 500) {
            throw new OracleFailure(`status ${res.status}: ${errors[0] ?? ""}`);
          }
          if (errors.length > 0) throw new OracleFailure(`logged an error: ${errors[0]}`);
        }
        return statuses.map((s) => Math.floor(s / 100)).join("");
      },
      async close() {
        await Promise.all(handlers.map((h) => h.close()));
      },
    };
  },
};
