/**
 * Harnesses of the seven zero-knowledge proof decoders (`core/zk/`), one each, seeded with the
 * proofs of recorded protocol runs: Pi-sch from key generation, Pi-prm, Pi-mod and Pi-fac from
 * aux info, Pi-enc, Pi-aff-g and Pi-log* from presigning. A decoder must refuse with
 * `ProofError` or return a proof whose encoding is exactly the input's JSON value (every integer
 * in its one canonical form, every length checked).
 * @module
 */
import { samePayload } from "../../core/bytes.ts";
import { ProofError } from "../../core/errors.ts";
import * as affg from "../../core/zk/pi_aff_g.ts";
import * as enc from "../../core/zk/pi_enc.ts";
import * as fac from "../../core/zk/pi_fac.ts";
import * as logstar from "../../core/zk/pi_log_star.ts";
import * as mod from "../../core/zk/pi_mod.ts";
import * as prm from "../../core/zk/pi_prm.ts";
import * as sch from "../../core/zk/pi_sch.ts";
import { allowOnly, type Harness, OracleFailure, valueTarget } from "../_engine.ts";
import { recordedMessages, type RunName } from "../_runs.ts";

interface Codec {
  decode(json: unknown): unknown;
  // deno-lint-ignore no-explicit-any
  encode(proof: any): unknown;
}

/** Where the seed proofs are: run, round, payload field (a list field gives one per entry). */
const PROOFS: [string, Codec, RunName, number, string[]][] = [
  ["zk-sch", sch, "keygen", 3, ["psi"]],
  ["zk-prm", prm, "aux-info", 2, ["prm"]],
  ["zk-mod", mod, "aux-info", 3, ["mod"]],
  ["zk-fac", fac, "aux-info", 3, ["fac"]],
  ["zk-enc", enc, "presign", 1, ["psi0"]],
  ["zk-aff-g", affg, "presign", 3, ["psi", "psiHat"]],
  ["zk-log-star", logstar, "presign", 3, ["psiPrime"]],
];

function proofHarness([name, codec, run, round, fields]: (typeof PROOFS)[number]): Harness {
  return {
    name,
    oracle: "ProofError, or a proof whose canonical encoding is exactly the input's JSON value",
    kind: "value",
    fast: true,
    // Pi-prm and Pi-mod are 128 repetitions of 3072-bit integers (~200 KB): slower to decode.
    seconds: name === "zk-prm" || name === "zk-mod" ? 120 : 60,
    timeoutMs: 2000,
    maxBytes: 512 * 1024,
    async setup() {
      const messages = await recordedMessages(run);
      const seeds = messages
        .filter((m) => m.round === round)
        .flatMap((m) => fields.map((f) => (m.payload as Record<string, unknown>)[f]));
      if (seeds.length === 0) throw new Error(`${name}: no seed proof in the ${run} run`);
      return valueTarget({
        seeds,
        allowed: allowOnly(ProofError),
        runValue(json) {
          const proof = codec.decode(json);
          if (!samePayload(json, codec.encode(proof))) {
            throw new OracleFailure(`${name}: accepted a proof that is not in canonical form`);
          }
          return "decoded";
        },
      });
    },
  };
}

/** One harness per proof decoder. */
export const zkHarnesses: Harness[] = PROOFS.map(proofHarness);
