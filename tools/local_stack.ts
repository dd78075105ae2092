/**
 * A complete local 2-of-2 deployment for the demo, the end-to-end tests and the benchmark:
 * development key shares made offline (age-encrypted, one account or more), a caller token, a
 * sign-gateway and a sign-service as child processes under Deno or Node, on free loopback
 * ports, in a temporary directory. Nothing external is needed.
 *
 * Room tokens are on, as in production (docs/gateway.md, "Room capability"): the gateway runs
 * with `access.enabled` (no anonymous rooms) and two secrets fresh for every stack, the service
 * with the gateway's issuer secret, so it opens every session's room (OpenRoom) and hands the
 * client its room token. `roomTokens: false` runs the open gateway and the service without
 * rooms instead (the client picks its rooms).
 *
 * Both processes bind port 0 (the system picks a free port) and the stack reads the ports they
 * got from their JSON `listening` log lines, waiting for that line (no guessing a free port
 * beforehand, which another process may take first). A restart of the service binds the ports
 * of its first start again (clients hold the URLs), retried, bounded, while a port is taken.
 *
 * @example
 * ```ts
 * import { newMpcClient } from "../client/mpc_client.ts";
 * import { startLocalStack } from "./local_stack.ts";
 * // Starts processes and generates keys (~20 s): a function, type-checked, not run here.
 * export async function demo() {
 *   const stack = await startLocalStack({ runtime: "deno", accounts: ["demo"] });
 *   const client = newMpcClient(stack.clientConfig(await stack.clientKeyStore()));
 *   await client.close();
 *   await stack.stop();
 * }
 * ```
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { encodeAccountEntries } from "../core/account_records.ts";
import type { AccountEntry } from "../core/keyshare.ts";
import { generatePaillierPrimes, type PaillierPrimes } from "../core/protocols/aux_info.ts";
import { platformSafePrime } from "../platform/mod.ts";
import { writeKeyShareFileAtomic } from "../platform/keyshare_file.ts";
import { encryptKeyShareFileBytes, generateAgeIdentity } from "../keystore/key_store.ts";
import { generateToken, hashToken } from "../service/auth.ts";
import { generateOfflineAccounts } from "../keygen/offline.ts";
import { toHex } from "../core/bytes.ts";
import { openFileKeyStore } from "../client/file_key_store.ts";
import type { ClientKeyStore, MpcClientConfig } from "../client/mpc_client.ts";
import {
  DENO,
  type GatewayProcess,
  NODE,
  retryWhilePortInUse,
  ROOT,
  startGateway,
  waitForOutput,
} from "../testing/processes.ts";
import { bounded } from "../testing/waits.ts";

/** Options of `startLocalStack`. */
export interface LocalStackOptions {
  /** Runtime of the gateway and service processes. */
  readonly runtime: "deno" | "node";
  /** Accounts to generate offline (default ["demo"]); none when `accounts` is empty. */
  readonly accounts?: readonly string[];
  /** Pregenerated accounts per party (tests reuse them instead of generating). */
  readonly preset?: readonly [Map<string, AccountEntry>, Map<string, AccountEntry>];
  /** Prime generator for offline key generation (default: the runtime's fastest). */
  readonly generatePrimes?: () => Promise<PaillierPrimes>;
  /**
   * Extra service settings (`WALLET_MPC_SERVICE__SECTION__KEY` environment form, README "Entry
   * points"). The stack keeps `logging.format` json and the ports its own (it reads them from
   * the `listening` line).
   */
  readonly serviceEnv?: Record<string, string>;
  /** Extra sign-gateway flags, e.g. `["--cors-origins", "http://127.0.0.1:5173"]` for a page. */
  readonly gatewayArgs?: readonly string[];
  /**
   * Room tokens (default true): the gateway with `access.enabled` and fresh secrets, the service
   * with the issuer secret. False: an open gateway, clients pick their rooms.
   */
  readonly roomTokens?: boolean;
  readonly onProgress?: (message: string) => void;
}

/** A running stack. */
export interface LocalStack {
  readonly dir: string;
  readonly gatewayUrl: string;
  /** gRPC-web / Connect (HTTP/1.1). */
  readonly serviceWebUrl: string;
  /** Real gRPC (h2c). */
  readonly serviceGrpcUrl: string;
  readonly token: string;
  readonly clientKeyFile: string;
  readonly serviceKeyFile: string;
  readonly clientAgeIdentity: string;
  readonly auditFile: string;
  readonly gateway: GatewayProcess;
  /**
   * The gateway's environment of this stack (its access settings and secrets; empty without
   * room tokens): a gateway started again for the stack (`startGateway`) needs it.
   */
  readonly gatewayEnv: Readonly<Record<string, string>>;
  /** The service process's combined output so far. */
  serviceOutput(): string;
  /** The client's key store on the stack's file. */
  clientKeyStore(): Promise<ClientKeyStore>;
  /** A client configuration for this stack (Connect over HTTP/1.1). */
  clientConfig(keyStore: ClientKeyStore): MpcClientConfig;
  /** Sends a signal to the service and waits for its exit. */
  stopService(signal?: NodeJS.Signals): Promise<number | null>;
  /** Starts the service again (after stopService), with optional environment overrides. */
  startService(env?: Record<string, string>): Promise<void>;
  readonly servicePid: number;
  stop(): Promise<void>;
}

function waitExit(p: ChildProcess, ms: number): Promise<number | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode);
  const exited = new Promise<number | null>((resolve) => p.once("exit", (code) => resolve(code)));
  return bounded(ms, `the exit of process ${p.pid}`, exited);
}

/**
 * Generates keys, writes the files and starts the gateway and the service.
 * @param o runtime, accounts, extra service settings.
 * @returns the running stack; call `stop()`.
 */
export async function startLocalStack(o: LocalStackOptions): Promise<LocalStack> {
  const say = o.onProgress ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), "wallet-mpc-stack-"));
  const clientAge = await generateAgeIdentity();
  const serviceAge = await generateAgeIdentity();
  const serviceIdFile = join(dir, "service.age");
  writeFileSync(serviceIdFile, serviceAge.identity + "\n", { mode: 0o600 });
  const accounts = o.accounts ?? ["demo"];
  let parties = o.preset;
  if (!parties) {
    const gen = o.generatePrimes ?? (() => generatePaillierPrimes((b) => platformSafePrime(b)));
    parties =
      (await generateOfflineAccounts(accounts, { generatePrimes: gen, onProgress: say })) as [
        Map<string, AccountEntry>,
        Map<string, AccountEntry>,
      ];
  }
  const clientKeyFile = join(dir, "client_key_shares.json");
  const serviceKeyFile = join(dir, "service_key_shares.json");
  for (
    const [path, m, r] of [
      [clientKeyFile, parties[0], clientAge.recipient],
      [serviceKeyFile, parties[1], serviceAge.recipient],
    ] as const
  ) {
    const text = new TextEncoder().encode(encodeAccountEntries(m));
    await writeKeyShareFileAtomic(path, await encryptKeyShareFileBytes(text, { recipients: [r] }));
  }
  const token = generateToken();
  const tokensFile = join(dir, "callers.yaml");
  writeFileSync(
    tokensFile,
    `callers:\n  - id: local-client\n    token_sha256: ${
      hashToken(token)
    }\n    accounts: ["*"]\n    may_keygen: true\n`,
    { mode: 0o600 },
  );
  const auditFile = join(dir, "audit.jsonl");

  // Fresh secrets for every stack: 32 random bytes each, hex.
  const secret = () => toHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
  const issuerSecret = secret();
  const gatewayEnv: Record<string, string> = o.roomTokens === false ? {} : {
    WALLET_MPC_GATEWAY_ACCESS_ENABLED: "true",
    WALLET_MPC_GATEWAY_TOKEN_SECRET: secret(),
    WALLET_MPC_GATEWAY_ISSUER_SECRET: issuerSecret,
  };
  say("starting the sign-gateway");
  const gateway = await startGateway(o.runtime, [...o.gatewayArgs ?? []], gatewayEnv);
  const gatewayUrl = gateway.url;
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    NO_COLOR: "1",
    WALLET_MPC_SERVICE_KEY_SHARE_FILE: serviceKeyFile,
    WALLET_MPC_SERVICE__GATEWAY__URL: gatewayUrl,
    WALLET_MPC_SERVICE__SERVER__CORS_ORIGINS: "*",
    WALLET_MPC_SERVICE__KEY_STORE__AGE_IDENTITY_FILE: serviceIdFile,
    WALLET_MPC_SERVICE__AUTH__TOKENS_FILE: tokensFile,
    WALLET_MPC_SERVICE__AUDIT__FILE: auditFile,
    ...(o.roomTokens === false ? {} : { WALLET_MPC_SERVICE_GATEWAY_ISSUER_SECRET: issuerSecret }),
    ...o.serviceEnv,
    WALLET_MPC_SERVICE__LOGGING__FORMAT: "json",
    // Port 0: the service binds free ports itself and names them in its `listening` line.
    WALLET_MPC_SERVICE__SERVER__PORT: "0",
    WALLET_MPC_SERVICE__SERVER__WEB_PORT: "0",
  };
  const main = join(ROOT, "service/main.ts");
  let proc: ChildProcess | null = null;
  let out = "";
  /** The ports of the first start; a restart binds them again (clients hold the URLs). */
  let ports: { readonly grpc: number; readonly web: number } | undefined;
  const startOnce = async (extra: Record<string, string>) => {
    // The configuration file as the only argument, as `deno task service config/sign-service.yaml`.
    const config = join(ROOT, "config/sign-service.yaml");
    const [cmd, args] = o.runtime === "deno"
      ? [DENO, ["run", "-A", "--no-check", "--unstable-no-legacy-abort", main, config]]
      : [NODE, ["--import", "tsx", main, config]];
    const fixed: Record<string, string> = ports
      ? {
        WALLET_MPC_SERVICE__SERVER__PORT: String(ports.grpc),
        WALLET_MPC_SERVICE__SERVER__WEB_PORT: String(ports.web),
      }
      : {};
    out = "";
    const p = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...env, ...extra, ...fixed },
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc = p;
    let partial = "";
    let listening: Record<string, unknown> | undefined;
    p.stdout!.on("data", (b: Buffer) => {
      const text = b.toString();
      out += text;
      partial += text;
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (listening || !line.startsWith("{")) continue;
        try {
          const l = JSON.parse(line);
          if (l?.msg === "listening") listening = l;
        } catch {
          // not a log line
        }
      }
    });
    p.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    say(`starting the sign-service (${o.runtime})`);
    let line: Record<string, unknown>;
    try {
      line = await waitForOutput(
        p,
        `the ${o.runtime} sign-service to listen`,
        () => listening,
        () => out,
        60_000,
      );
    } catch (e) {
      proc = null;
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
      throw e;
    }
    // Without TLS two ports (grpc_port, web_port); with TLS one (port) for both.
    const got = {
      grpc: Number(line.grpc_port ?? line.port),
      web: Number(line.web_port ?? line.port),
    };
    if (![got.grpc, got.web].every((n) => Number.isSafeInteger(n) && n > 0)) {
      throw new Error(`the sign-service's listening line names no ports: ${JSON.stringify(line)}`);
    }
    if (ports && (got.grpc !== ports.grpc || got.web !== ports.web)) {
      throw new Error(
        `the restarted sign-service listens on ${got.grpc}/${got.web}, expected ${ports.grpc}/${ports.web}`,
      );
    }
    ports = got;
  };
  const startService = (extra: Record<string, string> = {}): Promise<void> => {
    const bound = ports;
    if (!bound) return startOnce(extra);
    return retryWhilePortInUse(
      `the ${o.runtime} sign-service to bind ports ${bound.grpc} and ${bound.web} again`,
      () => startOnce(extra),
      30_000,
    );
  };
  const stopService = async (signal: NodeJS.Signals = "SIGTERM") => {
    const p = proc;
    if (!p) return null;
    proc = null;
    p.kill(signal);
    return await waitExit(p, 20_000);
  };
  try {
    await startService();
  } catch (e) {
    await stopService("SIGKILL").catch(() => {});
    await gateway.stop("SIGKILL").catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    gatewayUrl,
    serviceWebUrl: `http://127.0.0.1:${ports!.web}`,
    serviceGrpcUrl: `http://127.0.0.1:${ports!.grpc}`,
    token,
    clientKeyFile,
    serviceKeyFile,
    clientAgeIdentity: clientAge.identity,
    auditFile,
    gateway,
    gatewayEnv,
    serviceOutput: () => out,
    get servicePid() {
      return (proc as ChildProcess | null)?.pid ?? 0;
    },
    clientKeyStore: () => openFileKeyStore({ path: clientKeyFile, identity: clientAge.identity }),
    clientConfig: (keyStore) => ({
      serviceUrl: `http://127.0.0.1:${ports!.web}`,
      gatewayUrl,
      token,
      keyStore,
    }),
    stopService,
    startService,
    async stop() {
      await stopService().catch(() => stopService("SIGKILL"));
      await gateway.stop().catch(() => gateway.stop("SIGKILL"));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
