/**
 * Prove and verify time of every CGGMP21 proof at real size (3072-bit moduli from the fixture
 * safe primes; 1536-bit primes), in the current runtime; for Pi-enc, Pi-log* and Pi-aff-g also
 * the verification by a verifier that holds the key of its own N-hat (and of Pi-aff-g's N0), by
 * CRT, as presigning verifies them.
 * @module
 */
import { fixturePaillier, fixtureRingPedersen } from "../testing/fixtures/keys.ts";
import { randomSigned, randomUnit } from "../core/math/mod.ts";
import { ELL, ELL_PRIME, Point, Q } from "../core/params.ts";
import type { ProofContext } from "../core/zk/mod.ts";
import * as sch from "../core/zk/pi_sch.ts";
import * as enc from "../core/zk/pi_enc.ts";
import * as affg from "../core/zk/pi_aff_g.ts";
import * as logstar from "../core/zk/pi_log_star.ts";
import * as prm from "../core/zk/pi_prm.ts";
import * as pimod from "../core/zk/pi_mod.ts";
import * as fac from "../core/zk/pi_fac.ts";
import { measure, type Row } from "./_harness.ts";

/** A proof's name, its prove, its verify, and its verify by the verifier's own key (CRT). */
type Pair = [string, () => unknown, () => unknown, (() => unknown)?];

function pairs(ctx: ProofContext): Pair[] {
  const prover = fixturePaillier(0);
  const verifierKey = fixturePaillier(1);
  const aux = fixtureRingPedersen(1); // the verifier's ring-Pedersen parameters
  const N0 = prover.N;
  const out: Pair[] = [];

  // Pi-sch
  {
    const x = randomSigned(250) + Q;
    const X = Point.BASE.multiply(x % Q);
    const st = { X, rid: new Uint8Array(32).fill(1) };
    let p: sch.Proof;
    out.push([
      "Pi-sch",
      () => {
        p = sch.prove(ctx, st, sch.commit(), { x: x % Q });
      },
      () => sch.verify(ctx, st, p),
    ]);
  }
  // Pi-enc
  {
    const k = randomSigned(ELL);
    const [K, rho] = prover.encrypt(k);
    const st = { N0, K, aux };
    let p: enc.Proof;
    out.push([
      "Pi-enc",
      () => {
        p = enc.prove(ctx, st, { k, rho, sk: prover });
      },
      () => enc.verify(ctx, st, p),
      () => enc.verify(ctx, st, p, { verifierKey }),
    ]);
  }
  // Pi-log* with base G
  {
    const x = randomSigned(ELL);
    const [C, rho] = prover.encrypt(x);
    const B = Point.BASE;
    const X = x < 0n ? B.multiply(-x).negate() : B.multiply(x);
    const st = { N0, C, X, B, aux };
    let p: logstar.Proof;
    out.push([
      "Pi-log*",
      () => {
        p = logstar.prove(ctx, st, { x, rho, sk: prover });
      },
      () => logstar.verify(ctx, st, p),
      () => logstar.verify(ctx, st, p, { verifierKey }),
    ]);
  }
  // Pi-aff-g: verifier's ciphertext C under N0 = verifier's key; prover's Y under N1.
  {
    const vN = verifierKey.N;
    const [C] = verifierKey.encrypt(randomSigned(ELL));
    const x = randomSigned(ELL);
    const y = randomSigned(ELL_PRIME);
    const rho = randomUnit(vN);
    const pk0 = verifierKey.publicKey;
    const D = pk0.add(pk0.mul(C, x), pk0.encryptWithNonce(y, rho));
    const [Y, rhoY] = prover.encrypt(y);
    const X = x < 0n ? Point.BASE.multiply(-x).negate() : Point.BASE.multiply(x);
    const st = { N0: vN, N1: N0, C, D, Y, X, aux };
    let p: affg.Proof;
    out.push([
      "Pi-aff-g",
      () => {
        p = affg.prove(ctx, st, { x, y, rho, rhoY, sk: prover });
      },
      () => affg.verify(ctx, st, p),
      () => affg.verify(ctx, st, p, { verifierKey }),
    ]);
  }
  // Pi-prm, Pi-mod (the prover's own modulus) and Pi-fac (under the verifier's parameters).
  {
    const rp = fixtureRingPedersen(0);
    const st = { N: rp.N, s: rp.s, t: rp.t };
    let p: prm.Proof;
    out.push([
      "Pi-prm",
      () => {
        p = prm.prove(ctx, st, { lambda: rp.lambda, phi: rp.phi });
      },
      () => prm.verify(ctx, st, p),
    ]);
  }
  {
    const st = { N: N0 };
    let p: pimod.Proof;
    out.push([
      "Pi-mod",
      () => {
        p = pimod.prove(ctx, st, { p: prover.p, q: prover.q });
      },
      () => pimod.verify(ctx, st, p),
    ]);
  }
  {
    const st = { N0, aux };
    let p: fac.Proof;
    out.push([
      "Pi-fac",
      () => {
        p = fac.prove(ctx, st, { p: prover.p, q: prover.q });
      },
      () => fac.verify(ctx, st, p),
    ]);
  }
  return out;
}

/** Rows "<proof> prove" and "<proof> verify" for every proof. */
export async function benchProofs(runs: number): Promise<Row[]> {
  const ctx: ProofContext = { sid: new Uint8Array(32).fill(7), prover: 0 };
  const rows: Row[] = [];
  for (const [name, prove, verify, verifyCrt] of pairs(ctx)) {
    rows.push(await measure(`${name} prove`, prove, runs));
    rows.push(await measure(`${name} verify`, verify, runs));
    if (verifyCrt) {
      const note = "the verifier's own N-hat (and N0^2 of Pi-aff-g) by CRT, as in presigning";
      rows.push(await measure(`${name} verify, own key`, verifyCrt, runs, 1, note));
    }
  }
  return rows;
}
