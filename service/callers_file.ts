/**
 * Adding a caller to a callers file (the file of `auth.tokens_file`, read by auth.ts), for the
 * admin command `callers add` (admin.ts): the other callers, the comments and the layout are
 * kept, and the result is checked as the service reads it. Pure: the admin command reads and
 * writes the file (under its lock).
 * @module
 */
import { Document, isMap, isSeq, parseDocument, YAMLMap, YAMLSeq } from "yaml";
import { assertYamlDepth } from "../platform/yaml.ts";
import { parseCallersFile } from "./auth.ts";
import { ConfigError } from "./errors.ts";

/** One entry of a callers file (auth.ts), as the file writes it. */
export interface CallerEntry {
  readonly id: string;
  readonly token_sha256: string;
  readonly accounts: readonly string[];
  readonly may_keygen: boolean;
}

/** A callers-file refusal (auth.ts) restated for the `--out` file. */
export function outFileError(path: string, e: unknown): unknown {
  if (!(e instanceof ConfigError)) return e;
  const why = e.message.slice(e.setting.length + 2);
  return new ConfigError(e.code, "--out", `${path}: ${why}; nothing written`, { cause: e });
}

/**
 * The callers file `text` (null: no file yet) with `entry` added: the other callers, the
 * comments and the layout are kept (the yaml library's document round trip). The file must be
 * a valid callers file already (or empty), and the result is validated as the service reads it.
 *
 * @param path the file's name, for messages.
 * @param text the file's contents, or null when there is no file yet.
 * @param entry the caller to add.
 * @returns the new contents.
 * @throws {RangeError} the entry itself is not valid (its id or account patterns).
 * @throws {ConfigError} the file is not a valid callers file, or holds the caller id already.
 * @example
 * ```ts
 * import { withCaller } from "./callers_file.ts";
 * const entry = { id: "app", token_sha256: "ab".repeat(32), accounts: ["*"], may_keygen: false };
 * const text = withCaller("callers.yaml", "# our callers\n", entry);
 * console.assert(text.startsWith("# our callers") && text.includes("id: app"));
 * ```
 */
export function withCaller(path: string, text: string | null, entry: CallerEntry): string {
  // The new entry alone first, so its own faults name the flag, not a list index.
  try {
    parseCallersFile(JSON.stringify({ callers: [entry] }));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new RangeError(`--id / --accounts: ${e.message.replace(/^.*?callers\[0\][^:]*: /, "")}`);
  }
  const unparsable = () =>
    new ConfigError("unparsable", "--out", `${path}: not valid YAML; nothing written`);
  let doc = new Document();
  if (text !== null) {
    try {
      assertYamlDepth(text);
    } catch {
      throw unparsable();
    }
    doc = parseDocument(text);
  }
  if (doc.errors.length > 0) throw unparsable();
  if (doc.contents !== null) {
    // Refuse to edit what the service would refuse to read.
    let callers;
    try {
      callers = parseCallersFile(text ?? "");
    } catch (e) {
      throw outFileError(path, e);
    }
    if (callers.some((c) => c.id === entry.id)) {
      throw new ConfigError(
        "contradictory",
        "--id",
        `expected a caller id that ${path} does not hold, got ${entry.id}; nothing written ` +
          "(remove that caller from the file first to give it a new token)",
      );
    }
  }
  const node = doc.createNode(entry);
  const accounts = node.get("accounts", true);
  if (isSeq(accounts)) accounts.flow = true;
  const list = isMap(doc.contents) ? doc.contents.get("callers", true) : undefined;
  if (isSeq(list)) {
    list.flow = false;
    list.add(node);
  } else {
    // No document yet (a new, empty or comments-only file): the comments stay above it.
    const seq = new YAMLSeq();
    seq.add(node);
    const map = new YAMLMap();
    map.set("callers", seq);
    doc.contents = map;
  }
  const out = doc.toString({ lineWidth: 0, flowCollectionPadding: false });
  try {
    if (!parseCallersFile(out).some((c) => c.id === entry.id)) throw new Error("caller missing");
  } catch (e) {
    throw outFileError(path, e);
  }
  return out;
}
