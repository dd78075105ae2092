/**
 * An in-memory network of n parties for tests and the demo: every party gets a `Transport`;
 * broadcasts reach every other party. An optional `tamper` hook sees every envelope and returns
 * what is delivered instead (a hostile network: alter, drop, duplicate, replay, inject).
 * @module
 */
import { TransportError } from "../errors.ts";
import type { Transport } from "./driver.ts";
import type { Message } from "./types.ts";

/** Rewrites a delivery: return [] to drop, [m] to pass, several to inject. */
export type Tamper = (msg: Message, to: number) => Message[];

class Queue {
  readonly items: Message[] = [];
  waiter: ((m: Message) => void) | null = null;
  push(m: Message) {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(m);
    } else this.items.push(m);
  }
}

/** Creates n connected transports. */
export function createMemoryNetwork(n: number, tamper?: Tamper): Transport[] {
  const queues = Array.from({ length: n }, () => new Queue());
  const deliver = (m: Message, to: number) => {
    const copies = tamper ? tamper(structuredClone(m), to) : [structuredClone(m)];
    for (const c of copies) queues[to].push(c);
  };
  return queues.map((queue, me) => ({
    send(msg: Message): Promise<void> {
      if (msg.to === null) {
        for (let j = 0; j < n; j++) if (j !== me) deliver(msg, j);
      } else if (Number.isInteger(msg.to) && msg.to >= 0 && msg.to < n) {
        deliver(msg, msg.to);
      }
      return Promise.resolve();
    },
    receive(signal: AbortSignal): Promise<Message> {
      const next = queue.items.shift();
      if (next) return Promise.resolve(next);
      return new Promise<Message>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        const onAbort = () => {
          queue.waiter = null;
          reject(signal.reason ?? new TransportError("aborted", "receive aborted"));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        queue.waiter = (m) => {
          signal.removeEventListener("abort", onAbort);
          resolve(m);
        };
      });
    },
  }));
}
