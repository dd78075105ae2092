/**
 * Benchmark entry: `deno task bench` runs it under Deno, then under Node. Prints markdown
 * tables. Flags: --suites=modpow,prime,zk,peer,peer-prime,protocols,signing  --runs=N  --prime-runs=N
 * --peer-prime-runs=N (the peer's safe prime takes about 100 s each; 0 skips it)
 * --signing-rounds=N --signing-runs=N (the `signing` suite: ours against DKLs23, run from the Deno
 * pass only, in child processes alternating Deno with FFI, Deno without it and Node).
 * @module
 */
import "../testing/setup.ts";
import { arg, runtimeLabel, table } from "./_harness.ts";
import { benchModPow, benchSafePrime } from "./math_bench.ts";
import { getModPowBackends } from "../core/math/mod.ts";

const suites = new Set(
  arg("suites", "modpow,prime,zk,peer,peer-prime,protocols,signing").split(","),
);
const runs = Number(arg("runs", "10"));
const primeRuns = Number(arg("prime-runs", "7"));
const rt = runtimeLabel();
const be = getModPowBackends();
console.log(`\n## ${rt}: backends public=${be.public.name}, secret=${be.secret.name}\n`);

if (suites.has("modpow")) console.log(table("modular exponentiation", rt, await benchModPow(runs)));
if (suites.has("prime")) {
  console.log(table("1536-bit safe primes", rt, await benchSafePrime(primeRuns)));
}
if (suites.has("zk")) {
  const { benchProofs } = await import("./zk_bench.ts");
  console.log(table("zero-knowledge proofs at 3072-bit N", rt, await benchProofs(runs)));
}
if (suites.has("peer")) {
  const { benchPeerProofs } = await import("./peer_bitgo.ts");
  console.log(table("peer: @bitgo/sdk-lib-mpc", rt, await benchPeerProofs(runs)));
}
const peerPrimeRuns = Number(arg("peer-prime-runs", rt.startsWith("Node") ? "3" : "0"));
if (suites.has("peer-prime") && peerPrimeRuns > 0) {
  const { benchPeerSafePrime } = await import("./peer_bitgo.ts");
  console.log(table("peer: safe prime", rt, await benchPeerSafePrime(peerPrimeRuns)));
}
if (suites.has("protocols")) {
  const { benchProtocols } = await import("./protocol_bench.ts");
  console.log(table("protocols (all parties in one process)", rt, await benchProtocols(runs)));
}
if (suites.has("signing") && rt.startsWith("Deno")) {
  const { compareRuntimes } = await import("./signing_bench.ts");
  console.log(
    compareRuntimes(Number(arg("signing-rounds", "3")), Number(arg("signing-runs", "3"))),
  );
}
