/**
 * TEST ONLY. A throw-away `moto_server` (S3 and KMS) on a port it picks itself (`-p 0`; the port
 * is read from its `Running on http://127.0.0.1:PORT` line, never guessed beforehand), and the
 * skip reason when moto is not installed (pip is not reachable here: it comes with the image).
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";

/** A running moto server. */
export interface Moto {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** Stops it. */
  stop(): Promise<void>;
}

/**
 * Why moto cannot be used (a loud skip reason), or undefined.
 * @returns the reason or undefined.
 */
export function motoMissing(): string | undefined {
  const r = spawnSync("moto_server", ["--help"], { stdio: "ignore", timeout: 30_000 });
  return r.error || r.status !== 0
    ? "SKIPPED LOUDLY: moto_server is not installed (it comes with the machine image; pip " +
      "cannot reach its registry here), so S3 and KMS cannot be stood in for"
    : undefined;
}

/**
 * Starts `moto_server -H 127.0.0.1 -p 0` and waits (bounded) for the port it bound.
 * @param timeoutMs bound of the wait (default 30 s).
 * @returns the server.
 */
export function startMoto(timeoutMs = 30_000): Promise<Moto> {
  const p: ChildProcess = spawn("moto_server", ["-H", "127.0.0.1", "-p", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...Deno.env.toObject(), PYTHONUNBUFFERED: "1" },
  });
  let out = "";
  const stop = () =>
    new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once("exit", () => resolve());
      p.kill("SIGTERM");
    });
  return new Promise<Moto>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`moto_server did not say its port in ${timeoutMs} ms: ${out.slice(-500)}`));
    }, timeoutMs);
    const onData = (b: Uint8Array) => {
      out += new TextDecoder().decode(b);
      const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        p.stdout!.off("data", onData);
        p.stderr!.off("data", onData);
        // Keep draining its output so it never blocks on a full pipe.
        p.stdout!.resume();
        p.stderr!.resume();
        resolve({ endpoint: m[1], stop });
      }
    };
    p.stdout!.on("data", onData);
    p.stderr!.on("data", onData);
    p.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`moto_server exited (${code}) before it listened: ${out.slice(-500)}`));
    });
  });
}
