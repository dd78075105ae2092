// Builds the npm package (`npm pack` runs it as `prepack`): every file the package.json
// `exports` map names, and what they import, compiled by tsc to ESM JavaScript with .d.ts
// declarations and source maps (sources inlined) under dist/lib/, the layout of the sources.
// The entry list is read from the exports map itself (./dist/lib/x/y.js <- x/y.ts), so the map is
// the one place that says what the package is. Type checking is `deno task check`'s job; tsc
// runs with noCheck here and only emits. Relative `.ts` specifiers become `.js` in the
// JavaScript (rewriteRelativeImportExtensions) and here in the declarations too.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = "dist/lib";
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

/** Every path an exports entry can resolve to, over all its conditions. */
function targets(entry) {
  if (typeof entry === "string") return [entry];
  return Object.values(entry).flatMap(targets);
}

const sources = new Set();
for (const [subpath, entry] of Object.entries(pkg.exports)) {
  if (subpath === "./package.json") continue;
  for (const t of targets(entry)) {
    const m = new RegExp(`^\\./${OUT}/(.+)\\.(d\\.ts|js)$`).exec(t);
    if (!m) throw new Error(`exports ${subpath}: ${t} is not under ./${OUT}/`);
    const src = `${m[1]}.ts`;
    if (!existsSync(join(ROOT, src))) throw new Error(`exports ${subpath}: no source ${src}`);
    sources.add(src);
  }
}

rmSync(join(ROOT, OUT), { recursive: true, force: true });
mkdirSync(join(ROOT, OUT), { recursive: true });
const tsconfig = join(ROOT, OUT, "tsconfig.build.json");
writeFileSync(
  tsconfig,
  JSON.stringify(
    {
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        rewriteRelativeImportExtensions: true,
        declaration: true,
        declarationMap: true,
        sourceMap: true,
        inlineSources: true,
        noCheck: true,
        strict: true,
        skipLibCheck: true,
        isolatedModules: true,
        verbatimModuleSyntax: true,
        lib: ["ES2022", "DOM"],
        types: ["node"],
        typeRoots: [join(ROOT, "node_modules/@types")],
        rootDir: ROOT,
        outDir: join(ROOT, OUT),
      },
      files: [...sources].sort().map((s) => join(ROOT, s)),
    },
    null,
    2,
  ),
);
const tsc = spawnSync(process.execPath, [
  join(ROOT, "node_modules/typescript/bin/tsc"),
  "-p",
  tsconfig,
], {
  cwd: ROOT,
  stdio: "inherit",
});
rmSync(tsconfig);
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

// Declarations keep the sources' `.ts` specifiers; consumers' TypeScript resolves `.js`.
let files = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".d.ts")) {
      const text = readFileSync(path, "utf8");
      const fixed = text.replace(
        /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']*?)\.ts(["'])/g,
        "$1$2.js$3",
      );
      if (fixed !== text) writeFileSync(path, fixed);
      files++;
    }
  }
}
walk(join(ROOT, OUT));
for (const entry of Object.values(pkg.exports)) {
  for (const t of targets(entry)) {
    if (!existsSync(join(ROOT, t))) throw new Error(`built package lacks ${t}`);
  }
}
console.error(
  `build_package: ${sources.size} entries, ${files} modules in ${relative(ROOT, join(ROOT, OUT))}/`,
);
