/**
 * The parent instance's program (Deno, `--unstable-vsock`): everything the enclave needs from
 * the host, none of which lets the host read a share (docs/enclave.md, threat model).
 *
 * `run`:
 * 1. credentials of the instance role from IMDSv2 (imds.ts), for S3 and for the enclave's KMS
 *    call;
 * 2. from S3 (share_bucket.ts): the age key's KMS ciphertext and the current key share file;
 * 3. bridges: vsock (parent, 8080) -> the gateway over TCP (egress), and, once provisioned, TCP
 *    listeners (`--ingress host:port=vsock-port`) -> the enclave's vsock ports (ingress);
 * 4. new key share files from the enclave (vsock 7103, share_upload.ts) stored as new S3
 *    versions (never over the last good one);
 * 5. the provisioning messages (framing.ts), in order, once the enclave listens; the KMS
 *    ciphertext of the gateway's issuer secret (`--issuer-secret-file`, port 7104) only when
 *    one is given (without it the enclave's service opens no rooms).
 * It logs `parent ready` with the bound ingress ports and runs until SIGTERM.
 *
 * `publish --file <path>`: stores a key share file as the next version (the first one, made
 * offline and age-encrypted to the age key's recipient, or a restored backup).
 *
 * AWS's `vsock-proxy` (port 5000 to KMS) is started beside it by `run-enclave.sh`.
 *
 * ```sh
 * deno run -A --unstable-vsock enclave/parent.ts run --region eu-west-1 --bucket b --prefix prod/
 * ```
 * @module
 */
import process from "node:process";
import { readFile } from "node:fs/promises";
import { S3Client } from "@aws-sdk/client-s3";
import { createLogger, type Logger } from "../platform/logger.ts";
import { flagTable, intFlag, settingsOrExit, stopOnSignals } from "./_program.ts";
import {
  type Channels,
  createChannels,
  DEFAULT_ENCLAVE_CID,
  forward,
  type Forwarder,
  PARENT_CID,
  parseChannelMode,
} from "./channel.ts";
import {
  ISSUER_SECRET_PORT,
  MAX_PAYLOAD_BYTES,
  PROVISIONING,
  sendProvisioning,
  SHARE_UPLOAD_PORT,
} from "./framing.ts";
import { createImdsCredentials } from "./imds.ts";
import { createShareBucket, type ShareBucket } from "./share_bucket.ts";
import { serveShareUploads } from "./share_upload.ts";

const PARENT_FLAGS = flagTable("PARENT", {
  channel: { arg: "mode", help: "vsock, or unix:<folder> (test mode)", default: "vsock" },
  "enclave-cid": { arg: "n", help: "the enclave's CID", default: String(DEFAULT_ENCLAVE_CID) },
  region: { arg: "region", help: "AWS region of the bucket (required)", default: "" },
  bucket: { arg: "name", help: "S3 bucket of the enclave's files (required)", default: "" },
  prefix: { arg: "prefix", help: 'key prefix, "" or ending in "/"', default: "" },
  "s3-endpoint": { arg: "url", help: "S3 endpoint (tests; default AWS's)", default: "" },
  "imds-endpoint": { arg: "url", help: "instance metadata", default: "http://169.254.169.254" },
  ingress: {
    arg: "host:port=vsock-port",
    help: "TCP listener bridged to an enclave port (port 0: any free port)",
    default: "0.0.0.0:50051=50051,0.0.0.0:50052=50052",
    kind: "list",
  },
  egress: {
    arg: "vsock-port=host:port",
    help: "parent vsock port bridged to a TCP address (the gateway)",
    default: "8080=127.0.0.1:8080",
    kind: "list",
  },
  "upload-port": {
    arg: "port",
    help: "vsock port for new key share files",
    default: String(SHARE_UPLOAD_PORT),
  },
  keep: { arg: "n", help: "key share file versions kept in S3", default: "5" },
  "allow-empty": {
    arg: "yes|no",
    help: "start the enclave with no key share file when S3 has none",
    default: "no",
  },
  "connect-timeout-ms": {
    arg: "ms",
    help: "how long to wait for the enclave's first provisioning port",
    default: "120000",
  },
  "issuer-secret-file": {
    arg: "path",
    help: "run: the KMS ciphertext (binary) of the gateway's issuer secret, sent to the enclave " +
      "(port 7104); none: the enclave's service opens no rooms",
    default: "",
  },
  file: { arg: "path", help: "publish: the age-encrypted key share file", default: "" },
}, {
  title: "enclave parent: IMDSv2 credentials, S3, provisioning and bridges of the enclave",
  usage: [
    "deno run -A --unstable-vsock enclave/parent.ts run [options]",
    "deno run -A enclave/parent.ts publish --file service_key_shares.age [options]",
  ],
  commands: [
    ["run", "provision the enclave, bridge its ports, store its new key share files"],
    ["publish", "store a key share file as the next version in S3"],
  ],
  notes: ["Precedence: defaults < environment < flags."],
}, 1);

/** Settings of the parent. */
export interface ParentSettings {
  readonly command: "run" | "publish";
  readonly channel: string;
  readonly enclaveCid: number;
  readonly region: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly s3Endpoint: string;
  readonly imdsEndpoint: string;
  readonly ingress: readonly { host: string; port: number; vsockPort: number }[];
  readonly egress: readonly { vsockPort: number; host: string; port: number }[];
  readonly uploadPort: number;
  readonly keep: number;
  readonly allowEmpty: boolean;
  readonly connectTimeoutMs: number;
  readonly issuerSecretFile: string;
  readonly file: string;
}

function hostPort(text: string, flag: string): { host: string; port: number } {
  const k = text.lastIndexOf(":");
  if (k <= 0) throw new RangeError(`--${flag}: expected host:port, got "${text}"`);
  return { host: text.slice(0, k).replace(/^\[|\]$/g, ""), port: intFlag(flag, text.slice(k + 1)) };
}

function pair(text: string, flag: string): [string, string] {
  const k = text.indexOf("=");
  if (k <= 0) throw new RangeError(`--${flag}: expected a=b, got "${text}"`);
  return [text.slice(0, k), text.slice(k + 1)];
}

/**
 * Reads the parent's command line.
 * @param argv the arguments after the script name.
 * @param env the environment.
 * @returns the settings, or null when help was asked for.
 * @throws {RangeError} a usage error, a missing setting, a bad value.
 */
export function parentSettings(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParentSettings | null {
  const parsed = PARENT_FLAGS.parse(argv, env);
  if (!parsed) return null;
  const { args, get, list } = parsed;
  const command = args.positionals[0];
  if (command !== "run" && command !== "publish") {
    throw new RangeError(
      `expected a command, run or publish; got ${command ?? "none"} (see --help)`,
    );
  }
  for (const f of ["region", "bucket"] as const) {
    if (get(f) === "") throw new RangeError(`--${f}: required`);
  }
  if (command === "publish" && get("file") === "") throw new RangeError("--file: required");
  const allow = get("allow-empty");
  if (allow !== "yes" && allow !== "no") {
    throw new RangeError(`--allow-empty: expected yes or no, got "${allow}"`);
  }
  return {
    command,
    channel: get("channel"),
    enclaveCid: intFlag("enclave-cid", get("enclave-cid")),
    region: get("region"),
    bucket: get("bucket"),
    prefix: get("prefix"),
    s3Endpoint: get("s3-endpoint"),
    imdsEndpoint: get("imds-endpoint"),
    ingress: list("ingress").map((t) => {
      const [addr, port] = pair(t, "ingress");
      return { ...hostPort(addr, "ingress"), vsockPort: intFlag("ingress", port) };
    }),
    egress: list("egress").map((t) => {
      const [port, addr] = pair(t, "egress");
      return { vsockPort: intFlag("egress", port), ...hostPort(addr, "egress") };
    }),
    uploadPort: intFlag("upload-port", get("upload-port")),
    keep: intFlag("keep", get("keep")),
    allowEmpty: allow === "yes",
    connectTimeoutMs: intFlag("connect-timeout-ms", get("connect-timeout-ms")),
    issuerSecretFile: get("issuer-secret-file"),
    file: get("file"),
  };
}

/**
 * Checks the contents of `--issuer-secret-file`: a KMS ciphertext (`aws kms encrypt ... --query
 * CiphertextBlob --output text | base64 -d`), not empty, within the frame's bound, and not text:
 * a file of visible characters only is the base64 text of a ciphertext or, worse, the secret in
 * the clear, which must never be on the parent. Nothing of the bytes goes into a message.
 * @param bytes the file's bytes.
 * @returns the same bytes.
 * @throws {RangeError} saying what was expected.
 * @example
 * ```ts
 * import { issuerSecretCiphertext } from "./parent.ts";
 * const blob = new Uint8Array([1, 2, 2, 0, 0x78, 0x9c, 0xfe, 0x01]);
 * console.assert(issuerSecretCiphertext(blob) === blob);
 * ```
 */
export function issuerSecretCiphertext(bytes: Uint8Array): Uint8Array {
  const max = MAX_PAYLOAD_BYTES["issuer-secret"];
  if (bytes.length === 0 || bytes.length > max) {
    throw new RangeError(
      `--issuer-secret-file: expected a KMS ciphertext of 1 to ${max} bytes, got ${bytes.length}`,
    );
  }
  if (bytes.every((b) => (b >= 0x20 && b <= 0x7e) || b === 0x0a || b === 0x0d || b === 0x09)) {
    throw new RangeError(
      "--issuer-secret-file: the file is text, expected the binary KMS ciphertext (decode the " +
        "base64 of `aws kms encrypt` with base64 -d; the secret itself never goes on the parent)",
    );
  }
  return bytes;
}

/** The S3 side of the parent, from its settings. */
function openBucket(
  s: ParentSettings,
): { bucket: ShareBucket; s3: S3Client; creds: ReturnType<typeof createImdsCredentials> } {
  const creds = createImdsCredentials({ endpoint: s.imdsEndpoint });
  const s3 = new S3Client({
    region: s.region,
    credentials: creds.provider,
    ...(s.s3Endpoint ? { endpoint: s.s3Endpoint, forcePathStyle: true } : {}),
  });
  return {
    bucket: createShareBucket({ s3, bucket: s.bucket, prefix: s.prefix, keep: s.keep }),
    s3,
    creds,
  };
}

/** The running parent. */
export interface RunningParent {
  /** The bound ingress ports, in the order of the settings. */
  readonly ingressPorts: readonly number[];
  /** Closes every bridge and listener. */
  stop(): Promise<void>;
}

/**
 * Runs the parent's side of one enclave boot (module doc, `run`).
 * @param s the settings.
 * @param logger where the log lines go (never a credential or a file's bytes).
 * @returns once the enclave acknowledged the provisioning and the ingress listens.
 */
export async function runParent(s: ParentSettings, logger: Logger): Promise<RunningParent> {
  const channels: Channels = createChannels({
    mode: parseChannelMode(s.channel),
    localCid: PARENT_CID,
  });
  const { bucket, s3, creds } = openBucket(s);
  const forwarders: Forwarder[] = [];
  const listeners: Deno.Listener[] = [];
  const warn = (what: string) => (e: unknown) =>
    logger.log("warn", `${what} failed`, {
      error: (e as Error)?.name ?? "error",
      message: (e as Error)?.message,
    });
  try {
    const issuerSecret = s.issuerSecretFile === ""
      ? undefined
      : issuerSecretCiphertext(new Uint8Array(await readFile(s.issuerSecretFile)));
    const ageKey = await bucket.ageKeyCiphertext();
    const current = await bucket.current();
    if (!current && !s.allowEmpty) {
      throw new RangeError(
        `no key share file in s3://${s.bucket}/${s.prefix}shares/ (publish one, or --allow-empty yes for a first key generation inside the enclave)`,
      );
    }
    logger.log("info", "files read from S3", {
      generation: current?.pointer.generation ?? 0,
      sha256: current?.pointer.sha256 ?? null,
    });

    const uploads = channels.listen(s.uploadPort);
    listeners.push(uploads);
    void serveShareUploads(uploads, async (file) => {
      const r = await bucket.publish(file);
      logger.log("info", "key share file stored", {
        generation: r.generation,
        key: r.key,
        sha256: r.sha256,
      });
      return r;
    }, warn("share upload"));
    for (const e of s.egress) {
      forwarders.push(
        forward(
          channels.listen(e.vsockPort),
          () => Deno.connect({ hostname: e.host, port: e.port }),
          warn("egress"),
        ),
      );
    }

    const c = await creds.get();
    const credentials = new TextEncoder().encode(JSON.stringify({
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
    }));
    logger.log("info", "provisioning the enclave", {
      enclave_cid: s.enclaveCid,
      ports: PROVISIONING.filter((p) => issuerSecret || p.port !== ISSUER_SECRET_PORT)
        .map((p) => p.port).join(","),
      issuer_secret: issuerSecret ? "sent (KMS ciphertext)" : "none",
    });
    await sendProvisioning(
      {
        credentials,
        ageKey,
        ...(issuerSecret ? { issuerSecret } : {}),
        shares: current?.file ?? new Uint8Array(0),
      },
      {
        connect: (port) => channels.connect(s.enclaveCid, port),
        connectTimeoutMs: s.connectTimeoutMs,
      },
    );
    credentials.fill(0);

    const ingressPorts: number[] = [];
    for (const i of s.ingress) {
      const l = Deno.listen({ hostname: i.host, port: i.port });
      ingressPorts.push((l.addr as Deno.NetAddr).port);
      forwarders.push(
        forward(l, () => channels.connect(s.enclaveCid, i.vsockPort), warn("ingress")),
      );
    }
    logger.log("info", "parent ready", { ingress_ports: ingressPorts.join(",") });
    return {
      ingressPorts,
      stop() {
        for (const f of forwarders) f.close();
        for (const l of listeners) l.close();
        s3.destroy();
        return Promise.resolve();
      },
    };
  } catch (e) {
    for (const f of forwarders) f.close();
    for (const l of listeners) l.close();
    s3.destroy();
    throw e;
  }
}

async function main(): Promise<void> {
  const env = process.env as Record<string, string | undefined>;
  const s = settingsOrExit(() => parentSettings(process.argv.slice(2), env), PARENT_FLAGS.usage);
  if (!s) return;
  const logger = createLogger({ base: { program: "enclave-parent", pid: process.pid } });
  const failed = (msg: string, e: unknown): never => {
    const err = e as Error & { code?: unknown };
    logger.log("error", msg, {
      error: err?.name ?? "Error",
      code: err?.code !== undefined ? String(err.code) : undefined,
      message: err?.message,
    });
    process.exit(1);
  };
  if (s.command === "publish") {
    const { bucket, s3 } = openBucket(s);
    try {
      const r = await bucket.publish(new Uint8Array(await readFile(s.file)));
      logger.log("info", "key share file stored", {
        generation: r.generation,
        key: r.key,
        sha256: r.sha256,
      });
    } catch (e) {
      failed("publish failed", e);
    } finally {
      s3.destroy();
    }
    return;
  }
  let running: RunningParent;
  try {
    running = await runParent(s, logger);
  } catch (e) {
    failed("parent failed", e);
  }
  stopOnSignals(logger, () => running.stop());
}

if (import.meta.main) await main();
