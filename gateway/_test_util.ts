/**
 * Helpers for the gateway's unit tests: requests against a handler on a dummy origin and the
 * error code of a refusal. Private to the tests (the SSE reader they use is
 * testing/sse_reader.ts).
 *
 * @module
 */

/**
 * Shorthand for requests against a handler on a dummy origin.
 *
 * @param handler the fetch handler
 * @returns helpers for the gateway's routes
 */
export function client(handler: (req: Request) => Promise<Response>) {
  const base = "http://gw.test";
  return {
    subscribe: (room: string, headers: Record<string, string> = {}, query = "") =>
      handler(new Request(`${base}/rooms/${room}/subscribe${query}`, { headers })),
    post: (room: string, body: BodyInit | null, headers: Record<string, string> = {}) =>
      handler(
        new Request(`${base}/rooms/${room}/broadcast`, {
          method: "POST",
          body,
          headers,
          // Node's Request needs `duplex` for a streamed body.
          ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
        } as RequestInit),
      ),
    idx: (room: string, headers: Record<string, string> = {}) =>
      handler(new Request(`${base}/rooms/${room}/issue_unique_idx`, { method: "POST", headers })),
    get: (path: string, init: RequestInit = {}) => handler(new Request(`${base}${path}`, init)),
  };
}

/**
 * Reads a JSON error body.
 *
 * @param res a response
 * @returns status and the `error` code
 */
export async function errorOf(res: Response): Promise<{ status: number; error: string }> {
  const body = await res.json();
  return { status: res.status, error: body.error };
}
