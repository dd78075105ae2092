import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { completeTree, type CpioEntry, readCpio, writeCpio } from "./cpio.ts";

const text = (s: string) => new TextEncoder().encode(s);
const ENTRIES: CpioEntry[] = [
  { type: "file", path: "rootfs/bin/deno", mode: 0o755, data: text("#!deno\n") },
  { type: "file", path: "cmd", mode: 0o644, data: text("/bin/deno\nrun\n") },
  { type: "symlink", path: "rootfs/lib64", target: "lib" },
  {
    type: "file",
    path: "rootfs/lib/x86_64-linux-gnu/libc.so.6",
    mode: 0o755,
    data: new Uint8Array(4097).fill(7),
  },
  { type: "dir", path: "rootfs/tmp", mode: 0o1777 },
  { type: "file", path: "rootfs/a-b", mode: 0o600, data: new Uint8Array(0) },
];

test("newc archive: parents first, sorted, inode order, owner 0, mtime 0, 4-byte alignment", () => {
  const archive = writeCpio(ENTRIES);
  const back = readCpio(archive);
  assert.deepEqual(back.map((e) => e.path), [
    "cmd",
    "rootfs",
    "rootfs/a-b",
    "rootfs/bin",
    "rootfs/bin/deno",
    "rootfs/lib",
    "rootfs/lib/x86_64-linux-gnu",
    "rootfs/lib/x86_64-linux-gnu/libc.so.6",
    "rootfs/lib64",
    "rootfs/tmp",
  ]);
  back.forEach((e, i) => {
    assert.equal(e.ino, i + 1);
    assert.equal(e.mtime, 0);
    assert.equal(e.uid, 0);
  });
  const libc = back.find((e) => e.path.endsWith("libc.so.6"));
  assert.ok(libc?.type === "file" && libc.data.length === 4097 && libc.mode === 0o755);
  assert.deepEqual(back.find((e) => e.path === "rootfs/tmp"), {
    path: "rootfs/tmp",
    ino: 10,
    mtime: 0,
    uid: 0,
    type: "dir",
    mode: 0o1777,
  });
  assert.equal(archive.length % 4, 0);
  assert.equal(
    new TextDecoder().decode(archive.subarray(archive.length - 12, archive.length - 2)).includes(
      "!!!",
    ),
    true,
  );
});

test("the same members in any order give the same bytes", () => {
  const a = writeCpio(ENTRIES);
  assert.deepEqual(writeCpio([...ENTRIES].reverse()), a);
  assert.deepEqual(writeCpio([...ENTRIES.slice(3), ...ENTRIES.slice(0, 3)]), a);
});

test("bad paths, duplicates and files under files are refused", () => {
  const f = (path: string): CpioEntry => ({
    type: "file",
    path,
    mode: 0o644,
    data: new Uint8Array(0),
  });
  for (const p of ["", "/abs", "a//b", "a/../b", "./a", "a/", ".."]) {
    assert.throws(() => completeTree([f(p)]), RangeError, p);
  }
  assert.throws(() => completeTree([f("a"), f("a")]), RangeError);
  assert.throws(() => completeTree([f("a"), f("a/b")]), RangeError);
  assert.throws(() => readCpio(text("070702" + "0".repeat(104))), SyntaxError);
  assert.throws(() => readCpio(writeCpio(ENTRIES).subarray(0, 200)), SyntaxError);
});

test("GNU cpio extracts the archive to the same tree (when cpio is installed)", (t) => {
  const which = spawnSync("cpio", ["--version"]);
  if (which.error) {
    console.warn(
      "SKIP: GNU cpio is not installed (apt-get install cpio): the independent extraction check did not run",
    );
    t.skip("cpio not installed");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "cpio-test-"));
  try {
    const r = spawnSync("cpio", ["-idm", "--quiet", "--no-absolute-filenames"], {
      cwd: dir,
      input: writeCpio(ENTRIES),
    });
    assert.equal(r.status, 0, r.stderr?.toString());
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, "rootfs/bin/deno"))), text("#!deno\n"));
    assert.equal(statSync(join(dir, "rootfs/bin/deno")).mode & 0o7777, 0o755);
    assert.equal(statSync(join(dir, "rootfs/lib/x86_64-linux-gnu/libc.so.6")).size, 4097);
    assert.equal(readlinkSync(join(dir, "rootfs/lib64")), "lib");
    assert.equal(statSync(join(dir, "rootfs/bin/deno")).mtimeMs, 0);
    assert.ok(statSync(join(dir, "rootfs/tmp")).isDirectory());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
