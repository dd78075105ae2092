/**
 * The client library's gateway client against a TLS gateway, as a child process of
 * `tls_test.ts`: the global `fetch`, trusting the test CA the way a deployment would (Deno:
 * `DENO_CERT`, Node: `NODE_EXTRA_CA_CERTS`). Prints one JSON line with what it saw.
 *
 * Usage: tls_client.ts <https gateway URL> <room>
 * @module
 */
import process from "node:process";
import { createGatewayClient } from "../../transport/gateway_client.ts";

const [url, room] = process.argv.slice(2);
const gw = createGatewayClient({ url, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
const ctl = new AbortController();
const events = gw.subscribe(room, { signal: ctl.signal })[Symbol.asyncIterator]();
const first = events.next();
await gw.broadcast(room, "over TLS\nsecond line");
const got = (await first).value;
const idx = await gw.issueUniqueIdx(room);
ctl.abort();
await events.return?.(undefined);
console.log(JSON.stringify({ got, idx }));
process.exit(0);
