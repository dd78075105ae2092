/**
 * `wallet-mpc/client` in Node and Deno: the client library (`mpc_client.ts`, re-exported whole)
 * with the runtime's fastest big-integer backends installed when this module is first imported
 * (`platform/mod.ts`): OpenSSL's constant-time modular exponentiation for secrets, through
 * node:crypto in Node and through FFI to the system libcrypto in Deno when the FFI permission is
 * granted (`--allow-ffi` or `-A`). A Deno process without it keeps node:crypto for public
 * exponents and BigInt for secrets (not constant-time) and says so once on stderr. The package's
 * `exports` map sends the `node` and `deno` conditions here and the `browser` condition to
 * `mpc_client.ts`, which imports no Node built-in (README "Packages").
 *
 * @example
 * ```ts
 * import { getModPowBackends } from "../core/math/mod.ts";
 * import { newMpcClient } from "./native.ts";
 * console.assert(typeof newMpcClient === "function");
 * console.assert(getModPowBackends().public.name !== "bigint-window");
 * ```
 * @module
 */
import { installPlatformBackends } from "../platform/mod.ts";

installPlatformBackends();

export * from "./mpc_client.ts";
