/**
 * TEST-ONLY: a throw-away local Ethereum node (foundry's `anvil` from node_modules/.bin), bound
 * to port 0 on 127.0.0.1 and read back from its "Listening on" line, with `fund` (the node's
 * `anvil_setBalance`) so that any address can pay for the transactions a test sends.
 *
 * @example
 * ```ts
 * import { startAnvil } from "./anvil.ts";
 * const node = await startAnvil();
 * await node.fund("0x00000000000000000000000000000000000000aa");
 * await node.stop();
 * ```
 * @module
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { missing, PROCESS_WAIT_MS, ROOT, waitForOutput } from "./processes.ts";
import { bounded } from "./waits.ts";

/** The anvil binary the repository installs (npm `@foundry-rs/anvil` or the like). */
export const ANVIL: string = join(ROOT, "node_modules/.bin/anvil");

/** A running anvil node. */
export interface AnvilNode {
  /** Its JSON-RPC URL (http://127.0.0.1:<port>). */
  readonly rpcUrl: string;
  /** Its chain id (anvil's default, 31337). */
  readonly chainId: number;
  /** Sets an address's balance (default 10 ether). */
  fund(address: string, wei?: bigint): Promise<void>;
  /** Stops it (SIGTERM) and waits, bounded, until it and its pipes are gone. */
  stop(): Promise<void>;
}

/** Why anvil cannot run here (a test's `skip`), or undefined. */
export function anvilMissing(): string | undefined {
  return missing(ANVIL);
}

/**
 * Starts anvil on a port of its choosing.
 * @returns the node.
 * @throws when it exits or prints no listening line within the bound.
 */
export async function startAnvil(): Promise<AnvilNode> {
  const child = spawn(ANVIL, ["--host", "127.0.0.1", "--port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let started = false;
  // Read to the end (a full pipe would stall anvil), kept only until it listens.
  const collect = (b: Uint8Array) => {
    if (!started) output += new TextDecoder().decode(b);
  };
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  // node_modules/.bin/anvil is a Node wrapper that forwards SIGTERM to the real binary; the
  // binary holds the pipes, so they close when it is gone (SIGKILL would orphan it).
  const gone = Promise.all([
    new Promise<void>((resolve) => child.once("exit", () => resolve())),
    ...[child.stdout!, child.stderr!].map((s) =>
      new Promise<void>((resolve) => s.once("close", () => resolve()))
    ),
  ]);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    try {
      await bounded(PROCESS_WAIT_MS, "anvil to exit", gone);
    } finally {
      child.stdout!.destroy();
      child.stderr!.destroy();
    }
  };
  let port: string;
  try {
    port = await waitForOutput(
      child,
      "anvil listening",
      () => /Listening on 127\.0\.0\.1:(\d+)/.exec(output)?.[1],
      () => output,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  started = true;
  output = "";
  const rpcUrl = `http://127.0.0.1:${port}`;
  return {
    rpcUrl,
    chainId: 31337,
    async fund(address, wei = 10n ** 19n) {
      const res = await fetch(rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "anvil_setBalance",
          params: [address, `0x${wei.toString(16)}`],
        }),
      });
      const body = await res.json() as { error?: { message: string } };
      if (!res.ok || body.error) {
        throw new Error(`anvil_setBalance: ${body.error?.message ?? res.status}`);
      }
    },
    stop,
  };
}
