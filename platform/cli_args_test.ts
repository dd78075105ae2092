/**
 * The one flag parser of the entry points: `--x=y` and `--x y`, booleans, repeated flags, `--`,
 * positional arguments, help, and a table of command lines it must refuse with a UsageError.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type CommandSpec,
  failureStatus,
  formatHelp,
  parseArgs,
  parseCommand,
  parseCommandLine,
  UsageError,
  wantsHelp,
} from "./cli_args.ts";

const SPEC: CommandSpec = {
  flags: {
    port: { arg: "n", help: "server.port" },
    set: { kind: "list", arg: "k=v", help: "any setting" },
    json: { kind: "boolean", help: "JSON output" },
  },
  maxPositionals: 1,
};

test("--x=y and --x y give the same value; a value may itself hold '=' or start with '-'", () => {
  const joined = parseArgs(["--port=8080"], SPEC);
  const apart = parseArgs(["--port", "8080"], SPEC);
  assert.equal(joined.value("port"), "8080");
  assert.equal(apart.value("port"), "8080");
  assert.deepEqual(joined.given, apart.given);
  assert.equal(parseArgs(["--set=a.b=c=d"], SPEC).value("set"), "a.b=c=d");
  assert.equal(parseArgs(["--port", "-1"], SPEC).value("port"), "-1");
  assert.equal(parseArgs(["--port="], SPEC).value("port"), "");
});

test("booleans take no value; list flags keep every value; others keep the last", () => {
  const a = parseArgs(["--json", "--set", "a.b=1", "--port", "1", "--set=c.d=2", "--port=2"], SPEC);
  assert.equal(a.has("json"), true);
  assert.deepEqual(a.values("set"), ["a.b=1", "c.d=2"]);
  assert.equal(a.value("port"), "2");
  assert.deepEqual(a.given.map((g) => g.flag), ["json", "set", "port", "set", "port"]);
  assert.equal(a.has("nope"), false);
  assert.equal(a.value("json"), undefined);
});

test("positional arguments stand anywhere; after -- everything is positional", () => {
  const a = parseArgs(["--json", "app.yaml", "--port", "1"], SPEC);
  assert.deepEqual(a.positionals, ["app.yaml"]);
  const b = parseArgs(["--json", "--", "--port"], SPEC);
  assert.deepEqual(b.positionals, ["--port"]);
  assert.equal(b.has("port"), false);
  assert.deepEqual(parseArgs(["-"], SPEC).positionals, ["-"]);
});

test("--help or -h before -- asks for help, whatever else is on the line", () => {
  assert.equal(parseArgs(["--bogus", "-h"], SPEC).help, true);
  assert.equal(parseArgs(["a", "b", "--help"], SPEC).help, true);
  assert.equal(wantsHelp(["--", "--help"]), false);
  assert.throws(() => parseArgs(["a", "--", "--help"], SPEC), UsageError);
});

const REFUSED: [name: string, argv: string[], code: string, message: RegExp][] = [
  ["an unknown flag", ["--prot", "1"], "unknown-flag", /unknown option --prot; see --help/],
  ["an unknown flag with =", ["--prot=1"], "unknown-flag", /unknown option --prot;/],
  ["a single-dash flag", ["-p", "1"], "unknown-flag", /unknown option -p;/],
  ["a flag of strange text, not echoed", ["--a\u0000\nb"], "unknown-flag", /\(an argument\)/],
  ["a prototype name", ["--__proto__", "x"], "unknown-flag", /__proto__/],
  ["a flag without its value", ["--port"], "missing-value", /--port: expected a value/],
  ["a value for a boolean", ["--json=false"], "unexpected-value", /--json: takes no value/],
  ["a second argument", ["a.yaml", "b.yaml"], "unexpected-argument", /b\.yaml/],
  ["a flag after --", ["a.yaml", "--", "--port"], "unexpected-argument", /drop the --/],
];

for (const [name, argv, code, message] of REFUSED) {
  test(`parseArgs refuses ${name} with a UsageError (${code})`, () => {
    assert.throws(
      () => parseArgs(argv, SPEC),
      (e: unknown) =>
        e instanceof UsageError && e instanceof RangeError && e.code === code &&
        message.test(e.message) && !e.message.includes("\u0000"),
    );
  });
}

test("a command without positional arguments refuses one", () => {
  assert.throws(
    () => parseArgs(["x"], { flags: {} }),
    (e: unknown) => e instanceof UsageError && /expected no argument/.test(e.message),
  );
});

test("every help has the same shape: title, usage, commands, options with variables, notes", () => {
  const text = formatHelp({
    title: "demo: an example",
    usage: ["deno task demo [config.yaml] [options]"],
    commands: [["run", "runs it"]],
    flags: { ...SPEC.flags, token: { arg: "t", help: "the token", env: "WALLET_MPC_DEMO_TOKEN" } },
    notes: ["Precedence: file < environment < flags."],
  });
  const lines = text.split("\n");
  assert.equal(lines[0], "demo: an example");
  assert.deepEqual(
    lines.filter((l) => /^[A-Z][a-z]+:$/.test(l)),
    ["Usage:", "Commands:", "Options:"],
  );
  assert.match(text, /\n {2}--port <n> +server\.port\n/);
  assert.match(text, /--set <k=v> +any setting \(repeatable\)/);
  assert.match(text, /--json +JSON output/);
  assert.match(text, /--token <t> +the token \(env WALLET_MPC_DEMO_TOKEN\)/);
  assert.match(text, /--help, -h +this text\n\nPrecedence/);
  assert.ok(lines.every((l) => l.length <= 100), "lines fit 100 columns");
});

function collector() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    print: { log: (t: string) => out.push(t), error: (t: string) => err.push(t) },
  };
}

test("parseCommandLine prints the help (0) or the refusal and the help (2), else returns the args", () => {
  const a = collector();
  assert.equal(parseCommandLine(["-h"], SPEC, "USAGE", a.print), 0);
  assert.deepEqual([a.out, a.err], [["USAGE"], []]);
  const b = collector();
  assert.equal(parseCommandLine(["--prot"], SPEC, "USAGE", b.print), 2);
  assert.deepEqual([b.out, b.err], [[], ["unknown option --prot; see --help\n\nUSAGE"]]);
  const c = parseCommandLine(["--port=1"], SPEC, "USAGE", collector().print);
  assert.ok(typeof c !== "number" && c.value("port") === "1");
});

test("parseCommand finds a command of one or two words and parses the rest with its flags", () => {
  const commands = {
    offline: { flags: { add: { kind: "boolean" as const, help: "add" } } },
    "callers add": { flags: { id: { help: "the id" } }, maxPositionals: 1 },
  };
  const one = parseCommand(["offline", "--add"], commands, "USAGE", collector().print);
  assert.ok(typeof one !== "number" && one.command === "offline" && one.args.has("add"));
  const two = parseCommand(
    ["callers", "add", "f.yaml", "--id=x"],
    commands,
    "U",
    collector().print,
  );
  assert.ok(typeof two !== "number" && two.command === "callers add");
  assert.deepEqual([two.args.value("id"), two.args.positionals], ["x", ["f.yaml"]]);
  const unknown = collector();
  assert.equal(parseCommand(["callers", "drop"], commands, "USAGE", unknown.print), 2);
  assert.match(unknown.err[0], /^unknown command callers drop\n\nUSAGE/);
  assert.equal(parseCommand([], commands, "USAGE", collector().print), 2);
  assert.equal(parseCommand(["--help"], commands, "USAGE", collector().print), 0);
  const wrongFlag = collector();
  assert.equal(parseCommand(["offline", "--id", "x"], commands, "USAGE", wrongFlag.print), 2);
  assert.match(wrongFlag.err[0], /unknown option --id/);
});

test("a failed command prints one error line; misuse (RangeError) exits 2, the rest 1", () => {
  const a = collector();
  assert.equal(failureStatus(new RangeError("--out is required"), a.print), 2);
  assert.deepEqual(a.err, ["error: RangeError: --out is required"]);
  const b = collector();
  const e = Object.assign(new Error("no such account"), { name: "KeyStoreError", code: "x" });
  assert.equal(failureStatus(e, b.print), 1);
  assert.deepEqual(b.err, ["error: KeyStoreError (x): no such account"]);
});
