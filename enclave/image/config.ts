/**
 * What the boot program needs on a real host, baked into the customer ramdisk and so measured
 * in PCR2 (and PCR0): its settings as `WALLET_MPC_ENCLAVE_*` lines of the `/env` file AWS's init
 * reads (one `NAME=VALUE` a line), the sign-service's configuration file (default
 * `/app/config/sign-service.yaml`, the boot program's `--service-config`) and the callers file the
 * configuration's `auth.tokens_file` names (under `/app/config/`).
 *
 * Validated at build time with the boot program's own parsers (`bootSettings`,
 * `loadServiceConfig` with the overrides boot.ts applies, `parseCallersFile`), so an image that
 * would fail its `settings` or `service-config` step, or its service start for a bad callers
 * file, is never built: the KMS key id, region and age recipient must be set; the channel must be
 * vsock and the NSM the device (no test mode); `gateway.url` must be the egress forwarder
 * (`http://127.0.0.1:<port>`, or `https://<host name>:<port>` whose name the image's
 * `/etc/hosts` maps to 127.0.0.1: TLS end to end to the gateway, needed when the enclave is
 * given the gateway's issuer secret); the service listens on loopback without TLS; no gateway token
 * (the image is not secret: anyone with the EIF reads every file in it); at least one caller.
 * An https gateway whose certificate comes from a private CA: the CA certificates (PEM, `--gateway-ca`)
 * are baked at `/app/config/gateway-ca.pem` and named by `DENO_CERT` in `/env` (Deno adds them
 * to its built-in roots); they must parse as CA certificates valid now, and only an https gateway
 * takes them. The parent cannot change them: they are measured like the rest.
 * Nothing here is secret: a key id, a region, a public age recipient, token hashes, CA certificates.
 * @module
 */

import { BOOT_USAGE, bootSettings, type GatewayEgress, gatewayEgressOf } from "../boot.ts";
import { loadServiceConfig } from "../../service/config.ts";
import { parseCallersFile } from "../../service/auth.ts";
import type { CpioEntry } from "./cpio.ts";
import { X509Certificate } from "node:crypto";

/** The prefix of the boot program's variables. */
export const BOOT_ENV_PREFIX = "WALLET_MPC_ENCLAVE_";
/** Where baked files may go in the image. */
export const CONFIG_DIR = "/app/config/";
/** Where the gateway's private CA certificates go in the image (named by `DENO_CERT`). */
export const GATEWAY_CA_PATH = "/app/config/gateway-ca.pem";

/** A refused build configuration; the message says what to fix. */
export class EnclaveConfigError extends Error {
  override readonly name = "EnclaveConfigError";
}

/** The variables the boot program reads (from its `--help`: one `(env NAME)` per flag). */
export function bootVariables(): string[] {
  return [...new Set(BOOT_USAGE.match(/WALLET_MPC_ENCLAVE_[A-Z0-9_]+/g) ?? [])].sort();
}

const fail = (msg: string): never => {
  throw new EnclaveConfigError(`enclave:build: ${msg}`);
};

/**
 * Parses a settings file: `NAME=VALUE` lines (`WALLET_MPC_ENCLAVE_*` names, or the boot flag's
 * name such as `kms-key-id`), blank lines and `#` comments. Quotes are not removed (AWS's init
 * does not remove them either), so a quoted value is refused.
 * @param text the file.
 * @returns variable name -> value.
 * @throws {EnclaveConfigError} a malformed line, a duplicate, a quoted value.
 */
export function parseSettingsFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = line.match(/^([A-Za-z0-9_-]+)\s*=\s*(.*)$/);
    if (!m) fail(`settings line ${i + 1}: expected NAME=VALUE`);
    const name = variableName(m![1]);
    const value = m![2];
    if (/^["']/.test(value)) fail(`settings line ${i + 1}: ${name}: quotes are not removed`);
    if (name in out) fail(`settings line ${i + 1}: ${name} given twice`);
    out[name] = value;
  });
  return out;
}

/** `kms-key-id` or `WALLET_MPC_ENCLAVE_KMS_KEY_ID` -> the variable's name. */
export function variableName(name: string): string {
  return name.startsWith(BOOT_ENV_PREFIX)
    ? name
    : BOOT_ENV_PREFIX + name.toUpperCase().replace(/-/g, "_");
}

/** Inputs of {@linkcode prepareEnclaveConfig}. */
export interface EnclaveConfigInput {
  /** Boot settings, variable name -> value (parseSettingsFile, plus flags). */
  settings: Readonly<Record<string, string>>;
  /** The sign-service's configuration file (YAML), as given. */
  serviceConfig: Uint8Array;
  /** The callers file (YAML/JSON), as given. */
  callers: Uint8Array;
  /** CA certificates (PEM) for an https gateway whose certificate a private CA issued. */
  gatewayCa?: Uint8Array;
  /** The build's clock, for the CA certificates' validity (default now). */
  now?: Date;
}

/** The validated configuration, ready for the customer ramdisk. */
export interface EnclaveConfig {
  /** `NAME=VALUE` lines for `/env`, sorted by name. */
  env: string[];
  /** Files under the root filesystem (paths relative to it). */
  files: CpioEntry[];
  /** Host names the image's /etc/hosts maps to 127.0.0.1 (the KMS endpoint's, an https gateway's). */
  loopbackHosts: string[];
  /** What was baked, for the build's summary. */
  summary: {
    kmsKeyId: string;
    region: string;
    ageRecipient: string;
    gatewayUrl: string;
    serviceConfig: string;
    callersFile: string;
    callers: number;
    /** Subjects of the baked gateway CA certificates (none: Deno's built-in roots only). */
    gatewayCa: string[];
  };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/g;

/**
 * The CA certificates of a PEM file: one or more CERTIFICATE blocks and nothing else, each a CA
 * certificate valid at `now`.
 * @returns their subjects
 */
function gatewayCaSubjects(pem: string, now: Date): string[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  const rest = pem.replace(PEM_CERT, "").trim();
  if (blocks.length === 0 || rest !== "") {
    fail("gateway CA: expected PEM CERTIFICATE blocks only (no keys, no other text)");
  }
  return blocks.map((b, k) => {
    let c: X509Certificate;
    try {
      c = new X509Certificate(b);
    } catch (e) {
      return fail(`gateway CA: certificate ${k + 1} does not parse: ${(e as Error).message}`);
    }
    if (!c.ca) fail(`gateway CA: certificate ${k + 1} (${c.subject}) is not a CA certificate`);
    if (now < new Date(c.validFrom) || now > new Date(c.validTo)) {
      fail(
        `gateway CA: certificate ${
          k + 1
        } (${c.subject}) is not valid now (${c.validFrom} to ${c.validTo})`,
      );
    }
    return c.subject.replace(/\n/g, ", ");
  });
}

const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

function utf8(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail(`${what} is not UTF-8 text`);
  }
}

function inConfigDir(path: string, what: string): string {
  if (!path.startsWith(CONFIG_DIR) || path.split("/").includes("..") || path.endsWith("/")) {
    fail(`${what} must be a file under ${CONFIG_DIR} in the image, got ${JSON.stringify(path)}`);
  }
  return path;
}

/**
 * Validates the boot settings, the service configuration and the callers file together, as the
 * boot program will read them in the enclave (module doc).
 * @param input settings and file contents.
 * @returns the `/env` lines and the files to bake.
 * @throws {EnclaveConfigError} naming what is wrong.
 */
export async function prepareEnclaveConfig(input: EnclaveConfigInput): Promise<EnclaveConfig> {
  const known = new Set(bootVariables());
  const env: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(input.settings)) {
    const name = variableName(rawName);
    if (!known.has(name)) {
      fail(`unknown boot setting ${name} (the boot program reads ${[...known].join(", ")})`);
    }
    if (/[\r\n\0]/.test(value)) fail(`${name}: a value is one line (the /env file)`);
    env[name] = value;
  }
  for (const f of ["KMS_KEY_ID", "REGION", "AGE_RECIPIENT"]) {
    if (!env[BOOT_ENV_PREFIX + f]) {
      fail(
        `${BOOT_ENV_PREFIX}${f} is not set: give it in --settings FILE or as --${
          f.toLowerCase().replace(/_/g, "-")
        } (the enclave cannot boot without it)`,
      );
    }
  }
  let s;
  try {
    s = bootSettings([], env);
  } catch (e) {
    return fail(`boot settings: ${(e as Error).message}`);
  }
  if (!s) return fail("boot settings: unexpected help request");
  if (s.channel !== "vsock") fail(`channel: an image uses vsock, got ${s.channel} (test mode)`);
  if (s.nsm.startsWith("channel:")) fail(`nsm: an image uses the device, got ${s.nsm} (test mode)`);
  if (!REGION.test(s.region)) fail(`region: not an AWS region name: ${JSON.stringify(s.region)}`);
  if (
    !/^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_-]+|[0-9a-f-]{36}|mrk-[0-9a-f]{32}|alias\/[A-Za-z0-9/_-]+)$/
      .test(s.kmsKeyId)
  ) {
    fail(`kms-key-id: expected a key ARN, key id or alias, got ${JSON.stringify(s.kmsKeyId)}`);
  }
  if (!AGE_RECIPIENT.test(s.ageRecipient)) {
    fail(
      `age-recipient: expected an X25519 age recipient (age1...), got ${
        JSON.stringify(s.ageRecipient)
      }`,
    );
  }
  const kmsUrl = new URL(s.kmsEndpoint);
  if (kmsUrl.protocol !== "https:") fail(`kms-endpoint: must be https (TLS end to end to KMS)`);
  const kmsPort = Number(kmsUrl.port || 443);

  // The service configuration, loaded exactly as bootEnclave loads it.
  const configPath = inConfigDir(s.serviceConfig, "service-config");
  const configText = utf8(input.serviceConfig, "the service configuration");
  let config;
  try {
    config = await loadServiceConfig({
      argv: [
        configPath,
        "--key-share-file",
        `${s.stateDir}/service_key_shares.age`,
        "--set",
        `key_store.age_identity_file=${s.stateDir}/session.age`,
      ],
      env: {},
      readFile: (p) => {
        if (p === configPath) return configText;
        throw Object.assign(new Error("not in the image"), { code: "ENOENT" });
      },
    });
  } catch (e) {
    return fail(`service configuration: ${(e as Error).message}`);
  }
  const forwarder = `http://127.0.0.1:<port> (the boot program's egress forwarder to vsock ` +
    `${s.egressPort}, e.g. http://127.0.0.1:8080), or https://<host name>:<port> (TLS end to ` +
    `end through the same forwarder; the name is mapped to 127.0.0.1 in the image)`;
  let egress: GatewayEgress;
  try {
    egress = gatewayEgressOf(config.gateway.url);
  } catch {
    return fail(
      `service configuration: gateway.url must be ${forwarder}, got ${config.gateway.url}`,
    );
  }
  const g = new URL(config.gateway.url);
  // Over https the gateway's certificate names it: a name, never a loopback address.
  if (
    (egress.tls && egress.hostName === null) || (g.pathname !== "/" && g.pathname !== "") ||
    g.search !== ""
  ) {
    fail(`service configuration: gateway.url must be ${forwarder}, got ${config.gateway.url}`);
  }
  const gPort = egress.port;
  if ([kmsPort, config.server.port, config.server.webPort].includes(gPort)) {
    fail(
      `service configuration: gateway.url port ${gPort} is taken by the KMS forwarder or the service`,
    );
  }
  if (config.gateway.token !== "") {
    fail(
      "service configuration: gateway.token must be empty (every file of the image is readable by whoever has the EIF)",
    );
  }
  if (config.server.host !== "127.0.0.1") {
    fail(
      `service configuration: server.host must be 127.0.0.1 (the ingress bridges connect there), got ${config.server.host}`,
    );
  }
  if (config.server.tls.certFile !== "" || config.server.tls.keyFile !== "") {
    fail(
      "service configuration: server.tls must be unset (no TLS inside the enclave; a key in the image is not secret)",
    );
  }
  if (kmsPort === config.server.port || kmsPort === config.server.webPort) {
    fail(`service configuration: server ports collide with the KMS forwarder's port ${kmsPort}`);
  }
  if (config.keyStore.mode !== "identity" || config.keyStore.allowPlaintext) {
    fail(
      "service configuration: key_store must not allow plaintext or a passphrase (the enclave's session key decrypts)",
    );
  }
  const callersPath = inConfigDir(config.auth.tokensFile, "auth.tokens_file");
  if (callersPath === configPath) fail("auth.tokens_file names the service configuration itself");
  let callers;
  try {
    callers = parseCallersFile(utf8(input.callers, "the callers file"));
  } catch (e) {
    return fail(`callers file: ${(e as Error).message}`);
  }
  if (callers.length === 0) fail("callers file: no callers (nobody could use the service)");

  let gatewayCa: string[] = [];
  if (input.gatewayCa !== undefined) {
    if (!egress.tls) {
      fail("gateway CA: only for an https gateway (gateway.url is http: the forwarder, no TLS)");
    }
    if ([configPath, callersPath].includes(GATEWAY_CA_PATH)) {
      fail(`gateway CA: ${GATEWAY_CA_PATH} is taken by the service configuration or callers file`);
    }
    gatewayCa = gatewayCaSubjects(
      utf8(input.gatewayCa, "the gateway CA file"),
      input.now ?? new Date(),
    );
  }

  const rel = (p: string) => p.replace(/^\/+/, "");
  const names = Object.keys(env).sort();
  return {
    env: [
      ...names.map((n) => `${n}=${env[n]}`),
      ...(gatewayCa.length ? [`DENO_CERT=${GATEWAY_CA_PATH}`] : []),
    ],
    files: [
      { type: "file", path: rel(configPath), mode: 0o644, data: input.serviceConfig },
      { type: "file", path: rel(callersPath), mode: 0o644, data: input.callers },
      ...(gatewayCa.length
        ? [{
          type: "file" as const,
          path: rel(GATEWAY_CA_PATH),
          mode: 0o644,
          data: input.gatewayCa!,
        }]
        : []),
    ],
    loopbackHosts: [kmsUrl.hostname, ...(egress.hostName ? [egress.hostName] : [])],
    summary: {
      kmsKeyId: s.kmsKeyId,
      region: s.region,
      ageRecipient: s.ageRecipient,
      gatewayUrl: config.gateway.url,
      serviceConfig: configPath,
      callersFile: callersPath,
      callers: callers.length,
      gatewayCa,
    },
  };
}
