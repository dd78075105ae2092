/**
 * Child process of `bench/e2e_bench.ts`: measures the in-process signing compute
 * (`_compute.ts`) in THIS runtime, so that the benchmark knows what a service of the other
 * runtime computes per round. Reads both parties' plaintext key share files from
 * `--accounts=<file>` (JSON `{ "client": <file text>, "service": <file text> }`, development keys
 * made by the benchmark) and prints one line `RESULT <json>` with the samples.
 *
 * Usage: `deno run -A bench/e2e/compute_main.ts --accounts=f --account=id --runs=20 --warmup=1
 * --quiet-wait=0` (or `node --import tsx ...`).
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { decodeAccountsFile } from "../../core/keyshare.ts";
import { installPlatformBackends } from "../../platform/mod.ts";
import { arg } from "../_harness.ts";
import { measureSigningCompute } from "./_compute.ts";

installPlatformBackends();
const files = JSON.parse(readFileSync(arg("accounts", ""), "utf8")) as {
  client: string;
  service: string;
};
const samples = await measureSigningCompute(
  [decodeAccountsFile(files.client), decodeAccountsFile(files.service)],
  arg("account", ""),
  Number(arg("runs", "20")),
  Number(arg("warmup", "1")),
  Number(arg("quiet-wait", "0")),
);
console.log(`RESULT ${JSON.stringify(samples)}`);
process.exit(0);
