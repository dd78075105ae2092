import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { dealPresignatures, DEALT_EPOCH } from "../testing/fixtures/protocol_fixtures.ts";
import { type AbortCode, ProtocolAbort } from "../core/errors.ts";
import {
  decodePresignature,
  encodePresignature,
  type KeyLock,
  type PresignatureRequest,
} from "../core/presignature_store.ts";
import {
  JournalError,
  type JournalFs,
  openPresignatureJournal,
  type PresignatureJournal,
} from "./presignature_journal.ts";
import { bounded, WAIT_MS } from "../testing/waits.ts";

const KEY = "account-journal";
const request: PresignatureRequest = {
  keyId: KEY,
  epoch: DEALT_EPOCH,
  hdPath: [],
  hash: "sha256",
};
const LOCK: KeyLock = {
  keyId: KEY,
  protocol: "sign",
  round: 5,
  culprits: [1],
  sid: "ab".repeat(32),
  reason: "the combined signature is invalid: partial signatures fail their check",
  at: 1234,
};

const dealt = (keyId = KEY) => dealPresignatures(2, { keyId })[0];
const usedLine = (id: string) => JSON.stringify({ v: 1, event: "used", id }) + "\n";

async function tempJournal(): Promise<{ path: string; done: () => Promise<void> }> {
  const dir = await fsp.mkdtemp(join(tmpdir(), "wallet-mpc-journal-"));
  return {
    path: join(dir, "presignatures.journal"),
    done: () => fsp.rm(dir, { recursive: true, force: true }),
  };
}

async function rejectsWith(p: Promise<unknown>, code: AbortCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ProtocolAbort, `expected a ProtocolAbort, got ${e}`);
    assert.equal(e.code, code);
    return true;
  });
}

function isJournalError(code: JournalError["code"]) {
  return (e: unknown) => {
    assert.ok(e instanceof JournalError, `expected a JournalError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

/** Opens, runs `f`, closes (also when `f` throws). */
async function withJournal<T>(
  path: string,
  f: (s: PresignatureJournal) => Promise<T>,
  fs?: JournalFs,
): Promise<T> {
  const store = await openPresignatureJournal({ path, fs });
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

// ---- restarts ---------------------------------------------------------------------------------

test("a used presignature is refused after a restart (a new store on the same journal)", async () => {
  const { path, done } = await tempJournal();
  try {
    const [p, q] = [dealt(), dealt()];
    await withJournal(path, async (s) => {
      await s.put(p);
      await s.put(q);
      assert.equal((await s.take(p.id, request)).id, p.id);
    });
    await withJournal(path, async (s) => {
      assert.deepEqual(s.recovery, { events: 1, tornBytes: 0 });
      assert.equal(await s.isUsed(p.id), true);
      assert.equal(await s.isUsed(q.id), false);
      assert.equal(s.size, 0, "unused presignatures live in memory only");
      await rejectsWith(s.put(p), "presignature-used");
      await rejectsWith(s.take(p.id, request), "presignature-used");
      // The unused one may be put again (from a backup) and used once.
      await s.put(q);
      assert.equal((await s.take(q.id, request)).id, q.id);
    });
    await withJournal(path, async (s) => {
      assert.equal(s.recovery.events, 2);
      await rejectsWith(s.put(q), "presignature-used");
    });
  } finally {
    await done();
  }
});

test("a backup of the presignatures restored after a restart: the used ones are refused", async () => {
  const { path, done } = await tempJournal();
  try {
    const [p, q] = [dealt(), dealt()];
    const backup = JSON.parse(JSON.stringify([p, q].map(encodePresignature)));
    await withJournal(path, async (s) => {
      await s.put(p);
      await s.put(q);
      await s.take(p.id, request);
    });
    await withJournal(path, async (s) => {
      await rejectsWith(s.put(decodePresignature(backup[0])), "presignature-used");
      await s.put(decodePresignature(backup[1]));
      assert.equal((await s.take(q.id, request)).id, q.id);
    });
  } finally {
    await done();
  }
});

test("take returns only once the used id is fsync'd", async () => {
  const { path, done } = await tempJournal();
  try {
    let release!: () => void;
    let syncs = 0;
    const gate = new Promise<void>((r) => (release = r));
    let synced!: () => void;
    const syncCalled = new Promise<void>((r) => (synced = r));
    // A file system whose journal fsync waits for the test.
    const fs: JournalFs = {
      open: (async (file: string, flags?: string, mode?: number) => {
        const fh = await fsp.open(file, flags, mode);
        if (flags !== "a+") return fh;
        return new Proxy(fh, {
          get(target, prop) {
            if (prop === "sync") {
              return () => (syncs++, synced(), gate.then(() => target.sync()));
            }
            const v = Reflect.get(target, prop);
            return typeof v === "function" ? v.bind(target) : v;
          },
        });
      }) as JournalFs["open"],
    };
    await withJournal(path, async (s) => {
      try {
        const p = dealt();
        await s.put(p);
        let returned = false;
        const taking = s.take(p.id, request).then((x) => (returned = true, x));
        // Waits for the event (a fixed number of short sleeps failed on a loaded machine when
        // the write before the fsync took longer than they did), then gives a take that would
        // not wait for the fsync time to return.
        await bounded(WAIT_MS, "take's fsync of the journal", syncCalled);
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(syncs, 1, "take fsyncs the journal");
        assert.equal(returned, false, "take must not return before the fsync completes");
        assert.equal(await fsp.readFile(path, "utf8"), usedLine(p.id), "written before the fsync");
        assert.equal(await s.isUsed(p.id), true, "marked used in memory at once");
        await rejectsWith(s.take(p.id, request), "presignature-used");
        release();
        assert.equal((await taking).id, p.id);
      } finally {
        release();
      }
    }, fs);
  } finally {
    await done();
  }
});

test("concurrent takes share fsyncs and all land in the journal", async () => {
  const { path, done } = await tempJournal();
  try {
    const base = dealt();
    const ids = Array.from({ length: 40 }, (_, k) => k.toString(16).padStart(2, "0").repeat(32));
    await withJournal(path, async (s) => {
      for (const id of ids) await s.put({ ...base, id });
      const got = await Promise.all(ids.map((id) => s.take(id, request)));
      assert.deepEqual(got.map((p) => p.id), ids);
    });
    const lines = (await fsp.readFile(path, "utf8")).split("\n");
    assert.equal(lines.pop(), "");
    assert.deepEqual(lines.map((l) => JSON.parse(l).id).sort(), [...ids].sort());
  } finally {
    await done();
  }
});

test("the key lock survives a restart; so does the unlock; the first lock is kept", async () => {
  const { path, done } = await tempJournal();
  try {
    const p = dealt();
    await withJournal(path, async (s) => {
      await s.lockKey(LOCK);
      await s.lockKey({ ...LOCK, culprits: [0], at: 99 });
    });
    await withJournal(path, async (s) => {
      assert.deepEqual(await s.keyLock(KEY), LOCK);
      await s.put(p);
      await rejectsWith(s.take(p.id, request), "key-locked");
      assert.equal(await s.isUsed(p.id), false);
      assert.equal(await s.keyLock("account-other"), undefined);
      await s.unlockKey(KEY);
    });
    await withJournal(path, async (s) => {
      assert.equal(await s.keyLock(KEY), undefined);
      await s.lockKey({ ...LOCK, at: 5678 });
    });
    await withJournal(path, async (s) => {
      assert.equal((await s.keyLock(KEY))?.at, 5678);
    });
    const events = (await fsp.readFile(path, "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => e.event), ["lock", "unlock", "lock"]);
  } finally {
    await done();
  }
});

test("lockKey refuses a malformed lock (it would make the journal unreadable)", async () => {
  const { path, done } = await tempJournal();
  try {
    await withJournal(path, async (s) => {
      const bad: unknown[] = [
        null,
        { ...LOCK, keyId: "" },
        { ...LOCK, culprits: [-1] },
        { ...LOCK, at: Infinity },
        { ...LOCK, sid: "not hex" },
        { ...LOCK, extra: 1 },
      ];
      for (const lock of bad) await assert.rejects(s.lockKey(lock as KeyLock), TypeError);
      await assert.rejects(s.put({ ...dealt(), id: "short" }), TypeError);
    });
    assert.equal(await fsp.readFile(path, "utf8"), "");
  } finally {
    await done();
  }
});

test("after a refresh the journal store refuses and purges presignatures of the old epoch", async () => {
  const { path, done } = await tempJournal();
  try {
    const newEpoch = "5e".repeat(32);
    await withJournal(path, async (s) => {
      const old = dealt();
      await s.put(old);
      await assert.rejects(s.take(old.id, { ...request, epoch: newEpoch }), /another key epoch/);
      assert.equal(await s.isUsed(old.id), false);
      assert.equal(await s.purgeOtherEpochs(KEY, newEpoch), 1);
      assert.equal(s.size, 0);
      await assert.rejects(s.put(dealt()), /another key epoch/);
    });
  } finally {
    await done();
  }
});

// ---- crashes ----------------------------------------------------------------------------------

test("a torn last line (crash mid-append) is dropped at open; the journal goes on cleanly", async () => {
  const { path, done } = await tempJournal();
  try {
    const a = "a1".repeat(32);
    const b = "b2".repeat(32);
    const torn = usedLine(b).slice(0, 30);
    await fsp.writeFile(path, usedLine(a) + torn);
    const p = dealt();
    await withJournal(path, async (s) => {
      assert.deepEqual(s.recovery, { events: 1, tornBytes: torn.length });
      assert.equal(await s.isUsed(a), true);
      assert.equal(await s.isUsed(b), false, "its take never returned");
      await s.put(p);
      await s.take(p.id, request);
    });
    assert.equal(await fsp.readFile(path, "utf8"), usedLine(a) + usedLine(p.id));
    await withJournal(path, async (s) => {
      assert.deepEqual(s.recovery, { events: 2, tornBytes: 0 });
      assert.equal(await s.isUsed(p.id), true);
    });
  } finally {
    await done();
  }
});

test("torn tails of every length, zero-filled and non-UTF-8 tails are repaired", async () => {
  const { path, done } = await tempJournal();
  try {
    const a = usedLine("a1".repeat(32));
    const lock = JSON.stringify({ v: 1, event: "lock", lock: LOCK }) + "\n";
    const tails: [string, Uint8Array][] = [];
    for (let k = 1; k < lock.length - 1; k += 7) {
      tails.push([`lock line cut at ${k}`, new TextEncoder().encode(lock.slice(0, k))]);
    }
    tails.push(["zeros", new Uint8Array(64)]);
    tails.push(["not UTF-8", new Uint8Array([0x7b, 0xff, 0xfe])]);
    for (const [what, tail] of tails) {
      await fsp.writeFile(path, new Uint8Array([...new TextEncoder().encode(a), ...tail]));
      await withJournal(path, async (s) => {
        assert.deepEqual(s.recovery, { events: 1, tornBytes: tail.length }, what);
        assert.equal(await s.keyLock(KEY), undefined, what);
      });
      assert.equal(await fsp.readFile(path, "utf8"), a, what);
    }
    // Only the newline was lost: the event is whole, so it is kept and its line terminated.
    await fsp.writeFile(path, a + lock.slice(0, -1));
    await withJournal(path, async (s) => {
      assert.deepEqual(s.recovery, { events: 2, tornBytes: 0 });
      assert.deepEqual(await s.keyLock(KEY), LOCK);
    });
    assert.equal(await fsp.readFile(path, "utf8"), a + lock);
  } finally {
    await done();
  }
});

test("any other unreadable line is corruption: open refuses and leaves the file as it is", async () => {
  const { path, done } = await tempJournal();
  try {
    const a = usedLine("a1".repeat(32));
    const lockLine = (lock: unknown) => JSON.stringify({ v: 1, event: "lock", lock }) + "\n";
    const bad: [string, string | Uint8Array][] = [
      ["garbage line", "garbage\n"],
      ["empty line", "\n"],
      ["version 2", JSON.stringify({ v: 2, event: "used", id: "a1".repeat(32) }) + "\n"],
      ["unknown event", JSON.stringify({ v: 1, event: "forget", id: "a1".repeat(32) }) + "\n"],
      ["extra field", JSON.stringify({ v: 1, event: "used", id: "a1".repeat(32), x: 1 }) + "\n"],
      ["bad id", usedLine("xyz")],
      ["uppercase id", usedLine("A1".repeat(32))],
      ["lock without key", lockLine({ ...LOCK, keyId: undefined })],
      ["lock with a bad culprit", lockLine({ ...LOCK, culprits: ["1"] })],
      ["unlock without key", JSON.stringify({ v: 1, event: "unlock" }) + "\n"],
      ["array", "[]\n"],
      ["overlong line", usedLine("ab".repeat(9000))],
      ["not UTF-8", new Uint8Array([0xff, 0xfe, 0x0a])],
    ];
    for (const [what, line] of bad) {
      for (const where of ["middle", "last, with its newline"]) {
        const bytes = new Uint8Array([
          ...new TextEncoder().encode(a),
          ...(typeof line === "string" ? new TextEncoder().encode(line) : line),
          ...new TextEncoder().encode(where === "middle" ? a : ""),
        ]);
        await fsp.writeFile(path, bytes);
        await assert.rejects(
          openPresignatureJournal({ path }),
          isJournalError("corrupt"),
          `${what} (${where})`,
        );
        assert.deepEqual(new Uint8Array(await fsp.readFile(path)), bytes, `${what}: untouched`);
      }
    }
    // The failed opens released the journal.
    await fsp.writeFile(path, a);
    await withJournal(path, (s) => Promise.resolve(assert.equal(s.recovery.events, 1)));
  } finally {
    await done();
  }
});

/**
 * A file system whose journal handle fails at `step` once armed (after writing half, for
 * "write"; the failing write waits for `hold` first, so that more events can queue meanwhile).
 */
function failingJournalFs(
  step: "write" | "sync",
  hold?: Promise<void>,
): { fs: JournalFs; arm: () => void; failing: Promise<void> } {
  let armed = false;
  let started!: () => void;
  const failing = new Promise<void>((r) => (started = r));
  const boom = () => Object.assign(new Error(`simulated crash at ${step}`), { code: "EIO" });
  const fs: JournalFs = {
    open: (async (file: string, flags?: string, mode?: number) => {
      const fh = await fsp.open(file, flags, mode);
      if (flags !== "a+") return fh;
      return new Proxy(fh, {
        get(target, prop) {
          if (armed && prop === "write" && step === "write") {
            return async (buf: Uint8Array, off: number, len: number) => {
              await target.write(buf, off, len >> 1, null);
              started();
              await hold;
              throw boom();
            };
          }
          if (armed && prop === "sync" && step === "sync") return () => Promise.reject(boom());
          const v = Reflect.get(target, prop);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    }) as JournalFs["open"],
  };
  return { fs, arm: () => (armed = true), failing };
}

for (const step of ["write", "sync"] as const) {
  test(`a failed ${step} of the journal: take fails, the store refuses changes, reopen recovers`, async () => {
    const { path, done } = await tempJournal();
    try {
      const [p, q, r] = [dealt(), dealt(), dealt()];
      const { fs, arm } = failingJournalFs(step);
      await withJournal(path, async (s) => {
        await s.put(p);
        await s.put(q);
        await s.take(q.id, request);
        arm();
        await assert.rejects(s.take(p.id, request), isJournalError("failed"));
        // Never served, even in this process.
        assert.equal(await s.isUsed(p.id), true);
        await assert.rejects(s.take(p.id, request), isJournalError("failed"));
        await assert.rejects(s.put(r), isJournalError("failed"));
        await assert.rejects(s.lockKey(LOCK), isJournalError("failed"));
        await assert.rejects(s.unlockKey(KEY), isJournalError("failed"));
      }, fs);
      await withJournal(path, async (s) => {
        assert.equal(await s.isUsed(q.id), true);
        if (step === "write") {
          assert.ok(s.recovery.tornBytes > 0, "the half-written line is dropped");
          assert.equal(await s.isUsed(p.id), false);
        } else {
          assert.equal(s.recovery.tornBytes, 0);
        }
        await s.put(r);
        await s.take(r.id, request);
      });
      await withJournal(path, async (s) => assert.equal(await s.isUsed(r.id), true));
    } finally {
      await done();
    }
  });
}

test("events queued behind a failing write are never written after its torn line", async () => {
  const { path, done } = await tempJournal();
  try {
    const [p, q] = [dealt(), dealt()];
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const { fs, arm, failing } = failingJournalFs("write", hold);
    await withJournal(path, async (s) => {
      await s.put(p);
      await s.put(q);
      arm();
      const first = s.take(p.id, request);
      await failing; // the write of p's id is half done
      const second = s.take(q.id, request); // queued for the next batch
      const locked = s.lockKey(LOCK);
      release();
      await assert.rejects(first, isJournalError("failed"));
      await assert.rejects(second, isJournalError("failed"));
      await assert.rejects(locked, isJournalError("failed"));
    }, fs);
    // Only the torn half line is on disk: the journal reopens (nothing follows the torn line).
    await withJournal(path, async (s) => {
      assert.ok(s.recovery.tornBytes > 0);
      assert.equal(s.recovery.events, 0);
      assert.equal(await s.keyLock(KEY), undefined);
    });
    assert.equal(await fsp.readFile(path, "utf8"), "");
  } finally {
    await done();
  }
});

// ---- one writer -------------------------------------------------------------------------------

test("a journal is open once per process; after close it opens again", async () => {
  const { path, done } = await tempJournal();
  try {
    const s = await openPresignatureJournal({ path });
    // Refused at once by the in-process check, not after waiting for the lock file: with a lock
    // timeout beyond the wait bound, a wait for the lock would fail the bounded wait, and the
    // message names this process (the lock timeout's names another one). No clock comparison:
    // a loaded machine can stall any fixed time.
    await assert.rejects(
      bounded(
        WAIT_MS,
        "the refusal of a second open",
        openPresignatureJournal({ path, lockTimeoutMs: 3 * WAIT_MS }),
      ),
      (e: unknown) => {
        isJournalError("in-use")(e);
        assert.match((e as Error).message, /already open in this process/);
        return true;
      },
    );
    await assert.rejects(
      openPresignatureJournal({ path: path + "/../" + "presignatures.journal" }),
      isJournalError("in-use"),
    );
    await s.close();
    await s.close();
    await assert.rejects(s.take("ab".repeat(32), request), isJournalError("closed"));
    await assert.rejects(s.put(dealt()), isJournalError("closed"));
    await withJournal(path, (t) => Promise.resolve(assert.equal(t.recovery.events, 0)));
    await assert.rejects(openPresignatureJournal({ path: "" }), TypeError);
    await assert.rejects(openPresignatureJournal(undefined as never), TypeError);
  } finally {
    await done();
  }
});

// ---- a real process killed with SIGKILL -------------------------------------------------------

/** The child: takes presignatures through the journal forever, printing each id once taken. */
const CHILD = `
import process from "node:process";
const { openPresignatureJournal } = await import(process.env.JOURNAL_MODULE);
const { decodePresignature } = await import(process.env.STORE_MODULE);
const base = decodePresignature(JSON.parse(process.env.PRESIGNATURE));
const request = JSON.parse(process.env.REQUEST);
const store = await openPresignatureJournal({ path: process.env.JOURNAL });
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
for (;;) {
  const id = hex(crypto.getRandomValues(new Uint8Array(32)));
  await store.put({ ...base, id });
  await store.take(id, request);
  process.stdout.write("taken " + id + "\\n");
}
`;

function childCommand(): [string, string[]] {
  const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
  return isDeno
    ? [process.execPath, ["eval", "--ext=js", CHILD]]
    : [process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD]];
}

test("kill -9 of a process taking presignatures: every id it took is used after reopening", async () => {
  const { path, done } = await tempJournal();
  try {
    const [cmd, args] = childCommand();
    const child = spawn(cmd, args, {
      cwd: new URL("..", import.meta.url).pathname,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        JOURNAL: path,
        JOURNAL_MODULE: new URL("./presignature_journal.ts", import.meta.url).href,
        STORE_MODULE: new URL("../core/presignature_store.ts", import.meta.url).href,
        PRESIGNATURE: JSON.stringify(encodePresignature(dealt())),
        REQUEST: JSON.stringify(request),
      },
    });
    const exited = new Promise<number | string | null>((r) =>
      child.on("exit", (code, signal) => r(signal ?? code))
    );
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const taken: string[] = [];
    let buffer = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child too slow: ${stderr}`)), 60_000);
      child.stdout.on("data", (d) => {
        buffer += d;
        const lines = buffer.split("\n");
        buffer = lines.pop()!;
        for (const l of lines) if (l.startsWith("taken ")) taken.push(l.slice(6));
        if (taken.length >= 25) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((how) => {
        clearTimeout(timer);
        reject(new Error(`child exited (${how}): ${stderr}`));
      });
    });
    // While the child runs, this process cannot open the journal.
    await assert.rejects(
      openPresignatureJournal({ path, lockTimeoutMs: 100 }),
      isJournalError("in-use"),
    );
    child.kill("SIGKILL");
    assert.equal(await exited, "SIGKILL");
    // It kept taking until the kill: the ids printed are a prefix of the ids taken.
    await withJournal(path, async (s) => {
      assert.ok(s.recovery.events >= taken.length);
      for (const id of taken) assert.equal(await s.isUsed(id), true, id);
      const p = { ...dealt(), id: taken[taken.length - 1] };
      await rejectsWith(s.put(p), "presignature-used");
    });
  } finally {
    await done();
  }
});
