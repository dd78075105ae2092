/**
 * The import rule of README.md ("Layers"), checked on every TypeScript file of the tree: a
 * folder imports only the folders below it, client / service / gateway never import each other,
 * nothing but tests/ imports tests/, and a private `_x.ts` file is imported only from its own
 * top-level folder (fuzz/ excepted: its harnesses drive private decoders). Imports are read with
 * the TypeScript compiler's own pre-processor (`ts.preProcessFile`: static, re-export and dynamic
 * imports; comments and strings are not imports). Doc examples (```ts blocks in JSDoc) are
 * checked too, as code of their file: `deno check --doc` compiles them and JSR publishes them, so
 * an example in core/ that imports testing/ would teach a consumer an import they do not have.
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";
import ts from "typescript";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));
const SKIP = new Set(["node_modules", ".git", ".ci", "dist"]);

/**
 * What each top-level folder (or root file) may import besides itself, bottom up. Library
 * folders first; then the programs that use them; `*_test.ts` files and test helpers inside a
 * library folder may also import the other library folders and testing/ (never tests/).
 */
const LIBRARY: Record<string, readonly string[]> = {
  core: [],
  proto: [],
  platform: ["core"],
  transport: ["core", "platform"],
  keystore: ["core", "platform"],
  session: ["core", "platform", "transport", "keystore"],
  gateway: ["core", "platform"],
  service: ["core", "platform", "proto", "transport", "keystore", "session"],
  client: ["core", "platform", "proto", "transport", "keystore", "session"],
  keygen: ["core", "platform", "keystore", "session", "transport", "client"],
  adapters: ["core", "platform", "proto", "transport", "keystore", "session", "client"],
  "mod.ts": ["core", "client", "transport", "platform", "keystore", "session", "proto"],
  "mod_native.ts": ["mod.ts", "core", "client", "transport", "platform", "keystore", "session"],
};
const LIBRARIES = Object.keys(LIBRARY);
const PROGRAMS: Record<string, readonly string[]> = {
  testing: LIBRARIES,
  tools: [...LIBRARIES, "testing"],
  enclave: [...LIBRARIES, "testing"],
  examples: LIBRARIES,
  fuzz: [...LIBRARIES, "testing"],
  bench: [...LIBRARIES, "testing", "tools"],
  tests: [...LIBRARIES, "testing", "tools", "enclave", "fuzz", "examples"],
};

/**
 * What a folder's doc examples may import besides its own imports: the peer they run against.
 * transport/'s examples open real sessions through an in-process sign-gateway (its handler).
 */
const EXAMPLE_PEERS: Record<string, readonly string[]> = { transport: ["gateway"] };

/** Whether a file is a test or a test helper (may import any library folder and testing/). */
function isTestFile(rel: string): boolean {
  const name = rel.split("/").pop() as string;
  return name.endsWith("_test.ts") || /^_.*test/.test(name);
}

function allowed(from: string, to: string, testFile: boolean): boolean {
  const a = from.split("/")[0];
  const b = to.split("/")[0];
  if (a === b) return true;
  const own = LIBRARY[a] ?? PROGRAMS[a];
  if (own === undefined) return false; // an unknown folder: add it to the table
  if (own.includes(b)) return true;
  return testFile && a in LIBRARY && (b in LIBRARY || b === "testing");
}

/**
 * Whether `from` may import `to` as far as private files go: a `_x.ts` file is imported only
 * from its own top-level folder, except by fuzz/, whose harnesses drive private decoders.
 */
function privateAllowed(from: string, to: string): boolean {
  const name = to.split("/").pop() as string;
  if (!name.startsWith("_")) return true;
  const a = from.split("/")[0];
  return a === to.split("/")[0] || a === "fuzz";
}

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name) || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) tsFiles(path, out);
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The repository-relative targets of a file's relative imports. */
export function importsOf(path: string, source: string): string[] {
  const info = ts.preProcessFile(source, true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((s) => s.startsWith("."))
    .map((s) => relative(ROOT, normalize(join(dirname(path), s))).split(sep).join("/"));
}

/** The repository-relative targets of the relative imports in a file's doc examples. */
export function exampleImportsOf(path: string, source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(/^\s*\*\s?```ts\b[^\n]*\n([\s\S]*?)^\s*\*\s?```/gm)) {
    const code = m[1].split("\n").map((l) => l.replace(/^\s*\*\s?/, "")).join("\n");
    out.push(...importsOf(path, code));
  }
  return out;
}

/** Every import that breaks the rule: "from -> to". */
export function violations(files: readonly string[]): string[] {
  const bad: string[] = [];
  for (const path of files) {
    const rel = relative(ROOT, path).split(sep).join("/");
    const source = readFileSync(path, "utf8");
    const test = isTestFile(rel);
    const top = rel.split("/")[0];
    const found = [
      ...importsOf(path, source).map((to) => [to, ""]),
      // A test file's examples may import what the test may; anyone else's as its code, plus
      // the peer it talks to (EXAMPLE_PEERS).
      ...exampleImportsOf(path, source)
        .filter((to) => !(EXAMPLE_PEERS[top] ?? []).includes(to.split("/")[0]))
        .map((to) => [to, " (doc example)"]),
    ];
    for (const [to, where] of found) {
      if (!allowed(rel, to, test)) bad.push(`${rel} -> ${to}${where}`);
      else if (!privateAllowed(rel, to)) {
        bad.push(`${rel} -> ${to} (private to its folder)${where}`);
      }
    }
  }
  return [...new Set(bad)];
}

test("imports run only downward: no file imports a folder above it, a sibling server, tests/, or another folder's private file", () => {
  const files = tsFiles(ROOT);
  assert.ok(files.length > 100, "the tree was read");
  assert.deepEqual(violations(files), []);
});

test("the rule catches a planted wrong-way import (client -> service, core -> platform, tools -> tests)", () => {
  const planted = [
    ["client/x.ts", 'import { a } from "../service/auth.ts";'],
    ["core/x.ts", 'export * from "../platform/mod.ts";'],
    ["tools/x.ts", 'const m = await import("../tests/setup.ts");'],
    ["service/x_test.ts", 'import "../tests/setup.ts";'],
    ["gateway/x.ts", "import type { S } from '../session/party.ts';"],
  ];
  for (const [rel, src] of planted) {
    const path = join(ROOT, rel);
    const [to] = importsOf(path, src);
    assert.equal(allowed(rel, to, isTestFile(rel)), false, `${rel}: ${src}`);
  }
  // A private file of another folder, from a test file too (whose layer rule is looser).
  const privates = [
    ["platform/x_test.ts", 'import { client } from "../gateway/_test_util.ts";'],
    ["tests/gateway/x_test.ts", 'import "../../gateway/_router.ts";'],
  ];
  for (const [rel, src] of privates) {
    const [to] = importsOf(join(ROOT, rel), src);
    assert.equal(allowed(rel, to, isTestFile(rel)), true, `${rel}: the layers allow ${to}`);
    assert.equal(privateAllowed(rel, to), false, `${rel}: ${src}`);
  }
  assert.equal(privateAllowed("gateway/hub_test.ts", "gateway/_test_util.ts"), true);
  assert.equal(privateAllowed("bench/e2e/compute_main.ts", "bench/_harness.ts"), true);
  // A comment is not an import, but a doc example's imports are checked as its file's.
  assert.deepEqual(importsOf(join(ROOT, "core/x.ts"), '/**\n * import "../tests/a.ts";\n */'), []);
  const example = [
    "/**",
    " * @example",
    " * ```ts",
    ' * import { fixturePaillier } from "../testing/fixtures/keys.ts";',
    " * ```",
    " */",
  ].join("\n");
  const [fromExample] = exampleImportsOf(join(ROOT, "core/x.ts"), example);
  assert.equal(fromExample, "testing/fixtures/keys.ts");
  assert.equal(
    allowed("core/x.ts", fromExample, false),
    false,
    "core/ examples import no testing/",
  );
});
