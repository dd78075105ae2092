/**
 * Enclave Image Format (EIF) version 4: writer, reader and PCR0/1/2, as
 * aws-nitro-enclaves-image-format defines them (src/defs/mod.rs: header and section header,
 * big-endian; src/utils/mod.rs: section order, CRC, measurements; src/defs/eif_hasher.rs).
 *
 * Layout: a 548-byte header (magic ".eif", version 4, flags, default memory and CPUs, the number
 * of sections, 32 section offsets and 32 section sizes, an unused word, the CRC32), then the
 * sections kernel, cmdline, metadata, ramdisk... each behind a 12-byte section header (type,
 * flags, data size). The CRC32 (IEEE, as zlib) covers every byte of the file except the CRC
 * field itself.
 *
 * Measurements (SHA-384, no block cache): PCR0 = extend(kernel ‖ cmdline ‖ every ramdisk),
 * PCR1 = extend(kernel ‖ cmdline ‖ first ramdisk), PCR2 = extend(the other ramdisks), where
 * extend(x) = SHA-384(48 zero bytes ‖ SHA-384(x)). The metadata section is not measured.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { crc32 as zlibCrc32 } from "node:zlib";

export const EIF_MAGIC = Uint8Array.of(0x2e, 0x65, 0x69, 0x66); // ".eif"
export const EIF_VERSION = 4;
export const EIF_HEADER_BYTES = 548;
export const EIF_SECTION_HEADER_BYTES = 12;
const MAX_SECTIONS = 32;
/** Section types (EifSectionType). */
export const SECTION = { kernel: 1, cmdline: 2, ramdisk: 3, signature: 4, metadata: 5 } as const;
/** Header flag bit: aarch64 image (cleared for x86_64). */
export const EIF_ARCH_ARM64 = 0x1;

/** PCR values, lowercase hex. */
export interface Pcrs {
  pcr0: string;
  pcr1: string;
  pcr2: string;
}

/** What goes into an image. */
export interface EifInput {
  kernel: Uint8Array;
  /** Kernel command line (written without a terminating NUL). */
  cmdline: string;
  /** Bootstrap ramdisk first (init, nsm.ko), then the customer ramdisk(s). */
  ramdisks: readonly Uint8Array[];
  /** The metadata section (JSON), not measured. */
  metadata: Uint8Array;
  flags?: number;
  /** Default enclave memory in bytes (nitro-cli writes 1 GiB). */
  defaultMem?: number;
  defaultCpus?: number;
}

/** One section read back from an image. */
export interface EifSection {
  type: number;
  flags: number;
  /** Offset of the section header in the file. */
  offset: number;
  data: Uint8Array;
}

/** An image read back and checked. */
export interface EifImage {
  version: number;
  flags: number;
  defaultMem: bigint;
  defaultCpus: bigint;
  sections: EifSection[];
  crc32: number;
}

/**
 * CRC-32/ISO-HDLC (the zlib CRC that crc::CRC_32_ISO_HDLC computes), resumable.
 * @param data bytes to add
 * @param crc the CRC of what came before (0 to start)
 * @returns the CRC of everything so far
 */
export function crc32(data: Uint8Array, crc = 0): number {
  return zlibCrc32(data, crc) >>> 0;
}

/** SHA-384(48 zero bytes ‖ SHA-384(parts...)) (EifHasher::tpm_extend_finalize_reset). */
function extend(parts: readonly Uint8Array[]): string {
  const inner = createHash("sha384");
  for (const p of parts) inner.update(p);
  return createHash("sha384").update(new Uint8Array(48)).update(inner.digest()).digest("hex");
}

/**
 * The PCRs an image of these sections yields.
 * @param kernel the kernel section
 * @param cmdline the command line bytes
 * @param ramdisks bootstrap ramdisk first
 * @returns PCR0, PCR1, PCR2 (hex)
 */
export function computePcrs(
  kernel: Uint8Array,
  cmdline: Uint8Array,
  ramdisks: readonly Uint8Array[],
): Pcrs {
  if (ramdisks.length < 1) throw new RangeError("eif: at least one ramdisk (the bootstrap one)");
  return {
    pcr0: extend([kernel, cmdline, ...ramdisks]),
    pcr1: extend([kernel, cmdline, ramdisks[0]]),
    pcr2: extend(ramdisks.slice(1)),
  };
}

function sectionHeader(type: number, size: number): Uint8Array {
  const h = new Uint8Array(EIF_SECTION_HEADER_BYTES);
  const v = new DataView(h.buffer);
  v.setUint16(0, type);
  v.setUint16(2, 0);
  v.setBigUint64(4, BigInt(size));
  return h;
}

/**
 * Writes an EIF v4 image.
 * @param input kernel, cmdline, ramdisks, metadata and header defaults
 * @returns the image and its PCRs
 * @throws {RangeError} no ramdisk, or more sections than the format holds
 */
export function writeEif(input: EifInput): { eif: Uint8Array; pcrs: Pcrs } {
  const cmdline = new TextEncoder().encode(input.cmdline);
  if (cmdline.includes(0)) throw new RangeError("eif: the command line contains a NUL byte");
  const sections: [number, Uint8Array][] = [
    [SECTION.kernel, input.kernel],
    [SECTION.cmdline, cmdline],
    [SECTION.metadata, input.metadata],
    ...input.ramdisks.map((r) => [SECTION.ramdisk, r] as [number, Uint8Array]),
  ];
  if (input.ramdisks.length < 1 || sections.length > MAX_SECTIONS) {
    throw new RangeError(
      `eif: expected 1..${MAX_SECTIONS - 3} ramdisks, got ${input.ramdisks.length}`,
    );
  }
  const total = EIF_HEADER_BYTES +
    sections.reduce((s, [, d]) => s + EIF_SECTION_HEADER_BYTES + d.length, 0);
  const out = new Uint8Array(total);
  const hv = new DataView(out.buffer, 0, EIF_HEADER_BYTES);
  out.set(EIF_MAGIC, 0);
  hv.setUint16(4, EIF_VERSION);
  hv.setUint16(6, input.flags ?? 0);
  hv.setBigUint64(8, BigInt(input.defaultMem ?? 1024 * 1024 * 1024));
  hv.setBigUint64(16, BigInt(input.defaultCpus ?? 2));
  hv.setUint16(24, 0); // reserved
  hv.setUint16(26, sections.length);
  let at = EIF_HEADER_BYTES;
  sections.forEach(([type, data], i) => {
    hv.setBigUint64(28 + 8 * i, BigInt(at)); // section_offsets[i]
    hv.setBigUint64(28 + 8 * MAX_SECTIONS + 8 * i, BigInt(data.length)); // section_sizes[i]
    out.set(sectionHeader(type, data.length), at);
    out.set(data, at + EIF_SECTION_HEADER_BYTES);
    at += EIF_SECTION_HEADER_BYTES + data.length;
  });
  // unused u32 at 540 stays 0; the CRC at 544 covers everything but itself.
  const crc = crc32(out.subarray(EIF_HEADER_BYTES), crc32(out.subarray(0, EIF_HEADER_BYTES - 4)));
  hv.setUint32(EIF_HEADER_BYTES - 4, crc);
  return { eif: out, pcrs: computePcrs(input.kernel, cmdline, input.ramdisks) };
}

/**
 * Reads an EIF image back, checking magic, version, the section table and the CRC.
 * @param eif the image
 * @returns header fields and sections in file order
 * @throws {SyntaxError} not an EIF v4 image, inconsistent sections, or a CRC mismatch
 */
export function readEif(eif: Uint8Array): EifImage {
  const bad = (m: string): never => {
    throw new SyntaxError(`eif: ${m}`);
  };
  if (eif.length < EIF_HEADER_BYTES) bad("shorter than a header");
  if (!EIF_MAGIC.every((b, i) => eif[i] === b)) bad("bad magic");
  const hv = new DataView(eif.buffer, eif.byteOffset, EIF_HEADER_BYTES);
  const version = hv.getUint16(4);
  if (version !== EIF_VERSION) bad(`version ${version}, expected ${EIF_VERSION}`);
  const count = hv.getUint16(26);
  if (count < 1 || count > MAX_SECTIONS) bad(`${count} sections`);
  const stored = hv.getUint32(EIF_HEADER_BYTES - 4);
  const crc = crc32(eif.subarray(EIF_HEADER_BYTES), crc32(eif.subarray(0, EIF_HEADER_BYTES - 4)));
  if (crc !== stored) {
    bad(`CRC32 ${crc.toString(16)} differs from the header's ${stored.toString(16)}`);
  }
  const sections: EifSection[] = [];
  let expect = EIF_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const offset = Number(hv.getBigUint64(28 + 8 * i));
    const size = Number(hv.getBigUint64(28 + 8 * MAX_SECTIONS + 8 * i));
    if (offset !== expect || offset + EIF_SECTION_HEADER_BYTES + size > eif.length) {
      bad(`section ${i} at ${offset} (+${size}) out of place`);
    }
    const sv = new DataView(eif.buffer, eif.byteOffset + offset, EIF_SECTION_HEADER_BYTES);
    if (Number(sv.getBigUint64(4)) !== size) bad(`section ${i}: size differs from the header`);
    const data = eif.subarray(
      offset + EIF_SECTION_HEADER_BYTES,
      offset + EIF_SECTION_HEADER_BYTES + size,
    );
    sections.push({ type: sv.getUint16(0), flags: sv.getUint16(2), offset, data });
    expect = offset + EIF_SECTION_HEADER_BYTES + size;
  }
  if (expect !== eif.length) bad("bytes after the last section");
  return {
    version,
    flags: hv.getUint16(6),
    defaultMem: hv.getBigUint64(8),
    defaultCpus: hv.getBigUint64(16),
    sections,
    crc32: stored,
  };
}

/**
 * The PCRs of an image read back (what `nitro-cli describe-eif` reports for an unsigned image).
 * @param image from {@linkcode readEif}
 * @returns PCR0, PCR1, PCR2 (hex)
 */
export function measureEif(image: EifImage): Pcrs {
  const of = (t: number) => image.sections.filter((s) => s.type === t).map((s) => s.data);
  const [kernel] = of(SECTION.kernel);
  const [cmdline] = of(SECTION.cmdline);
  if (!kernel || !cmdline) throw new SyntaxError("eif: no kernel or cmdline section");
  return computePcrs(kernel, cmdline, of(SECTION.ramdisk));
}

/** The metadata section's JSON (EifIdentityInfo; serde field names and order). */
export function eifMetadata(info: {
  imageName: string;
  imageVersion: string;
  buildTime: string;
  buildTool: string;
  buildToolVersion: string;
  kernelVersion: string;
  custom?: unknown;
}): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    ImageName: info.imageName,
    ImageVersion: info.imageVersion,
    BuildMetadata: {
      BuildTime: info.buildTime,
      BuildTool: info.buildTool,
      BuildToolVersion: info.buildToolVersion,
      OperatingSystem: "linux",
      KernelVersion: info.kernelVersion,
    },
    DockerInfo: {},
    CustomMetadata: info.custom ?? null,
  }));
}
