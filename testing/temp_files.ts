/**
 * Temporary directories and file reads for tests that run commands on real files.
 *
 * @example
 * ```ts
 * import { bytesOf, withDir } from "./temp_files.ts";
 * await withDir(async (dir) => console.assert((await bytesOf(`${dir}/none`)) === null));
 * ```
 * @module
 */
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Runs `f` in a fresh temporary directory, removed afterwards (also when `f` throws).
 *
 * @param f what to run, given the directory's path.
 * @param prefix the directory name's prefix.
 */
export async function withDir(
  f: (dir: string) => Promise<void>,
  prefix = "wallet-mpc-test-",
): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), prefix));
  try {
    await f(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/**
 * The bytes of a file, or null when nothing readable is there.
 *
 * @param path the file.
 * @returns its bytes, or null.
 */
export async function bytesOf(path: string): Promise<Uint8Array | null> {
  try {
    return new Uint8Array(await fsp.readFile(path));
  } catch {
    return null;
  }
}
