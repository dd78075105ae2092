/**
 * The runtime's own limit: a minimal fetch handler with the gateway's routes and none of its
 * work (no validation, history, limits, metrics or per-subscriber queue). A post's body is
 * encoded once into an SSE frame and enqueued to every stream of the room. Served exactly like the
 * gateway (`Deno.serve`, or the `node:http` adapter under Node), so the difference between the two
 * is the gateway's own cost.
 *
 * Usage: deno run -A bench/gateway/baseline_server.ts [port] | node --import tsx ... [port];
 * prints `{"port": n}` once listening.
 *
 * @module
 */

import process from "node:process";

const encoder = new TextEncoder();

/**
 * Creates the minimal relay handler.
 *
 * @returns a fetch handler
 */
export function createBaselineHandler(): (req: Request) => Promise<Response> {
  const rooms = new Map<string, Set<ReadableStreamDefaultController<Uint8Array>>>();
  return async (req) => {
    const url = new URL(req.url);
    const parts = url.pathname.split("/");
    const room = parts[2];
    if (req.method === "GET" && parts[3] === "subscribe") {
      let ctl: ReadableStreamDefaultController<Uint8Array>;
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          ctl = c;
          let set = rooms.get(room);
          if (!set) rooms.set(room, set = new Set());
          set.add(c);
          c.enqueue(encoder.encode("retry: 2000\n\n"));
        },
        cancel() {
          rooms.get(room)?.delete(ctl);
        },
      });
      return new Response(stream, { headers: { "content-type": "text/event-stream" } });
    }
    if (req.method === "POST" && parts[3] === "broadcast") {
      const body = await req.text();
      const frame = encoder.encode(`event: new-message\nid: 0\ndata: ${body}\n\n`);
      for (const c of rooms.get(room) ?? []) c.enqueue(frame);
      return new Response(null, { status: 200 });
    }
    return new Response("not found", { status: 404 });
  };
}

if (process.argv[1]?.endsWith("baseline_server.ts")) {
  const port = Number(process.argv[2] ?? 0);
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(0));
  const handler = createBaselineHandler();
  if (typeof Deno !== "undefined") {
    const s = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handler);
    console.log(JSON.stringify({ port: s.addr.port, runtime: "deno" }));
  } else {
    const { serveNode } = await import("../../platform/node_adapter.ts");
    const s = await serveNode(handler, { hostname: "127.0.0.1", port });
    console.log(JSON.stringify({ port: s.port, runtime: "node" }));
  }
}
