/**
 * Bounded YAML: the project's configuration files parse as with `yaml` itself, and text nested
 * deeper than MAX_YAML_DEPTH collections (block maps, explicit keys, block lists, flow
 * collections) is refused as a SyntaxError before it is composed; the four configuration
 * parsers answer such text with their own typed refusal.
 * @module
 */
import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { parseConfig } from "../gateway/config.ts";
import { parseCallersFile } from "../service/auth.ts";
import { withCaller } from "../service/callers_file.ts";
import { parseServiceConfig } from "../service/config.ts";
import { ConfigError } from "../service/errors.ts";
import { assertYamlDepth, MAX_YAML_DEPTH, parseYamlBounded } from "./yaml.ts";

const file = (name: string) => readFileSync(new URL(`../config/${name}`, import.meta.url), "utf8");

/** Text whose collections nest `n` deep, in each of YAML's ways of nesting. */
const nested: Record<string, (n: number) => string> = {
  "explicit keys": (n) => "? ".repeat(n) + "x\n",
  "flow lists": (n) => "[".repeat(n) + "]".repeat(n),
  "flow maps": (n) => "{a: ".repeat(n) + "1" + "}".repeat(n),
  "block lists": (n) => "- ".repeat(n) + "x\n",
  "block maps": (n) =>
    Array.from({ length: n }, (_, k) => " ".repeat(k) + "a:").join("\n") + " 1\n",
};

test("configuration files parse as with yaml itself", () => {
  for (const name of ["sign-service.yaml", "sign-gateway.yaml"]) {
    assert.deepEqual(parseYamlBounded(file(name)), parse(file(name)));
  }
  for (const [how, make] of Object.entries(nested)) {
    assert.deepEqual(parseYamlBounded(make(MAX_YAML_DEPTH)), parse(make(MAX_YAML_DEPTH)), how);
  }
});

test("nesting beyond the bound is refused before composing, in every way of nesting", () => {
  for (const [how, make] of Object.entries(nested)) {
    assert.throws(() => assertYamlDepth(make(MAX_YAML_DEPTH + 1)), SyntaxError, how);
    // Deep enough to overflow the composer's stack: refused by the bound, not by the overflow.
    assert.throws(
      () => parseYamlBounded(make(5000)),
      (e: unknown) => e instanceof SyntaxError && /nested deeper than/.test(e.message),
      how,
    );
  }
});

test("the configuration parsers refuse deep nesting with their own typed errors", () => {
  const deep = "? ".repeat(8000);
  assert.throws(
    () => parseServiceConfig(deep, {}, { env: {}, configFile: "deep.yaml" }),
    (e: unknown) => e instanceof ConfigError && /nested deeper than/.test(e.message),
  );
  assert.throws(() => parseConfig(deep), /config: not valid YAML: YAML nested deeper than/);
  assert.throws(() => parseCallersFile(deep), ConfigError);
  const entry = { id: "app", token_sha256: "ab".repeat(32), accounts: ["*"], may_keygen: false };
  assert.throws(() => withCaller("callers.yaml", deep, entry), /not valid YAML; nothing written/);
});
