/**
 * The behaviour every {@link Backend} must have, as node:test cases shared by the in-memory and
 * Redis backend tests. Private to the tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, BackendMessage } from "./backend.ts";
import type { GatewayLimits } from "./config.ts";
import { GatewayError } from "./errors.ts";

/** Creates a fresh backend with the given limits; `null` means "skip" (with the reason). */
export type BackendFactory = (
  limits: Partial<GatewayLimits>,
) => Promise<Backend>;

const enc = new TextEncoder();
const size = (s: string) => enc.encode(s).length;

async function append(b: Backend, room: string, body: string): Promise<number> {
  return await b.append(room, body, size(body));
}

/** One contract case: a title and a body that gets a backend maker (closed after the case). */
export interface ContractCase {
  /** Test title. */
  title: string;
  /** Runs the case. */
  run: () => Promise<void>;
}

/**
 * Builds the contract cases; callers register them with `test` or `t.test`.
 *
 * @param name backend name used in test titles
 * @param make factory of fresh backends
 * @returns the cases
 */
export function backendContract(name: string, make: BackendFactory): ContractCase[] {
  const cases: ContractCase[] = [];
  const t = (
    title: string,
    fn: (b: (l?: Partial<GatewayLimits>) => Promise<Backend>) => Promise<void>,
  ) =>
    cases.push({
      title: `${name} backend: ${title}`,
      run: async () => {
        const made: Backend[] = [];
        try {
          await fn(async (l = {}) => {
            const b = await make(l);
            made.push(b);
            return b;
          });
        } finally {
          await Promise.all(made.map((b) => b.close()));
        }
      },
    });

  t("numbers messages from 0 per room and reads them back in order", async (mk) => {
    const b = await mk();
    assert.equal(await append(b, "a", "m0"), 0);
    assert.equal(await append(b, "a", "m1"), 1);
    assert.equal(await append(b, "b", "other"), 0);
    assert.equal(await append(b, "a", "m2"), 2);
    const r = await b.read("a", 0, 100);
    assert.equal(r.firstId, 0);
    assert.equal(r.nextId, 3);
    assert.deepEqual(r.messages.map((m) => [m.id, m.body]), [[0, "m0"], [1, "m1"], [2, "m2"]]);
    assert.ok(r.messages.every((m) => m.epoch === r.epoch) && r.epoch !== "");
    const mid = await b.read("a", 1, 1);
    assert.deepEqual(mid.messages.map((m) => m.id), [1]);
    const end = await b.read("a", 3, 10);
    assert.deepEqual(end.messages, []);
    assert.equal(end.nextId, 3);
  });

  t("keeps bodies exactly (newlines, unicode, large)", async (mk) => {
    const b = await mk();
    const bodies = ["a\nb\n", "✓ 𝄞 中文", "x".repeat(200_000), '{"k":"v"}', "\n"];
    for (const body of bodies) await append(b, "exact", body);
    const r = await b.read("exact", 0, 100);
    assert.deepEqual(r.messages.map((m) => m.body), bodies);
  });

  t("drops the oldest messages beyond the message-count limit", async (mk) => {
    const b = await mk({ maxHistoryMessages: 3 });
    for (let i = 0; i < 5; i++) await append(b, "c", `m${i}`);
    const r = await b.read("c", 0, 100);
    assert.equal(r.firstId, 2);
    assert.equal(r.nextId, 5);
    assert.deepEqual(r.messages, [], "reading from a dropped id returns nothing");
    const kept = await b.read("c", 2, 100);
    assert.deepEqual(kept.messages.map((m) => m.body), ["m2", "m3", "m4"]);
  });

  t("drops the oldest messages beyond the byte limit", async (mk) => {
    const b = await mk({ maxHistoryBytes: 10 });
    for (let i = 0; i < 4; i++) await append(b, "d", `ab${i}x`);
    const r = await b.read("d", 0, 100);
    assert.equal(r.firstId, 2);
    assert.deepEqual((await b.read("d", 2, 100)).messages.map((m) => m.body), ["ab2x", "ab3x"]);
  });

  t("issues unique indices 1, 2, ... per room, atomically", async (mk) => {
    const b = await mk();
    const got = await Promise.all(Array.from({ length: 50 }, () => b.issueUniqueIdx("u")));
    assert.deepEqual([...got].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
    assert.equal(await b.issueUniqueIdx("u2"), 1);
  });

  t("notifies listeners of messages appended after listen() resolves", async (mk) => {
    const b = await mk();
    const seen: BackendMessage[] = [];
    let wake: () => void = () => {};
    const unlisten = await b.listen("l", (m) => {
      seen.push(m);
      wake();
    });
    const waitFor = async (n: number) => {
      for (let i = 0; i < 200 && seen.length < n; i++) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 25);
        });
      }
      assert.equal(seen.length, n, `expected ${n} notifications`);
    };
    await append(b, "l", "one");
    await append(b, "l", "two\nlines");
    await waitFor(2);
    assert.deepEqual(seen.map((m) => [m.id, m.body]), [[0, "one"], [1, "two\nlines"]]);
    const r = await b.read("l", 0, 10);
    assert.equal(seen[0].epoch, r.epoch);
    unlisten();
    await append(b, "l", "three");
    // A marker room proves later notifications flow, without timing: listen to it and wait.
    const marker: BackendMessage[] = [];
    await b.listen("l-marker", (m) => marker.push(m));
    await append(b, "l-marker", "x");
    for (let i = 0; i < 200 && marker.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(marker.length, 1);
    assert.equal(seen.length, 2, "no notification after unlisten");
  });

  t(
    "refuses new rooms beyond maxRooms with too_many_rooms; existing rooms keep working",
    async (mk) => {
      const b = await mk({ maxRooms: 3 });
      await append(b, "r1", "x");
      await b.open("r2");
      await b.issueUniqueIdx("r3");
      const full = (e: unknown) => e instanceof GatewayError && e.code === "too_many_rooms";
      await assert.rejects(append(b, "r4", "x"), full);
      await assert.rejects(b.open("r4"), full);
      await assert.rejects(b.issueUniqueIdx("r4"), full);
      assert.equal(await append(b, "r1", "y"), 1);
      assert.equal(await b.issueUniqueIdx("r2"), 1);
    },
  );

  t(
    "charges new rooms to their source: a source at its quota is refused, others are not",
    async (mk) => {
      const b = await mk({ maxRoomsPerSource: 2 });
      const s1 = { source: "198.51.100.1", anonymous: false };
      const s2 = { source: "198.51.100.2", anonymous: false };
      await b.open("q1", s1);
      await append(b, "q2", "x").then(() => b.issueUniqueIdx("q3", s1));
      await assert.rejects(
        b.open("q4", s1),
        (e: unknown) =>
          e instanceof GatewayError && e.code === "too_many_source_rooms" && e.status === 429 &&
          e.limit === "max_rooms_per_source",
      );
      await assert.rejects(b.append("q4", "x", 1, s1), /maximum of 2 rooms/);
      assert.equal(await b.issueUniqueIdx("q1", s1), 1, "a source still uses its own rooms");
      assert.equal(await b.issueUniqueIdx("q2", s1), 1, "and rooms others created");
      await b.open("q4", s2);
      await b.open("q5");
    },
  );

  t(
    "the rooms a source created hold at most its history bytes; others are not charged",
    async (mk) => {
      const b = await mk({ maxHistoryBytesPerSource: 10, maxHistoryBytes: 100, maxBodyBytes: 10 });
      const s1 = { source: "198.51.100.1", anonymous: false };
      await b.open("h1", s1);
      await b.open("h2", s1);
      await append(b, "h1", "12345");
      await append(b, "h2", "1234");
      await assert.rejects(
        append(b, "h2", "ab"),
        (e: unknown) =>
          e instanceof GatewayError && e.code === "too_many_source_bytes" && e.status === 429 &&
          e.limit === "max_history_bytes_per_source",
      );
      assert.equal(await append(b, "h1", "x"), 1, "exactly the quota fits");
      await b.open("h3", { source: "198.51.100.2", anonymous: false });
      await append(b, "h3", "another");
      await append(b, "h4", "no source at all");
    },
  );

  t("anonymous rooms are capped apart from the others", async (mk) => {
    const b = await mk({ maxAnonymousRooms: 1, maxRooms: 3 });
    const anon = { source: null, anonymous: true };
    await b.open("a1", anon);
    await assert.rejects(
      b.open("a2", anon),
      (e: unknown) =>
        e instanceof GatewayError && e.code === "too_many_anonymous_rooms" &&
        e.limit === "max_anonymous_rooms",
    );
    await b.open("a2", { source: null, anonymous: false });
    await b.open("a3");
    await assert.rejects(
      b.open("a4"),
      (e: unknown) => e instanceof GatewayError && e.code === "too_many_rooms",
    );
  });

  t(
    "a room never used expires after the empty-room TTL, freeing its quota; a used one stays",
    async (mk) => {
      const b = await mk({ emptyRoomTtlMs: 150, roomIdleTtlMs: 60_000, maxRoomsPerSource: 2 });
      const s = { source: "198.51.100.9", anonymous: false };
      await b.open("e1", s);
      await append(b, "u1", "kept");
      await b.issueUniqueIdx("u2", s);
      await assert.rejects(
        b.open("e2", s),
        (e: unknown) => (e as GatewayError).limit !== undefined,
      );
      const gone = async () => {
        b.sweep();
        return (await b.read("e1", 0, 1)).epoch === "";
      };
      for (let i = 0; i < 400 && !(await gone()); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(await gone(), "the unused room was forgotten");
      await b.open("e2", s);
      assert.deepEqual((await b.read("u1", 0, 1)).messages.map((m) => m.body), ["kept"]);
      assert.equal(await b.issueUniqueIdx("u2", s), 2, "a room with an index issued is kept");
    },
  );

  t("reports healthy when connected", async (mk) => {
    const b = await mk();
    const h = await b.health();
    assert.equal(h.ok, true);
    assert.equal(h.kind, b.kind);
  });
  return cases;
}
