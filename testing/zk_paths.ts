/**
 * TEST-ONLY: the two verification paths of Pi-enc, Pi-aff-g and Pi-log* side by side. A verifier
 * holding the key of a modulus of the statement computes its equations by CRT
 * (`VerifyOptions.verifierKey`); the public path computes them modulo N, N^2. Both must give the
 * same answer on every input, hostile ones included, so the proof tests run every verification
 * both ways through {@link bothPaths}.
 * @module
 */
import assert from "node:assert/strict";
import { ProofError } from "../core/errors.ts";
import { setModPowCounter } from "../core/math/mod.ts";
import { inlineRandomizers, PaillierSecretKey, type RandomizerSource } from "../core/paillier.ts";
import type { VerifyOptions } from "../core/zk/pi_enc.ts";

/** How a verification ended: accepted, or the ProofError code and message it threw. */
function outcome(f: () => void): { ok: true } | { ok: false; code: string; error: unknown } {
  try {
    f();
    return { ok: true };
  } catch (e) {
    if (!(e instanceof ProofError)) throw e;
    return { ok: false, code: e.code, error: e };
  }
}

/**
 * Runs a verification by the public path and by CRT and asserts that they agree: both accept,
 * or both reject with a ProofError of the same code and message.
 * @param plain the verification without the verifier's key.
 * @param crt the same verification with it.
 * @throws what `plain` throws (so `rejects(...)` sees the usual error).
 */
export function bothPaths(plain: () => void, crt: () => void): void {
  const a = outcome(plain);
  const b = outcome(crt);
  if (a.ok || b.ok) {
    assert.equal(b.ok, a.ok, `public path ${a.ok ? "accepts" : "rejects"}, CRT path differs`);
    return;
  }
  assert.equal(b.code, a.code, "the CRT path rejects with another code");
  assert.equal((b.error as Error).message, (a.error as Error).message);
  throw a.error;
}

/**
 * The exponentiations `f` runs, by slot and modulus size (`setModPowCounter` keys such as
 * "public:3072", "secret:1536").
 * @param f the work to count.
 * @returns the counts (a key absent: none).
 */
export function expCounts(f: () => void): Map<string, number> {
  const counter = { counts: new Map<string, number>() };
  setModPowCounter(counter);
  try {
    f();
  } finally {
    setModPowCounter(null);
  }
  return counter.counts;
}

/**
 * {@link bothPaths} for an input the proof may reject: a verification with and without the
 * verifier's key must agree; the ProofError they agree on is swallowed.
 * @param verify runs the verification with the given options (none: the public path).
 * @param verifierKey the key that makes the CRT path.
 */
export function agreeBothPaths(
  verify: (options?: VerifyOptions) => void,
  verifierKey: PaillierSecretKey,
): void {
  try {
    bothPaths(() => verify(), () => verify({ verifierKey }));
  } catch (e) {
    if (!(e instanceof ProofError)) throw e;
  }
}

/** One randomizer a prover took: its modulus, whether by its owner's key, and rho. */
export interface TakenRandomizer {
  readonly N: bigint;
  readonly own: boolean;
  readonly rho: bigint;
}

/**
 * A randomizer source that computes on the spot (`inlineRandomizers`) and records what it hands
 * out, for the tests that a prover takes its randomizers from the source it is given.
 * @returns the source and the record.
 */
export function recordingRandomizers(): {
  source: RandomizerSource;
  taken: TakenRandomizer[];
} {
  const taken: TakenRandomizer[] = [];
  const source: RandomizerSource = {
    take(key, rng) {
      const r = inlineRandomizers.take(key, rng);
      taken.push({ N: key.N, own: key instanceof PaillierSecretKey, rho: r[0] });
      return r;
    },
  };
  return { source, taken };
}
