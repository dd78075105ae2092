import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { bytesToHex as hex, concatBytes } from "@noble/hashes/utils.js";
import {
  computePcrs,
  crc32,
  EIF_HEADER_BYTES,
  type EifInput,
  eifMetadata,
  measureEif,
  readEif,
  SECTION,
  writeEif,
} from "./eif.ts";

const bytes = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const INPUT: EifInput = {
  kernel: bytes(5000, 1),
  cmdline: "reboot=k panic=30 console=ttyS0",
  ramdisks: [bytes(700, 2), bytes(9000, 3)],
  metadata: eifMetadata({
    imageName: "t",
    imageVersion: "1",
    buildTime: "1970-01-01T00:00:00.000Z",
    buildTool: "test",
    buildToolVersion: "1",
    kernelVersion: "x",
  }),
};

/** SHA-384 with the openssl CLI: an implementation independent of the one under test. */
function opensslSha384(data: Uint8Array): Uint8Array {
  const r = spawnSync("openssl", ["dgst", "-sha384", "-binary"], { input: data });
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return new Uint8Array(r.stdout);
}
const concat = concatBytes;
const extendWithOpenssl = (...parts: Uint8Array[]) =>
  hex(opensslSha384(concat(new Uint8Array(48), opensslSha384(concat(...parts)))));

test("crc32 is CRC-32/ISO-HDLC (check value of '123456789') and resumable", () => {
  const data = new TextEncoder().encode("123456789");
  assert.equal(crc32(data), 0xcbf43926);
  assert.equal(crc32(data.subarray(4), crc32(data.subarray(0, 4))), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test("PCR0/1/2 equal SHA-384(48 zero bytes || SHA-384(sections)) computed with openssl", () => {
  const cmd = new TextEncoder().encode(INPUT.cmdline);
  const [boot, customer] = INPUT.ramdisks;
  const pcrs = computePcrs(INPUT.kernel, cmd, INPUT.ramdisks);
  assert.equal(pcrs.pcr0, extendWithOpenssl(INPUT.kernel, cmd, boot, customer));
  assert.equal(pcrs.pcr1, extendWithOpenssl(INPUT.kernel, cmd, boot));
  assert.equal(pcrs.pcr2, extendWithOpenssl(customer));
  assert.equal(pcrs.pcr0.length, 96);
});

test("the EIF v4 layout: header fields, section order and sizes, CRC over all but itself", () => {
  const { eif, pcrs } = writeEif(INPUT);
  const v = new DataView(eif.buffer, eif.byteOffset);
  assert.equal(new TextDecoder().decode(eif.subarray(0, 4)), ".eif");
  assert.equal(v.getUint16(4), 4); // version
  assert.equal(v.getUint16(6), 0); // flags: x86_64
  assert.equal(v.getBigUint64(8), 1n << 30n); // default memory
  assert.equal(v.getBigUint64(16), 2n); // default CPUs
  assert.equal(v.getUint16(24), 0); // reserved
  assert.equal(v.getUint16(26), 5); // kernel, cmdline, metadata, 2 ramdisks
  assert.equal(v.getUint32(540), 0); // unused
  const expected: [number, Uint8Array][] = [
    [SECTION.kernel, INPUT.kernel],
    [SECTION.cmdline, new TextEncoder().encode(INPUT.cmdline)],
    [SECTION.metadata, INPUT.metadata],
    [SECTION.ramdisk, INPUT.ramdisks[0]],
    [SECTION.ramdisk, INPUT.ramdisks[1]],
  ];
  let at = EIF_HEADER_BYTES;
  expected.forEach(([type, data], i) => {
    assert.equal(Number(v.getBigUint64(28 + 8 * i)), at, `offset of section ${i}`);
    assert.equal(Number(v.getBigUint64(28 + 256 + 8 * i)), data.length, `size of section ${i}`);
    assert.equal(v.getUint16(at), type);
    assert.equal(v.getUint16(at + 2), 0);
    assert.equal(Number(v.getBigUint64(at + 4)), data.length);
    assert.deepEqual(eif.subarray(at + 12, at + 12 + data.length), data);
    at += 12 + data.length;
  });
  for (let i = 5; i < 32; i++) assert.equal(v.getBigUint64(28 + 8 * i), 0n);
  assert.equal(at, eif.length);
  assert.equal(v.getUint32(544), crc32(concat(eif.subarray(0, 544), eif.subarray(548))));
  // Read back: same sections, same PCRs.
  const image = readEif(eif);
  assert.equal(image.sections.length, 5);
  assert.deepEqual(measureEif(image), pcrs);
  assert.deepEqual(
    JSON.parse(new TextDecoder().decode(image.sections[2].data)).BuildMetadata.OperatingSystem,
    "linux",
  );
});

test("images are deterministic, and a changed byte changes exactly the PCRs that measure it", () => {
  const base = writeEif(INPUT);
  assert.deepEqual(writeEif(INPUT).eif, base.eif);
  const flip = (b: Uint8Array, i: number) => {
    const c = b.slice();
    c[i] ^= 1;
    return c;
  };
  const kernel = writeEif({ ...INPUT, kernel: flip(INPUT.kernel, 4999) }).pcrs;
  assert.notEqual(kernel.pcr0, base.pcrs.pcr0);
  assert.notEqual(kernel.pcr1, base.pcrs.pcr1);
  assert.equal(kernel.pcr2, base.pcrs.pcr2);
  const cmdline = writeEif({ ...INPUT, cmdline: INPUT.cmdline + " " }).pcrs;
  assert.notEqual(cmdline.pcr0, base.pcrs.pcr0);
  assert.notEqual(cmdline.pcr1, base.pcrs.pcr1);
  assert.equal(cmdline.pcr2, base.pcrs.pcr2);
  const customer =
    writeEif({ ...INPUT, ramdisks: [INPUT.ramdisks[0], flip(INPUT.ramdisks[1], 0)] }).pcrs;
  assert.notEqual(customer.pcr0, base.pcrs.pcr0);
  assert.equal(customer.pcr1, base.pcrs.pcr1);
  assert.notEqual(customer.pcr2, base.pcrs.pcr2);
  const boot =
    writeEif({ ...INPUT, ramdisks: [flip(INPUT.ramdisks[0], 9), INPUT.ramdisks[1]] }).pcrs;
  assert.notEqual(boot.pcr0, base.pcrs.pcr0);
  assert.notEqual(boot.pcr1, base.pcrs.pcr1);
  assert.equal(boot.pcr2, base.pcrs.pcr2);
  // The metadata is not measured, but is covered by the CRC.
  const meta = writeEif({ ...INPUT, metadata: new TextEncoder().encode("{}") });
  assert.deepEqual(meta.pcrs, base.pcrs);
  assert.notEqual(
    new DataView(meta.eif.buffer).getUint32(544),
    new DataView(base.eif.buffer).getUint32(544),
  );
});

test("readEif refuses a flipped byte (CRC), truncation, bad magic, version, and section tables", () => {
  const { eif } = writeEif(INPUT);
  const edit = (f: (c: Uint8Array, v: DataView) => void) => {
    const c = eif.slice();
    f(c, new DataView(c.buffer));
    return c;
  };
  // A changed byte anywhere is caught by the CRC.
  const corrupted: [string, Uint8Array][] = [
    ["a ramdisk byte", edit((c) => (c[c.length - 10] ^= 1))],
    ["a kernel byte", edit((c) => (c[EIF_HEADER_BYTES + 12] ^= 0x80))],
    ["the CRC", edit((c) => (c[546] ^= 1))],
    ["a header byte", edit((c) => (c[20] ^= 1))],
  ];
  for (const [what, bad] of corrupted) assert.throws(() => readEif(bad), /CRC32/, what);
  // Structural faults, with the CRC recomputed so that the later checks are the ones reached.
  const broken: [string, Uint8Array][] = [
    ["truncated", eif.subarray(0, eif.length - 1)],
    ["header only", eif.subarray(0, 300)],
    ["bad magic", recrc(edit((c) => (c[0] = 0x2f)))],
    ["version 3", recrc(edit((_, v) => v.setUint16(4, 3)))],
    ["no sections", recrc(edit((_, v) => v.setUint16(26, 0)))],
    ["33 sections", recrc(edit((_, v) => v.setUint16(26, 33)))],
    ["trailing byte", recrc(concat(eif, Uint8Array.of(0)))],
  ];
  for (const [what, bad] of broken) assert.throws(() => readEif(bad), SyntaxError, what);
  // Section offsets and sizes that disagree with the file, CRC kept right.
  assert.throws(() => readEif(recrc(edit((_, v) => v.setBigUint64(28, 549n)))), /out of place/);
  assert.throws(() => readEif(recrc(edit((_, v) => v.setBigUint64(28 + 256, 4999n)))), SyntaxError);
  assert.throws(
    () => readEif(recrc(edit((_, v) => v.setBigUint64(EIF_HEADER_BYTES + 4, 4999n)))),
    /size differs/,
  );
});

function recrc(eif: Uint8Array): Uint8Array {
  if (eif.length < EIF_HEADER_BYTES) return eif;
  const c = eif.slice();
  new DataView(c.buffer).setUint32(544, crc32(concat(c.subarray(0, 544), c.subarray(548))));
  return c;
}

test("writeEif refuses no ramdisk, too many sections, a NUL in the command line", () => {
  assert.throws(() => writeEif({ ...INPUT, ramdisks: [] }), RangeError);
  assert.throws(
    () => writeEif({ ...INPUT, ramdisks: Array(30).fill(new Uint8Array(1)) }),
    RangeError,
  );
  assert.throws(() => writeEif({ ...INPUT, cmdline: "a\0b" }), RangeError);
});
