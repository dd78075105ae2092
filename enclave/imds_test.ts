/**
 * IMDSv2 credentials against a fake metadata service (fetch injected): the token dance, the
 * cache until five minutes before expiry, and refusals (no role, IMDSv1 only, bad answers).
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createImdsCredentials } from "./imds.ts";
import { fakeImds } from "./testing/fake_imds.ts";

const fetchOf = (handler: (req: Request) => Response): typeof fetch => (input, init) =>
  Promise.resolve(handler(new Request(input, init)));

test("IMDSv2: token first, then the role's credentials, cached until near expiry", async () => {
  let t = Date.now();
  const imds = fakeImds({ expiration: () => new Date(t + 10 * 60_000) });
  const creds = createImdsCredentials({ fetch: fetchOf(imds.handler), now: () => t });
  const c = await creds.get();
  assert.equal(c.accessKeyId, "ASIATESTTESTTEST");
  assert.equal(c.sessionToken, "test-session-token");
  await creds.provider();
  assert.equal(imds.credentialReads, 1, "cached");
  t += 6 * 60_000; // within five minutes of expiry
  await creds.get();
  assert.equal(imds.credentialReads, 2, "fetched again");
});

test("IMDS refusals: v1 only, no role, not JSON, no Success, unreachable", async () => {
  const cases: [string, (req: Request) => Response, RegExp][] = [
    [
      "v1 only",
      (req) =>
        new Response("", { status: new URL(req.url).pathname === "/latest/api/token" ? 403 : 200 }),
      /token: HTTP 403/,
    ],
    [
      "no role",
      (req) => new Response(new URL(req.url).pathname.endsWith("/") ? "" : "t"),
      /no IAM role/,
    ],
    [
      "not JSON",
      (req) => new Response(new URL(req.url).pathname.endsWith("/") ? "r\n" : "{"),
      /not JSON/,
    ],
    [
      "no Success",
      (req) =>
        new URL(req.url).pathname.endsWith("/r")
          ? Response.json({ Code: "Expired" })
          : new Response(new URL(req.url).pathname.endsWith("/") ? "r" : "t"),
      /got Expired/,
    ],
  ];
  for (const [name, handler, msg] of cases) {
    await assert.rejects(createImdsCredentials({ fetch: fetchOf(handler) }).get(), msg, name);
  }
  const down: typeof fetch = () => Promise.reject(new TypeError("connection refused"));
  await assert.rejects(
    createImdsCredentials({ fetch: down }).get(),
    /token: unreachable \(TypeError\)/,
  );
});
