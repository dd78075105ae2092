/**
 * Tiny benchmark harness: runs a function a number of times after a warm-up, reports the median,
 * min and max in milliseconds, and prints markdown tables. Benchmarks are never assertions.
 * @module
 */

/** One measured row. */
export interface Row {
  name: string;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  note?: string;
}

/** Times `fn` `runs` times (after `warmup` untimed calls). */
export async function measure(
  name: string,
  fn: () => unknown | Promise<unknown>,
  runs: number,
  warmup = 1,
  note?: string,
): Promise<Row> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  const medianMs = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
  const row: Row = { name, runs, medianMs, minMs: times[0], maxMs: times[times.length - 1] };
  if (note) row.note = note;
  return row;
}

function fmt(ms: number): string {
  if (ms >= 10000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** A markdown table of rows, titled with the runtime. */
export function table(title: string, runtime: string, rows: Row[]): string {
  const lines = [
    `### ${title} (${runtime})`,
    "",
    "| benchmark | runs | median | min | max | note |",
    "|---|---:|---:|---:|---:|---|",
    ...rows.map((r) =>
      `| ${r.name} | ${r.runs} | ${fmt(r.medianMs)} | ${fmt(r.minMs)} | ${fmt(r.maxMs)} | ${
        r.note ?? ""
      } |`
    ),
    "",
  ];
  return lines.join("\n");
}

/** "Deno 2.9.6" or "Node v20.20.2". */
export function runtimeLabel(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; process?: { version: string } };
  if (g.Deno) return `Deno ${g.Deno.version.deno}`;
  return `Node ${g.process?.version ?? "?"}`;
}

/** Reads `--name=value` from the command line of either runtime. */
export function arg(name: string, fallback: string): string {
  const g = globalThis as { Deno?: { args: string[] }; process?: { argv: string[] } };
  const args = g.Deno ? g.Deno.args : g.process?.argv.slice(2) ?? [];
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
}
