/**
 * Child process of `compareRuntimes` (bench/signing_bench.ts): installs the runtime's backends
 * (`--ffi=off`: Deno's backends before FFI), times `--runs=N` signatures of each kind and
 * prints one JSON line.
 * @module
 */
import { installPlatformBackends } from "../platform/mod.ts";
import { arg } from "./_harness.ts";
import { sampleSigning } from "./signing_bench.ts";

installPlatformBackends(undefined, { ffi: arg("ffi", "on") !== "off", warn: () => {} });
console.log(JSON.stringify(await sampleSigning(Number(arg("runs", "3")))));
