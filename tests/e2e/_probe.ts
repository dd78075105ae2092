import "../../tests/setup.ts";
import { generateOfflineAccounts } from "../../keygen/offline.ts";
import { fixturePaillier } from "../../tests/fixtures/keys.ts";
let k = 0;
const t0 = Date.now();
const r = await generateOfflineAccounts(["a", "b"], {
  generatePrimes: () => { const p = fixturePaillier(k++ % 6); return Promise.resolve({ p: p.p, q: p.q }); },
  onProgress: (m) => console.log(((Date.now() - t0) / 1000).toFixed(1), m),
});
console.log("done", (Date.now() - t0) / 1000, r.length);
