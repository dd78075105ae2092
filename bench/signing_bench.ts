/**
 * Our 2-of-2 signing against DKLs23 (`@silencelaboratories/dkls-wasm-ll-node`, a dev dependency
 * through @bitgo/sdk-lib-mpc: the protocol a TypeScript wallet would pick instead), both parties
 * in one process, and each party's compute against the OpenSSL limit.
 *
 * - full signing: ours is presigning + the signing round (`fullSignProtocol`); DKLs23's is its
 *   sign session from the first message to `combine`.
 * - online signing: ours is the one round with a presignature (`signMessageWithPresignature`
 *   taking it from memory stores it was put into when it was made); DKLs23's is `lastMessage` +
 *   `combine` after its pre-signature. Ours is warmed up by 10 untimed signing rounds (the
 *   steady state of a signer: the first rounds run before the JIT has compiled the curve
 *   arithmetic), DKLs23 (WebAssembly) by one signature.
 * - full signing with randomizers ready: ours again, with a `RandomizerRegistry` installed and
 *   refilled (untimed) before each signature, as a service's compute workers refill theirs
 *   when idle; the refill's own cost is reported apart, per party and presigning (9
 *   randomizers under its own N by CRT, 4 under the peer's with its public key).
 * - per party: the CPU time of the party's own steps in one full signing, and the time the
 *   exponentiations of those steps take when replayed, with their real bases, exponents and
 *   moduli, on OpenSSL alone (Deno: the FFI backends, consttime for the secret slot and
 *   `BN_mod_exp_mont` for the public one; Node: node:crypto's constant-time DH). The difference
 *   is everything that is not an exponentiation: proofs' other arithmetic, Euclid, hashing,
 *   curve operations, encoding.
 *
 * {@link compareRuntimes} runs this in child processes, alternating Deno with FFI, Deno without
 * it (the backends before FFI) and Node, so that all three see the same machine load, and prints
 * one table with the ratios. Times are process CPU (user + system, all threads) per signature.
 * @module
 */
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { loadavg } from "node:os";
import process from "node:process";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import {
  getModPowBackends,
  type ModPowBackend,
  type ModPowBackends,
  setModPowBackends,
} from "../core/math/mod.ts";
import {
  PaillierPublicKey,
  PaillierSecretKey,
  RandomizerPool,
  RandomizerRegistry,
  setRandomizerSource,
} from "../core/paillier.ts";
import type { Presignature } from "../core/protocols/presign.ts";
import { fullSignProtocol } from "../core/protocols/sign.ts";
import type { KeyShare, Protocol, ProtocolState } from "../core/protocols/types.ts";
import { detectRuntime } from "../platform/mod.ts";
import { createNodeCryptoBackend } from "../platform/node_crypto.ts";
import { openSslFfiBackends } from "../platform/openssl_ffi.ts";
import { DENO, NODE, ROOT } from "../testing/processes.ts";
import {
  aroundSteps,
  digest,
  fixturePrimes,
  KEY,
  keygenAndAux,
  presignAll,
  runParties,
  sid,
  signThroughStores,
  storePresignatures,
} from "./protocol_bench.ts";

/** CPU milliseconds (user + system) of this process since `from`. */
function cpuSince(from: ReturnType<typeof process.cpuUsage>): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

/** Runs `f` and returns its CPU and wall milliseconds. */
async function timed(f: () => unknown): Promise<{ cpu: number; wall: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  return { cpu: cpuSince(c0), wall: performance.now() - t0 };
}

/** One exponentiation as a backend saw it. */
interface ExpCall {
  secret: boolean;
  b: bigint;
  e: bigint;
  m: bigint;
}

let recording: ExpCall[] | null = null;

function recorder(inner: ModPowBackend, secret: boolean): ModPowBackend {
  return {
    name: inner.name,
    constantTime: inner.constantTime,
    modPow(b, e, m) {
      recording?.push({ secret, b, e, m });
      return inner.modPow(b, e, m);
    },
  };
}

/** `protocol` whose machine calls record their exponentiations into `log` and time into `cpu`. */
function recorded<I, S extends ProtocolState, O>(
  protocol: Protocol<I, S, O>,
  log: ExpCall[],
  cpu: { ms: number },
): Protocol<I, S, O> {
  return aroundSteps(protocol, (f) => {
    recording = log;
    const c0 = process.cpuUsage();
    try {
      return f();
    } finally {
      cpu.ms += cpuSince(c0);
      recording = null;
    }
  });
}

/** The OpenSSL backends a replay runs on in this runtime (see the module doc). */
function opensslLimit(): ModPowBackends | undefined {
  if (detectRuntime() === "node") {
    const ossl = createNodeCryptoBackend("openssl-consttime", true, 4096);
    return { public: ossl, secret: ossl };
  }
  const ffi = openSslFfiBackends();
  return "secret" in ffi ? { public: ffi.public, secret: ffi.secret } : undefined;
}

/** What one child measures: per-signature CPU and wall times, and the per-party split. */
export interface SigningSample {
  runtime: string;
  backends: { public: string; secret: string };
  oursFull: { cpu: number; wall: number }[];
  /** Full signing with every Paillier randomizer precomputed (refilled untimed before each). */
  oursFullReady: { cpu: number; wall: number }[];
  oursPresign: { cpu: number; wall: number }[];
  oursOnline: { cpu: number; wall: number }[];
  dklsFull: { cpu: number; wall: number }[];
  dklsOnline: { cpu: number; wall: number }[];
  /** Per party of one full signing: its steps' CPU, its exponentiations, their OpenSSL replay. */
  parties: PartySample[];
  /** The same with the randomizers precomputed. */
  partiesReady: PartySample[];
  /** CPU ms to precompute what one presigning takes per party: 9 own (CRT), 4 the peer's. */
  refillMs: number[];
}

/** One party's compute in one full signing. */
export interface PartySample {
  computeMs: number;
  exps: number;
  limitMs: number;
  secretLimitMs: number;
}

/** Both parties of our protocol and of DKLs23, `runs` signatures each, in this process. */
export async function sampleSigning(runs: number): Promise<SigningSample> {
  const shares = await keygenAndAux([fixturePrimes(0), fixturePrimes(1)]);
  const sample: SigningSample = {
    runtime: detectRuntime() === "deno"
      ? `Deno ${(globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno}`
      : `Node ${process.version}`,
    backends: { public: getModPowBackends().public.name, secret: getModPowBackends().secret.name },
    oursFull: [],
    oursFullReady: [],
    oursPresign: [],
    oursOnline: [],
    dklsFull: [],
    dklsOnline: [],
    parties: [],
    partiesReady: [],
    refillMs: [],
  };
  await fullSign(shares); // warm-up: JIT, the backends' per-modulus contexts
  // Warm-up of the signing round, to the steady state of a signer that signs all day: 10
  // signatures (JIT of the curve arithmetic), each from fresh stores of one presignature.
  const warm = await presignAll(shares);
  for (let i = 0; i < 10; i++) await signThroughStores(warm);
  for (let i = 0; i < runs; i++) {
    sample.oursFull.push(await timed(() => fullSign(shares)));
    let pres: Presignature[] = [];
    sample.oursPresign.push(
      await timed(async () => {
        pres = await presignAll(shares);
      }),
    );
    const stores = await storePresignatures(pres);
    sample.oursOnline.push(await timed(() => signThroughStores(pres, stores)));
  }
  await withRandomizersReady(async (refill) => {
    await fullSign(shares); // the moduli come into use
    for (let i = 0; i < runs; i++) {
      refill();
      sample.oursFullReady.push(await timed(() => fullSign(shares)));
    }
    refill();
    sample.partiesReady = await perParty(shares);
  });
  sample.refillMs = refillCost(shares[0], runs);
  const dkls = loadDkls();
  const keyshares = dkls.keygen();
  dkls.sign(keyshares); // warm-up
  for (let i = 0; i < runs; i++) {
    let parties: unknown[] = [];
    const pre = await timed(() => {
      parties = dkls.presign(keyshares);
    });
    const online = await timed(() => dkls.finish(parties, digest));
    sample.dklsFull.push({ cpu: pre.cpu + online.cpu, wall: pre.wall + online.wall });
    sample.dklsOnline.push(online);
  }
  sample.parties = await perParty(shares);
  return sample;
}

function fullSign(shares: readonly KeyShare[]) {
  const s = sid();
  return runParties(
    fullSignProtocol,
    shares.map((share) => ({ share, sid: s, keyId: KEY, digest })),
  );
}

/**
 * Runs `body` with a randomizer registry installed; `refill()` fills it to its targets (two
 * presignings' worth per modulus, more than one signing takes).
 */
async function withRandomizersReady(body: (refill: () => void) => Promise<void>): Promise<void> {
  const registry = new RandomizerRegistry({ own: 18, peer: 18 });
  const prev = setRandomizerSource(registry);
  try {
    await body(() => void registry.refill(Number.MAX_SAFE_INTEGER));
  } finally {
    setRandomizerSource(prev);
  }
}

/**
 * CPU ms, per run, of precomputing what one 2-party presigning takes from party 0's pools: 9
 * randomizers under its own N (by CRT) and 4 under its peer's (public key).
 */
function refillCost(share: KeyShare, runs: number): number[] {
  const aux = share.aux!;
  const own = new RandomizerPool(new PaillierSecretKey(aux.p, aux.q));
  const peer = new RandomizerPool(new PaillierPublicKey(aux.parties[1 - share.i].N));
  own.fill(1);
  peer.fill(1);
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    own.fill(9);
    peer.fill(4);
    out.push(cpuSince(c0));
  }
  return out;
}

/** One full signing with each party's exponentiations recorded, then replayed on OpenSSL. */
async function perParty(shares: readonly KeyShare[]): Promise<PartySample[]> {
  const logs = shares.map((): ExpCall[] => []);
  const cpu = shares.map(() => ({ ms: 0 }));
  const prev = setModPowBackends({
    public: recorder(getModPowBackends().public, false),
    secret: recorder(getModPowBackends().secret, true),
  });
  try {
    const s = sid();
    await runParties(
      shares.map((_, i) => recorded(fullSignProtocol, logs[i], cpu[i])),
      shares.map((share) => ({ share, sid: s, keyId: KEY, digest })),
    );
  } finally {
    setModPowBackends(prev);
  }
  const limit = opensslLimit();
  return logs.map((log, i) => {
    let all = 0;
    let secret = 0;
    if (limit) {
      for (const c of log) limit[c.secret ? "secret" : "public"].modPow(c.b, c.e, c.m); // warm
      for (const c of log) {
        const c0 = process.cpuUsage();
        limit[c.secret ? "secret" : "public"].modPow(c.b, c.e, c.m);
        const ms = cpuSince(c0);
        all += ms;
        if (c.secret) secret += ms;
      }
    }
    return {
      computeMs: cpu[i].ms,
      exps: log.length,
      limitMs: limit ? all : NaN,
      secretLimitMs: limit ? secret : NaN,
    };
  });
}

/** DKLs23 (WebAssembly) for two parties, driven as its README shows. */
function loadDkls() {
  type Msg = { from_id: number; to_id?: number; clone(): Msg };
  type Session = {
    createFirstMessage(): Msg;
    handleMessages(m: Msg[], c?: unknown): Msg[];
    calculateChainCodeCommitment(): unknown;
    keyshare(): unknown;
    lastMessage(h: Uint8Array): Msg;
    combine(m: Msg[]): [Uint8Array, Uint8Array];
  };
  const lib = createRequire(import.meta.url)("@silencelaboratories/dkls-wasm-ll-node") as {
    KeygenSession: new (n: number, t: number, i: number) => Session;
    SignSession: new (share: unknown, path: string) => Session;
    Keyshare: { fromBytes(b: Uint8Array): unknown };
  };
  const others = (msgs: Msg[], j: number) =>
    msgs.filter((m) => m.from_id !== j).map((m) => m.clone());
  const toMe = (msgs: Msg[], j: number) => msgs.filter((m) => m.to_id === j).map((m) => m.clone());
  const presign = (shares: Uint8Array[]): Session[] => {
    const ps = shares.map((b) => new lib.SignSession(lib.Keyshare.fromBytes(b), "m"));
    const m1 = ps.map((p) => p.createFirstMessage());
    const m2 = ps.flatMap((p, j) => p.handleMessages(others(m1, j)));
    const m3 = ps.flatMap((p, j) => p.handleMessages(toMe(m2, j)));
    ps.forEach((p, j) => p.handleMessages(toMe(m3, j)));
    return ps;
  };
  const finish = (parties: unknown[], hash: Uint8Array) => {
    const ps = parties as Session[];
    const last = ps.map((p) => p.lastMessage(hash));
    return ps.map((p, j) => p.combine(others(last, j)));
  };
  return {
    keygen(): Uint8Array[] {
      const ps = [0, 1].map((i) => new lib.KeygenSession(2, 2, i));
      const m1 = ps.map((p) => p.createFirstMessage());
      const m2 = ps.flatMap((p, j) => p.handleMessages(others(m1, j)));
      const commitments = ps.map((p) => p.calculateChainCodeCommitment());
      const m3 = ps.flatMap((p, j) => p.handleMessages(toMe(m2, j)));
      const m4 = ps.flatMap((p, j) => p.handleMessages(toMe(m3, j), commitments));
      ps.forEach((p, j) => p.handleMessages(others(m4, j)));
      return ps.map((p) => (p.keyshare() as { toBytes(): Uint8Array }).toBytes());
    },
    presign,
    finish,
    /** One signature, checked against the joint public key (the comparison is of working code). */
    sign(shares: Uint8Array[]): void {
      const [r, s] = finish(presign(shares), digest)[0];
      const pk = (lib.Keyshare.fromBytes(shares[0]) as { publicKey: Uint8Array }).publicKey;
      const sig = new Uint8Array([...r, ...s]);
      if (!secp256k1.verify(sig, digest, pk, { prehash: false, lowS: false })) {
        throw new Error("DKLs23 signature does not verify");
      }
    },
  };
}

/** The three configurations the comparison alternates. */
const VARIANTS = [
  { label: "OpenSSL through FFI", cmd: DENO, args: ["run", "-A", "bench/signing_child.ts"] },
  {
    label: "before FFI: polyfill + BigInt",
    cmd: DENO,
    args: ["run", "-A", "bench/signing_child.ts", "--ffi=off"],
  },
  {
    label: "OpenSSL (node:crypto DH)",
    cmd: NODE,
    args: ["--import", "tsx", "bench/signing_child.ts"],
  },
] as const;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function fmt(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

/**
 * Runs `rounds` rounds of the three configurations, alternating, each child timing `runs`
 * signatures of each kind, and returns the markdown tables.
 */
export function compareRuntimes(rounds: number, runs: number): string {
  const samples = VARIANTS.map((): SigningSample[] => []);
  const loads: number[] = [];
  for (let r = 0; r < rounds; r++) {
    VARIANTS.forEach((v, k) => {
      const out = spawnSync(v.cmd, [...v.args, `--runs=${runs}`], {
        cwd: ROOT,
        encoding: "utf8",
        maxBuffer: 1 << 24,
      });
      if (out.status !== 0) throw new Error(`${v.label}: exit ${out.status}\n${out.stderr}`);
      const line = out.stdout.trim().split("\n").pop() ?? "";
      samples[k].push(JSON.parse(line) as SigningSample);
      loads.push(loadAverage());
    });
  }
  const pick = (k: number, f: (s: SigningSample) => { cpu: number }[]) =>
    median(samples[k].flatMap((s) => f(s).map((x) => x.cpu)));
  const party = (
    k: number,
    f: (s: SigningSample) => PartySample[],
    g: (p: PartySample) => number,
  ) => median(samples[k].flatMap((s) => f(s).map(g)));
  const lines = [
    `### Full and online 2-of-2 signing against DKLs23 (${rounds} alternating rounds x ${runs} signatures; CPU per signature, both parties in one process, p50)`,
    "",
    "| runtime, backends | ours full | ours full, randomizers ready | DKLs23 full | ours (ready) / DKLs23 | ours online | DKLs23 online | ours / DKLs23 | ours presign |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  VARIANTS.forEach((v, k) => {
    const of = pick(k, (s) => s.oursFull);
    const ready = pick(k, (s) => s.oursFullReady);
    const df = pick(k, (s) => s.dklsFull);
    const oo = pick(k, (s) => s.oursOnline);
    const dd = pick(k, (s) => s.dklsOnline);
    const be = samples[k][0].backends;
    lines.push(
      `| ${samples[k][0].runtime}, ${v.label} (${be.public} / ${be.secret}) | ${fmt(of)} | ${
        fmt(ready)
      } | ${fmt(df)} | ${(ready / df).toFixed(1)}x | ${fmt(oo)} | ${fmt(dd)} | ${
        (oo / dd).toFixed(2)
      }x | ${fmt(pick(k, (s) => s.oursPresign))} |`,
    );
  });
  lines.push(
    "",
    "### Per party, one full signing: compute against the OpenSSL limit (p50 over parties and rounds)",
    "",
    "| runtime, backends | randomizers | exponentiations | party compute (CPU) | OpenSSL limit (replay) | of which secret slot | compute / limit |",
    "|---|---|---:|---:|---:|---:|---:|",
  );
  VARIANTS.forEach((v, k) => {
    for (
      const [label, f] of [["on the spot", (s: SigningSample) => s.parties], [
        "ready",
        (s: SigningSample) => s.partiesReady,
      ]] as const
    ) {
      const c = party(k, f, (p) => p.computeMs);
      const l = party(k, f, (p) => p.limitMs);
      lines.push(
        `| ${samples[k][0].runtime}, ${v.label} | ${label} | ${party(k, f, (p) => p.exps)} | ${
          fmt(c)
        } | ${fmt(l)} | ${fmt(party(k, f, (p) => p.secretLimitMs))} | ${(c / l).toFixed(2)}x |`,
      );
    }
  });
  lines.push(
    "",
    `Precomputing the randomizers one presigning takes, per party (9 own by CRT, 4 the peer's): ${
      VARIANTS.map((v, k) =>
        `${samples[k][0].runtime} ${v.label} ${fmt(median(samples[k].flatMap((s) => s.refillMs)))}`
      ).join("; ")
    }.`,
  );
  const denoFull = pick(0, (s) => s.oursFull);
  const before = pick(1, (s) => s.oursFull);
  const nodeFull = pick(2, (s) => s.oursFull);
  lines.push(
    "",
    `Deno with FFI / Node, full signing: ${
      (denoFull / nodeFull).toFixed(2)
    }x; Deno before / after FFI: ${
      (before / denoFull).toFixed(2)
    }x. Load average (1 min) after each child: ${loads.map((l) => l.toFixed(1)).join(", ")}.`,
    "",
  );
  return lines.join("\n");
}

function loadAverage(): number {
  return loadavg()[0];
}
