/**
 * `deno task enclave:build`: bundles the boot program, builds the root filesystem and the two
 * ramdisks, writes the EIF and prints PCR0, PCR1 and PCR2. Two builds of the same commit with the
 * same deno binary, host libraries and blobs give byte-identical images.
 *
 * The kernel, AWS's init and nsm.ko come with nitro-cli on an AWS host
 * (`/usr/share/nitro_enclaves/blobs/{bzImage,cmdline,init,nsm.ko}`): pass `--blobs DIR` (or
 * `--kernel`, `--cmdline-file`, `--init`, `--nsm-ko`). Without them the build uses clearly
 * labelled PLACEHOLDER blobs: that image does not boot, its PCR0 and PCR1 are those of the
 * placeholder image, while its PCR2 (the customer ramdisk: our root filesystem) is the one the
 * same build with real blobs gets.
 *
 * The metadata section (not measured) names the HEAD commit and its time (SOURCE_DATE_EPOCH, when
 * set, gives the time), so the image bytes are a function of the commit; the PCRs depend on the
 * measured sections only.
 *
 * What the boot program reads on a real host is baked into the customer ramdisk, measured in PCR2
 * and PCR0 (config.ts): the boot settings (`--settings FILE` of `WALLET_MPC_ENCLAVE_*=VALUE`
 * lines, and/or `--kms-key-id`, `--region`, `--age-recipient`, `--setting NAME=VALUE`) as lines
 * of `/env`, the service configuration (`--service-config FILE`, at `/app/config/sign-service.yaml`)
 * and the callers file (`--callers FILE`, at the path its `auth.tokens_file` names). All three
 * are required and validated with the boot program's own parsers; a build that would not boot is
 * refused with the reason. `--gateway-ca FILE` (optional, https gateway only) bakes the private CA
 * certificates the gateway's certificate chains to. `--unconfigured` builds without them (an
 * image to test the tool only).
 *
 * Usage: deno task enclave:build --settings FILE | --kms-key-id ARN --region R --age-recipient A
 *   --service-config FILE --callers FILE [--gateway-ca FILE] [--setting NAME=VALUE]...
 *   [--entry enclave/boot.ts]
 *   [--out dist/enclave/wallet-mpc.eif]
 *   [--blobs DIR | --kernel F --cmdline-file F --init F --nsm-ko F] [--rootfs-dir DIR]
 *   [--kms-region REGION]... [--deno-binary F] [--deno-flag FLAG]... [--unconfigured] [--json]
 * @module
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createHash } from "node:crypto";
import { eifMetadata, type Pcrs, writeEif } from "./eif.ts";
import {
  type EnclaveConfig,
  EnclaveConfigError,
  parseSettingsFile,
  prepareEnclaveConfig,
  variableName,
} from "./config.ts";
import {
  bootstrapRamdisk,
  bundleEntry,
  collectRootfs,
  customerRamdisk,
  enclaveCommand,
  materializeRootfs,
} from "./rootfs.ts";

/** The blobs nitro-cli ships, as bytes. */
export interface Blobs {
  kernel: Uint8Array;
  cmdline: string;
  init: Uint8Array;
  nsmKo: Uint8Array;
  /** True for the built-in placeholders. */
  placeholder: boolean;
}

/** Flags given to `deno run` in the enclave (the boot program needs vsock, FFI, net, env). */
export const DEFAULT_DENO_FLAGS = ["--allow-all", "--unstable-vsock"] as const;

/**
 * Not-bootable stand-ins for nitro-cli's blobs, so the image builds on a machine without
 * nitro-cli. Their text says what they are; an EIF made with them must never be deployed.
 */
export function placeholderBlobs(): Blobs {
  const label = (what: string, real: string) =>
    new TextEncoder().encode(
      `WALLET-MPC PLACEHOLDER ${what}: NOT BOOTABLE. Build on an AWS host with ` +
        `--blobs /usr/share/nitro_enclaves/blobs (nitro-cli's ${real}).\n`,
    );
  return {
    kernel: label("KERNEL", "bzImage"),
    cmdline: "wallet-mpc-placeholder-cmdline console=ttyS0",
    init: label("INIT", "init"),
    nsmKo: label("NSM DRIVER", "nsm.ko"),
    placeholder: true,
  };
}

/** Reads nitro-cli's blobs; any file not given comes from `dir`. */
export function readBlobs(
  paths: { dir?: string; kernel?: string; cmdline?: string; init?: string; nsmKo?: string },
): Blobs {
  const pick = (given: string | undefined, name: string) => {
    const p = given ?? (paths.dir ? join(paths.dir, name) : undefined);
    if (!p) throw new Error(`enclave image: no ${name}: pass --blobs DIR or its own flag`);
    return new Uint8Array(readFileSync(p));
  };
  return {
    kernel: pick(paths.kernel, "bzImage"),
    // The cmdline file ends with a newline that is not part of the command line.
    cmdline: new TextDecoder().decode(pick(paths.cmdline, "cmdline")).trim(),
    init: pick(paths.init, "init"),
    nsmKo: pick(paths.nsmKo, "nsm.ko"),
    placeholder: false,
  };
}

/** Options of {@linkcode buildEnclaveImage}. */
export interface BuildOptions {
  /** Entry module bundled as /app/boot.js. */
  entry: string;
  blobs: Blobs;
  denoBinary: string;
  denoFlags?: readonly string[];
  /** Regions whose KMS endpoint resolves to 127.0.0.1 (the in-enclave vsock forwarder). */
  kmsRegions?: readonly string[];
  /** Also write the root filesystem tree here (chroot smoke test, Dockerfile path). */
  rootfsDir?: string;
  /** BuildTime of the metadata section (not measured); default: the HEAD commit's time. */
  buildTime?: string;
  /** Source commit named in the metadata (not measured); default: git HEAD. */
  commit?: string;
  /**
   * The boot settings, service configuration and callers file (config.ts's
   * prepareEnclaveConfig), baked into the customer ramdisk; none: an image that cannot boot.
   */
  config?: EnclaveConfig;
}

/** What a build produced. */
export interface BuildResult {
  eif: Uint8Array;
  pcrs: Pcrs;
  sizes: {
    eif: number;
    kernel: number;
    bootstrapRamdisk: number;
    customerRamdisk: number;
    bundle: number;
  };
  placeholder: boolean;
}

/** The HEAD commit and its time (SOURCE_DATE_EPOCH wins for the time), for the metadata. */
function headCommit(): { time: string; commit: string } {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process
    ?.env;
  const git = (args: string[]) => {
    try {
      return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
        .trim();
    } catch {
      return "";
    }
  };
  const epoch = env?.SOURCE_DATE_EPOCH && /^\d+$/.test(env.SOURCE_DATE_EPOCH)
    ? env.SOURCE_DATE_EPOCH
    : git(["log", "-1", "--format=%ct"]) || "0";
  return { time: new Date(Number(epoch) * 1000).toISOString(), commit: git(["rev-parse", "HEAD"]) };
}

/**
 * Builds the EIF in memory.
 * @param opts entry, blobs, deno binary, options
 * @returns the image, its PCRs and sizes
 */
export function buildEnclaveImage(opts: BuildOptions): BuildResult {
  const work = mkdtempSync(join(tmpdir(), "enclave-build-"));
  try {
    const bundle = bundleEntry(opts.entry, opts.denoBinary, join(work, "boot.js"));
    const tree = collectRootfs({
      denoBinary: opts.denoBinary,
      bundle,
      loopbackHosts: [
        ...(opts.kmsRegions ?? []).map((r) => `kms.${r}.amazonaws.com`),
        ...(opts.config?.loopbackHosts ?? []),
      ],
      extraFiles: opts.config?.files ?? [],
    });
    if (opts.rootfsDir) materializeRootfs(tree, opts.rootfsDir);
    const bootstrap = bootstrapRamdisk(opts.blobs.init, opts.blobs.nsmKo);
    const customer = customerRamdisk(
      tree,
      enclaveCommand(opts.denoFlags ?? DEFAULT_DENO_FLAGS, opts.config?.env ?? []),
    );
    const head = headCommit();
    const metadata = eifMetadata({
      imageName: "wallet-mpc-enclave",
      imageVersion: createHash("sha256").update(customer).digest("hex").slice(0, 16),
      buildTime: opts.buildTime ?? head.time,
      buildTool: "wallet-mpc enclave/image/build.ts",
      buildToolVersion: "1",
      kernelVersion: opts.blobs.placeholder ? "placeholder" : "nitro-cli blobs",
      custom: { placeholderBlobs: opts.blobs.placeholder, commit: opts.commit ?? head.commit },
    });
    const { eif, pcrs } = writeEif({
      kernel: opts.blobs.kernel,
      cmdline: opts.blobs.cmdline,
      ramdisks: [bootstrap, customer],
      metadata,
    });
    return {
      eif,
      pcrs,
      sizes: {
        eif: eif.length,
        kernel: opts.blobs.kernel.length,
        bootstrapRamdisk: bootstrap.length,
        customerRamdisk: customer.length,
        bundle: bundle.length,
      },
      placeholder: opts.blobs.placeholder,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The running deno executable (Deno), else the npm package's binary (Node). */
export function defaultDenoBinary(): string {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  return deno
    ? deno.execPath()
    : resolve(dirname(new URL(import.meta.url).pathname), "../../node_modules/deno/deno");
}

/** The options that name what is baked (configFromArgs). */
const CONFIG_FLAGS = [
  "settings",
  "setting",
  "kms-key-id",
  "region",
  "age-recipient",
  "service-config",
  "callers",
  "gateway-ca",
] as const;

function parseArgs(argv: readonly string[]) {
  const o: Record<string, string[]> = {};
  const flags = new Set(["json", "unconfigured"]);
  const known = new Set([
    "entry",
    "out",
    "blobs",
    "kernel",
    "cmdline-file",
    "init",
    "nsm-ko",
    "rootfs-dir",
    "kms-region",
    "deno-binary",
    "deno-flag",
    ...CONFIG_FLAGS,
    "unconfigured",
    "json",
  ]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = a.match(/^--([a-z-]+)(?:=(.*))?$/);
    if (!m || !known.has(m[1])) throw new Error(`enclave:build: unknown argument ${a}`);
    const value = flags.has(m[1]) ? "true" : m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`enclave:build: --${m[1]} needs a value`);
    (o[m[1]] ??= []).push(value);
  }
  return o;
}

/**
 * The configuration the command line names (module doc), validated.
 * @throws {EnclaveConfigError} a missing or refused part.
 */
export async function configFromArgs(
  a: Record<string, string[]>,
): Promise<EnclaveConfig | undefined> {
  const one = (k: string) => a[k]?.at(-1);
  if (a.unconfigured) {
    const given = CONFIG_FLAGS.filter((k) => a[k]);
    if (given.length) {
      throw new EnclaveConfigError(`enclave:build: --unconfigured with --${given.join(", --")}`);
    }
    return undefined;
  }
  const readAt = (flag: string, p: string) => {
    try {
      return new Uint8Array(readFileSync(p));
    } catch (e) {
      throw new EnclaveConfigError(`enclave:build: --${flag} ${p}: ${(e as Error).message}`);
    }
  };
  const read = (flag: string) => {
    const p = one(flag);
    if (!p) {
      throw new EnclaveConfigError(
        `enclave:build: --${flag} FILE is required (the image must hold what the boot program ` +
          `reads; --unconfigured builds an image that cannot boot)`,
      );
    }
    return readAt(flag, p);
  };
  const settings: Record<string, string> = {};
  for (const f of a.settings ?? []) {
    Object.assign(settings, parseSettingsFile(new TextDecoder().decode(readAt("settings", f))));
  }
  for (const kv of a.setting ?? []) {
    const i = kv.indexOf("=");
    if (i <= 0) throw new EnclaveConfigError(`enclave:build: --setting ${kv}: expected NAME=VALUE`);
    settings[variableName(kv.slice(0, i))] = kv.slice(i + 1);
  }
  for (const f of ["kms-key-id", "region", "age-recipient"]) {
    if (one(f) !== undefined) settings[variableName(f)] = one(f)!;
  }
  const ca = one("gateway-ca");
  return await prepareEnclaveConfig({
    settings,
    serviceConfig: read("service-config"),
    callers: read("callers"),
    ...(ca === undefined ? {} : { gatewayCa: readAt("gateway-ca", ca) }),
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const a = parseArgs(argv);
  const one = (k: string) => a[k]?.at(-1);
  const config = await configFromArgs(a);
  const anyBlob = ["blobs", "kernel", "cmdline-file", "init", "nsm-ko"].some((k) => a[k]);
  const blobs = anyBlob
    ? readBlobs({
      dir: one("blobs"),
      kernel: one("kernel"),
      cmdline: one("cmdline-file"),
      init: one("init"),
      nsmKo: one("nsm-ko"),
    })
    : placeholderBlobs();
  const out = one("out") ?? "dist/enclave/wallet-mpc.eif";
  const started = performance.now();
  const r = buildEnclaveImage({
    entry: one("entry") ?? "enclave/boot.ts",
    blobs,
    denoBinary: one("deno-binary") ?? defaultDenoBinary(),
    ...(a["deno-flag"] ? { denoFlags: a["deno-flag"] } : {}),
    kmsRegions: a["kms-region"] ?? [],
    ...(one("rootfs-dir") ? { rootfsDir: one("rootfs-dir") } : {}),
    ...(config ? { config } : {}),
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, r.eif);
  const summary = {
    eif: out,
    sha384: createHash("sha384").update(r.eif).digest("hex"),
    PCR0: r.pcrs.pcr0,
    PCR1: r.pcrs.pcr1,
    PCR2: r.pcrs.pcr2,
    sizes: r.sizes,
    placeholderBlobs: r.placeholder,
    baked: config ? { ...config.summary, env: config.env } : null,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  };
  writeFileSync(out.replace(/\.eif$/, "") + ".pcrs.json", JSON.stringify(summary, null, 2) + "\n");
  if (a.json) {
    console.log(JSON.stringify(summary));
    return;
  }
  if (!config) {
    console.error(
      "WARNING: --unconfigured: no boot settings, service configuration or callers file in this\n" +
        "image: it cannot boot (the boot program exits at its settings step).",
    );
  }
  if (r.placeholder) {
    console.error(
      "WARNING: PLACEHOLDER kernel/cmdline/init/nsm.ko (no --blobs): this EIF does NOT boot. PCR0 and PCR1\n" +
        "are those of the placeholder image; PCR2 (the root filesystem) is the real one for this build.\n" +
        "On an AWS host: deno task enclave:build --blobs /usr/share/nitro_enclaves/blobs",
    );
  }
  console.log(`EIF  ${out} (${r.sizes.eif} bytes, ${summary.seconds} s)`);
  console.log(`PCR0 ${r.pcrs.pcr0}`);
  console.log(`PCR1 ${r.pcrs.pcr1}`);
  console.log(`PCR2 ${r.pcrs.pcr2}`);
  if (config) {
    console.log(
      `baked (measured in PCR0 and PCR2): ${
        config.env.join(" ")
      }; ${config.summary.serviceConfig} ` +
        `(gateway ${config.summary.gatewayUrl}); ${config.summary.callersFile} ` +
        `(${config.summary.callers} callers)` +
        (config.summary.gatewayCa.length
          ? `; gateway CA ${config.summary.gatewayCa.join(" | ")}`
          : ""),
    );
  }
}

if (import.meta.main) {
  const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? [];
  try {
    await main(argv);
  } catch (e) {
    console.error(String((e as Error).message ?? e));
    (globalThis as { Deno?: { exit(c: number): never } }).Deno?.exit(1);
  }
}
