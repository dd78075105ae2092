/**
 * Every harness by name, loaded on demand (a worker imports only its own harness's module).
 * Add a harness: write it in a module of this folder (see `docs/fuzzing.md`), then list its name
 * and loader here.
 * @module
 */
import type { Harness } from "../_engine.ts";

const byName = (list: Harness[], name: string): Harness => {
  const h = list.find((x) => x.name === name);
  if (!h) throw new Error(`no harness ${name}`);
  return h;
};
const zk = async (name: string) => byName((await import("./zk.ts")).zkHarnesses, name);
const step = async (name: string) => byName((await import("./protocols.ts")).stepHarnesses, name);

/** Harness names in campaign order (fast decoders first), each with its loader. */
export const HARNESSES: Readonly<Record<string, () => Promise<Harness>>> = {
  // Fast decoders (CI: at least 100k inputs each). zk-prm first: its setup records aux info
  // and caches the messages that zk-mod and zk-fac take their seeds from.
  "zk-prm": () => zk("zk-prm"),
  "frames": async () => (await import("./decoders.ts")).frames,
  "envelopes": async () => (await import("./decoders.ts")).envelopes,
  "zk-enc": () => zk("zk-enc"),
  "hd-paths": async () => (await import("./decoders.ts")).hdPaths,
  "xpubs": async () => (await import("./decoders.ts")).xpubs,
  "session-inputs": async () => (await import("./decoders.ts")).sessionInputs,
  "keyshare-syntax": async () => (await import("./keyshare.ts")).keyshareSyntax,
  "zk-sch": () => zk("zk-sch"),
  "zk-mod": () => zk("zk-mod"),
  "zk-fac": () => zk("zk-fac"),
  "zk-aff-g": () => zk("zk-aff-g"),
  "zk-log-star": () => zk("zk-log-star"),
  // Slower targets: validation, parsers, handlers in process, sessions, protocol steps.
  "keyshare": async () => (await import("./keyshare.ts")).keyshare,
  "accounts-file": async () => (await import("./keyshare.ts")).accountsFile,
  "account-records": async () => (await import("./keyshare.ts")).accountRecords,
  "service-config": async () => (await import("./config.ts")).serviceConfig,
  "gateway-config": async () => (await import("./config.ts")).gatewayConfig,
  "gateway-handler": async () => (await import("./gateway.ts")).gatewayHandler,
  "rpc-routes": async () => (await import("./rpc.ts")).rpcRoutes,
  "secure-session": async () => (await import("./session.ts")).secureSession,
  "protocol-keygen": () => step("protocol-keygen"),
  "protocol-aux-info": () => step("protocol-aux-info"),
  "protocol-refresh": () => step("protocol-refresh"),
  "protocol-presign": () => step("protocol-presign"),
  "protocol-sign": () => step("protocol-sign"),
  "driver-keygen": async () => (await import("./protocols.ts")).driverKeygen,
};

/** Loads a harness by name. */
export function loadHarness(name: string): Promise<Harness> {
  const load = HARNESSES[name];
  if (!load) throw new RangeError(`unknown harness ${name}; known: ${Object.keys(HARNESSES)}`);
  return load();
}
