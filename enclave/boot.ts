/**
 * The enclave's boot program (Deno, `--unstable-vsock`): receives the provisioning messages,
 * decrypts the age key (and the gateway's issuer secret, when sent) with KMS for an attested
 * recipient, age-decrypts the key shares into the enclave's memory, forgets the credentials and
 * the age key, and runs the sign-service in this process behind vsock bridges
 * (docs/enclave.md).
 *
 * 1. forwarders: TCP `127.0.0.1:<kms port>` -> vsock (parent, 5000) for KMS through the parent's
 *    `vsock-proxy` (TLS end to end: the parent sees ciphertext), and TCP `127.0.0.1:<gateway
 *    URL's port>` -> vsock (parent, 8080) for the service's gateway egress
 *    ({@link gatewayEgressOf});
 * 2. provisioning (framing.ts): AWS credentials (7100), the KMS ciphertext of the age identity
 *    (7101), optionally the KMS ciphertext of the gateway's issuer secret (7104; refused at once
 *    when `gateway.url` is not https), the age-encrypted key share file (7102; empty: no
 *    accounts yet);
 * 3. KMS `Decrypt` with `Recipient` (kms_recipient.ts) for the pinned key, once per
 *    ciphertext; each answer's `CiphertextForRecipient` is opened here, an answer with a
 *    `Plaintext` refused; the age identity must have the pinned recipient when one is set, the
 *    issuer secret 32 to 4096 visible ASCII characters (issuer_secret.ts);
 * 4. the key share file is decrypted and written again to the state folder (tmpfs) encrypted
 *    to a session key made now and to the age key's recipient; credentials, the KMS client, the
 *    age identity and the provisioning bytes are dropped (buffers zeroed);
 * 5. the key store opens on that file with a file-system hook that sends every new version to
 *    the parent (vsock 7103, share_upload.ts) before it takes effect; the gateway is asked once
 *    whether it accepts the issuer secret, which reaches the service's configuration as the
 *    service's own environment variable would (`loadServiceConfig`, in memory: never a file or
 *    a log line); the sign-service starts (`startSignService`), opening the session rooms when it
 *    holds the secret;
 * 6. ingress: vsock 50051 / 50052 -> the service's gRPC (h2c) and web ports on loopback.
 *
 * Any failure logs one line `{"msg":"enclave boot failed","step":...,"error":...}` (no secret:
 * names, codes and sizes only) and exits with status 1. `SIGTERM` drains the service and exits 0.
 *
 * Test mode (`--channel unix:<folder>`): every vsock port is a UNIX socket in the folder
 * (channel.ts) and `--nsm channel:<port>` asks a test NSM on the parent's side of a channel
 * instead of `/dev/nsm`; the test runs this program in a network namespace with only `lo`.
 *
 * ```sh
 * deno run -A --unstable-vsock enclave/boot.ts --kms-key-id arn:aws:kms:... --region eu-west-1 \
 *   --age-recipient age1... --service-config /app/config/sign-service.yaml
 * ```
 * @module
 */
import { readFile } from "node:fs/promises";
import process from "node:process";
import { DecryptCommand, KMSClient } from "@aws-sdk/client-kms";
import { writeKeyShareFileAtomic } from "../platform/keyshare_file.ts";
import { createLogger, type Logger } from "../platform/logger.ts";
import { envName } from "../platform/settings_layers.ts";
import {
  ageRecipientOf,
  decryptKeyShareFileBytes,
  encryptKeyShareFileBytes,
  generateAgeIdentity,
  openKeyStore,
  parseAgeIdentityFile,
} from "../keystore/key_store.ts";
import { loadServiceConfig } from "../service/config.ts";
import { startSignService } from "../service/start.ts";
import {
  type Channels,
  closeQuietly,
  createChannels,
  DEFAULT_ENCLAVE_CID,
  forward,
  type Forwarder,
  PARENT_CID,
  parseChannelMode,
} from "./channel.ts";
import { receiveProvisioning, SHARE_UPLOAD_PORT } from "./framing.ts";
import { flagTable, intFlag, settingsOrExit, stopOnSignals } from "./_program.ts";
import {
  checkIssuerSecretWithGateway,
  ISSUER_SECRET_VARIABLE,
  issuerSecretFromPlaintext,
  requireTlsGateway,
} from "./issuer_secret.ts";
import { decryptForRecipient } from "./kms_recipient.ts";
import { createNsmClient, type Nsm, NSM_RESPONSE_MAX_BYTES, openNsmDevice } from "./nsm.ts";
import { createShareUploader, uploadingFs } from "./share_upload.ts";

/** Settings of the boot program (flags, or `WALLET_MPC_ENCLAVE_<FLAG>` baked into the image). */
export interface BootSettings {
  readonly channel: string;
  readonly localCid: number;
  readonly parentCid: number;
  readonly serviceConfig: string;
  readonly stateDir: string;
  readonly nsm: string;
  readonly kmsKeyId: string;
  readonly region: string;
  readonly kmsEndpoint: string;
  readonly kmsProxyPort: number;
  readonly ageRecipient: string;
  readonly ingressGrpcPort: number;
  readonly ingressWebPort: number;
  readonly egressPort: number;
  readonly uploadPort: number;
  readonly provisionTimeoutMs: number;
}

const BOOT_FLAGS = flagTable("ENCLAVE", {
  channel: { arg: "mode", help: "vsock, or unix:<folder> (test mode)", default: "vsock" },
  "local-cid": {
    arg: "n",
    help: "this side's CID (names its socket files in test mode)",
    default: String(DEFAULT_ENCLAVE_CID),
  },
  "parent-cid": { arg: "n", help: "the parent's CID", default: String(PARENT_CID) },
  "service-config": {
    arg: "path",
    help: "the sign-service's configuration file (in the image)",
    default: "/app/config/sign-service.yaml",
  },
  "state-dir": {
    arg: "path",
    help: "folder of the key share file in memory (tmpfs)",
    default: "/run/wallet-mpc",
  },
  nsm: { arg: "path", help: "the NSM device, or channel:<port> (test mode)", default: "/dev/nsm" },
  "kms-key-id": { arg: "arn", help: "the KMS key of the age key (required, pinned)", default: "" },
  region: { arg: "region", help: "AWS region of the KMS key (required)", default: "" },
  "kms-endpoint": {
    arg: "url",
    help: "KMS endpoint (default https://kms.<region>.amazonaws.com; its host must resolve to " +
      "127.0.0.1 inside the enclave)",
    default: "",
  },
  "kms-proxy-port": { arg: "port", help: "parent's vsock port of vsock-proxy", default: "5000" },
  "age-recipient": { arg: "age1...", help: "pinned recipient of the age key", default: "" },
  "ingress-grpc-port": { arg: "port", help: "vsock port to the service's gRPC", default: "50051" },
  "ingress-web-port": {
    arg: "port",
    help: "vsock port to the service's web port",
    default: "50052",
  },
  "egress-port": { arg: "port", help: "parent's vsock port to the gateway", default: "8080" },
  "upload-port": {
    arg: "port",
    help: "parent's vsock port for new key share files",
    default: String(SHARE_UPLOAD_PORT),
  },
  "provision-timeout-ms": { arg: "ms", help: "time allowed for provisioning", default: "300000" },
}, {
  title: "enclave boot: provisioning, attested KMS decrypt, the sign-service behind vsock",
  usage: ["deno run -A --unstable-vsock enclave/boot.ts [options]"],
  notes: [
    "Precedence: defaults < environment (baked into the enclave image) < flags. Exits 1 on any " +
    "failure with one log line naming the step; SIGTERM drains the service and exits 0.",
  ],
});

/** The boot program's `--help`. */
export const BOOT_USAGE: string = BOOT_FLAGS.usage;

/**
 * Reads the settings from flags and environment.
 * @param argv the arguments after the script name.
 * @param env the environment.
 * @returns the settings, or null when help was asked for.
 * @throws {RangeError} a usage error, a missing required setting or a bad number.
 */
export function bootSettings(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): BootSettings | null {
  const parsed = BOOT_FLAGS.parse(argv, env);
  if (!parsed) return null;
  const { get } = parsed;
  for (const f of ["kms-key-id", "region"] as const) {
    if (get(f) === "") throw new RangeError(`--${f}: required (or ${envName("ENCLAVE", f)})`);
  }
  const region = get("region");
  return {
    channel: get("channel"),
    localCid: intFlag("local-cid", get("local-cid")),
    parentCid: intFlag("parent-cid", get("parent-cid")),
    serviceConfig: get("service-config"),
    stateDir: get("state-dir"),
    nsm: get("nsm"),
    kmsKeyId: get("kms-key-id"),
    region,
    kmsEndpoint: get("kms-endpoint") || `https://kms.${region}.amazonaws.com`,
    kmsProxyPort: intFlag("kms-proxy-port", get("kms-proxy-port")),
    ageRecipient: get("age-recipient"),
    ingressGrpcPort: intFlag("ingress-grpc-port", get("ingress-grpc-port")),
    ingressWebPort: intFlag("ingress-web-port", get("ingress-web-port")),
    egressPort: intFlag("egress-port", get("egress-port")),
    uploadPort: intFlag("upload-port", get("upload-port")),
    provisionTimeoutMs: intFlag("provision-timeout-ms", get("provision-timeout-ms")),
  };
}

/** A boot failure: the step that failed and its error. */
export class BootError extends Error {
  override readonly name = "BootError";
  /** The step (`provisioning`, `kms-decrypt`, ...). */
  readonly step: string;
  /**
   * @param step the step.
   * @param cause its error.
   */
  constructor(step: string, cause: unknown) {
    super(`${step}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.step = step;
  }
}

async function step<T>(name: string, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw e instanceof BootError ? e : new BootError(name, e);
  }
}

/**
 * The address a forwarder inside the enclave listens on for a URL: its port on 127.0.0.1
 * (KMS's host name resolves to 127.0.0.1 through the image's hosts file), and the URL's host
 * for the caller's checks.
 */
function listenAddressOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return { host: host === "localhost" ? "127.0.0.1" : host, port };
}

/** Where the enclave's gateway forwarder listens, from the service's `gateway.url`. */
export interface GatewayEgress {
  /** The port on 127.0.0.1 (the URL's). */
  readonly port: number;
  /** `https://`: TLS end to end to the gateway, through the parent. */
  readonly tls: boolean;
  /** A host name the image's `/etc/hosts` must map to 127.0.0.1 (null: an address, or localhost). */
  readonly hostName: string | null;
}

/**
 * The gateway forwarder of a `gateway.url` (the enclave reaches the gateway only through it,
 * vsock to the parent): `http://127.0.0.1:<port>` (or localhost), or
 * `https://<name>:<port>` with a host name the image maps to 127.0.0.1 (or 127.0.0.1,
 * localhost), whose certificate the service checks: TLS end to end, the parent relays
 * ciphertext. Plain http only to loopback names, since that link is readable by the parent.
 * @param url the service's `gateway.url`.
 * @returns the forwarder's port, TLS or not, the host name to map.
 * @throws {RangeError} any other URL, saying what is accepted.
 * @example
 * ```ts
 * import { gatewayEgressOf } from "./boot.ts";
 * const g = gatewayEgressOf("https://gateway.example:8443");
 * console.assert(g.port === 8443 && g.tls && g.hostName === "gateway.example");
 * ```
 */
export function gatewayEgressOf(url: string): GatewayEgress {
  const accepted = "http://127.0.0.1:<port>, or https://<host name>:<port> that the image " +
    "maps to 127.0.0.1 (the enclave reaches the gateway through a forwarder to the parent)";
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError(`gateway.url: expected ${accepted}`);
  }
  const tls = u.protocol === "https:";
  const host = u.hostname;
  const loopback = host === "127.0.0.1" || host === "localhost";
  const address = /^[0-9.]+$/.test(host) || host.startsWith("[");
  if ((u.protocol !== "http:" && !tls) || (!tls && !loopback) || (!loopback && address)) {
    throw new RangeError(`gateway.url: expected ${accepted}, got ${u.protocol}//${u.host}`);
  }
  return {
    port: Number(u.port || (tls ? 443 : 80)),
    tls,
    hostName: loopback ? null : host,
  };
}

/** The test NSM of test mode: one request per connection (raw CBOR, then half-close). */
function channelNsm(channels: Channels, cid: number, port: number): Nsm {
  return createNsmClient(async (request) => {
    const conn = await channels.connect(cid, port);
    try {
      let off = 0;
      while (off < request.length) off += await conn.write(request.subarray(off));
      await conn.closeWrite();
      const out = new Uint8Array(NSM_RESPONSE_MAX_BYTES);
      let n = 0;
      for (;;) {
        if (n === out.length) throw new RangeError("test NSM: answer too large");
        const got = await conn.read(out.subarray(n));
        if (got === null) break;
        n += got;
      }
      return out.slice(0, n);
    } finally {
      closeQuietly(conn);
    }
  });
}

/** The running enclave. */
export interface RunningEnclave {
  /** Drains the service and closes every bridge. */
  stop(): Promise<void>;
}

/**
 * Boots the enclave (module doc).
 * @param s the settings.
 * @param logger where the log lines go.
 * @returns the running enclave.
 * @throws {BootError} naming the failed step.
 */
export async function bootEnclave(s: BootSettings, logger: Logger): Promise<RunningEnclave> {
  const started = performance.now();
  const forwarders: Forwarder[] = [];
  const bridgeError = (what: string) => (e: unknown) =>
    logger.log("warn", "bridge failed", { bridge: what, error: (e as Error)?.name ?? "error" });
  try {
    const mode = await step("settings", () => parseChannelMode(s.channel));
    const channels = createChannels({ mode, localCid: s.localCid });
    // The service's settings: its own file (in the image), with the key share file and the
    // session key in the state folder (module doc, step 4).
    const keyFile = `${s.stateDir}/service_key_shares.age`;
    const sessionFile = `${s.stateDir}/session.age`;
    // The file is read once: the configuration checked now is the one the service gets.
    const texts = new Map<string, Promise<string>>();
    const loadConfig = (env: Readonly<Record<string, string>>) =>
      loadServiceConfig({
        argv: [
          s.serviceConfig,
          "--key-share-file",
          keyFile,
          "--set",
          `key_store.age_identity_file=${sessionFile}`,
        ],
        env,
        readFile: (p) => {
          if (!texts.has(p)) texts.set(p, readFile(p, "utf8"));
          return texts.get(p)!;
        },
      });
    const config = await step("service-config", () => loadConfig({}));
    const gateway = await step("service-config", () => gatewayEgressOf(config.gateway.url));

    await step("forwarders", () => {
      const kms = listenAddressOf(s.kmsEndpoint);
      forwarders.push(
        forward(
          Deno.listen({ hostname: "127.0.0.1", port: kms.port }),
          () => channels.connect(s.parentCid, s.kmsProxyPort),
          bridgeError("kms"),
        ),
        forward(
          Deno.listen({ hostname: "127.0.0.1", port: gateway.port }),
          () => channels.connect(s.parentCid, s.egressPort),
          bridgeError("gateway egress"),
        ),
      );
    });

    logger.log("info", "waiting for provisioning", { channel: mode.kind });
    const p = await step("provisioning", () =>
      receiveProvisioning({
        listen: (port) => channels.listen(port),
        timeoutMs: s.provisionTimeoutMs,
        onMessage: (slot, bytes) =>
          logger.log("info", "provisioning message", { kind: slot.kind, port: slot.port, bytes }),
      }));
    if (!p.issuerSecret) {
      logger.log("info", "no issuer secret provisioned", {
        rooms:
          "chosen by the clients, no room tokens (a gateway without anonymous rooms refuses them)",
      });
    }

    let identity: string;
    let issuerSecret = "";
    try {
      if (p.issuerSecret) {
        // Before any KMS call: the service would send the secret where the parent reads it.
        await step("issuer-secret", () => requireTlsGateway(config.gateway.url));
      }
      const credentials = await step("credentials", () => {
        const c = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(p.credentials));
        if (typeof c?.accessKeyId !== "string" || typeof c?.secretAccessKey !== "string") {
          throw new TypeError("expected JSON { accessKeyId, secretAccessKey, sessionToken? }");
        }
        return {
          accessKeyId: c.accessKeyId as string,
          secretAccessKey: c.secretAccessKey as string,
          ...(typeof c.sessionToken === "string" ? { sessionToken: c.sessionToken as string } : {}),
        };
      });
      const kms = new KMSClient({
        region: s.region,
        endpoint: s.kmsEndpoint,
        credentials,
        maxAttempts: 2,
      });
      const nsm = await step("nsm", () => {
        if (!s.nsm.startsWith("channel:")) return openNsmDevice(s.nsm);
        if (mode.kind !== "unix") {
          throw new RangeError("--nsm channel:<port> is for test mode only");
        }
        return channelNsm(channels, s.parentCid, Number(s.nsm.slice("channel:".length)));
      });
      const decrypt = (ciphertext: Uint8Array) =>
        decryptForRecipient({
          nsm,
          keyId: s.kmsKeyId,
          ciphertext,
          decrypt: (input) => kms.send(new DecryptCommand(input)),
        });
      let plain: Uint8Array | undefined;
      let issuerPlain: Uint8Array | undefined;
      try {
        try {
          plain = await step("kms-decrypt", () => decrypt(p.ageKey));
          const blob = p.issuerSecret;
          if (blob) issuerPlain = await step("issuer-secret-decrypt", () => decrypt(blob));
        } finally {
          kms.destroy();
          nsm.close();
        }
        const agePlain = plain;
        identity = await step("age-key", async () => {
          const id = parseAgeIdentityFile(new TextDecoder().decode(agePlain));
          if (s.ageRecipient !== "" && (await ageRecipientOf(id)) !== s.ageRecipient) {
            throw new RangeError("the decrypted age identity is not the pinned recipient's");
          }
          return id;
        });
        const secretPlain = issuerPlain;
        if (secretPlain) {
          issuerSecret = await step("issuer-secret", () => issuerSecretFromPlaintext(secretPlain));
        }
      } finally {
        plain?.fill(0);
        issuerPlain?.fill(0);
      }
    } finally {
      p.credentials.fill(0);
      p.ageKey.fill(0);
      p.issuerSecret?.fill(0);
    }

    // Step 4: the shares, decrypted and written again for this session; the age key goes.
    const persistent = await ageRecipientOf(identity);
    const session = await generateAgeIdentity();
    await step("shares", async () => {
      await Deno.mkdir(s.stateDir, { recursive: true, mode: 0o700 });
      await Deno.writeTextFile(sessionFile, `${session.identity}\n`, { mode: 0o600 });
      if (p.shares.length === 0) return; // no key share file yet: an empty store
      const plainFile = await decryptKeyShareFileBytes(p.shares, { identity });
      try {
        const out = await encryptKeyShareFileBytes(plainFile, {
          recipients: [session.recipient, persistent],
        });
        await writeKeyShareFileAtomic(keyFile, out);
      } finally {
        plainFile.fill(0);
        p.shares.fill(0);
      }
    });
    identity = ""; // dropped: only the recipient (public) stays

    const uploader = createShareUploader({
      connect: () => channels.connect(s.parentCid, s.uploadPort),
    });
    const store = await step("key-store", () =>
      openKeyStore({
        path: keyFile,
        decryptor: { identity: session.identity },
        recipients: [persistent, ...config.keyStore.recipients],
        partyIndex: config.server.index,
        parties: config.mpc.totalParticipants,
        allowMissing: true,
        fs: uploadingFs(uploader, (r) =>
          logger.log("info", "key share file stored by the parent", {
            generation: r.generation,
            sha256: r.sha256,
          })),
      }));

    // The issuer secret reaches the service as its own environment variable would, in memory.
    let serviceConfig = config;
    if (issuerSecret !== "") {
      const secret = issuerSecret;
      issuerSecret = ""; // the string cannot be zeroed: only this reference is dropped
      const checked = await step("issuer-secret", async () => {
        const answer = await checkIssuerSecretWithGateway({ url: config.gateway.url, secret });
        serviceConfig = await loadConfig({ [ISSUER_SECRET_VARIABLE]: secret });
        return answer;
      });
      // "unreachable": the gateway did not answer the check; the service's requests will tell.
      logger.log(checked === "accepted" ? "info" : "warn", "issuer secret provisioned", {
        rooms: "opened by the service, with room tokens",
        gateway_check: checked,
      });
    }

    const service = await step(
      "service",
      () => startSignService({ config: serviceConfig, logger, store }),
    );
    const grpcPort = service.ports.grpc_port ?? service.ports.port;
    const webPort = service.ports.web_port ?? service.ports.port;
    await step("ingress", () => {
      forwarders.push(
        forward(
          channels.listen(s.ingressGrpcPort),
          () => Deno.connect({ hostname: "127.0.0.1", port: grpcPort }),
          bridgeError("ingress grpc"),
        ),
        forward(
          channels.listen(s.ingressWebPort),
          () => Deno.connect({ hostname: "127.0.0.1", port: webPort }),
          bridgeError("ingress web"),
        ),
      );
    });
    logger.log("info", "enclave ready", {
      boot_ms: Math.round(performance.now() - started),
      accounts: store.accounts().length,
      ingress_grpc: s.ingressGrpcPort,
      ingress_web: s.ingressWebPort,
    });
    return {
      async stop() {
        for (const f of forwarders) f.close();
        await service.stop();
      },
    };
  } catch (e) {
    for (const f of forwarders) f.close();
    throw e;
  }
}

async function main(): Promise<void> {
  const env = process.env as Record<string, string | undefined>;
  const s = settingsOrExit(() => bootSettings(process.argv.slice(2), env), BOOT_USAGE);
  if (!s) return;
  const logger = createLogger({ base: { program: "enclave-boot", pid: process.pid } });
  let running: RunningEnclave;
  try {
    running = await bootEnclave(s, logger);
  } catch (e) {
    const err = e as Error & { code?: unknown };
    const cause = (err instanceof BootError ? err.cause : err) as Error & { code?: unknown };
    logger.log("error", "enclave boot failed", {
      step: err instanceof BootError ? err.step : "boot",
      error: cause?.name ?? "Error",
      code: cause?.code !== undefined ? String(cause.code) : undefined,
      message: err?.message,
    });
    process.exit(1);
  }
  stopOnSignals(logger, () => running.stop());
}

if (import.meta.main) await main();
