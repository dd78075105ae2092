import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type KeyShareFs, readKeyShareFile, writeKeyShareFileAtomic } from "./keyshare_file.ts";
import { decodeKeyShareFile } from "../core/keyshare.ts";
import { failingFs } from "../testing/failing_fs.ts";
import { InvalidKeyShare } from "../core/errors.ts";

const FIXTURE = new URL("../testing/fixtures/keyshare_v1.json", import.meta.url);
const enc = new TextEncoder();

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "wallet-mpc-keyshare-"));
  try {
    await f(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The directory's entries other than `keep`: stray temp files. */
async function strays(dir: string, keep: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n !== keep);
}

test("keyshare_file writes atomically, reads back the same bytes, leaves no temp file", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.json");
    const bytes = await fsp.readFile(FIXTURE);
    await writeKeyShareFileAtomic(path, bytes);
    assert.deepEqual(new Uint8Array(await readKeyShareFile(path)), new Uint8Array(bytes));
    assert.equal(decodeKeyShareFile(await readKeyShareFile(path)).size, 2);
    assert.deepEqual(await strays(dir, "keys.json"), []);
    if (process.platform !== "win32") {
      assert.equal((await fsp.stat(path)).mode & 0o777, 0o600);
    }
    // Replacing an existing file.
    await writeKeyShareFileAtomic(path, enc.encode("{}\n"));
    assert.equal(await fsp.readFile(path, "utf8"), "{}\n");
    assert.deepEqual(await strays(dir, "keys.json"), []);
  });
});

test("keyshare_file fsyncs the temp file before the rename and the directory after it", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.json");
    const log: string[] = [];
    const name = (p: string) => (p === dir ? "dir" : p === path ? "target" : "tmp");
    const spy: KeyShareFs = {
      unlink: fsp.unlink,
      rename: async (from, to) => {
        log.push(`rename ${name(String(from))} -> ${name(String(to))}`);
        await fsp.rename(from, to);
      },
      open: (async (p: string, flags?: string, mode?: number) => {
        const fh = await fsp.open(p, flags, mode);
        return new Proxy(fh, {
          get(target, prop) {
            const v = Reflect.get(target, prop);
            if (prop === "sync" || prop === "writeFile") log.push(`${String(prop)} ${name(p)}`);
            return typeof v === "function" ? v.bind(target) : v;
          },
        });
      }) as KeyShareFs["open"],
    };
    await writeKeyShareFileAtomic(path, enc.encode("{}\n"), { fs: spy });
    const expected = ["writeFile tmp", "sync tmp", "rename tmp -> target"];
    if (process.platform !== "win32") expected.push("sync dir");
    assert.deepEqual(log, expected);
  });
});

for (const step of ["open-tmp", "write", "sync", "rename"] as const) {
  test(`keyshare_file a crash at "${step}" leaves the old file intact and no temp file`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "keys.json");
      const old = await fsp.readFile(FIXTURE);
      await fsp.writeFile(path, old);
      await assert.rejects(
        writeKeyShareFileAtomic(path, enc.encode('{"new": "contents"}'), { fs: failingFs(step) }),
        /simulated crash/,
      );
      assert.deepEqual(await fsp.readFile(path), old);
      assert.deepEqual(await strays(dir, "keys.json"), []);
      assert.equal(decodeKeyShareFile(await readKeyShareFile(path)).size, 2);
    });
  });
}

test("keyshare_file a crash before the first write leaves no file at all", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "new.json");
    await assert.rejects(
      writeKeyShareFileAtomic(path, enc.encode("{}"), { fs: failingFs("rename") }),
      /simulated crash/,
    );
    assert.deepEqual(await fsp.readdir(dir), []);
  });
});

test("keyshare_file a failed load leaves the file on disk byte-identical", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "keys.json");
    const text = await fsp.readFile(FIXTURE, "utf8");
    const hostile = [
      text.slice(0, text.length >> 1), // truncated
      text.replace('"secp256k1"', '"ed25519"'), // wrong curve
      text.replace('"n": 2', '"n": 3'), // wrong party count
    ];
    for (const contents of hostile) {
      await fsp.writeFile(path, contents);
      const before = await fsp.stat(path);
      await assert.rejects(
        async () => decodeKeyShareFile(await readKeyShareFile(path)),
        InvalidKeyShare,
      );
      assert.equal(await fsp.readFile(path, "utf8"), contents);
      const after = await fsp.stat(path);
      assert.equal(after.mtimeMs, before.mtimeMs);
      assert.equal(after.size, before.size);
      assert.deepEqual(await strays(dir, "keys.json"), []);
    }
  });
});

test("keyshare_file read refuses a file above the cap before reading it; missing file is ENOENT", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "big.json");
    await fsp.writeFile(path, new Uint8Array(2048));
    await assert.rejects(readKeyShareFile(path, { maxBytes: 1024 }), (e: unknown) => {
      assert.ok(e instanceof InvalidKeyShare);
      assert.equal(e.code, "malformed");
      return true;
    });
    await assert.rejects(readKeyShareFile(join(dir, "missing.json")), { code: "ENOENT" });
    await assert.rejects(
      writeKeyShareFileAtomic(join(dir, "x.json"), "text" as unknown as Uint8Array),
      TypeError,
    );
  });
});
