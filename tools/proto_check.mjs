// Regenerates proto/gen/ into a temporary directory and fails when it differs from the
// committed files: generated code must never be edited by hand or left stale.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), "proto-check-"));
const template = JSON.stringify({
  version: "v2",
  inputs: [{ directory: join(root, "proto") }],
  plugins: [{
    local: join(root, "node_modules/.bin/protoc-gen-es"),
    out,
    include_imports: false,
    opt: ["target=ts", "import_extension=ts"],
  }],
});
try {
  execFileSync(join(root, "node_modules/.bin/buf"), ["generate", "--template", template], {
    cwd: root,
    stdio: "inherit",
  });
  const list = (dir) =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? list(p) : [p];
    });
  const fresh = new Map(list(out).map((p) => [relative(out, p), readFileSync(p, "utf8")]));
  const committedDir = join(root, "proto/gen");
  const committed = new Map(
    list(committedDir).map((p) => [relative(committedDir, p), readFileSync(p, "utf8")]),
  );
  const stale = [...new Set([...fresh.keys(), ...committed.keys()])]
    .filter((f) => fresh.get(f) !== committed.get(f));
  if (stale.length > 0) {
    console.error(`proto/gen is stale (run \`deno task proto\`): ${stale.join(", ")}`);
    process.exit(1);
  }
  console.log(`proto/gen is up to date (${fresh.size} file(s))`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
