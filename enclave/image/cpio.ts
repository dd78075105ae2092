/**
 * A reproducible cpio archive in the "newc" format the Linux kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst): entries sorted by path with every
 * parent directory before its children, inode numbers from 1 in that order, owner 0:0, mtime 0,
 * one link each, no device numbers. The same entries always give the same bytes.
 * @module
 */

/** One archive member; `path` is relative ("rootfs/bin/deno"), no leading slash, no "..". */
export type CpioEntry =
  | { type: "file"; path: string; mode: number; data: Uint8Array }
  | { type: "dir"; path: string; mode: number }
  | { type: "symlink"; path: string; target: string };

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function checkPath(path: string): void {
  const parts = path.split("/");
  if (
    path === "" || path.startsWith("/") || parts.some((p) => p === "" || p === "." || p === "..")
  ) {
    throw new RangeError(`cpio: bad path ${JSON.stringify(path)}`);
  }
}

/**
 * The entries with their missing parent directories (mode 0755) added, sorted by path bytes
 * (a parent is a prefix of its children, so it sorts first). Duplicate paths are refused.
 * @param entries the members
 * @returns the complete, sorted list
 * @throws {RangeError} a bad or duplicate path, or a file under a non-directory
 */
export function completeTree(entries: readonly CpioEntry[]): CpioEntry[] {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    checkPath(e.path);
    if (byPath.has(e.path)) throw new RangeError(`cpio: ${e.path} appears twice`);
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    const parts = e.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      const have = byPath.get(dir);
      if (have === undefined) byPath.set(dir, { type: "dir", path: dir, mode: 0o755 });
      else if (have.type !== "dir") throw new RangeError(`cpio: ${dir} is not a directory`);
    }
  }
  const enc = new TextEncoder();
  return [...byPath.values()].sort((a, b) => {
    const x = enc.encode(a.path);
    const y = enc.encode(b.path);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
    return x.length - y.length;
  });
}

const hex8 = (n: number) => n.toString(16).padStart(8, "0");
const pad4 = (n: number) => (4 - (n % 4)) % 4;

/**
 * Writes a newc cpio archive of the entries (and their parent directories).
 * @param entries the members
 * @returns the archive, ending with the TRAILER!!! record
 */
export function writeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const records: {
    name: Uint8Array;
    mode: number;
    nlink: number;
    data: Uint8Array;
    ino: number;
  }[] = [];
  completeTree(entries).forEach((e, i) => {
    const name = enc.encode(e.path);
    if (e.type === "file") {
      records.push({ name, mode: S_IFREG | (e.mode & 0o7777), nlink: 1, data: e.data, ino: i + 1 });
    } else if (e.type === "dir") {
      records.push({
        name,
        mode: S_IFDIR | (e.mode & 0o7777),
        nlink: 2,
        data: new Uint8Array(0),
        ino: i + 1,
      });
    } else {
      records.push({
        name,
        mode: S_IFLNK | 0o777,
        nlink: 1,
        data: enc.encode(e.target),
        ino: i + 1,
      });
    }
  });
  records.push({
    name: enc.encode("TRAILER!!!"),
    mode: 0,
    nlink: 1,
    data: new Uint8Array(0),
    ino: 0,
  });
  const size = records.reduce((s, r) => {
    const head = 110 + r.name.length + 1;
    return s + head + pad4(head) + r.data.length + pad4(r.data.length);
  }, 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const r of records) {
    // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
    // rdevminor, namesize (with NUL), check
    const fields = [
      r.ino,
      r.mode,
      0,
      0,
      r.nlink,
      0,
      r.data.length,
      0,
      0,
      0,
      0,
      r.name.length + 1,
      0,
    ];
    out.set(enc.encode("070701" + fields.map(hex8).join("")), at);
    at += 110;
    out.set(r.name, at);
    at += r.name.length + 1; // NUL already zero
    at += pad4(110 + r.name.length + 1);
    out.set(r.data, at);
    at += r.data.length + pad4(r.data.length);
  }
  return out;
}

/**
 * Reads a newc archive back (for tests and inspection).
 * @param bytes the archive
 * @returns its members in order, without the trailer
 * @throws {SyntaxError} not a newc archive
 */
export function readCpio(
  bytes: Uint8Array,
): (CpioEntry & { ino: number; mtime: number; uid: number })[] {
  const dec = new TextDecoder();
  const out: (CpioEntry & { ino: number; mtime: number; uid: number })[] = [];
  let at = 0;
  for (;;) {
    if (at + 110 > bytes.length) throw new SyntaxError("cpio: truncated header");
    const head = dec.decode(bytes.subarray(at, at + 110));
    if (!head.startsWith("070701")) throw new SyntaxError(`cpio: bad magic at ${at}`);
    const f = Array.from({ length: 13 }, (_, i) => parseInt(head.slice(6 + 8 * i, 14 + 8 * i), 16));
    const [ino, mode, uid, , , mtime, filesize, , , , , namesize] = f;
    const name = dec.decode(bytes.subarray(at + 110, at + 110 + namesize - 1));
    at += 110 + namesize + pad4(110 + namesize);
    const data = bytes.subarray(at, at + filesize);
    if (data.length !== filesize) throw new SyntaxError("cpio: truncated data");
    at += filesize + pad4(filesize);
    if (name === "TRAILER!!!") return out;
    const base = { path: name, ino, mtime, uid };
    const kind = mode & 0o170000;
    if (kind === S_IFREG) out.push({ ...base, type: "file", mode: mode & 0o7777, data });
    else if (kind === S_IFDIR) out.push({ ...base, type: "dir", mode: mode & 0o7777 });
    else if (kind === S_IFLNK) out.push({ ...base, type: "symlink", target: dec.decode(data) });
    else throw new SyntaxError(`cpio: unsupported mode ${mode.toString(8)} for ${name}`);
  }
}
