// Runs every *_test.ts file of the repository under Node through tsx (node:test).
// Deno finds the same files by itself; Node 20 has no glob for --test, so this lists them.
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url).pathname;
const skip = new Set(["node_modules", ".git", ".ci"]);
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (skip.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (/_test\.ts$/.test(name)) files.push(relative(root, path));
  }
}
const only = process.argv.slice(2);
if (only.length > 0) files.push(...only);
else walk(root);
files.sort();
const res = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=2", ...files],
  { cwd: root, stdio: "inherit" },
);
process.exit(res.status ?? 1);
