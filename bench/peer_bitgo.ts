/**
 * The TypeScript peer: @bitgo/sdk-lib-mpc (dev/bench dependency only). Its safe-prime
 * generator (OpenSSL compiled to WebAssembly), its range proof (counterpart of Pi-enc) and
 * its Paillier key proof, timed at the same sizes as ours (3072-bit N from our fixtures).
 * @module
 */
import mpc from "@bitgo/sdk-lib-mpc";
import opensslbytes from "@bitgo/sdk-opensslbytes";
import * as paillierBigint from "paillier-bigint";
import { FIXTURE_SAFE_PRIMES } from "../testing/fixtures/keys.ts";
import { measure, type Row } from "./_harness.ts";
import { randomBelow, randomBits, randomUnit } from "../core/math/mod.ts";

const { EcdsaRangeProof, EcdsaPaillierProof, Secp256k1Curve, generateSafePrime } =
  mpc as unknown as {
    EcdsaRangeProof: {
      prove(...a: unknown[]): Promise<unknown>;
      verify(...a: unknown[]): boolean;
    };
    EcdsaPaillierProof: {
      generateP(n: bigint): Promise<bigint[]>;
      prove(n: bigint, lambda: bigint, p: bigint[]): bigint[];
      verify(n: bigint, p: bigint[], sigma: bigint[]): boolean;
    };
    Secp256k1Curve: new () => unknown;
    generateSafePrime(bits: number, bytes: Uint8Array): Promise<bigint>;
  };

/** Peer range proof and Paillier key proof at 3072-bit N. */
export async function benchPeerProofs(runs: number): Promise<Row[]> {
  const [p, q, p2, q2] = FIXTURE_SAFE_PRIMES;
  const n = p * q;
  const pk = new paillierBigint.PublicKey(n, n + 1n);
  const ntilde = { ntilde: p2 * q2, h1: randomUnit(p2 * q2) ** 2n % (p2 * q2), h2: 0n };
  ntilde.h2 = ntilde.h1 ** 3n % ntilde.ntilde;
  const curve = new Secp256k1Curve();
  const m = randomBits(255);
  const r = randomUnit(n);
  const c = pk.encrypt(m, r);
  let proof: unknown;
  const rows: Row[] = [];
  rows.push(
    await measure("peer range proof prove (3072-bit N)", async () => {
      proof = await EcdsaRangeProof.prove(curve, 3072, pk, ntilde, c, m, r);
    }, runs),
  );
  rows.push(
    await measure("peer range proof verify (3072-bit N)", () => {
      if (!EcdsaRangeProof.verify(curve, 3072, pk, ntilde, proof, c)) {
        throw new Error("peer verify failed");
      }
    }, runs),
  );
  const lambda = (p - 1n) * (q - 1n);
  const challenge = await EcdsaPaillierProof.generateP(n);
  let sigma: bigint[] = [];
  rows.push(
    await measure("peer Paillier key proof prove (3072-bit N)", () => {
      sigma = EcdsaPaillierProof.prove(n, lambda, challenge);
    }, runs),
  );
  rows.push(
    await measure("peer Paillier key proof verify (3072-bit N)", () => {
      if (!EcdsaPaillierProof.verify(n, challenge, sigma)) throw new Error("peer verify failed");
    }, runs),
  );
  void randomBelow;
  return rows;
}

/** Peer safe-prime generation (OpenSSL compiled to WebAssembly); slow, so few runs. */
export async function benchPeerSafePrime(runs: number): Promise<Row[]> {
  const { buffer } = opensslbytes.loadWebAssembly();
  return [
    await measure(
      "peer generateSafePrime 1536 (OpenSSL wasm)",
      () => generateSafePrime(1536, buffer),
      runs,
      0,
    ),
  ];
}
