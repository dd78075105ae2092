import { test } from "node:test";
import assert from "node:assert/strict";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AuditRecord, createAuditLog } from "./audit.ts";
import { type AuditFs, openAuditFile, readSinceLastStart, recoverAuditFile } from "./audit_file.ts";

function memoryLog(clock = () => Date.UTC(2025, 0, 2, 3, 4, 5, 6)) {
  const lines: string[] = [];
  const audit = createAuditLog({ write: (l) => void lines.push(l), clock });
  return { lines, audit };
}

const FULL: AuditRecord = {
  caller: "wallet-backend",
  action: "sign",
  account: "acct-1",
  digest: "ab".repeat(32),
  path: "m/0/1",
  sessionId: "sess-123",
  outcome: "aborted",
  errorCode: "proof-failed",
  blame: [0],
  durationMs: 1234.4,
};

test("a record is one line with the fields in the fixed order", async () => {
  const { lines, audit } = memoryLog();
  await audit.record(FULL);
  assert.equal(lines.length, 1);
  assert.equal(
    lines[0],
    '{"ts":"2025-01-02T03:04:05.006Z","type":"audit","caller":"wallet-backend","action":"sign",' +
      `"account":"acct-1","digest":"${"ab".repeat(32)}","path":"m/0/1","session_id":"sess-123",` +
      '"outcome":"aborted","error_code":"proof-failed","blame":[0],"duration_ms":1234}',
  );
});

test("absent optional fields are left out; null caller and account are kept", async () => {
  const { lines, audit } = memoryLog(() => 0);
  await audit.record({
    caller: null,
    action: "list",
    account: null,
    outcome: "denied",
    durationMs: 0,
  });
  assert.deepEqual(Object.keys(JSON.parse(lines[0])), [
    "ts",
    "type",
    "caller",
    "action",
    "account",
    "outcome",
    "duration_ms",
  ]);
  assert.equal(JSON.parse(lines[0]).caller, null);
});

test("only whitelisted fields are written: secrets in the record never reach the line", async () => {
  const { lines, audit } = memoryLog();
  const secret = "TOPSECRET";
  const record = {
    ...FULL,
    caller: { id: "app", token: `tok-${secret}`, tokenSha256: `hash-${secret}` },
    token: secret,
    authorization: `Bearer ${secret}`,
    keyShare: { x: secret, aux: { p: secret, q: secret } },
    passphrase: secret,
    identity: `AGE-SECRET-KEY-1${secret}`,
    request: { headers: { authorization: secret } },
    toJSON: () => ({ leaked: secret }),
  };
  await audit.record(record as unknown as AuditRecord);
  assert.doesNotMatch(lines[0], new RegExp(secret));
  const o = JSON.parse(lines[0]);
  assert.equal(o.caller, "app");
  assert.deepEqual(Object.keys(o), [
    "ts",
    "type",
    "caller",
    "action",
    "account",
    "digest",
    "path",
    "session_id",
    "outcome",
    "error_code",
    "blame",
    "duration_ms",
  ]);
});

const HOSTILE: [string, Partial<Record<string, unknown>>, (o: Record<string, unknown>) => void][] =
  [
    ["a newline in the account", { account: "a\nb" }, (o) => assert.equal(o.account, "a\nb")],
    [
      "a megabyte account id",
      { account: "x".repeat(1 << 20) },
      (o) => assert.equal((o.account as string).length, 128 + 3),
    ],
    ["U+2028 in the path", { path: "m/\u2028" }, (o) => assert.equal(o.path, "m/\u2028")],
    [
      "an object as account",
      { account: { toString: () => "x" } },
      (o) => assert.equal(o.account, null),
    ],
    ["a number as action", { action: 7 }, (o) => assert.equal(o.action, null)],
    ["an unknown outcome", { outcome: "pwned" }, (o) => assert.equal(o.outcome, "error")],
    ["NaN duration", { durationMs: NaN }, (o) => assert.equal(o.duration_ms, null)],
    ["negative duration", { durationMs: -5 }, (o) => assert.equal(o.duration_ms, 0)],
    ["a string duration", { durationMs: "5" }, (o) => assert.equal(o.duration_ms, null)],
    [
      "bad blame entries",
      { blame: [3, -1, 1.5, "2", 1, 3, 1e9] },
      (o) => assert.deepEqual(o.blame, [1, 3]),
    ],
    ["blame not a list", { blame: "0" }, (o) => assert.equal("blame" in o, false)],
    [
      "digest as bytes",
      { digest: new Uint8Array([0, 255, 16]) },
      (o) => assert.equal(o.digest, "00ff10"),
    ],
    [
      "a huge digest",
      { digest: new Uint8Array(10_000) },
      (o) => assert.equal(o.digest, `${"00".repeat(64)}...`),
    ],
    ["a caller object without id", { caller: { name: "x" } }, (o) => assert.equal(o.caller, null)],
    [
      "a caller with a long id",
      { caller: "c".repeat(100) },
      (o) => assert.equal(o.caller, `${"c".repeat(64)}...`),
    ],
    [
      "an error code object",
      { errorCode: { secret: 1 } },
      (o) => assert.equal("error_code" in o, false),
    ],
  ];

for (const [name, patch, check] of HOSTILE) {
  test(`audit writes one safe line for ${name}`, async () => {
    const { lines, audit } = memoryLog();
    await audit.record({ ...FULL, ...patch } as unknown as AuditRecord);
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0], /[\n\r\u2028\u2029]/);
    check(JSON.parse(lines[0]));
  });
}

test("audit survives a record that is not an object", async () => {
  const { lines, audit } = memoryLog();
  await audit.record(null as unknown as AuditRecord);
  assert.equal(JSON.parse(lines[0]).outcome, "error");
});

test("audit passes on the writer's failure", async () => {
  const audit = createAuditLog({
    write: () => Promise.reject(new Error("disk full")),
    clock: () => 0,
  });
  await assert.rejects(audit.record(FULL), /disk full/);
  assert.throws(() => createAuditLog({ write: "stdout" as unknown as () => void }), TypeError);
});

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "wallet-mpc-audit-"));
  try {
    await f(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

test("the audit file appends lines in call order, creates the file 0600, keeps old lines", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "audit.jsonl");
    await fsp.writeFile(path, "old\n");
    const file = await openAuditFile(path, { fsync: true });
    const audit = createAuditLog({ write: file.write, clock: () => 0 });
    await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) => audit.record({ ...FULL, sessionId: `s${i}`, account: "a".repeat(i % 7) || null }),
      ),
    );
    await file.close();
    const lines = (await fsp.readFile(path, "utf8")).split("\n");
    assert.equal(lines[0], "old");
    assert.equal(lines.at(-1), "");
    const ids = lines.slice(1, -1).map((l) => JSON.parse(l).session_id);
    assert.deepEqual(ids, Array.from({ length: 200 }, (_, i) => `s${i}`));
    const fresh = join(dir, "fresh.jsonl");
    await (await openAuditFile(fresh)).close();
    if (process.platform !== "win32") assert.equal((await fsp.stat(fresh)).mode & 0o777, 0o600);
  });
});

test("the audit file refuses multi-line text and writes after close", async () => {
  await withDir(async (dir) => {
    const file = await openAuditFile(join(dir, "a.jsonl"));
    await assert.rejects(file.write("a\nb"), TypeError);
    await assert.rejects(file.write(42 as unknown as string), TypeError);
    await file.close();
    await file.close();
    await assert.rejects(file.write("x"), /closed/);
    assert.equal(await fsp.readFile(join(dir, "a.jsonl"), "utf8"), "");
  });
});

test("a failed write rejects its own line only; later lines are written", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "a.jsonl");
    let calls = 0;
    const flaky: AuditFs = {
      open: (async (p: string, flags: string, mode: number) => {
        const fh = await fsp.open(p, flags, mode);
        return new Proxy(fh, {
          get(target, prop) {
            if (prop === "write") {
              return (...args: Parameters<typeof fh.write>) => {
                if (++calls === 2) {
                  return Promise.reject(Object.assign(new Error("EIO"), { code: "EIO" }));
                }
                return (target.write as (...a: unknown[]) => unknown)(...args);
              };
            }
            const v = Reflect.get(target, prop);
            return typeof v === "function" ? v.bind(target) : v;
          },
        });
      }) as AuditFs["open"],
    };
    const file = await openAuditFile(path, { fs: flaky });
    const results = await Promise.allSettled([file.write("1"), file.write("2"), file.write("3")]);
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
    await file.close();
    assert.equal(await fsp.readFile(path, "utf8"), "1\n3\n");
  });
});

test("openAuditFile fails at once when the file cannot be opened", async () => {
  await assert.rejects(
    openAuditFile("/nonexistent-dir-wallet-mpc/audit.jsonl"),
    (e: unknown) => (e as { code?: string }).code === "ENOENT",
  );
});

/** A temporary audit file path. */
async function auditPath(): Promise<string> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "wallet-mpc-audit-"));
  return join(dir, "audit.jsonl");
}

const parse = (text: string) =>
  text.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);

test("a session whose process died after its started record is audited interrupted at the next start", async () => {
  const path = await auditPath();
  // The first run: one session ends, one is cut by the crash (mid-line at that), one is open.
  let file = await openAuditFile(path);
  let audit = createAuditLog({ write: file.write });
  assert.equal(await recoverAuditFile(path, audit), 0, "a new file: nothing to recover");
  const started = { caller: "app", action: "sign", account: "a", outcome: "started" } as const;
  await audit.record({ ...started, digest: "11", callId: "c-done", durationMs: 0 });
  await audit.record({ ...started, digest: "22", callId: "c-cut", durationMs: 0 });
  await audit.record({ ...started, action: "refresh", callId: "c-open", durationMs: 0 });
  await audit.record({ ...started, outcome: "ok", callId: "c-done", durationMs: 2400 });
  await file.close();
  await fsp.appendFile(path, '{"ts":"2025-01-01T00:00:00.000Z","type":"audit","caller":"app","ac');

  // The next start.
  file = await openAuditFile(path);
  audit = createAuditLog({ write: file.write });
  assert.equal(await recoverAuditFile(path, audit), 2);
  await file.close();
  const lines = (await fsp.readFile(path, "utf8")).trim().split("\n");
  const records = lines.filter((l) => l.startsWith("{") && l.endsWith("}")).map((l) =>
    JSON.parse(l)
  );
  const interrupted = records.filter((r) => r.outcome === "interrupted");
  assert.deepEqual(interrupted.map((r) => r.call_id).sort(), ["c-cut", "c-open"]);
  const cut = interrupted.find((r) => r.call_id === "c-cut");
  assert.equal(cut.digest, "22");
  assert.equal(cut.action, "sign");
  assert.equal(cut.error_code, "process-died");
  assert.equal(interrupted.find((r) => r.call_id === "c-open").action, "refresh");
  assert.equal(records.at(-1).action, "service_start");
  assert.ok(lines.some((l) => l.endsWith('"ac')), "the cut line stays, on a line of its own");

  // A third start finds nothing left open: the search stops at the last service_start.
  file = await openAuditFile(path);
  audit = createAuditLog({ write: file.write });
  assert.equal(await recoverAuditFile(path, audit), 0);
  await file.close();
  assert.deepEqual(await readSinceLastStart(path), []);
});

test("the recovery reads back to the last service_start only, across read blocks", async () => {
  const path = await auditPath();
  const file = await openAuditFile(path);
  const audit = createAuditLog({ write: file.write });
  await audit.record({
    caller: "app",
    action: "sign",
    account: "a",
    outcome: "started",
    callId: "old",
    durationMs: 0,
  });
  await recoverAuditFile(path, audit); // "old" is interrupted, then a start record
  const filler = {
    caller: "app",
    action: "get_public_key",
    account: "a".repeat(100),
    outcome: "ok",
  } as const;
  for (let k = 0; k < 2000; k++) await audit.record({ ...filler, durationMs: k }); // > 64 KiB
  await audit.record({
    caller: "app",
    action: "sign",
    account: "a",
    outcome: "started",
    callId: "new",
    durationMs: 0,
  });
  await file.close();
  const since = await readSinceLastStart(path);
  assert.equal(since.length, 2001);
  assert.deepEqual(parse(since.at(-1)!).map((r) => r.call_id), ["new"]);
  // With a bound smaller than the run, the search stops at the bound (one 64 KiB block): the
  // newest lines only.
  const bounded = await readSinceLastStart(path, { maxBytes: 4096 });
  assert.ok(bounded.length > 0 && bounded.length < 1000, `${bounded.length} lines`);
  assert.equal(parse(bounded.at(-1)!)[0].call_id, "new");
  const after = await openAuditFile(path);
  const log = createAuditLog({ write: after.write });
  assert.equal(await recoverAuditFile(path, log), 1, "only the session of the last run");
  await after.close();
});
