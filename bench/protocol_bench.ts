/**
 * Protocol benchmarks: every party of a session runs in this one process over the in-memory
 * network (so a row is the sum of all parties' work, less what overlaps in waiting). Keygen,
 * aux info (fixture safe primes, and fresh ones for n = 2), presigning, the one-round signing
 * with a presignature, full 2-of-2 signing, and the exponentiations of one full 2-party signing
 * per party.
 * @module
 */
import { type ModPowCounter, setModPowCounter } from "../core/math/mod.ts";
import { auxInfo, type PaillierPrimes } from "../core/protocols/aux_info.ts";
import { runProtocol } from "../core/protocols/driver.ts";
import { keygen } from "../core/protocols/keygen.ts";
import { createMemoryNetwork } from "../core/protocols/memory_transport.ts";
import { type Presignature, presignProtocol } from "../core/protocols/presign.ts";
import { fullSignProtocol, signMessageWithPresignature } from "../core/protocols/sign.ts";
import { MemoryPresignatureStore } from "../core/presignature_store.ts";
import type { KeyShare, Protocol, ProtocolState } from "../core/protocols/types.ts";
import { hashMessage } from "../core/signature.ts";
import { platformSafePrime } from "../platform/mod.ts";
import { fixturePaillier } from "../testing/fixtures/keys.ts";
import { measure, type Row } from "./_harness.ts";

export const KEY = "bench-key";
/** A stand-in key epoch (the key store names real ones; presigning treats it as opaque). */
export const EPOCH = "be".repeat(32);
export const sid = (): Uint8Array => crypto.getRandomValues(new Uint8Array(32));
export const message: Uint8Array = new TextEncoder().encode("benchmark message");
export const digest: Uint8Array = hashMessage("sha256", message);

/** Runs `protocol` for every party (input j to party j) over one memory network. */
export function runParties<I, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O> | readonly Protocol<I, S, O>[],
  inputs: readonly I[],
): Promise<O[]> {
  const net = createMemoryNetwork(inputs.length);
  const pick = (j: number): Protocol<I, S, O> => "start" in protocol ? protocol : protocol[j];
  return Promise.all(inputs.map((input, j) => runProtocol(pick(j), input, net[j])));
}

/** The Paillier primes of fixture key `k`. */
export function fixturePrimes(k: number): PaillierPrimes {
  const key = fixturePaillier(k);
  return { p: key.p, q: key.q };
}

/** Key shares of `primes.length` parties: keygen, then aux info on the given primes. */
export async function keygenAndAux(primes: readonly PaillierPrimes[]): Promise<KeyShare[]> {
  const n = primes.length;
  const s1 = sid();
  const cores = await runParties(keygen, primes.map((_, i) => ({ sid: s1, i, n })));
  const s2 = sid();
  const aux = await runParties(auxInfo, primes.map((p, i) => ({ sid: s2, i, n, primes: p })));
  return cores.map((c, i) => ({ ...c, aux: aux[i] }));
}

/** One presigning session of every party (SHA-256, the benchmark key and epoch). */
export function presignAll(shares: readonly KeyShare[]): Promise<Presignature[]> {
  const s = sid();
  return runParties(
    presignProtocol,
    shares.map((share) => ({ share, sid: s, keyId: KEY, epoch: EPOCH, hash: "sha256" as const })),
  );
}

/** `protocol` with every (synchronous) machine call, `start` and `step`, run inside `around`. */
export function aroundSteps<I, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O>,
  around: <T>(f: () => T) => T,
): Protocol<I, S, O> {
  return {
    name: protocol.name,
    rounds: protocol.rounds,
    start: (input, rng) => around(() => protocol.start(input, rng)),
    step: (state, inbox, rng) => around(() => protocol.step(state, inbox, rng)),
  };
}

/** `protocol` with every (synchronous) machine call counted into `counter` and timed. */
export function counted<I, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O>,
  counter: ModPowCounter,
  time: { ms: number },
): Protocol<I, S, O> {
  return aroundSteps(protocol, (f) => {
    setModPowCounter(counter);
    const t0 = performance.now();
    try {
      return f();
    } finally {
      time.ms += performance.now() - t0;
      setModPowCounter(null);
    }
  });
}

/** Rows for n = 2 and n = 3; `runs` timed runs each (the fresh-prime row runs once). */
export async function benchProtocols(runs: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const n of [2, 3]) {
    const primes = Array.from({ length: n }, (_, i) => fixturePrimes(i));
    rows.push(
      await measure(`keygen n=${n}`, () => {
        const s = sid();
        return runParties(keygen, primes.map((_, i) => ({ sid: s, i, n })));
      }, runs),
    );
    rows.push(
      await measure(
        `aux info n=${n} (fixture primes)`,
        () => {
          const s = sid();
          return runParties(auxInfo, primes.map((p, i) => ({ sid: s, i, n, primes: p })));
        },
        runs,
        0,
      ),
    );
    if (n === 2) {
      rows.push(
        await measure(
          `aux info n=2 with fresh safe primes`,
          async () => {
            const raw = await Promise.all([0, 1, 2, 3].map(() => platformSafePrime(1536)));
            const s = sid();
            return runParties(
              auxInfo,
              [0, 1].map((i) => ({
                sid: s,
                i,
                n: 2,
                primes: { p: raw[2 * i], q: raw[2 * i + 1] },
              })),
            );
          },
          Math.min(runs, 2),
          0,
          "4 x platformSafePrime(1536) + aux info",
        ),
      );
    }
    const shares = await keygenAndAux(primes);
    // Every presigning run leaves presignatures, stored; each is used once by the signing round.
    const made: { pres: Presignature[]; stores: MemoryPresignatureStore[] }[] = [];
    rows.push(
      await measure(
        `presign n=${n}`,
        async () => {
          const pres = await presignAll(shares);
          made.push({ pres, stores: await storePresignatures(pres) });
        },
        runs,
        0,
      ),
    );
    rows.push(
      await measure(
        `sign with a presignature n=${n} (1 round)`,
        () => {
          const { pres, stores } = made.pop()!;
          return signThroughStores(pres, stores);
        },
        Math.max(1, runs - 1),
        runs > 1 ? 1 : 0,
        "each presignature used once",
      ),
    );
    if (n === 2) {
      rows.push(
        await measure(
          "full signing 2-of-2 (presign + sign)",
          () => {
            const s = sid();
            return runParties(
              fullSignProtocol,
              shares.map((share) => ({ share, sid: s, keyId: KEY, digest })),
            );
          },
          runs,
          0,
        ),
      );
      rows.push(...await countFullSign(shares));
    }
  }
  return rows;
}

/**
 * Each party's presignature in a memory store of its own: the last act of presigning (a
 * service stores what it made), not part of the signing round.
 */
export async function storePresignatures(
  pres: readonly Presignature[],
): Promise<MemoryPresignatureStore[]> {
  const stores = pres.map(() => new MemoryPresignatureStore());
  await Promise.all(pres.map((p, j) => stores[j].put(p)));
  return stores;
}

/**
 * The one-round signing with a presignature, through the only exported path:
 * `signMessageWithPresignature` takes each party's presignature from its store (stored first
 * when no stores are given).
 */
export async function signThroughStores(
  pres: readonly Presignature[],
  given?: readonly MemoryPresignatureStore[],
) {
  const stores = given ?? await storePresignatures(pres);
  const net = createMemoryNetwork(pres.length);
  const request = {
    presignatureId: pres[0].id,
    keyId: KEY,
    epoch: EPOCH,
    hdPath: [],
    hash: "sha256" as const,
    message,
  };
  return Promise.all(
    pres.map((_, j) => signMessageWithPresignature(request, net[j], { store: stores[j] })),
  );
}

/** One full 2-party signing with each party's exponentiations counted (and its steps timed). */
async function countFullSign(shares: readonly KeyShare[]): Promise<Row[]> {
  const counters = shares.map((): ModPowCounter => ({ counts: new Map() }));
  const times = shares.map(() => ({ ms: 0 }));
  const s = sid();
  await runParties(
    shares.map((_, i) => counted(fullSignProtocol, counters[i], times[i])),
    shares.map((share) => ({ share, sid: s, keyId: KEY, digest })),
  );
  return shares.map((_, i) => {
    const counts = [...counters[i].counts].sort(([a], [b]) => a.localeCompare(b));
    const total = counts.reduce((a, [, c]) => a + c, 0);
    const ms = times[i].ms;
    return {
      name: `full 2-of-2 signing, party ${i}: ${total} modpow`,
      runs: 1,
      medianMs: ms,
      minMs: ms,
      maxMs: ms,
      note: `time in this party's steps; ${counts.map(([k, c]) => `${k} x${c}`).join(", ")}`,
    };
  });
}
