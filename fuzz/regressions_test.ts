/**
 * The fuzzers in the fast tier (Deno and Node):
 *
 * - every input saved in `fuzz/corpus/<harness>/` (a failure `deno task fuzz` found and
 *   minimized, or a finding's regression input) is replayed through its harness's oracle and
 *   must now hold it;
 * - each cheap harness runs a short seeded campaign, so a harness that breaks (or a decoder that
 *   regresses on the first mutants) fails here, not only in CI's campaign.
 * @module
 */
import "../testing/setup.ts";
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { campaign, judge } from "./_engine.ts";
import { HARNESSES, loadHarness } from "./harnesses/mod.ts";

const CORPUS = new URL("./corpus/", import.meta.url);

const saved = existsSync(CORPUS)
  ? readdirSync(CORPUS, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)
  : [];

for (const name of saved.sort()) {
  const files = readdirSync(new URL(`${name}/`, CORPUS)).filter((f) => f.endsWith(".bin")).sort();
  if (files.length === 0) continue;
  test(`fuzz regression: ${name} holds its oracle on its ${files.length} saved inputs`, async () => {
    assert.ok(name in HARNESSES, `fuzz/corpus/${name}/ names no harness`);
    const h = await loadHarness(name);
    const t = await h.setup();
    try {
      for (const file of files) {
        const input = new Uint8Array(readFileSync(new URL(`${name}/${file}`, CORPUS)));
        const v = await judge(h, t, input);
        assert.ok(
          v.ok,
          `${name}/${file}: ${v.ok ? "" : `${v.failure.kind}: ${v.failure.message}`}`,
        );
      }
    } finally {
      await t.close?.();
    }
  });
}

/** Cheap harnesses and how many mutants each runs here (a fixed seed: the same every run). */
const SMOKE: [string, number][] = [
  ["frames", 400],
  ["envelopes", 300],
  ["hd-paths", 400],
  ["xpubs", 300],
  ["session-inputs", 400],
  ["keyshare-syntax", 200],
  ["zk-sch", 300],
  ["gateway-handler", 200],
  ["rpc-routes", 150],
  ["protocol-keygen", 150],
  ["driver-keygen", 60],
  ["secure-session", 12],
];

for (const [name, inputs] of SMOKE) {
  test(`fuzz smoke: ${name} holds its oracle on its seeds and ${inputs} seeded mutants`, async () => {
    const h = await loadHarness(name);
    const t = await h.setup();
    try {
      const r = await campaign(h, t, { seed: 15, ms: 60_000, maxInputs: inputs, maxFailures: 1 });
      const f = r.failures[0];
      assert.equal(r.failures.length, 0, f && `${f.kind}: ${f.message}`);
      assert.ok(r.stats.accepted > 0, "no input was accepted: the seeds are not valid");
    } finally {
      await t.close?.();
    }
  });
}
