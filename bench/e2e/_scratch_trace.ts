import "../../tests/setup.ts";
import { MemoryKeyStore, newMpcClient } from "../../client/mpc_client.ts";
import { generateOfflineAccounts } from "../../keygen/offline.ts";
import { fixturePaillier } from "../../tests/fixtures/keys.ts";
import { startLocalStack } from "../../tools/local_stack.ts";
import process from "node:process";
let k = 0;
const rt = (process.argv.at(-1) === "deno" ? "deno" : "node") as "deno" | "node";
const parties = await generateOfflineAccounts(["a"], { generatePrimes: () => { const p = fixturePaillier(k++); return Promise.resolve({ p: p.p, q: p.q }); } });
const stack = await startLocalStack({ runtime: rt, preset: parties as any, serviceEnv: { SIGN_SERVICE__RATE_LIMIT__BURST: "1000" } });
const log: string[] = [];
let t0 = 0;
const rel = () => (performance.now() - t0).toFixed(1);
const f: typeof fetch = async (input, init) => {
  const url = String(input);
  const short = url.replace(/^http:\/\/127\.0\.0\.1:\d+/, "").replace(/[0-9a-f]{32}/, "R");
  const s = performance.now();
  log.push(`${rel()} ${init?.method ?? "GET"} ${short} start body=${typeof init?.body === "string" ? init.body.length : "-"}`);
  const r = await fetch(input, init);
  log.push(`${rel()} ${init?.method ?? "GET"} ${short} headers after ${(performance.now() - s).toFixed(1)} ms`);
  if (short.endsWith("/subscribe") && r.body) {
    const [a, b] = r.body.tee();
    (async () => { const rd = b.getReader(); for (;;) { const c = await rd.read(); if (c.done) break; log.push(`${rel()} SSE chunk ${c.value.length}`); } })().catch(() => {});
    return new Response(a, { status: r.status, headers: r.headers });
  }
  return r;
};
try {
  const client = newMpcClient({ ...stack.clientConfig(new MemoryKeyStore(parties[0])), fetch: f,
    onProgress: (e) => { if (e.type !== "dropped-message") log.push(`${rel()} ${e.type} ${"round" in e ? e.round : ""}`); } });
  for (let i = 0; i < 12; i++) {
    log.length = 0;
    t0 = performance.now();
    await client.signTx(crypto.getRandomValues(new Uint8Array(32)), "a");
    log.push(`${rel()} done`);
    const r1 = log.find((l) => l.includes("round-started 1"));
    const c1 = log.filter((l) => l.includes("body=198"));
    console.log(`sig ${i}: ${r1} | conf post at ${c1[0]?.split(" ")[0]} | total ${log.at(-1)}`);
    if (Number(r1?.split(" ")[0]) > 330) console.log(log.slice(0, 20).join("\n"));
  }
} finally { await stack.stop(); }
process.exit(0);
