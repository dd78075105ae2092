/**
 * YAML of configuration files and settings, parsed with a bound on nesting: the `yaml` package
 * composes nested collections recursively, and text nested a few hundred levels deep (`? ? ? …`,
 * `[[[[…`) makes it overflow the stack, which V8 can take tens of seconds to unwind inside a
 * worker (found by the service-config fuzz harness: 16 KiB of `? ` took 37 s once in five runs).
 * So the nesting is measured first on the package's concrete syntax tree, built without
 * recursion, and text nested deeper than {@link MAX_YAML_DEPTH} collections is refused before
 * composing. Every configuration of the project is at most five levels deep.
 *
 * @example
 * ```ts
 * import { parseYamlBounded } from "./yaml.ts";
 * console.assert((parseYamlBounded("a:\n  b: 1\n") as { a: { b: number } }).a.b === 1);
 * let refused = false;
 * try {
 *   parseYamlBounded("[".repeat(100) + "]".repeat(100));
 * } catch (e) {
 *   refused = e instanceof SyntaxError;
 * }
 * console.assert(refused);
 * ```
 * @module
 */
import { parse, Parser } from "yaml";

/** Collections nested deeper than this are refused (a configuration needs about five). */
export const MAX_YAML_DEPTH = 32;

const COLLECTIONS = new Set(["block-map", "block-seq", "flow-collection"]);

/**
 * Checks the nesting of YAML text without composing it.
 * @param text the YAML text
 * @throws {SyntaxError} when collections nest deeper than {@link MAX_YAML_DEPTH}
 */
export function assertYamlDepth(text: string): void {
  for (const token of new Parser().parse(text)) {
    const stack: [unknown, number][] = [[token, 0]];
    while (stack.length > 0) {
      const [node, depth] = stack.pop()!;
      if (typeof node !== "object" || node === null) continue;
      const type = (node as { type?: unknown }).type;
      const d = typeof type === "string" && COLLECTIONS.has(type) ? depth + 1 : depth;
      if (d > MAX_YAML_DEPTH) {
        throw new SyntaxError(`YAML nested deeper than ${MAX_YAML_DEPTH} collections`);
      }
      for (const child of Object.values(node)) {
        if (typeof child === "object" && child !== null) stack.push([child, d]);
      }
    }
  }
}

/**
 * `yaml`'s `parse` after {@link assertYamlDepth}.
 * @param text the YAML text
 * @returns the composed value
 * @throws {SyntaxError} too deeply nested; `yaml`'s errors for text that is not valid YAML
 */
export function parseYamlBounded(text: string): unknown {
  assertYamlDepth(text);
  return parse(text);
}
